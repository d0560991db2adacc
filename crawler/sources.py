"""Local image sources: OCI image layouts (``oci:``) and ``docker save`` archives.

``open_source(REF)`` resolves a user reference to the per-platform images it names, each a
``ResolvedImage``: its ``ImageRef``, manifest view, digest-verified config bytes, and a way
to open every layer blob as a stream. Image indexes and Docker manifest lists are followed
(nested ones too) to every platform unless a platform filter narrows them; attestation
manifests and artifacts are skipped with a note. A failure confined to one image (a missing
layer, a corrupt config) becomes a ``Failure`` beside the others, so the rest go on; a
failure of the whole source (no such directory, a truncated archive) raises ``SourceError``.

What is checked here: the layout version, every manifest/index/config digest (sha256/512)
and size cap, the existence and size of every layer blob against its descriptor, and the
layer media types. Layer *content* (digest, ``diff_ids``) is verified by the layer streamer
as it reads, so that nothing is read twice.

References (``oci:DIR[:TAG|@DIGEST]``, ``docker-archive:FILE``) are parsed by ``refs``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Protocol, TypeVar, assert_never, cast

import isal.igzip
import isal.igzip_lib
import msgspec

from regsweep.crawler.oci import (
    CONTAINERD_IMAGE_NAME,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    OCI_LAYER_MEDIA_TYPE,
    REF_NAME_ANNOTATION,
    Compression,
    CorruptArchive,
    Descriptor,
    DigestMismatch,
    MalformedManifest,
    ManifestTooLarge,
    ManifestView,
    MediaType,
    NotFound,
    Platform,
    SizeMismatch,
    SourceError,
    Unsupported,
    compute_digest,
    config_platform,
    decode_config,
    decode_index,
    layer_compression,
    platform_matches,
    probe_document,
    split_digest,
    verify_digest,
)
from regsweep.crawler.refs import SourceKind, SourceRef, parse_ref
from regsweep.crawler.sbom import read_sbom
from regsweep.crawler.walk import Image, Walker
from regsweep.matcher.facts import ImageFacts, Problem, problem_of
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import ImageRef

#: ``oci-layout`` is a one-field file; anything larger is not one.
_MAX_LAYOUT_FILE: Final = 4096
_R = TypeVar("_R")
_GZIP_MAGIC: Final = b"\x1f\x8b"
#: What reading a damaged (gzip-compressed) tar can raise: tarfile's own errors, EOFError for
#: a gzip stream cut short, OSError (``BadGzipFile``) and isal's error for bad deflate data.
#: (isal's stub declares IsalError as an instance, not a class: hence the cast.)
_READ_ERRORS: Final[tuple[type[Exception], ...]] = (
    tarfile.TarError,
    EOFError,
    OSError,
    cast("type[Exception]", isal.igzip_lib.IsalError),
)
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


class ResolvedImage(msgspec.Struct, frozen=True, kw_only=True):
    """One per-platform image, ready for the layer streamer."""

    ref: ImageRef
    manifest: ManifestView
    #: None for an old ``docker save`` archive, which has no manifest (``manifest`` is then
    #: synthesised from ``manifest.json`` and ``ref.digest`` is the config digest, the
    #: "image ID" that ``docker images`` shows).
    manifest_media_type: MediaType | None
    #: The config blob, verified against ``manifest.config`` (digest and size).
    config: bytes
    config_view: ImageConfig
    opener: Callable[[Descriptor], IO[bytes]]

    def open_layer(self, layer: Descriptor) -> IO[bytes]:
        """A binary stream of the (still compressed) blob of ``layer``, one of
        ``manifest.layers``. Its digest is not checked here: the reader hashes as it goes."""
        return self.opener(layer)


class Resolution(msgspec.Struct, kw_only=True):
    """What a REF resolved to. Close it (or use ``with``) to release an archive's file."""

    images: list[ResolvedImage] = []
    #: Images (or index subtrees) that could not be resolved; the others still were.
    failures: list[Problem] = []
    #: What was skipped on purpose (attestations, artifacts, other platforms) and why.
    notes: list[str] = []
    #: Images known by their packages already (an SBOM): judged as they are.
    analyzed: list[ImageFacts] = []
    closer: Callable[[], None] | None = None

    def close(self) -> None:
        """Release the open archive, if any; the images' layers can no longer be opened."""
        if self.closer is not None:
            self.closer()
            self.closer = None

    def __enter__(self) -> Resolution:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _failed(exc: SourceError, ref: ImageRef) -> Problem:
    # A layout or archive on disk does not get better by retrying.
    return problem_of(exc, stage="manifest", retryable=False, image=ref, ref=ref.ref)


def open_source(ref: str | SourceRef, *, platform: Platform | None = None) -> Resolution:
    """Resolve ``ref`` to its images (all platforms, or only ``platform``).

    Raises ``SourceError`` when the source as a whole cannot be read or names nothing;
    per-image problems are in ``Resolution.failures``.
    """
    sref = parse_ref(ref) if isinstance(ref, str) else ref
    match sref.kind:
        case SourceKind.OCI_LAYOUT:
            root = Path(sref.path)
            if not root.is_dir():
                raise NotFound(f"{sref.text}: {sref.path!r} is not a directory")
            return _resolve_layout(sref, _DirBlobs(root), platform)
        case SourceKind.SBOM:
            return Resolution(analyzed=read_sbom(sref.text, sref.path))
        case SourceKind.DIR:
            # Not images to resolve but a tree to read: ``analyze.analyze_rootfs``.
            raise Unsupported(f"{sref.text}: a root filesystem is read by analyze_rootfs")
        case SourceKind.DOCKER_ARCHIVE | SourceKind.OCI_ARCHIVE:
            archive = _TarArchive.open(Path(sref.path))
            try:
                if sref.kind is SourceKind.OCI_ARCHIVE:
                    res = _resolve_oci_archive(sref, archive, platform)
                else:
                    res = _resolve_archive(sref, archive, platform)
            except BaseException:
                archive.close()
                raise
            res.closer = archive.close
            return res
        case _:
            assert_never(sref.kind)


# --- blob access -------------------------------------------------------------------------


class _Blobs(Protocol):
    """Content-addressed blob access (a layout directory, or one inside a tar)."""

    def blob_size(self, digest: str) -> int:
        """The blob's length; ``NotFound`` when absent."""
        ...

    def open_blob(self, digest: str) -> IO[bytes]:
        """The blob as a binary stream; ``NotFound`` when absent."""
        ...

    def read_file(self, name: str, cap: int) -> bytes:
        """A layout file (``oci-layout``, ``index.json``) of at most ``cap`` bytes."""
        ...


class _DirBlobs:
    """An OCI layout on disk: ``DIR/blobs/<alg>/<hex>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        alg, hexpart = split_digest(digest)
        return self.root / "blobs" / alg / hexpart

    def blob_size(self, digest: str) -> int:
        path = self._path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.root}") from None
        if not path.is_file():
            raise NotFound(f"blob {digest} in {self.root} is not a regular file")
        return st.st_size

    def open_blob(self, digest: str) -> IO[bytes]:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing from {self.root}") from None

    def read_file(self, name: str, cap: int) -> bytes:
        path = self.root / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"{self.root} is not an OCI layout: no {name}") from None
        if size > cap:
            raise ManifestTooLarge(f"{path}: {size} bytes, cap {cap}")
        return path.read_bytes()


class _Window(io.RawIOBase):
    """A read-only view of ``[start, start + size)`` of a file, through its own handle, so
    that several members of one uncompressed tar can be read at once."""

    def __init__(self, path: Path, start: int, size: int) -> None:
        super().__init__()
        self._fh = path.open("rb")
        self._start = start
        self._remaining = size
        self._fh.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self._remaining)
        if n <= 0:
            return 0
        got = self._fh.readinto(memoryview(b)[:n])
        if not got:
            raise CorruptArchive(f"{self._fh.name}: tar member cut short (truncated archive)")
        self._remaining -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


class _Guarded(io.RawIOBase):
    """A member of a compressed archive whose decompression errors become ``CorruptArchive``
    (so the layer streamer sees one error type, whatever the damage)."""

    def __init__(self, inner: IO[bytes], what: str) -> None:
        super().__init__()
        self._inner = inner
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except _READ_ERRORS as e:
            raise CorruptArchive(f"{self._what}: {e}") from None
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


class _TarArchive:
    """A tar (optionally gzip-compressed) read in place: members by name, never extracted.

    An uncompressed archive serves members through independent file windows; a compressed
    one through the shared tarfile stream (isal gzip), so read one member at a time.
    """

    def __init__(
        self, path: Path, tf: tarfile.TarFile, compressed: bool, files: list[IO[bytes]]
    ) -> None:
        self.path = path
        self.tf = tf
        self.compressed = compressed
        self._files = files
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tf.getmembers():
            self.members[_norm_member(m.name)] = m

    @classmethod
    def open(cls, path: Path) -> _TarArchive:
        """Open and index ``path``; ``NotFound`` / ``CorruptArchive`` on failure."""
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"archive {str(path)!r} does not exist") from None
        files: list[IO[bytes]] = [fh]
        given = path
        if not fh.seekable():
            # A pipe (docker save … | regsweep scan docker-archive:/dev/stdin): spooled to a
            # private temporary file, deleted when the archive is closed, and read in place
            # from there like any archive.
            spool = tempfile.NamedTemporaryFile(prefix="regsweep-archive-")  # noqa: SIM115
            try:
                shutil.copyfileobj(fh, spool, 1 << 20)
                spool.flush()
            except OSError as exc:
                spool.close()
                raise CorruptArchive(f"{path}: cannot be spooled ({exc.strerror})") from None
            finally:
                fh.close()
            path = Path(spool.name)
            fh = path.open("rb")
            files = [fh, cast("IO[bytes]", spool)]
        compressed = fh.read(2) == _GZIP_MAGIC
        fh.seek(0)
        stream = _gunzip(fh) if compressed else fh
        try:
            tf = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 - closed by close()
            archive = cls(path, tf, compressed, [stream, *files])
            archive._check_end(stream)
        except _READ_ERRORS as e:
            for f in (stream, *files):
                f.close()
            raise CorruptArchive(f"{given}: not a readable tar archive ({e})") from None
        except BaseException:
            for f in (stream, *files):
                f.close()
            raise
        return archive

    def _check_end(self, stream: IO[bytes]) -> None:
        # tarfile stops silently at a header cut short; every tar writer (Go archive/tar,
        # Docker, skopeo, GNU tar) ends with zero blocks, so their absence means truncation.
        stream.seek(self.tf.offset)
        block = stream.read(tarfile.BLOCKSIZE)
        if len(block) != tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
            raise CorruptArchive(f"{self.path}: no end-of-archive marker (truncated archive)")
        if not self.compressed:
            end = self.path.stat().st_size
            for m in self.members.values():
                if m.isfile() and m.offset_data + m.size > end:
                    raise CorruptArchive(f"{self.path}: member {m.name!r} is cut short")

    def close(self) -> None:
        """Close the archive and its file."""
        self.tf.close()
        for f in self._files:
            f.close()

    def _member(self, name: str) -> tarfile.TarInfo:
        m = self.members.get(_norm_member(name))
        # Docker's old format links a repeated layer to its first copy; follow in-archive
        # links (a bounded number of hops: a loop is a corrupt archive, not a hang).
        for _ in range(8):
            if m is None:
                raise NotFound(f"{self.path}: no member {name!r}")
            if m.isfile():
                return m
            if m.issym():
                target = os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname))
                m = self.members.get(_norm_member(target))
            elif m.islnk():
                m = self.members.get(_norm_member(m.linkname))
            else:
                raise NotFound(f"{self.path}: member {name!r} is not a regular file")
        raise CorruptArchive(f"{self.path}: link loop at member {name!r}")

    def member_size(self, name: str) -> int:
        """The length of member ``name`` (links followed)."""
        return self._member(name).size

    def open_member(self, name: str) -> IO[bytes]:
        """Member ``name`` as a binary stream."""
        m = self._member(name)
        if not self.compressed:
            return io.BufferedReader(_Window(self.path, m.offset_data, m.size))
        try:
            f = self.tf.extractfile(m)
        except _READ_ERRORS as e:
            raise CorruptArchive(f"{self.path}: member {name!r}: {e}") from None
        if f is None:  # pragma: no cover - _member returns regular files only
            raise NotFound(f"{self.path}: member {name!r} has no content")
        return io.BufferedReader(_Guarded(f, f"{self.path}: member {name!r}"))

    def read_member(self, name: str, cap: int) -> bytes:
        """Member ``name`` whole, refusing it above ``cap`` bytes before reading."""
        size = self.member_size(name)
        if size > cap:
            raise ManifestTooLarge(f"{self.path}: member {name!r} is {size} bytes, cap {cap}")
        with self.open_member(name) as f:
            data = _read_exact(f, size, f"{self.path}: member {name!r}")
        return data


def _gunzip(fh: IO[bytes]) -> IO[bytes]:
    # isal (not stdlib zlib) per the project's decompression rule; its constructor is
    # unannotated, hence the cast.
    gz = isal.igzip.IGzipFile(fileobj=fh, mode="rb")  # type: ignore[no-untyped-call]
    return cast("IO[bytes]", gz)


def _norm_member(name: str) -> str:
    name = name.removeprefix("./")
    return name.rstrip("/")


def _read_exact(f: IO[bytes], size: int, what: str) -> bytes:
    try:
        data = f.read(size)
    except _READ_ERRORS as e:
        raise CorruptArchive(f"{what}: {e}") from None
    if len(data) != size:
        raise CorruptArchive(f"{what}: {len(data)} of {size} bytes (truncated)")
    return data


class _TarBlobs:
    """An OCI layout stored inside a tar (Docker >= 25 ``docker save``)."""

    def __init__(self, archive: _TarArchive) -> None:
        self.archive = archive

    @staticmethod
    def _name(digest: str) -> str:
        alg, hexpart = split_digest(digest)
        return f"blobs/{alg}/{hexpart}"

    def blob_size(self, digest: str) -> int:
        try:
            return self.archive.member_size(self._name(digest))
        except NotFound:
            raise NotFound(f"blob {digest} is missing from {self.archive.path}") from None

    def open_blob(self, digest: str) -> IO[bytes]:
        return self.archive.open_member(self._name(digest))

    def read_file(self, name: str, cap: int) -> bytes:
        return self.archive.read_member(name, cap)


def _read_blob(blobs: _Blobs, desc: Descriptor, cap: int, what: str) -> bytes:
    """A small blob (manifest, index, config): size-capped, size- and digest-verified."""
    if desc.size > cap:
        raise ManifestTooLarge(
            f"{what} {desc.digest}: descriptor says {desc.size} bytes, cap {cap}"
        )
    actual = blobs.blob_size(desc.digest)
    if actual != desc.size:
        raise SizeMismatch(f"{what} {desc.digest}: blob is {actual} bytes, descriptor {desc.size}")
    with blobs.open_blob(desc.digest) as f:
        data = _read_exact(f, actual, f"{what} {desc.digest}")
    verify_digest(data, desc.digest, what)
    return data


# --- OCI layouts (directory or inside a docker archive) ------------------------------------


class _LayoutVersion(msgspec.Struct, frozen=True, rename="camel"):
    image_layout_version: str


def _resolve_layout(sref: SourceRef, blobs: _Blobs, platform: Platform | None) -> Resolution:
    raw = blobs.read_file("oci-layout", _MAX_LAYOUT_FILE)
    try:
        version = msgspec.json.decode(raw, type=_LayoutVersion).image_layout_version
    except (msgspec.DecodeError, RecursionError) as e:
        raise MalformedManifest(f"{sref.text}: oci-layout: {e}") from None
    if version.split(".")[0] != "1":
        raise Unsupported(f"{sref.text}: image layout version {version!r} (only 1.x is known)")
    index = decode_index(
        blobs.read_file("index.json", MAX_MANIFEST_BYTES), MediaType.OCI_INDEX, "index.json"
    )
    if sref.digest is not None:
        tops = [d for d in index.manifests if d.digest == sref.digest]
        if not tops:
            tops = [_descriptor_of_blob(blobs, sref.digest, sref.text)]
    elif sref.tag is not None:
        tops = _select_tag(index.manifests, sref.tag)
        if not tops:
            names = sorted({_ref_name(d) or "" for d in index.manifests} - {""})
            raise NotFound(f"{sref.text}: no tag {sref.tag!r} in the layout (tags: {names})")
    else:
        tops = list(index.manifests)
        if not tops:
            raise NotFound(f"{sref.text}: the layout's index.json lists no image")
    return _walk_layout(sref, blobs, tops, platform)


def _ref_name(d: Descriptor) -> str | None:
    return d.annotations.get(REF_NAME_ANNOTATION) if d.annotations else None


def _select_tag(manifests: list[Descriptor], tag: str) -> list[Descriptor]:
    exact = [d for d in manifests if _ref_name(d) == tag]
    if exact:
        return exact
    # Some tools (containerd, nerdctl) write a full reference as the ref name.
    return [d for d in manifests if _split_name(_ref_name(d) or "")[1] == tag]


def _split_name(name: str) -> tuple[str | None, str | None]:
    """``(repository, tag)`` of ``repo:tag``, ``tag`` or ``repo@digest`` style names."""
    if not name:
        return None, None
    name = name.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return (name[:colon] or None), name[colon + 1 :]
    if slash >= 0 or "." in name:
        return name, None
    return None, name


def _descriptor_of_blob(blobs: _Blobs, digest: str, what: str) -> Descriptor:
    """A descriptor for a blob named by digest only (a platform manifest inside an index)."""
    size = blobs.blob_size(digest)
    if size > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(f"{what}: {digest} is {size} bytes, cap {MAX_MANIFEST_BYTES}")
    with blobs.open_blob(digest) as f:
        data = _read_exact(f, size, digest)
    version, media_type = probe_document(data, f"{what} {digest}")
    if version == 1:
        raise Unsupported(f"{what}: {digest} is a Docker schema 1 manifest")
    if media_type is None:
        raise MalformedManifest(f"{what}: {digest} has no mediaType; cannot tell what it is")
    return Descriptor(media_type=media_type, digest=digest, size=size)


class _LayoutBlobs:
    """A layout's blobs as the walk reads them (``walk.BlobSource``)."""

    def __init__(self, blobs: _Blobs) -> None:
        self.blobs = blobs

    async def document(self, desc: Descriptor, what: str) -> bytes:
        return _read_blob(self.blobs, desc, MAX_MANIFEST_BYTES, what)

    async def config(self, desc: Descriptor) -> bytes:
        return _read_blob(self.blobs, desc, MAX_CONFIG_BYTES, "config")


def _walk_layout(
    sref: SourceRef, blobs: _Blobs, tops: list[Descriptor], platform: Platform | None
) -> Resolution:
    """Every top descriptor of a layout down to its platform images (``walk.Walker``)."""

    async def resolved(image: Image) -> ResolvedImage:
        manifest, view, desc = image.manifest, image.view, image.desc
        _check_layers(manifest, view, f"manifest {desc.digest}")
        for layer in manifest.layers:
            size = blobs.blob_size(layer.digest)
            if size != layer.size:
                raise SizeMismatch(
                    f"layer {layer.digest}: blob is {size} bytes, descriptor {layer.size}"
                )
        return ResolvedImage(
            ref=image.ref,
            manifest=manifest,
            manifest_media_type=image.media_type,
            config=image.config,
            config_view=view,
            opener=lambda d: blobs.open_blob(d.digest),
        )

    async def walk_all() -> Resolution:
        # Every read is a local file's: nothing here waits, the loop only drives the walk.
        walker = Walker(_LayoutBlobs(blobs), resolved, platform=platform, dedupe=True)
        res = Resolution()
        for top in tops:
            repository, tag = _split_name(
                (top.annotations or {}).get(CONTAINERD_IMAGE_NAME) or _ref_name(top) or ""
            )
            if sref.tag is not None:
                tag = sref.tag
            found = await walker.walk(top, ImageRef(ref=sref.text, repository=repository, tag=tag))
            res.images += found.images
            res.failures += found.failures
            res.notes += found.notes
        return res

    res = _run(walk_all())
    if not res.images and not res.failures:
        raise NotFound(f"{sref.text}: no image to scan ({'; '.join(res.notes)})")
    return res


def _run(coro: Coroutine[Any, Any, _R]) -> _R:
    """Run a walk to completion from synchronous code, on this thread, or on another when
    this one is already running an event loop (a library caller inside async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _check_layers(manifest: ManifestView, view: ImageConfig, what: str) -> None:
    for layer in manifest.layers:
        layer_compression(layer.media_type)  # UnsupportedMediaType for anything unknown
    diff_ids = view.rootfs.diff_ids if view.rootfs else []
    if len(diff_ids) != len(manifest.layers):
        raise MalformedManifest(
            f"{what}: {len(manifest.layers)} layers but {len(diff_ids)} diff_ids in the config"
        )


# --- docker save archives --------------------------------------------------------------


class _SaveEntry(msgspec.Struct, frozen=True, kw_only=True, rename="pascal"):
    """One image of an old-format ``manifest.json``."""

    config: str
    layers: list[str]
    repo_tags: list[str] | None = None


def _resolve_oci_archive(
    sref: SourceRef, archive: _TarArchive, platform: Platform | None
) -> Resolution:
    # A tar of an OCI layout, read in place like a directory one.
    if "oci-layout" not in archive.members or "index.json" not in archive.members:
        raise NotFound(f"{sref.text}: no oci-layout and index.json: not an OCI archive")
    return _resolve_layout(sref, _TarBlobs(archive), platform)


def _resolve_archive(
    sref: SourceRef, archive: _TarArchive, platform: Platform | None
) -> Resolution:
    # Docker >= 25 writes an OCI layout *and* a legacy manifest.json; the layout carries
    # the real manifests and indexes (every platform), so it wins.
    if "oci-layout" in archive.members and "index.json" in archive.members:
        return _resolve_layout(sref, _TarBlobs(archive), platform)
    if "manifest.json" not in archive.members:
        raise NotFound(f"{sref.text}: neither index.json nor manifest.json: not a docker save")
    raw = archive.read_member("manifest.json", MAX_MANIFEST_BYTES)
    try:
        entries = msgspec.json.decode(raw, type=list[_SaveEntry])
    except (msgspec.DecodeError, RecursionError) as e:
        raise MalformedManifest(f"{sref.text}: manifest.json: {e}") from None
    if not entries:
        raise NotFound(f"{sref.text}: manifest.json lists no image")
    res = Resolution()
    for entry in entries:
        name = entry.repo_tags[0] if entry.repo_tags else ""
        repository, tag = _split_name(name)
        ref = ImageRef(ref=sref.text, repository=repository, tag=tag)
        try:
            image = _legacy_image(archive, entry, ref)
        except SourceError as e:
            res.failures.append(_failed(e, ref))
            continue
        have = config_platform(image.config_view)
        if platform is not None and (have is None or not platform_matches(platform, have)):
            res.notes.append(
                f"skipped {name or entry.config}: platform {have or 'unknown'} is not {platform}"
            )
            continue
        res.images.append(image)
    if not res.images and not res.failures:
        raise NotFound(f"{sref.text}: no image to scan ({'; '.join(res.notes)})")
    return res


def _legacy_image(archive: _TarArchive, entry: _SaveEntry, ref: ImageRef) -> ResolvedImage:
    config = archive.read_member(entry.config, MAX_CONFIG_BYTES)
    digest = compute_digest(config)
    # Docker names the config file by its sha256 (``<hex>.json`` or ``blobs/sha256/<hex>``).
    stem = entry.config.rsplit("/", 1)[-1].removesuffix(".json")
    if re.fullmatch(r"[a-f0-9]{64}", stem) and stem != digest.split(":", 1)[1]:
        raise DigestMismatch(f"config {entry.config}: content hashes to {digest}")
    view = decode_config(config, f"config {entry.config}")
    diff_ids = view.rootfs.diff_ids if view.rootfs else []
    if len(diff_ids) != len(entry.layers):
        raise MalformedManifest(
            f"config {entry.config}: {len(entry.layers)} layers but {len(diff_ids)} diff_ids"
        )
    layers: list[Descriptor] = []
    paths: dict[str, str] = {}
    for path, diff_id in zip(entry.layers, diff_ids, strict=True):
        size = archive.member_size(path)
        with archive.open_member(path) as f:
            magic = f.read(4)
        compression = _sniff(magic)
        match compression:
            case Compression.NONE:
                # An uncompressed layer *is* its diff: its digest is the diff_id, which the
                # layer streamer then verifies as it reads (so a forged layer still fails).
                layer_digest = diff_id
            case Compression.GZIP | Compression.ZSTD:
                layer_digest = _hash_member(archive, path)
            case _:
                assert_never(compression)
        split_digest(layer_digest)
        layers.append(
            Descriptor(media_type=OCI_LAYER_MEDIA_TYPE[compression], digest=layer_digest, size=size)
        )
        paths[layer_digest] = path
    manifest = ManifestView(
        schema_version=2,
        config=Descriptor(
            media_type="application/vnd.docker.container.image.v1+json",
            digest=digest,
            size=len(config),
        ),
        layers=layers,
    )
    have = config_platform(view)
    return ResolvedImage(
        ref=msgspec.structs.replace(ref, digest=digest, platform=str(have) if have else None),
        manifest=manifest,
        manifest_media_type=None,
        config=config,
        config_view=view,
        opener=lambda d: archive.open_member(paths[d.digest]),
    )


def _sniff(magic: bytes) -> Compression:
    if magic.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if magic.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def _hash_member(archive: _TarArchive, path: str) -> str:
    h = hashlib.sha256()
    with archive.open_member(path) as f:
        for chunk in _chunks(f):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def _chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk
