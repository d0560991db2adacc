"""Image analysis: one resolved platform image → the facts its layers hold.

``analyze_image`` streams every layer once through ``layers.scan_layer`` (each layer's own
facts: what the analyzers read in its files), then ``assemble`` merges the layers' facts with
overlay semantics and runs the analyzers' assembly in order: the OS first (it fixes the
advisory ecosystem), the OS package managers next (they record which files they own), the
language analyzers last (a module the OS installed is marked as owned). The registry crawl
does the same with layer facts from its cache. The result states facts only; judging them
is the matcher's business.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

import msgspec

from regsweep.crawler import layers
from regsweep.crawler.analyzers.apk import ApkAnalyzer
from regsweep.crawler.analyzers.dotnet import DotnetDepsAnalyzer
from regsweep.crawler.analyzers.dpkg import DpkgAnalyzer
from regsweep.crawler.analyzers.gobinary import GoBinaryAnalyzer
from regsweep.crawler.analyzers.interface import Analyzer, AnalyzerError, Budget, Context
from regsweep.crawler.analyzers.java import JavaAnalyzer
from regsweep.crawler.analyzers.npm import NpmAnalyzer
from regsweep.crawler.analyzers.os import OsAnalyzer
from regsweep.crawler.analyzers.php import ComposerAnalyzer
from regsweep.crawler.analyzers.python import PythonAnalyzer
from regsweep.crawler.analyzers.rpm import RpmAnalyzer
from regsweep.crawler.analyzers.ruby import GemspecAnalyzer
from regsweep.crawler.analyzers.rust import RustBinaryAnalyzer
from regsweep.crawler.analyzers.secrets import SecretsAnalyzer, file_secrets
from regsweep.crawler.oci import OCI_LAYER_MEDIA_TYPE, Compression, ManifestView
from regsweep.crawler.sources import ResolvedImage
from regsweep.matcher.facts import ImageFacts, Problem, error_code, problem_of
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import ImageRef


def default_analyzers() -> list[Analyzer]:
    """A fresh list of every analyzer, in the order they must run (see the module doc)."""
    return [
        OsAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonAnalyzer(),
        NpmAnalyzer(),
        JavaAnalyzer(),
        GoBinaryAnalyzer(),
        RustBinaryAnalyzer(),
        GemspecAnalyzer(),
        ComposerAnalyzer(),
        DotnetDepsAnalyzer(),
        SecretsAnalyzer(),
    ]


def begin_facts(
    ref: ImageRef, config: bytes, manifest: ManifestView, view: ImageConfig
) -> tuple[ImageFacts, list[str]]:
    """An image's facts before its layers are read, and the layers' diff_ids in order. When
    the config's diff_ids do not pair with the manifest's layers, the facts are already
    final: incomplete, with the problem (no layer can be checked)."""
    diff_ids = view.rootfs.diff_ids if view.rootfs else []
    facts = ImageFacts(
        image=ref,
        config=config,
        layers=len(manifest.layers),
        size=sum(d.size for d in manifest.layers),
    )
    if len(diff_ids) != len(manifest.layers):
        facts.problems.append(
            Problem(
                stage="layer",
                error="diff_ids_mismatch",
                message=f"{len(manifest.layers)} layers but {len(diff_ids)} diff_ids in the config",
            )
        )
        facts.complete = False
    return facts, diff_ids


def layer_problem(exc: BaseException, digest: str, *, stage: str = "layer") -> Problem:
    """A layer that could not be read, as its image's problem (the image is incomplete): a
    bad blob (``layers.LayerError``) by its class, a failed read as ``read_failed``
    (retryable), a registry's error with its own ``retryable``."""
    if isinstance(exc, OSError) and not hasattr(exc, "retryable"):
        return Problem(
            stage=stage, error="read_failed", message=f"layer {digest}: {exc}", retryable=True
        )
    return msgspec.structs.replace(problem_of(exc, stage=stage), message=f"layer {digest}: {exc}")


def analyze_image(
    image: ResolvedImage,
    analyzers: Sequence[Analyzer],
    *,
    analyzer_set: str = "",
    budget: Budget | None = None,
) -> ImageFacts:
    """Stream a local image's layers once each, in order, and assemble the analyzers' facts
    about them (the registry's ``images.Crawler`` does the same steps with its caches)."""
    manifest = image.manifest
    facts, diff_ids = begin_facts(image.ref, image.config, manifest, image.config_view)
    if not facts.complete:
        return facts
    scanned: list[layers.LayerFacts] = []
    for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
        try:
            with cast(BinaryIO, image.open_layer(desc)) as stream:
                scanned.append(
                    layers.scan_layer(
                        stream,
                        media_type=desc.media_type,
                        digest=desc.digest,
                        diff_id=diff_id,
                        analyzers=analyzers,
                        analyzer_set=analyzer_set,
                        size=desc.size,
                        budget=budget,
                    )
                )
        except (layers.LayerError, OSError) as exc:
            facts.problems.append(layer_problem(exc, desc.digest))
            facts.complete = False
            return facts
    assemble(scanned, analyzers, facts)
    return facts


#: Top-level directories of a root filesystem that hold no files of the image: the kernel's
#: (``dir:/`` on a live system) and a container runtime's.
_PSEUDO: Final = frozenset({"proc", "sys", "dev", "run"})
_TAR: Final = OCI_LAYER_MEDIA_TYPE[Compression.NONE]


class _Exact(io.RawIOBase):
    """A file read as exactly ``size`` bytes (cut, or padded with zeros): a file that grows
    or shrinks while it is tarred must not break the tar stream after its header."""

    def __init__(self, fh: io.BufferedReader, size: int) -> None:
        self._fh, self._left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._left)
        if n == 0:
            return 0
        got = self._fh.readinto(memoryview(b)[:n]) or 0
        if got == 0:  # shrank: zeros for the rest
            b[:n] = bytes(n)
            got = n
        self._left -= got
        return got


def _tar_tree(root: Path, out: BinaryIO, notes: list[str]) -> None:
    """Write ``root`` as an uncompressed tar to ``out``: every entry as ``lstat`` sees it
    (symlinks as links, hard links as links to the first name), files read as they are
    written; what cannot be read is a note, the rest goes on."""
    # Stream mode ("w|"): the tar goes out as it is made, never seeking. Files are copied
    # in 1 MiB pieces (TarFile's copybufsize; typeshed's open() overloads omit it).
    with tarfile.TarFile.open(  # type: ignore[call-overload]
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=1 << 20
    ) as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in _PSEUDO]
            dirnames.sort()
            for name in (*dirnames, *sorted(filenames)):
                full = os.path.join(dirpath, name)
                arcname = name if rel_dir == "." else f"{rel_dir}/{name}"
                try:
                    info = tf.gettarinfo(full, arcname)
                except OSError as exc:
                    notes.append(f"{arcname}: {exc.strerror}; skipped")
                    continue
                if info is None:  # a socket
                    continue
                if not info.isreg():
                    tf.addfile(info)
                    continue
                try:
                    fh = open(full, "rb")  # noqa: SIM115 - closed below, after addfile
                except OSError as exc:
                    notes.append(f"{arcname}: {exc.strerror}; skipped")
                    continue
                with fh:
                    tf.addfile(info, _Exact(fh, info.size))


def analyze_rootfs(
    ref: ImageRef,
    root: str | os.PathLike[str],
    analyzers: Sequence[Analyzer],
    *,
    budget: Budget | None = None,
) -> ImageFacts:
    """An unpacked root filesystem (``dir:PATH``) analysed as a one-layer image: the tree is
    tarred as it is read, on a thread, into the layer scan (never to disk); ``proc``,
    ``sys``, ``dev`` and ``run`` at its top are left out. There is no image config (only
    the checks on packages and the OS run) and no digest to check."""
    facts = ImageFacts(image=ref, config=b"", layers=1, size=0)
    notes: list[str] = []
    read_fd, write_fd = os.pipe()
    failed: list[BaseException] = []

    def produce() -> None:
        with open(write_fd, "wb") as out:
            try:
                _tar_tree(Path(root), out, notes)
            except BrokenPipeError:  # the scan stopped reading (it failed): it says why
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                failed.append(exc)

    thread = threading.Thread(target=produce, name="rootfs-tar", daemon=True)
    thread.start()
    try:
        with open(read_fd, "rb") as stream:
            scanned = layers.scan_layer(
                stream, media_type=_TAR, digest=None, diff_id=None, analyzers=analyzers,
                budget=budget,
            )  # fmt: skip
    except (layers.LayerError, OSError) as exc:
        thread.join()
        facts.problems.append(layer_problem(exc, f"dir:{root}"))
        facts.complete = False
        return facts
    thread.join()
    if failed:
        facts.problems.append(layer_problem(failed[0], f"dir:{root}"))
        facts.complete = False
        return facts
    facts.problems += [Problem(stage="layer", error="layer_note", message=n) for n in notes]
    assemble([scanned], analyzers, facts)
    return facts


def assemble(
    scanned: Sequence[layers.LayerFacts], analyzers: Sequence[Analyzer], facts: ImageFacts
) -> None:
    """Merge the layers' facts (lowest first) and run the analyzers' assembly in order,
    filling ``facts``: the OS first, then the OS package managers (their file lists mark what
    they own), then the rest. Parses nothing: its cost is per package, not per byte."""
    view = layers.merge(scanned)
    facts.problems += [Problem(stage="layer", error="layer_note", message=n) for n in view.notes]
    ctx = Context()
    for analyzer in analyzers:
        try:
            result = analyzer.assemble(view, ctx)
        except AnalyzerError as exc:
            facts.problems.append(
                Problem(stage="analyzer", error=error_code(exc), message=f"{analyzer.NAME}: {exc}")
            )
            continue
        if result.os is not None:
            ctx.os = result.os
        if result.ecosystem is not None:
            ctx.ecosystem = result.ecosystem
        ctx.owners.update(result.owners)
        facts.packages += result.packages
        facts.problems += [
            Problem(stage="analyzer", error=f"{analyzer.NAME}_note", message=n)
            for n in result.notes
        ]
    facts.os, facts.ecosystem = ctx.os, ctx.ecosystem
    if any(a.NAME == SecretsAnalyzer.NAME for a in analyzers):
        # From every layer, not only the files the merged image shows (see the analyzer).
        facts.secrets = file_secrets([s.found for s in scanned], view.found(SecretsAnalyzer.NAME))
