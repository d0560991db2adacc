"""Matcher and version-scheme throughput, measured the way ``regsweep bench`` reports it.

Two measurements live here, beside the code they measure, so that ``regsweep bench`` on a
user's machine and ``python -m benchmarks.bench_matcher | bench_versions`` in the
repository run the same code and their figures can be compared:

* ``measure_matcher``: the product's matching path on an NDJSON inventory of ``package``
  records, exactly what ``regsweep match`` does to it (decode, ``Matcher.match`` in
  batches, encode the ``vulnerability`` records), against the msgspec I/O floor measured
  in the same run on the same lines: decode every line and encode the same output records,
  with no matching at all. The ratio of the two is what the matching adds to plain I/O.
* ``measure_scheme``: a version scheme's ``compare``, ``key`` and key comparison rates
  (``versions.module``: compiled unless ``REGSWEEP_PURE_PYTHON=1``) beside the pure-Python
  reference, over a corpus of real versions from the index, topped up with generated ones.

Inventories and corpora come from what an index holds (``inventory_pool``,
``index_versions``) or are generated (``generated_versions``); both are seeded, so a run
repeats.
"""

from __future__ import annotations

import gc
import importlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final, assert_never, cast

import msgspec

from regsweep.matcher import versions
from regsweep.matcher.advisories.ecosystems import (
    Ecosystem,
    normalize_version,
    parse_ecosystem,
)
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.match import DISTRO_TYPES, Matcher, MatchError
from regsweep.matcher.output.ndjson import NdjsonSink
from regsweep.matcher.records import (
    Advisory,
    ImageRef,
    Package,
    PackageRecord,
    Record,
    VulnerabilityRecord,
)
from regsweep.matcher.stream import BATCH, match_stream
from regsweep.matcher.versions import InvalidVersion, Scheme, SchemeModule

__all__ = [
    "BENCH_IMAGE",
    "SEED",
    "BenchmarkError",
    "InventoryError",
    "MatcherResult",
    "Pass",
    "SchemeResult",
    "corpus",
    "draw_pairs",
    "generate_inventory",
    "generated_versions",
    "index_versions",
    "inventory_pool",
    "measure_matcher",
    "measure_scheme",
    "package_type",
    "pure_module",
    "write_inventory",
]

#: The seed of every generated inventory and corpus: the same figures from the same index.
SEED: Final = 20261128
#: The image generated package records belong to. The product writes it into every
#: vulnerability record, so an inventory without one would make the output unrealistically
#: small.
BENCH_IMAGE: Final = ImageRef(ref="bench", digest="sha256:" + "0" * 64)
#: Encoded output held before it is handed to the sink, as ``regsweep match`` does.
_FLUSH: Final = 1 << 20


class BenchmarkError(Exception):
    """Base of the errors a benchmark reports about its input (not about the code measured)."""


class InventoryError(BenchmarkError):
    """An inventory line that is not a valid record, or an inventory with no package."""


# ----------------------------------------------------------------------------- inventories


def package_type(family: Ecosystem) -> str:
    """The ``Package.type`` an installed package of ``family`` has (what the analyzers write)."""
    match family:
        case Ecosystem.DEBIAN | Ecosystem.UBUNTU:
            return "deb"
        case Ecosystem.ALPINE | Ecosystem.WOLFI | Ecosystem.CHAINGUARD:
            return "apk"
        case (
            Ecosystem.ROCKY
            | Ecosystem.ALMA
            | Ecosystem.REDHAT
            | Ecosystem.SUSE
            | Ecosystem.OPENSUSE
        ):
            return "rpm"
        case Ecosystem.PYPI:
            return "pypi"
        case Ecosystem.NPM:
            return "npm"
        case Ecosystem.GO:
            return "go"
        case Ecosystem.CRATES_IO:
            return "cargo"
        case Ecosystem.NUGET:
            return "nuget"
        case Ecosystem.MAVEN:
            return "maven"
        case Ecosystem.RUBYGEMS:
            return "gem"
        case Ecosystem.PACKAGIST:
            return "composer"
        case Ecosystem.DHI:
            return "dhi"
        case _:
            assert_never(family)


def inventory_pool(index: AdvisoryIndex) -> list[tuple[Package, ...]]:
    """Every package the index names, each at every version that fixed something in it.

    One tuple per ``(ecosystem, name)``: an inventory draws a name first and then one of its
    versions (``generate_inventory``). A package installed at a version that fixed an
    advisory is the realistic case of a fleet that patches, yet lags behind the advisories
    published after: such packages have findings. Packages with no fixed version at all
    (nothing to install them at) are left out.
    """
    pool: list[tuple[Package, ...]] = []
    for ecosystem, name, raw in index.package_tables():
        info = parse_ecosystem(ecosystem)
        if info is None:
            continue
        typ = package_type(info.family)
        fixed = sorted({v for hit in index.hits(raw) for v in hit.fixed})
        if not fixed:
            continue
        # A distro package is matched by its source package: name it as its own source,
        # as dpkg, apk and rpm records of a source-named binary say.
        source = name if typ in DISTRO_TYPES else None
        pool.append(
            tuple(
                Package(name=name, version=v, type=typ, ecosystem=ecosystem, source_name=source)
                for v in fixed
            )
        )
    return pool


def generate_inventory(
    pool: Sequence[Sequence[Package]], n: int, rng: random.Random
) -> Iterator[Package]:
    """``n`` packages sampled with repeats as a fleet has them: a package name first (every
    group of ``pool`` equally likely), then one of its versions.

    Picking the name first keeps packages with hundreds of fixed versions (chromium, the
    kernel) from dominating the inventory, as they would if every (name, version) pair were
    equally likely.
    """
    if not pool:
        raise InventoryError("nothing to generate an inventory from: the pool is empty")
    choice = rng.choice
    for _ in range(n):
        yield choice(choice(pool))


def write_inventory(
    packages: Iterable[Package], out: BinaryIO, image: ImageRef | None = BENCH_IMAGE
) -> int:
    """Write ``packages`` as NDJSON ``package`` records (as ``regsweep scan --packages``
    writes them); returns how many."""
    enc = msgspec.json.Encoder()
    buf = bytearray()
    count = 0
    for pkg in packages:
        enc.encode_into(PackageRecord(image=image, package=pkg), buf, -1)
        buf += b"\n"
        count += 1
        if len(buf) >= _FLUSH:
            out.write(buf)
            buf.clear()
    out.write(buf)
    return count


# ----------------------------------------------------------------------------- matcher


class Pass(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One side of a comparison: the fastest of the repeated passes over the inventory."""

    seconds: float
    #: User + system CPU of the whole process during that pass.
    cpu_seconds: float
    #: Package records of the inventory per wall second.
    packages_per_s: float
    #: Output records written (vulnerability records, and error records of packages that
    #: could not be matched).
    records: int
    #: Bytes of NDJSON written.
    bytes: int


class MatcherResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``regsweep bench matcher``'s figures."""

    inventory: str
    #: Package records in the inventory (other record kinds are read and passed over).
    packages: int
    lines: int
    input_bytes: int
    #: Vulnerability records the product writes for the inventory.
    findings: int
    repeat: int
    #: ``regsweep match``'s path: decode, match in batches, encode the findings.
    product: Pass
    #: The msgspec I/O floor: decode every line, encode the same output, match nothing.
    floor: Pass
    #: Product seconds / floor seconds, which is floor packages/s ÷ product packages/s:
    #: 1.0 is matching for free; below 1.0 the product does less I/O work than the plain
    #: msgspec loop (it skips decoding lines it recognises as clean packages).
    ratio: float
    #: The same in CPU seconds: steadier than wall time on a shared machine (a CI runner),
    #: where other processes take turns on the cores.
    cpu_ratio: float


class _Sink:
    """Where the output goes while timed: counted and dropped, so that neither side pays
    for a terminal or a disk."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes | bytearray) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is kept, so nothing to flush."""


#: Per inventory line: None for a blank line (skipped by both sides), else what the floor
#: writes for it (the advisories that affect its package, or why it could not be matched).
_LineOut = tuple[Advisory | MatchError, ...] | None
_NOTHING: tuple[Advisory | MatchError, ...] = ()


def _prepare(index: AdvisoryIndex, path: Path) -> tuple[list[_LineOut], int, int]:
    """Check every line of the inventory and work out, with a matcher of its own, what the
    floor must write for it. Raises ``InventoryError`` at the first bad line."""
    decoder = msgspec.json.Decoder(Record)
    matcher = Matcher(index)
    out: list[_LineOut] = []
    pending: list[tuple[int, Package]] = []
    packages = size = 0

    def flush() -> None:
        found, errors = matcher.match([p for _, p in pending])
        for (line, _), advisories in zip(pending, found, strict=True):
            if advisories:
                out[line] = advisories
        for err in errors:
            line = pending[err.package][0]
            out[line] = (*(out[line] or ()), err)
        pending.clear()

    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            size += len(line)
            if not line.strip():
                out.append(None)
                continue
            try:
                rec = decoder.decode(line)
            except msgspec.DecodeError as err:
                raise InventoryError(f"{path} line {lineno}: {err}") from None
            out.append(_NOTHING)
            if isinstance(rec, PackageRecord):
                pending.append((len(out) - 1, rec.package))
                packages += 1
                if len(pending) >= BATCH:
                    flush()
    if pending:
        flush()
    if not packages:
        raise InventoryError(f"{path} holds no package record")
    return out, packages, size


def _floor(path: Path, per_line: list[_LineOut]) -> tuple[float, float, int, int]:
    """The msgspec I/O floor: wall s, CPU s, records and bytes written."""
    decoder = msgspec.json.Decoder(Record)
    enc = msgspec.json.Encoder()
    sink = _Sink()
    buf = bytearray()
    records = 0
    with path.open("rb") as fh:
        t0, c0 = time.perf_counter(), time.process_time()
        for line, todo in zip(fh, per_line, strict=True):
            if todo is None:
                continue
            rec = decoder.decode(line)
            if todo:
                pkg_rec = cast(PackageRecord, rec)
                for item in todo:
                    if type(item) is MatchError:
                        # As ``regsweep match`` words it: both sides write the same records.
                        enc.encode_into(item.record(pkg_rec.image, pkg_rec.package), buf, -1)
                    else:
                        enc.encode_into(
                            VulnerabilityRecord(
                                image=pkg_rec.image,
                                package=pkg_rec.package,
                                advisory=cast(Advisory, item),
                            ),
                            buf,
                            -1,
                        )
                    buf += b"\n"
                records += len(todo)
                if len(buf) >= _FLUSH:
                    sink.write(buf)
                    buf.clear()
        sink.write(buf)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, records, sink.bytes


def _product(index: AdvisoryIndex, path: Path) -> tuple[float, float, int, int]:
    """``regsweep match``'s work, from a fresh matcher: wall s, CPU s, records, bytes."""
    sink = _Sink()
    with path.open("rb") as fh:
        t0, c0 = time.perf_counter(), time.process_time()
        # A fresh Matcher, as every ``regsweep match`` process starts with: the pass pays
        # for resolving each distinct package once.
        # The same sink ``regsweep match`` writes NDJSON through.
        writer = NdjsonSink(cast(BinaryIO, sink))
        match_stream(Matcher(index), fh, writer)
        writer.end()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, writer.count, sink.bytes


def _settle() -> None:
    # match_stream freezes what its matcher cached (for the rest of a real run); between
    # passes that matcher is garbage, and the next pass must start from an empty heap as a
    # new process would.
    gc.unfreeze()
    gc.collect()


def measure_matcher(index: AdvisoryIndex, path: Path, repeat: int = 3) -> MatcherResult:
    """Time ``regsweep match``'s path and the msgspec I/O floor on the inventory at ``path``
    (NDJSON records; ``package`` ones are matched), ``repeat`` times each, interleaved so
    both see the same machine; the fastest pass of each side is kept.

    Every line is checked first: ``InventoryError`` names the first one that is not a
    record (``regsweep match`` would turn it into an ``error`` record; a benchmark of it
    would measure something else than asked).
    """
    per_line, packages, size = _prepare(index, path)
    findings = sum(1 for todo in per_line if todo for item in todo if type(item) is not MatchError)
    _settle()
    floors: list[tuple[float, float, int, int]] = []
    products: list[tuple[float, float, int, int]] = []
    for _ in range(repeat):
        floors.append(_floor(path, per_line))
        products.append(_product(index, path))
        _settle()

    def best(runs: list[tuple[float, float, int, int]]) -> Pass:
        wall, cpu, records, nbytes = min(runs)
        return Pass(
            seconds=wall,
            cpu_seconds=cpu,
            packages_per_s=packages / wall,
            records=records,
            bytes=nbytes,
        )

    product, floor = best(products), best(floors)
    return MatcherResult(
        inventory=str(path),
        packages=packages,
        lines=len(per_line),
        input_bytes=size,
        findings=findings,
        repeat=repeat,
        product=product,
        floor=floor,
        ratio=product.seconds / floor.seconds,
        cpu_ratio=product.cpu_seconds / floor.cpu_seconds,
    )


# ----------------------------------------------------------------------------- versions


def index_versions(index: AdvisoryIndex) -> dict[Scheme, list[str]]:
    """The distinct versions the index holds per scheme (fixed versions, listed versions,
    range events), normalised as the index keys them, in sorted order."""
    found: dict[Scheme, set[str]] = defaultdict(set)
    for ecosystem, _, raw in index.package_tables():
        info = parse_ecosystem(ecosystem)
        if info is None:
            continue
        bucket = found[info.scheme]
        for hit in index.hits(raw):
            bucket.update(normalize_version(info.family, v) for v in hit.fixed)
            bucket.update(normalize_version(info.family, v) for v in hit.versions)
            for events in hit.ranges:
                for kind, v in events:
                    # "introduced 0" means "before any version" and a limit "*" means no
                    # limit: neither is a version string.
                    if not (kind == "introduced" and v == "0") and "*" not in v:
                        bucket.add(normalize_version(info.family, v))
    return {scheme: sorted(vs) for scheme, vs in found.items()}


def generated_versions(scheme: Scheme, n: int, rng: random.Random) -> list[str]:
    """Up to ``n`` distinct realistic versions of ``scheme``, in the shapes real packages
    use (Debian security updates and backports, RHEL module builds, Alpine ``_p``
    suffixes, PEP 440 pre- and post-releases …), for a benchmark with no index at hand."""
    r = rng.randint
    out: set[str] = set()
    # The shapes repeat; give up on more distinct strings well before looping for ever.
    for _ in range(20 * n):
        if len(out) >= n:
            break
        x, y, z = r(0, 12), r(0, 40), r(0, 300)
        shapes: list[str]
        match scheme:
            case Scheme.DPKG:
                shapes = [
                    f"{x}.{y}.{z}-{r(1, 9)}",
                    f"{x}.{y}.{z}-{r(0, 3)}+deb{r(9, 12)}u{r(1, 9)}",
                    f"{r(1, 3)}:{x}.{y}~rc{r(1, 5)}-{r(1, 4)}",
                    f"{x}.{y}.{z}+dfsg-{r(1, 5)}ubuntu{r(0, 3)}.{r(1, 9)}",
                ]
            case Scheme.RPM:
                shapes = [
                    f"{x}.{y}.{z}-{r(1, 40)}.el{r(7, 9)}_{r(0, 9)}",
                    f"{r(1, 3)}:{x}.{y}.{z}-{r(1, 40)}.el8",
                    f"{x}.{y}.{z}-{r(1, 9)}.module+el8.{r(1, 9)}.0+{r(1000, 20000)}+abcdef",
                    f"{x}.{y}.{z}~rc{r(1, 4)}-{r(1, 5)}.fc{r(35, 41)}",
                ]
            case Scheme.APK:
                shapes = [
                    f"{x}.{y}.{z}-r{r(0, 12)}",
                    f"{x}.{y}.{z}_rc{r(1, 4)}-r{r(0, 3)}",
                    f"{x}.{y}.{z}_p{r(1, 20)}-r{r(0, 3)}",
                    f"{x}.{y}{rng.choice('abcdefk')}-r{r(0, 5)}",
                ]
            case Scheme.PEP440:
                shapes = [
                    f"{x}.{y}.{z}",
                    f"{x}.{y}.{z}rc{r(1, 4)}",
                    f"{x}.{y}.post{r(1, 4)}",
                    f"{x}.{y}.{z}.dev{r(0, 9)}",
                    f"{x}.{y}b{r(1, 3)}",
                ]
            case Scheme.SEMVER:
                shapes = [
                    f"{x}.{y}.{z}",
                    f"{x}.{y}.{z}-rc.{r(1, 9)}",
                    f"{x}.{y}.{z}-beta.{r(1, 4)}.{r(0, 9)}",
                    f"{x}.{y}.{z}+build.{r(1, 99)}",
                ]
            case Scheme.MAVEN:
                shapes = [
                    f"{x}.{y}.{z}",
                    f"{x}.{y}.{z}-SNAPSHOT",
                    f"{x}.{y}.{z}.Final",
                    f"{x}.{y}-M{r(1, 5)}",
                    f"{x}.{y}.{z}-jre",
                    f"{x}.{y}.{z}.RELEASE",
                ]
            case Scheme.GEM:
                shapes = [f"{x}.{y}.{z}", f"{x}.{y}.{z}.rc{r(1, 3)}", f"{x}.{y}.{z}.beta{r(1, 3)}"]
            case Scheme.COMPOSER:
                shapes = [
                    f"{x}.{y}.{z}",
                    f"v{x}.{y}.{z}",
                    f"{x}.{y}.{z}-RC{r(1, 3)}",
                    f"v{x}.{y}.{z}-beta{r(1, 3)}",
                    f"{x}.{y}.{z}-p{r(1, 5)}",
                ]
            case _:
                assert_never(scheme)
        out.add(rng.choice(shapes))
    return sorted(out)


def corpus(
    scheme: Scheme, real: Iterable[str], rng: random.Random, minimum: int = 5000
) -> tuple[list[str], int]:
    """The versions to measure ``scheme`` on: the distinct ``real`` ones the scheme accepts,
    topped up with generated ones to ``minimum`` (a thin real corpus would time a handful of
    strings over and over, all in the CPU cache). Returns the strings and how many of them
    are real."""
    key = versions.module(scheme).key
    valid: list[str] = []
    for v in sorted(set(real)):
        try:
            key(v)
        except InvalidVersion:
            continue
        valid.append(v)
    n_real = len(valid)
    if n_real < minimum:
        have = set(valid)
        valid += [v for v in generated_versions(scheme, minimum - n_real, rng) if v not in have]
    return valid, n_real


class SchemeResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One scheme's rates (calls per second, each in a Python loop so the call overhead is
    counted as a caller pays it), fastest of the repeats."""

    scheme: str
    #: ``compiled``, or ``pure`` when ``REGSWEEP_PURE_PYTHON`` forces the reference.
    implementation: str
    #: Distinct versions in the corpus, and how many of them came from the index.
    strings: int
    real: int
    pairs: int
    repeat: int
    #: ``compare(a, b)`` per second.
    compare_per_s: float
    #: Versions keyed per second (``key_many`` over the corpus, as the index build and the
    #: matcher key versions).
    key_per_s: float
    #: ``ka < kb`` on precomputed keys per second: what the interval index does.
    key_compare_per_s: float
    #: The pure-Python reference on a tenth of the pairs and strings.
    pure_compare_per_s: float
    pure_key_per_s: float
    #: compare_per_s / pure_compare_per_s, and the same for keys.
    compare_speedup: float
    key_speedup: float


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Wall seconds of the fastest of ``repeat`` runs (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _compare_rate(f: Callable[[str, str], int], pairs: list[tuple[str, str]], repeat: int) -> float:
    def run() -> None:
        for a, b in pairs:
            f(a, b)

    return len(pairs) / best_of(run, repeat)


def _key_rate(f: Callable[[Sequence[str]], list[bytes]], strings: list[str], repeat: int) -> float:
    return len(strings) / best_of(lambda: f(strings), repeat)


def pure_module(scheme: Scheme) -> SchemeModule:
    """The pure-Python reference module of ``scheme`` (whatever ``versions.module`` picks)."""
    mod: SchemeModule = importlib.import_module(f"regsweep.matcher.versions.pure.{scheme.value}")
    return mod


def draw_pairs(strings: Sequence[str], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` seeded pairs of ``strings`` to compare (a version may meet itself, as equal
    versions do meet in an index)."""
    return [(rng.choice(strings), rng.choice(strings)) for _ in range(n)]


def measure_scheme(
    scheme: Scheme,
    strings: list[str],
    pairs: list[tuple[str, str]],
    *,
    real: int,
    repeat: int,
) -> SchemeResult:
    """Time ``scheme``'s module and its pure reference: ``compare`` on ``pairs`` (drawn from
    ``strings``: ``draw_pairs``), ``key_many`` on ``strings`` (versions the scheme accepts,
    as ``corpus`` returns them), and comparisons of the pairs' keys."""
    if not strings or not pairs:
        raise BenchmarkError(f"no {scheme.value} version to measure")
    mod, pure = versions.module(scheme), pure_module(scheme)
    keys = dict(zip(strings, mod.key_many(strings), strict=True))
    kpairs = [(keys[a], keys[b]) for a, b in pairs]

    def key_loop() -> None:
        for ka, kb in kpairs:
            ka < kb  # noqa: B015 - the comparison is the work

    # The reference is 30-100 times slower: a tenth of the work keeps a run short, and a
    # rate does not depend on how many calls it was measured over.
    compare = _compare_rate(mod.compare, pairs, repeat)
    key = _key_rate(mod.key_many, strings, repeat)
    pure_compare = _compare_rate(pure.compare, pairs[: max(1, len(pairs) // 10)], repeat)
    pure_key = _key_rate(pure.key_many, strings[: max(1, len(strings) // 10)], repeat)
    return SchemeResult(
        scheme=scheme.value,
        implementation=versions.IMPLEMENTATION,
        strings=len(strings),
        real=real,
        pairs=len(pairs),
        repeat=repeat,
        compare_per_s=compare,
        key_per_s=key,
        key_compare_per_s=len(kpairs) / best_of(key_loop, repeat),
        pure_compare_per_s=pure_compare,
        pure_key_per_s=pure_key,
        compare_speedup=compare / pure_compare,
        key_speedup=key / pure_key,
    )
