"""``regsweep bench``: measure regsweep's throughput on this machine, on the user's own data.

``bench matcher`` times ``regsweep match``'s path on an inventory against the msgspec I/O
floor; ``bench versions`` the version schemes against their pure-Python reference;
``bench layers`` the layer scan against decompressing and walking the tar. Each prints a
short report, or with ``--json`` one JSON object for CI trend lines: the figures, the
process's peak RSS, and what they were measured with (regsweep and Python versions, the
machine, the index's build time).

The measuring code is ``regsweep.matcher.benchmark`` and ``regsweep.crawler.benchmark``,
which the repository's ``benchmarks/`` scripts call too; this module only reads the
arguments, prepares the input and prints. It is a logging command: a layer scan runs the
crawler's code, which logs.
"""

from __future__ import annotations

import os
import platform
import random
import resource
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import click
import msgspec

from regsweep.cli.common import DB_OPTION, usage_error
from regsweep.matcher.index.errors import AdvisoryIndexError
from regsweep.matcher.index.store import AdvisoryIndex
from regsweep.matcher.output import tool_version
from regsweep.matcher.versions import Scheme

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Packages in a generated inventory unless ``--generate`` says otherwise.
DEFAULT_PACKAGES = 200_000
#: Megabytes of tar in a generated layer when no layer is given.
DEFAULT_LAYER_MB = 64


class Report(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """What ``--json`` prints: one benchmark's figures and what they were measured with."""

    benchmark: str
    regsweep_version: str
    python_version: str
    machine: str
    #: When the index measured on (or whose versions were measured) was built.
    index_built_at: datetime | None = None
    #: The peak resident set of the process over the whole run (input preparation
    #: included), in MB: see ``peak_rss_mb``.
    peak_rss_mb: float
    result: T


def machine() -> str:
    """One line naming the machine: CPU model, cores, architecture."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass  # not Linux: platform's guess stands
    return f"{cpu}, {os.cpu_count()} cores, {platform.machine()}"


def peak_rss_mb() -> float:
    """The peak resident set of this process so far, in MB.

    ``VmHWM`` where Linux has it, else ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``fork`` and ``exec``, so a benchmark started by a big process (a harness holding a
    million packages) would report its parent's peak as its own; ``VmHWM`` belongs to the
    address space, which ``exec`` replaces.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass  # no procfs: fall back to getrusage
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux counts KiB, macOS bytes.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _report(benchmark: str, result: T, built_at: datetime | None = None) -> Report[T]:
    return Report(
        benchmark=benchmark,
        regsweep_version=tool_version(),
        python_version=platform.python_version(),
        machine=machine(),
        index_built_at=built_at,
        peak_rss_mb=peak_rss_mb(),
        result=result,
    )


def _emit_json(report: Report[T]) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")
    sys.stdout.flush()


def _open_index(db: Path, hint: str = "") -> AdvisoryIndex:
    try:
        return AdvisoryIndex(db)
    except AdvisoryIndexError as err:
        usage_error(f"{err}{hint}")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


REPEAT_HELP = "Passes of each side; the fastest counts."


def repeat_option(default: int) -> Callable[[F], F]:
    """``--repeat N``: passes of each side, the fastest counting."""
    return click.option(
        "--repeat", type=click.IntRange(min=1), default=default, show_default=True,
        help=REPEAT_HELP,
    )  # fmt: skip


JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (for CI trend lines)."
)


@click.group(name="bench")
def bench_group() -> None:
    """Measure regsweep's throughput on this machine: matcher, version schemes, layers."""


# ----------------------------------------------------------------------------- matcher


@bench_group.command(name="matcher")
@DB_OPTION
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="NDJSON package records (as `regsweep scan --packages` writes them).",
)
@click.option(
    "--generate",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"Match N packages drawn from the index's own packages at their fixed versions "
    f"(the default, {DEFAULT_PACKAGES:,}, without -i).",
)
@repeat_option(3)
@JSON_OPTION
def bench_matcher(
    db: Path, inventory: Path | None, generate: int | None, repeat: int, as_json: bool
) -> None:
    """Packages per second of `regsweep match` on an inventory, beside the msgspec floor.

    The product side is what `regsweep match` does (decode the package records, match them
    in batches, encode the vulnerability records); the floor decodes the same lines and
    encodes the same output records with no matching. Best of --repeat passes each.
    """
    from regsweep.matcher import benchmark

    if inventory is not None and generate is not None:
        usage_error("give -i INVENTORY or --generate N, not both")
    index = _open_index(db)
    with index, tempfile.TemporaryDirectory(prefix="regsweep-bench-") as tmp:
        if inventory is None:
            n = generate or DEFAULT_PACKAGES
            path = Path(tmp) / "inventory.ndjson"
            pool = benchmark.inventory_pool(index)
            if not pool:
                usage_error(f"the index at {db} names no fixed version to install; use -i")
            with path.open("wb") as fh:
                benchmark.write_inventory(
                    benchmark.generate_inventory(pool, n, random.Random(benchmark.SEED)), fh
                )
        else:
            path = inventory
        try:
            result = benchmark.measure_matcher(index, path, repeat)
        except benchmark.InventoryError as err:
            usage_error(_one_line(err))
        except OSError as err:
            usage_error(f"cannot read {path}: {err.strerror or err}")
        if inventory is None:
            # The temporary path means nothing after the run; say what was measured.
            result = msgspec.structs.replace(result, inventory=f"generated:{result.packages}")
        report = _report("matcher", result, index.meta.built_at)
    if as_json:
        _emit_json(report)
        return
    p, f = result.product, result.floor
    click.echo(
        f"regsweep bench matcher: {result.packages:,} packages ({result.inventory}, "
        f"{result.input_bytes / 1e6:.1f} MB), {result.findings:,} vulnerability records; "
        f"index {db} built {report.index_built_at:%Y-%m-%d %H:%M}; best of {result.repeat}"
    )
    click.echo(
        f"  product (decode, match, encode)   {p.seconds:8.3f} s  "
        f"{p.packages_per_s:>12,.0f} packages/s  (CPU {p.cpu_seconds:.3f} s)"
    )
    click.echo(
        f"  floor   (msgspec decode + encode) {f.seconds:8.3f} s  "
        f"{f.packages_per_s:>12,.0f} packages/s  (CPU {f.cpu_seconds:.3f} s)"
    )
    click.echo(
        f"  product / floor                   {result.ratio:8.2f}×  (CPU {result.cpu_ratio:.2f}×)"
    )
    click.echo(f"  peak RSS                          {report.peak_rss_mb:8.0f} MB")


# ----------------------------------------------------------------------------- versions


@bench_group.command(name="versions")
@DB_OPTION
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    type=click.Choice([s.value for s in Scheme], case_sensitive=False),
    help="Only this scheme (repeatable; default: all).",
)
@click.option(
    "--generate",
    type=click.IntRange(min=1),
    metavar="N",
    help="Measure on N generated versions per scheme instead of the index's versions.",
)
@click.option(
    "--pairs", type=click.IntRange(min=10), default=200_000, show_default=True, help="Per scheme."
)
@repeat_option(5)
@JSON_OPTION
def bench_versions(
    db: Path,
    schemes: tuple[str, ...],
    generate: int | None,
    pairs: int,
    repeat: int,
    as_json: bool,
) -> None:
    """Compare and key rates of each version scheme, beside its pure-Python reference.

    The corpus is the versions the index holds (topped up with generated ones where a
    scheme has fewer than 5,000), or with --generate N generated versions only.
    """
    from regsweep.matcher import benchmark

    chosen = [Scheme(s.lower()) for s in schemes] or list(Scheme)
    real: dict[Scheme, list[str]] = {}
    built_at = None
    if generate is None:
        with _open_index(db, " (or measure generated versions: --generate N)") as index:
            real = benchmark.index_versions(index)
            built_at = index.meta.built_at
    results = []
    for scheme in chosen:
        rng = random.Random(benchmark.SEED)
        if generate is None:
            strings, n_real = benchmark.corpus(scheme, real.get(scheme, ()), rng)
        else:
            strings, n_real = benchmark.generated_versions(scheme, generate, rng), 0
        drawn = benchmark.draw_pairs(strings, pairs, rng)
        results.append(benchmark.measure_scheme(scheme, strings, drawn, real=n_real, repeat=repeat))
    report = _report("versions", results, built_at)
    if as_json:
        _emit_json(report)
        return
    source = "generated versions" if generate else f"the versions of {db}"
    click.echo(
        f"regsweep bench versions: {results[0].implementation} modules on {source}, "
        f"{pairs:,} pairs per scheme, best of {repeat}; millions of calls per second"
    )
    click.echo(
        f"  {'scheme':9}{'strings':>8}{'(real)':>8}{'compare':>9}{'key':>8}{'key cmp':>9}"
        f"{'pure compare':>14}{'pure key':>10}{'× pure':>8}{'× pure key':>12}"
    )
    for r in results:
        click.echo(
            f"  {r.scheme:9}{r.strings:>8}{r.real:>8}{r.compare_per_s / 1e6:>9.2f}"
            f"{r.key_per_s / 1e6:>8.2f}{r.key_compare_per_s / 1e6:>9.2f}"
            f"{r.pure_compare_per_s / 1e6:>14.3f}{r.pure_key_per_s / 1e6:>10.3f}"
            f"{r.compare_speedup:>7.0f}×{r.key_speedup:>11.0f}×"
        )
    click.echo(f"  peak RSS {report.peak_rss_mb:.0f} MB")


# ----------------------------------------------------------------------------- layers


@bench_group.command(name="layers")
@click.argument(
    "layer_files", nargs=-1, metavar="[LAYER]...", type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--generate-mb",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"Also measure a generated Debian-like gzip layer of N MB of tar "
    f"(the default, {DEFAULT_LAYER_MB} MB, when no LAYER is given).",
)
@repeat_option(3)
@JSON_OPTION
def bench_layers(
    layer_files: tuple[Path, ...], generate_mb: int | None, repeat: int, as_json: bool
) -> None:
    """MB/s and files/s of the layer scan (every analyzer) on LAYER files (tar, tar.gz,
    tar.zst), beside decompressing and walking the same tar.
    """
    from regsweep.crawler import benchmark, layers

    if not layer_files and generate_mb is None:
        generate_mb = DEFAULT_LAYER_MB
    results = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as tmp:
        todo: list[tuple[Path, str | None]] = [(p, None) for p in layer_files]
        if generate_mb is not None:
            path = Path(tmp) / "generated.tar.gz"
            with path.open("wb") as fh:
                benchmark.generate_layer(fh, generate_mb)
            todo.append((path, f"generated:{generate_mb}MB"))
        for path, label in todo:
            try:
                blob = benchmark.inspect_layer(path)
                results.append(benchmark.measure_layer(blob, repeat, label))
            except (benchmark.LayerFileError, layers.LayerError) as err:
                usage_error(f"{path}: {_one_line(err)}")
            except OSError as err:
                usage_error(f"cannot read {path}: {err.strerror or err}")
    report = _report("layers", results)
    if as_json:
        _emit_json(report)
        return
    click.echo(
        f"regsweep bench layers: scan_layer with every analyzer beside the floor "
        f"(decompress + walk the tar, one thread); best of {repeat}; MB of uncompressed tar"
    )
    for r in results:
        p, f = r.product, r.floor
        click.echo(
            f"  {r.layer}: {r.compressed_bytes / 1e6:.1f} MB blob, {r.tar_bytes / 1e6:.1f} MB "
            f"tar, {r.files:,} files, {r.packages:,} packages found"
        )
        click.echo(
            f"    product {p.seconds:7.3f} s  {p.mb_per_s:7.0f} MB/s  {p.files_per_s:>9,.0f} "
            f"files/s  (CPU {p.cpu_seconds:.3f} s)"
        )
        click.echo(
            f"    floor   {f.seconds:7.3f} s  {f.mb_per_s:7.0f} MB/s  {f.files_per_s:>9,.0f} "
            f"files/s  (CPU {f.cpu_seconds:.3f} s)"
        )
        click.echo(f"    product / floor {r.ratio:.2f}×  (CPU {r.cpu_ratio:.2f}×)")
    click.echo(f"  peak RSS {report.peak_rss_mb:.0f} MB")
