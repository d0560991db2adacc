"""Layer streaming and the layered filesystem, on real tar/gzip/zstd bytes.

Every fixture is a real archive written by ``tarfile`` (ustar, GNU and PAX formats) and
compressed by a real compressor (``gzip``/ISA-L, ``zstandard``); digests are real sha256s.
The analyzer here (``Keep``) keeps each wanted file's bytes as its facts, so the tests see
exactly what the walker handed over and what the merged view shows.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import tarfile
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regsweep.crawler.analyze import analyze_image, default_analyzers
from regsweep.crawler.analyzers.interface import (
    Analyzer,
    AnalyzerResult,
    Budget,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
    FileReader,
)
from regsweep.crawler.layers import (
    DEFAULT_MAX_UNCOMPRESSED,
    MAX_EXPANSION,
    MIN_UNCOMPRESSED_CAP,
    CorruptLayer,
    DiffIdMismatch,
    DigestMismatch,
    LayerError,
    LayerFacts,
    LayerTooLarge,
    MergedFacts,
    UnsupportedMediaType,
    merge,
    normalize_path,
    resolve_symlinks,
    scan_layer,
    uncompressed_cap,
)
from regsweep.crawler.sources import open_source
from tests import hostile

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"

# (name, kind, payload): kind "f" file (payload bytes), "d" dir, "l" symlink (payload target),
# "h" hard link (payload target), "c" char device.
Entry = tuple[str, str, bytes | str]


def tar_bytes(entries: Sequence[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A real tar archive of ``entries`` in format ``fmt``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "f":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "c":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
    return out.getvalue()


def compress(raw: bytes, media_type: str) -> bytes:
    if media_type == GZIP:
        return gzip.compress(raw, mtime=0)
    if media_type == ZSTD:
        return zstandard.ZstdCompressor().compress(raw)
    return raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def want_all(_path: str) -> int | None:
    return 1 << 20


class Keep(BufferedAnalyzer):
    """Keeps every wanted file's first ``cap`` bytes (latin-1 text) as its facts."""

    NAME: ClassVar[str] = "keep"
    VERSION: ClassVar[int] = 1

    def __init__(self, wants: Callable[[str], int | None] = want_all) -> None:
        self._wants = wants

    def wants(self, path: str) -> int | None:
        return self._wants(path)

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        return FileFacts(text=data.decode("latin-1"), notes=("truncated",) if truncated else ())

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        return AnalyzerResult()


def scan(
    raw: bytes,
    media_type: str = GZIP,
    wants: Callable[[str], int | None] = want_all,
    *,
    blob: bytes | None = None,
    digest: str | None = None,
    diff_id: str | None = "",
    max_uncompressed: int = 1 << 30,
    analyzers: Sequence[Analyzer] | None = None,
    budget: Budget | None = None,
) -> LayerFacts:
    """Scan ``raw`` (a tar) compressed as ``media_type``; digests right unless overridden."""
    blob = compress(raw, media_type) if blob is None else blob
    return scan_layer(
        io.BytesIO(blob),
        media_type=media_type,
        digest=sha(blob) if digest is None else digest,
        diff_id=sha(raw) if diff_id == "" else diff_id,
        analyzers=[Keep(wants)] if analyzers is None else analyzers,
        max_uncompressed=max_uncompressed,
        budget=budget,
    )


def files(layer: LayerFacts) -> dict[str, bytes]:
    """The wanted files of one scanned layer, as the walker handed them over."""
    return {f.path: (f.facts.text or "").encode("latin-1") for f in layer.found}


def view_files(view: MergedFacts) -> dict[str, bytes]:
    """The wanted files visible in a merged view."""
    return {p: (f.facts.text or "").encode("latin-1") for p, f in view.found("keep").items()}


def through(view: MergedFacts, path: str) -> bytes | None:
    """What a program opening ``path`` reads (symlinks followed), if it was read."""
    f = view.get("keep", path)
    return None if f is None else (f.facts.text or "").encode("latin-1")


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize("media_type", [GZIP, ZSTD, TAR])
@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_format_and_compression_yields_the_same_files(media_type: str, fmt: int) -> None:
    """ustar (prefix field), GNU (long-name entries) and PAX (path records) long names all
    come out as the same normalised paths, whatever the compression."""
    deep = "usr/lib/python3/dist-packages/" + "a" * 60 + "/" + "b" * 60 + ".dist-info/METADATA"
    raw = tar_bytes(
        [("etc/os-release", "f", b"ID=debian\n"), (deep, "f", b"Name: x\n"), ("bin", "d", b"")],
        fmt,
    )
    got = files(scan(raw, media_type))
    assert got[deep] == b"Name: x\n"
    assert got["etc/os-release"] == b"ID=debian\n"


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_link_targets_survive(fmt: int) -> None:
    """A symlink target over 100 bytes (GNU 'K' entry / PAX linkpath) is kept whole."""
    target = "/opt/" + "t" * 150 + "/os-release"
    layer = scan(tar_bytes([("etc/os-release", "l", target)], fmt))
    assert layer.symlinks == {"etc/os-release": target}


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ],
)
def test_docker_and_foreign_media_types_are_read(media_type: str) -> None:
    """Docker, foreign and non-distributable layer media types map to their compression."""
    compressed = GZIP if "gzip" in media_type else ZSTD if "zstd" in media_type else TAR
    raw = tar_bytes([("a", "f", b"1")])
    blob = compress(raw, compressed)
    assert files(scan(raw, media_type, blob=blob))["a"] == b"1"


def test_unknown_media_type_is_refused() -> None:
    """An unknown layer media type is an UnsupportedMediaType (a LayerError), not a guess."""
    with pytest.raises(UnsupportedMediaType):
        scan(tar_bytes([("a", "f", b"1")]), "application/vnd.example.layer+lz4", blob=b"x")


def test_only_wanted_files_are_read_and_caps_truncate() -> None:
    """Unwanted files are skipped and not kept at all; a wanted file above its cap is read
    up to the cap and told it was truncated; wanted files are ``present``."""
    raw = tar_bytes([("big", "f", b"x" * 5000), ("small", "f", b"ok"), ("skip", "f", b"no")])
    layer = scan(raw, wants=lambda p: {"big": 100, "small": 100}.get(p))
    got = {f.path: f for f in layer.found}
    assert got["big"].facts.text == "x" * 100
    assert got["big"].facts.notes == ("truncated",)
    assert got["big"].size == 5000
    assert got["small"].facts.notes == ()
    assert "skip" not in got
    assert layer.present == ["big", "small"]


def test_multi_member_gzip_and_multi_frame_zstd_are_read_whole() -> None:
    """pigz-style concatenated gzip members and concatenated zstd frames are one stream."""
    raw = tar_bytes([("a", "f", b"A" * 3000), ("b", "f", b"B" * 10)])
    half = len(raw) // 2
    gz = gzip.compress(raw[:half], mtime=0) + gzip.compress(raw[half:], mtime=0)
    zc = zstandard.ZstdCompressor()
    zs = zc.compress(raw[:half]) + zc.compress(raw[half:])
    for media_type, blob in ((GZIP, gz), (ZSTD, zs)):
        assert files(scan(raw, media_type, blob=blob))["b"] == b"B" * 10


# ----------------------------------------------------------------------------- paths


def test_paths_are_normalised_and_escapes_refused() -> None:
    """Leading ``/`` and ``./`` go; ``..`` inside the root is applied; climbing above the
    root makes the entry unaddressable (None), never some other file."""
    assert normalize_path("./etc/os-release") == "etc/os-release"
    assert normalize_path("/etc//./passwd") == "etc/passwd"
    assert normalize_path("usr/../etc/hosts") == "etc/hosts"
    assert normalize_path("../etc/shadow") is None
    assert normalize_path("a/../../b") is None
    assert normalize_path("./") == ""


def test_hostile_entry_paths_never_reach_outside_the_root() -> None:
    """A tar entry ``../../etc/os-release`` is skipped with a note; ``/etc/x`` lands at
    ``etc/x``; a hard link whose target escapes is not followed."""
    raw = tar_bytes(
        [
            ("../../etc/os-release", "f", b"evil"),
            ("/etc/abs", "f", b"abs"),
            ("etc/link", "h", "../../../etc/shadow"),
        ]
    )
    layer = scan(raw)
    assert set(files(layer)) == {"etc/abs"}
    assert any("leaves the image root" in n for n in layer.notes)
    assert len(layer.notes) == 2


# ----------------------------------------------------------------------------- layering


def merged_view(
    *layers: Sequence[Entry], wants: Callable[[str], int | None] = want_all
) -> MergedFacts:
    return merge([scan(tar_bytes(entries), wants=wants) for entries in layers])


def merged(
    *layers: Sequence[Entry], wants: Callable[[str], int | None] = want_all
) -> dict[str, bytes]:
    return view_files(merged_view(*layers, wants=wants))


def test_later_layer_replaces_file_and_records_its_digest() -> None:
    """A package database rewritten in an upper layer replaces the lower one, and the file
    carries the digest of the layer that wrote it."""
    low = tar_bytes([("var/lib/dpkg/status", "f", b"old"), ("etc/os-release", "f", b"ID=x")])
    high = tar_bytes([("var/lib/dpkg/status", "f", b"new")])
    view = merge([scan(low), scan(high)])
    assert view_files(view)["var/lib/dpkg/status"] == b"new"
    found = view.found("keep")
    assert found["var/lib/dpkg/status"].layer == sha(gzip.compress(high, mtime=0))
    assert found["etc/os-release"].layer == sha(gzip.compress(low, mtime=0))


def test_whiteout_deletes_file_and_whole_directory() -> None:
    """``.wh.NAME`` removes NAME from lower layers, subtree included (a deleted dist-info
    is gone), and leaves siblings alone."""
    files = merged(
        [
            ("site/foo-1.0.dist-info/METADATA", "f", b"foo"),
            ("site/bar-2.0.dist-info/METADATA", "f", b"bar"),
            ("etc/motd", "f", b"hi"),
        ],
        [("site/.wh.foo-1.0.dist-info", "f", b""), ("etc/.wh.motd", "f", b"")],
    )
    assert files == {"site/bar-2.0.dist-info/METADATA": b"bar"}


def test_opaque_directory_hides_lower_contents_but_keeps_its_own() -> None:
    """``.wh..wh..opq`` hides everything lower in that directory, not the layer's own files
    nor anything outside the directory."""
    files = merged(
        [("app/old.txt", "f", b"old"), ("app/sub/x", "f", b"x"), ("other/y", "f", b"y")],
        [("app/.wh..wh..opq", "f", b""), ("app/new.txt", "f", b"new")],
    )
    assert files == {"app/new.txt": b"new", "other/y": b"y"}


def test_whiteout_applies_only_to_lower_layers() -> None:
    """A whiteout does not delete the file a later layer adds again."""
    files = merged(
        [("etc/motd", "f", b"1")], [("etc/.wh.motd", "f", b"")], [("etc/motd", "f", b"3")]
    )
    assert files == {"etc/motd": b"3"}


def test_non_directory_replacing_a_directory_hides_its_subtree() -> None:
    """An upper layer turning ``usr/lib/x`` into a file an analyzer reads, or ``opt/y`` into a
    symlink, hides the lower files below them, as overlayfs does (the lower files are gone
    from the view, and so are lower links below them)."""
    view = merged_view(
        [("usr/lib/x/METADATA", "f", b"a"), ("opt/y/METADATA", "f", b"b"), ("opt/y/l", "l", "z")],
        [("usr/lib/x", "f", b"now a file"), ("opt/y", "l", "/elsewhere")],
        wants=lambda p: 100 if p.endswith("METADATA") or p == "usr/lib/x" else None,
    )
    assert view_files(view) == {"usr/lib/x": b"now a file"}
    assert through(view, "opt/y/l") is None


def test_hard_links_take_their_targets_content() -> None:
    """A wanted hard link reads the content of its target in the same layer, and a hard
    link into a lower layer's file takes that file (and that layer's digest)."""
    low = tar_bytes([("usr/lib/os-release", "f", b"ID=alpine")])
    high = tar_bytes(
        [("x/real", "f", b"data"), ("x/alias", "h", "x/real"), ("b", "h", "usr/lib/os-release")]
    )
    view = merge([scan(low), scan(high)])
    got = view_files(view)
    assert got["x/alias"] == b"data"
    assert got["b"] == b"ID=alpine"
    assert view.found("keep")["b"].layer == sha(gzip.compress(low, mtime=0))


def test_symlinks_resolve_for_wanted_paths() -> None:
    """``etc/os-release -> ../usr/lib/os-release`` reads the target, even across layers and
    through an absolute link and a symlinked directory component."""
    view = merged_view(
        [("usr/lib/os-release", "f", b"ID=debian"), ("lib", "l", "usr/lib")],
        [
            ("etc/os-release", "l", "../usr/lib/os-release"),
            ("etc/abs", "l", "/lib/os-release"),
            ("etc/chain", "l", "abs"),
        ],
    )
    assert through(view, "etc/os-release") == b"ID=debian"
    assert through(view, "etc/abs") == b"ID=debian"
    assert through(view, "etc/chain") == b"ID=debian"
    # A path reached through the symlinked directory reads the real file.
    assert through(view, "lib/os-release") == b"ID=debian"
    # The file is reported once, under its real path.
    assert set(view_files(view)) == {"usr/lib/os-release"}


def test_symlink_target_wanted_only_through_the_link_is_resolved() -> None:
    """The analyzers' wanted name is the link; the target (also wanted) lives elsewhere."""
    wanted = {"etc/os-release": 100, "usr/lib/os-release": 100}
    view = merged_view(
        [("usr/lib/os-release", "f", b"ID=x"), ("etc/os-release", "l", "../usr/lib/os-release")],
        wants=wanted.get,
    )
    assert through(view, "etc/os-release") == b"ID=x"


def test_symlink_loops_dotdot_and_dangling_links_read_nothing_and_are_no_error() -> None:
    """A loop stops after 40 hops; ``..`` above the root stays at the root (as in a chroot);
    a dangling link reads nothing. None of them hides a file, so none is a note (an
    ``error`` record is for lost coverage)."""
    view = merged_view(
        [
            ("a", "l", "b"),
            ("b", "l", "a"),
            ("etc/up", "l", "../../../../etc/real"),
            ("etc/real", "f", b"root-bound"),
            ("etc/dangling", "l", "/nowhere"),
        ]
    )
    assert through(view, "etc/up") == b"root-bound"
    assert through(view, "a") is None and through(view, "etc/dangling") is None
    assert view.notes == []


def test_resolve_symlinks_matches_kernel_rules() -> None:
    """Relative targets resolve from the link's directory, absolute ones from the root."""
    links = {"etc/os-release": "../usr/lib/os-release", "usr/lib": "/usr/lib64", "x": "x"}
    assert resolve_symlinks("etc/os-release", links) == "usr/lib64/os-release"
    assert resolve_symlinks("x", links) is None


def test_stored_layer_facts_merge_to_the_same_view() -> None:
    """Layer facts through the store's encoding (msgpack) merge exactly as fresh ones: a
    crawl answers the same whether a layer came from the cache or the registry."""
    raws = [
        tar_bytes([("a", "f", b"1"), ("d/x", "f", b"x"), ("hl", "h", "a")]),
        tar_bytes([("a", "f", b"2"), ("b", "l", "a"), (".wh.d", "f", b""), ("c", "h", "hl")]),
    ]
    scanned = [scan(r) for r in raws]
    dec = msgspec.msgpack.Decoder(LayerFacts)
    stored = [dec.decode(msgspec.msgpack.encode(f)) for f in scanned]
    assert stored == scanned
    fresh, cached = merge(scanned), merge(stored)
    assert view_files(fresh) == view_files(cached) == {"a": b"2", "hl": b"1", "c": b"1"}
    assert through(cached, "b") == b"2"


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("media_type", [GZIP, ZSTD])
def test_truncated_compressed_stream_is_corrupt(media_type: str) -> None:
    """A blob cut short (digest computed on the cut bytes) is CorruptLayer, for gzip and
    zstd alike (zstd's own stream reader would silently stop)."""
    raw = tar_bytes([("a", "f", bytes(range(256)) * 40)])
    blob = compress(raw, media_type)
    for cut in (3, len(blob) // 2, len(blob) - 3):
        with pytest.raises(CorruptLayer, match="truncated"):
            scan(raw, media_type, blob=blob[:cut], diff_id=None)


def test_truncated_tar_is_corrupt() -> None:
    """A tar cut inside an entry's data is CorruptLayer."""
    raw = tar_bytes([("a", "f", b"x" * 5000)])
    with pytest.raises(CorruptLayer, match="truncated"):
        scan(raw[:1500], TAR, diff_id=None)


def test_flipped_byte_is_reported_as_digest_mismatch() -> None:
    """A corrupted blob named by the digest of the good one is a DigestMismatch (the true
    cause), even though the gzip CRC fails first."""
    raw = tar_bytes([("a", "f", bytes(range(256)) * 40)])
    blob = bytearray(gzip.compress(raw, mtime=0))
    good = sha(bytes(blob))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(DigestMismatch):
        scan(raw, GZIP, blob=bytes(blob), digest=good)


def test_digest_and_diff_id_mismatches_are_typed() -> None:
    """The compressed bytes are checked against the descriptor digest, the tar against the
    diff_id; a malformed digest string is refused too."""
    raw = tar_bytes([("a", "f", b"1")])
    with pytest.raises(DigestMismatch):
        scan(raw, digest="sha256:" + "0" * 64)
    with pytest.raises(DiffIdMismatch):
        scan(raw, diff_id="sha256:" + "0" * 64)
    with pytest.raises(DigestMismatch):
        scan(raw, digest="md5:abc")


def test_trailing_garbage_after_gzip_is_corrupt_but_zero_padding_is_not() -> None:
    """Bytes after the last gzip member are refused unless they are zero padding."""
    raw = tar_bytes([("a", "f", b"1")])
    good = gzip.compress(raw, mtime=0)
    assert files(scan(raw, blob=good + bytes(1000)))["a"] == b"1"
    with pytest.raises(CorruptLayer):
        scan(raw, blob=good + b"garbage")


def _gzip_bomb(size: int) -> bytes:
    # zlib at level 9 reaches deflate's ~1000:1 ceiling on zeros (ISA-L stops at level 3).
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    return b"".join(comp.compress(zero) for _ in range(size >> 20)) + comp.flush()


@pytest.mark.parametrize("media_type", [GZIP, ZSTD])
def test_decompression_bomb_is_capped_without_allocating_it(media_type: str) -> None:
    """A small blob inflating to 64 MiB (gzip) or 1 GiB (zstd) hits the 8 MiB cap as
    LayerTooLarge, and peak Python memory stays far below what the bomb would take (each
    decompression call returns at most 1 MiB)."""
    if media_type == GZIP:
        size = 64 << 20
        blob = _gzip_bomb(size)
    else:
        size = 1 << 30
        blob = zstandard.ZstdCompressor(level=3).compress(bytes(size))
    assert len(blob) < size // 500
    tracemalloc.start()
    try:
        with pytest.raises(LayerTooLarge):
            scan(b"", media_type, blob=blob, diff_id=None, max_uncompressed=8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


@pytest.mark.parametrize("media_type", [GZIP, ZSTD, TAR])
def test_binary_garbage_is_corrupt(media_type: str) -> None:
    """Random bytes are a CorruptLayer, whatever the announced compression."""
    garbage = hashlib.sha512(b"seed").digest() * 40
    with pytest.raises(CorruptLayer):
        scan(b"", media_type, blob=garbage, diff_id=None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), media_type=st.sampled_from([GZIP, ZSTD, TAR]))
def test_fuzz_random_bytes_raise_only_layer_errors(data: bytes, media_type: str) -> None:
    """Any byte string, under any compression, scans or raises a LayerError: nothing else."""
    with contextlib.suppress(LayerError):
        scan(b"", media_type, blob=data, diff_id=None)


_SEED_TAR = tar_bytes(
    [
        ("etc/os-release", "f", b"ID=debian\n"),
        ("x" * 120 + "/y", "f", b"long"),
        ("lnk", "l", "etc/os-release"),
        ("hl", "h", "etc/os-release"),
        ("d/.wh..wh..opq", "f", b""),
        ("dev/null", "c", b""),
    ],
    tarfile.GNU_FORMAT,
) + tar_bytes([("p" * 200, "f", b"pax")], tarfile.PAX_FORMAT)


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, len(_SEED_TAR) - 1), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, len(_SEED_TAR)),
)
def test_fuzz_mutated_tars_raise_only_layer_errors(flips: list[tuple[int, int]], cut: int) -> None:
    """A real tar with bytes overwritten and cut anywhere scans or raises a LayerError."""
    raw = bytearray(_SEED_TAR[:cut])
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    with contextlib.suppress(LayerError):
        merge([scan(bytes(raw), TAR)])


def test_v7_header_without_magic_is_accepted_by_its_checksum() -> None:
    """A pre-POSIX header (no ustar magic) is a tar entry when its checksum holds, and
    garbage when it does not."""
    raw = bytearray(tar_bytes([("old/file", "f", b"v7")], tarfile.USTAR_FORMAT))
    raw[257:265] = bytes(8)
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    assert files(scan(bytes(raw), TAR))["old/file"] == b"v7"
    raw[0] ^= 0x01  # name changes, checksum does not
    with pytest.raises(CorruptLayer, match="checksum"):
        scan(bytes(raw), TAR)


def test_helper_thread_is_gone_after_success_error_and_callback_failure() -> None:
    """The inflating thread never outlives ``scan_layer``: not after a clean scan, not
    after a corrupt layer, not when ``wants`` itself raises."""
    before = threading.active_count()
    raw = tar_bytes([("a", "f", b"x" * 5000)] * 3)
    scan(raw)
    with pytest.raises(CorruptLayer):
        scan(raw[:1500], TAR, diff_id=None)

    def boom(_path: str) -> int | None:
        raise RuntimeError("analyzer bug")

    with pytest.raises(RuntimeError):
        scan(raw, wants=boom)
    assert threading.active_count() == before


def test_duplicate_entry_in_one_layer_keeps_the_later_one() -> None:
    """Within one tar, a later entry for the same path wins (a file replaced by a link)."""
    layer = scan(tar_bytes([("etc/x", "f", b"first"), ("etc/x", "l", "/etc/y")]))
    assert layer.found == [] and layer.present == []
    assert layer.symlinks == {"etc/x": "/etc/y"}


def test_symlinks_to_what_no_analyzer_reads_are_normal() -> None:
    """usrmerge's ``bin -> usr/bin`` (a link an analyzer's name pattern matches, to a
    directory) and a link to a file nobody reads: no file, no note, in the layer or the
    merged view (an ``error`` record is for lost coverage: the target is a file no
    analyzer wanted under its own name)."""
    layer = scan(
        tar_bytes(
            [
                ("usr/bin/sh", "f", b"ELF"),
                ("bin", "l", "usr/bin"),
                ("lib64", "l", "usr/lib64"),
                ("etc/os-release", "l", "../usr/lib/vendor/os-release"),
                ("usr/lib/vendor/os-release", "f", b"ID=rocky\n"),
            ]
        ),
        wants=lambda p: 64 if p in ("bin", "lib64", "etc/os-release") else None,
    )
    assert layer.notes == [] and layer.found == []
    view = merge([layer])
    assert view.notes == [] and view_files(view) == {}
    assert through(view, "etc/os-release") is None


def test_a_hard_link_whose_content_went_by_unread_is_a_note_not_a_silent_gap() -> None:
    """A wanted hard link to an earlier file of the same layer that no analyzer read (pnpm
    hard-links every package.json to its store): the stream does not come back, so the layer
    says the file was not analysed; a link into a lower layer is kept to resolve later."""
    layer = scan(
        tar_bytes(
            [
                ("store/ab/cdef", "f", b'{"name": "lodash", "version": "4.17.15"}'),
                ("app/node_modules/lodash/package.json", "h", "store/ab/cdef"),
                ("app/lower.json", "h", "base/lower.json"),
            ]
        ),
        wants=lambda p: 64 if p.startswith("app/") else None,
    )
    assert layer.found == []
    assert len(layer.notes) == 1 and "app/node_modules/lodash/package.json" in layer.notes[0]
    assert [h.path for h in layer.hardlinks] == ["app/lower.json"]


def test_a_directory_replaces_a_lower_file_or_link_at_its_path() -> None:
    """An upper layer that has entries below ``lib`` (or makes ``etc/conf`` an opaque
    directory) replaced a lower symlink or file there: the lower ``lib -> usr/lib`` link no
    longer leads into ``usr/lib``, and the lower file ``etc/conf`` is gone."""
    view = merged_view(
        [("lib", "l", "usr/lib"), ("usr/lib/os-release", "f", b"lower"), ("etc/conf", "f", b"x")],
        [("lib/os-release", "f", b"upper"), ("etc/conf/.wh..wh..opq", "f", b"")],
    )
    assert through(view, "lib/os-release") == b"upper"
    assert view_files(view) == {"usr/lib/os-release": b"lower", "lib/os-release": b"upper"}


def test_notes_of_one_layer_are_capped() -> None:
    """A hostile layer that fails on every entry gives at most 50 notes and a count."""
    layer = scan(tar_bytes([(f"../../x{i}", "f", b"") for i in range(120)]))
    assert len(layer.notes) == 51 and layer.notes[-1] == "70 more notes left out"


class Stream(Analyzer):
    """A streaming reader: counts what it is fed and stops after ``stop`` bytes."""

    NAME: ClassVar[str] = "stream"
    VERSION: ClassVar[int] = 1

    def __init__(self, stop: int) -> None:
        self.stop = stop
        self.pieces: list[int] = []

    def wants(self, path: str) -> int | None:
        return 1 if path.startswith("bin/") else None

    def open(self, path: str, size: int, cap: int) -> FileReader:
        outer = self

        class Reader:
            seen = 0

            def feed(self, chunk: bytes) -> bool:
                outer.pieces.append(len(chunk))
                self.seen += len(chunk)
                return self.seen < outer.stop

            def close(self) -> FileFacts | None:
                return FileFacts(text=str(self.seen))

        return Reader()

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        return AnalyzerResult()


def test_files_stream_to_readers_in_pieces_and_the_rest_is_skipped() -> None:
    """A streaming reader gets a large file in pieces of at most 1 MiB (no file is joined in
    memory, and ``cap`` does not bind it); once it says it has seen enough, the rest of the
    entry is skipped and the next entry still reads."""
    big = bytes(range(256)) * (12 << 12)  # 12 MiB
    raw = tar_bytes([("bin/big", "f", big), ("bin/small", "f", b"tail")])
    everything = Stream(stop=1 << 40)
    layer = scan(raw, analyzers=[everything])
    assert {f.path: f.facts.text for f in layer.found} == {
        "bin/big": str(len(big)),
        "bin/small": "4",
    }
    assert max(everything.pieces) <= 1 << 20 and sum(everything.pieces) == len(big) + 4
    early = Stream(stop=100)
    layer = scan(raw, analyzers=[early])
    assert {f.path: f.facts.text for f in layer.found}["bin/small"] == "4"
    assert sum(early.pieces) < 2 << 20


def test_a_file_past_the_buffer_budget_is_read_up_to_it_with_a_note() -> None:
    """A buffered reader holds at most the budget: a larger wanted file is read up to it,
    told it was truncated, and the layer says so (an ``error`` record, not a crash); the
    budget is whole again afterwards."""
    budget = Budget(1000)
    raw = tar_bytes([("db", "f", b"y" * 5000), ("small", "f", b"ok")])
    layer = scan(raw, budget=budget)
    got = {f.path: f for f in layer.found}
    assert got["db"].facts.text == "y" * 1000 and got["db"].facts.notes == ("truncated",)
    assert got["small"].facts.text == "ok"
    assert len(layer.notes) == 1 and "buffer budget of 1000" in layer.notes[0]
    assert budget.take(1000) == 1000


class KeepToo(Keep):
    """A second buffering analyzer that wants the same files as ``Keep``."""

    NAME: ClassVar[str] = "keep-too"


def test_a_file_two_buffering_analyzers_want_takes_one_share_and_cannot_wait_on_itself() -> None:
    """Two buffering analyzers want a file larger than the whole budget: the walker takes
    one share for the file (not one per reader, which would wait forever for the share it
    holds), both read up to it, and the layer notes it once per reader."""
    budget = Budget(1000)
    raw = tar_bytes([("db", "f", b"z" * 5000)])
    done: list[LayerFacts] = []
    worker = threading.Thread(
        target=lambda: done.append(scan(raw, analyzers=[Keep(), KeepToo()], budget=budget)),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert done, "the scan waited for a budget share it held itself"
    texts = {f.analyzer: f.facts.text for f in done[0].found}
    assert texts == {"keep": "z" * 1000, "keep-too": "z" * 1000}
    assert len(done[0].notes) == 2
    assert budget.take(1000) == 1000


def test_budget_waits_for_a_share_and_never_gives_more_than_it_has() -> None:
    """Two layers sharing a budget: the second waits while the first holds it all, and
    goes on once it is given back."""
    budget = Budget(100)
    assert budget.take(500) == 100
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(budget.take(60)))
    waiter.start()
    waiter.join(0.2)
    assert got == []
    budget.give(100)
    waiter.join(5)
    assert got == [60]


@pytest.mark.parametrize("field", [b"-0000001000\0", b"-1\0\0\0\0\0\0\0\0\0\0", b"\xff" * 12])
def test_negative_sizes_are_corrupt_not_a_backwards_skip(field: bytes) -> None:
    """A size field that parses as negative (a signed octal, GNU base-256 negative) is
    CorruptLayer; it must never move the reader backwards (an endless loop)."""
    raw = bytearray(tar_bytes([("a", "f", b"x" * 600), ("b", "f", b"y")], tarfile.GNU_FORMAT))
    raw[124:136] = field
    with pytest.raises(CorruptLayer, match="negative"):
        scan(bytes(raw), TAR, diff_id=None)


def test_zstd_every_cut_point_is_detected_and_skippable_frames_are_read() -> None:
    """Cut anywhere (inside a frame header, a block, the content checksum, between two
    frames' worth of bytes), a zstd layer is CorruptLayer; whole, with a skippable frame
    in front (as some writers put metadata), it reads."""
    raw = tar_bytes([("a", "f", bytes(range(256)) * 64), ("b", "f", b"end")])
    half = len(raw) // 2
    cctx = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False)
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"meta!"
    blob = skippable + cctx.compress(raw[:half]) + cctx.compress(raw[half:])
    assert files(scan(raw, ZSTD, blob=blob))["b"] == b"end"
    frame2 = len(skippable) + len(cctx.compress(raw[:half]))
    for cut in sorted({1, 4, 8, 12, 14, 17, 30, frame2 - 4, frame2 - 1, len(blob) - 2}):
        with pytest.raises(CorruptLayer):
            scan(raw, ZSTD, blob=blob[:cut], diff_id=None)


# ----------------------------------------------------------------------------- hostile sizes


def test_uncompressed_cap_is_relative_to_the_blob_with_a_floor() -> None:
    """The cap on a layer's tar is 100 times its blob, at least 1 GiB, at most the absolute
    cap (the whole absolute cap when the blob's size is unknown)."""
    assert MAX_EXPANSION == 100 and MIN_UNCOMPRESSED_CAP == 1 << 30
    assert uncompressed_cap(0) == DEFAULT_MAX_UNCOMPRESSED
    assert uncompressed_cap(1) == MIN_UNCOMPRESSED_CAP
    assert uncompressed_cap(40_000_000) == 4_000_000_000
    assert uncompressed_cap(10 << 30) == DEFAULT_MAX_UNCOMPRESSED
    assert uncompressed_cap(40_000_000, max_uncompressed=1 << 20) == 1 << 20


def test_gzip_bomb_is_refused_at_its_expansion_cap_as_an_error(tmp_path: Path) -> None:
    """A valid gzip layer of 2 GB of zeros (a 2 MB blob) is refused once it inflates past
    max(1 GiB, 100x its blob), long before the 32 GiB absolute cap: the image's facts say
    ``layer_too_large`` (an error record) and hold no packages. (Before the expansion cap
    the whole 2 GB was inflated and the image passed as clean.)"""
    bomb = tmp_path / "bomb.gz"
    with bomb.open("wb") as f:
        _, diff_id = hostile.gzip_bomb(f, 2_000_000_000)
    assert bomb.stat().st_size < 2_500_000
    layout = hostile.write_layout(tmp_path / "layout", [], blob=(bomb, diff_id))
    with open_source(f"oci:{layout}:latest") as res:
        (image,) = res.images
        facts = analyze_image(image, default_analyzers())
    assert not facts.complete and facts.packages == []
    (problem,) = facts.problems
    assert problem.error == "layer_too_large"
    assert "beyond the cap of 1073741824 bytes, 100x its" in problem.message


def test_a_bomb_whose_descriptor_overstates_its_size_is_refused_all_the_same(
    tmp_path: Path,
) -> None:
    """A manifest can claim any size for a blob (a registry serves what it likes): the
    ratio also holds against the bytes read so far, so a 2 MB bomb claimed to be 1 TB is
    refused once it has inflated past max(1 GiB, 100x what was read). (Before, the claim
    raised the cap to the 32 GiB absolute one and the 2 GB of zeros passed whole.)"""
    bomb = tmp_path / "bomb.gz"
    with bomb.open("wb") as f:
        _, diff_id = hostile.gzip_bomb(f, 2_000_000_000)
    with bomb.open("rb") as f, pytest.raises(LayerTooLarge, match="from the first"):
        scan_layer(
            f, media_type=GZIP, digest=hostile.file_digest(bomb), diff_id=diff_id,
            analyzers=[], size=1 << 40,
        )  # fmt: skip


def test_mostly_zero_layer_under_the_floor_is_read() -> None:
    """A real layer can be mostly zeros (a lastlog of a high UID: ~1000x under gzip): under
    the 1 GiB floor it is read, whatever its ratio."""
    raw = tar_bytes([("var/log/lastlog", "f", bytes(64 << 20)), ("etc/os-release", "f", b"x")])
    blob = gzip.compress(raw, mtime=0)
    assert len(raw) > 500 * len(blob)
    layer = scan_layer(
        io.BytesIO(blob), media_type=GZIP, digest=sha(blob), diff_id=sha(raw),
        analyzers=[Keep(lambda p: 16 if p == "etc/os-release" else None)], size=len(blob),
    )  # fmt: skip
    assert files(layer) == {"etc/os-release": b"x"}
