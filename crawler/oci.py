"""OCI / Docker manifest, index and config documents: media types, "view" Structs, decoding.

Shared by the local sources (``sources``: OCI layouts, ``docker save`` archives) and the
registry crawler. The views hold only the fields regsweep uses; unknown fields are ignored,
so newer spec additions decode fine. Every document is decoded from bytes whose length was
capped *before* reading and whose sha256 was checked against the descriptor that named it
(content addressing is what lets a cached result be trusted), and every failure is a
``SourceError`` subclass with a message naming the document.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import Final, TypeVar, assert_never

import msgspec

from regsweep.matcher.imageconfig import ImageConfig

#: Caps before reading: the registry spec lets registries refuse manifests above 4 MiB, and
#: real image configs are kilobytes (large ones are history-heavy, still far below 8 MiB).
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
MAX_CONFIG_BYTES: Final = 8 * 1024 * 1024


class SourceError(Exception):
    """Base of every error about reading an image (ref, layout, archive, manifest, blob)."""


class InvalidReference(SourceError):
    """The REF given by the user is not ``oci:DIR[:TAG|@DIGEST]`` or ``docker-archive:FILE``."""


class NotFound(SourceError):
    """A layout, archive, tag, digest or blob that the image needs is absent."""


class UnsupportedMediaType(SourceError):
    """A document or layer has a media type regsweep cannot read (or not the one announced)."""


class Unsupported(SourceError):
    """A known but unsupported format: Docker schema 1 manifests, a future layout version."""


class ManifestTooLarge(SourceError):
    """A manifest, index or config is (or claims to be) above its size cap."""


class DigestMismatch(SourceError):
    """A blob's content does not hash to the digest that names it."""


class SizeMismatch(SourceError):
    """A blob's length differs from the size in its descriptor."""


class MalformedManifest(SourceError):
    """A manifest, index, config, ``index.json`` or ``manifest.json`` is not valid JSON of
    the expected shape (or names a digest that is not well formed)."""


class CorruptArchive(SourceError):
    """A tar (or gzip-compressed tar) archive is truncated or not a tar at all."""


class MediaType(enum.StrEnum):
    """Media types of the documents that describe an image (not of layers or configs)."""

    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
    DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"


class DocumentKind(enum.Enum):
    """What a document media type stands for."""

    IMAGE = "image"
    INDEX = "index"
    SCHEMA1 = "schema1"


def document_kind(media_type: MediaType) -> DocumentKind:
    """Classify a document media type (exhaustive: a new member must be placed here)."""
    match media_type:
        case MediaType.OCI_MANIFEST | MediaType.DOCKER_MANIFEST:
            return DocumentKind.IMAGE
        case MediaType.OCI_INDEX | MediaType.DOCKER_MANIFEST_LIST:
            return DocumentKind.INDEX
        case MediaType.DOCKER_SCHEMA1 | MediaType.DOCKER_SCHEMA1_SIGNED:
            return DocumentKind.SCHEMA1
        case _:
            assert_never(media_type)


_MEDIA_TYPES: Final = {m.value: m for m in MediaType}


def parse_media_type(value: str) -> MediaType | None:
    """The document media type ``value`` names, or None for anything else (an artifact)."""
    return _MEDIA_TYPES.get(value)


#: Config media types that make a manifest an image (anything else is an artifact: a
#: signature, an SBOM, a Helm chart …, skipped with a note).
IMAGE_CONFIG_MEDIA_TYPES: Final = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


class Compression(enum.Enum):
    """How a layer blob is compressed."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYER_MEDIA_TYPES: Final = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    # Non-distributable layers are deprecated in image-spec 1.1 but still found in Windows
    # images; their content (when present) is an ordinary layer.
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
    # Not in the Docker spec, but containerd and BuildKit write these two.
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": Compression.ZSTD,
}

#: Layer media types by compression, for writers that synthesise descriptors.
OCI_LAYER_MEDIA_TYPE: Final = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


def layer_compression(media_type: str) -> Compression:
    """The compression of a layer of ``media_type``; raises ``UnsupportedMediaType``."""
    try:
        return _LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise UnsupportedMediaType(f"unsupported layer media type {media_type!r}") from None


# Only algorithms we can verify; the strict hex pattern also makes a digest safe to use as a
# path component (no "/" or ".." can slip into blobs/<alg>/<hex>).
_DIGEST_RE: Final = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")


def split_digest(digest: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a well-formed sha256/sha512 digest; ``MalformedManifest``
    otherwise (other algorithms cannot be verified, so they are refused, not trusted)."""
    m = _DIGEST_RE.fullmatch(digest)
    if m is None:
        raise MalformedManifest(f"not a sha256/sha512 digest: {digest[:160]!r}")
    if m.group(1):
        return m.group(1), m.group(2)
    return m.group(3), m.group(4)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise ``DigestMismatch`` unless ``data`` hashes to ``digest``."""
    algorithm, _ = split_digest(digest)
    actual = compute_digest(data, algorithm)
    if actual != digest:
        raise DigestMismatch(f"{what}: content hashes to {actual}, descriptor says {digest}")


class Platform(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An image platform (index entry or config); ``str()`` is ``os/arch[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


_PLATFORM_PART: Final = re.compile(r"[A-Za-z0-9_.-]+")
_ARCH_ALIASES: Final = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
# The variant a platform has when none is written (containerd's normalisation).
_DEFAULT_VARIANT: Final = {"arm64": "v8", "arm": "v7"}


def parse_platform(text: str) -> Platform:
    """Parse a ``--platform`` value ``os/arch[/variant]``; ``InvalidReference`` otherwise."""
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(_PLATFORM_PART.fullmatch(p) for p in parts):
        raise InvalidReference(f"platform {text!r}: expected os/arch[/variant]")
    return Platform(
        os=parts[0].lower(),
        architecture=_ARCH_ALIASES.get(parts[1].lower(), parts[1].lower()),
        variant=parts[2].lower() if len(parts) == 3 else None,
    )


def platform_matches(wanted: Platform, have: Platform) -> bool:
    """True when ``have`` is ``wanted``; a variant in ``wanted`` must match (defaults
    applied: arm64 is v8, arm is v7), a filter without a variant accepts every variant."""
    arch = _ARCH_ALIASES.get(have.architecture, have.architecture)
    if wanted.os != have.os or wanted.architecture != arch:
        return False
    if wanted.variant is None:
        return True
    return wanted.variant == (have.variant or _DEFAULT_VARIANT.get(arch))


class Descriptor(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A content descriptor: what a blob is, its digest and length (image-spec)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = None


class ManifestView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An image manifest (OCI or Docker schema 2): config and layers in order."""

    schema_version: int
    config: Descriptor
    layers: list[Descriptor]
    media_type: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None


class IndexView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An image index or Docker manifest list (also the shape of a layout's ``index.json``)."""

    schema_version: int
    manifests: list[Descriptor]
    media_type: str | None = None
    annotations: dict[str, str] | None = None


def config_platform(config: ImageConfig) -> Platform | None:
    """The platform an image config declares, if it names both os and architecture."""
    if config.os and config.architecture:
        return Platform(os=config.os, architecture=config.architecture, variant=config.variant)
    return None


class _Probe(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    schema_version: int | None = None
    media_type: str | None = None


_PROBE: Final = msgspec.json.Decoder(_Probe)
_MANIFEST: Final = msgspec.json.Decoder(ManifestView)
_INDEX: Final = msgspec.json.Decoder(IndexView)
_CONFIG: Final = msgspec.json.Decoder(ImageConfig)


_T = TypeVar("_T")


def decode_json(decoder: msgspec.json.Decoder[_T], data: bytes, what: str) -> _T:
    """``decoder.decode(data)``, every way it can fail as ``MalformedManifest`` naming
    ``what``: bad JSON, a wrong shape, and nesting deep enough to exhaust the recursion
    limit (``[[[[…]]]]`` a thousand deep, even inside a field nobody reads)."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as e:
        raise MalformedManifest(f"{what}: {e}") from None
    except RecursionError:
        raise MalformedManifest(f"{what}: JSON nested too deeply") from None


def probe_document(data: bytes, what: str) -> tuple[int | None, str | None]:
    """``(schemaVersion, mediaType)`` of a JSON document, for dispatch before decoding."""
    p = decode_json(_PROBE, data, what)
    return p.schema_version, p.media_type


def _check_declared(declared: str | None, expected: MediaType, what: str) -> None:
    # The descriptor that led here fixed the type; a document that says otherwise is either
    # corrupt or an attempt to make us parse one thing as another.
    if declared is None or declared == expected.value:
        return
    if parse_media_type(declared) is None:
        raise UnsupportedMediaType(f"{what}: unknown mediaType {declared!r}")
    raise UnsupportedMediaType(f"{what}: document says {declared!r}, descriptor {expected}")


def decode_manifest(data: bytes, media_type: MediaType, what: str) -> ManifestView:
    """Decode an image manifest already known (from its descriptor) to be ``media_type``."""
    _reject_oversize(data, MAX_MANIFEST_BYTES, what)
    version, declared = probe_document(data, what)
    if version == 1:
        raise Unsupported(f"{what}: Docker schema 1 manifests are not supported")
    _check_declared(declared, media_type, what)
    view = decode_json(_MANIFEST, data, what)
    if view.schema_version != 2:
        raise MalformedManifest(f"{what}: schemaVersion {view.schema_version}, expected 2")
    for d in (view.config, *view.layers):
        split_digest(d.digest)
        if d.size < 0:
            raise MalformedManifest(f"{what}: negative size for {d.digest}")
    return view


def decode_index(data: bytes, media_type: MediaType, what: str) -> IndexView:
    """Decode an image index / manifest list (or a layout's ``index.json``)."""
    _reject_oversize(data, MAX_MANIFEST_BYTES, what)
    version, declared = probe_document(data, what)
    if version == 1:
        raise Unsupported(f"{what}: Docker schema 1 manifests are not supported")
    _check_declared(declared, media_type, what)
    view = decode_json(_INDEX, data, what)
    if view.schema_version != 2:
        raise MalformedManifest(f"{what}: schemaVersion {view.schema_version}, expected 2")
    for d in view.manifests:
        split_digest(d.digest)
        if d.size < 0:
            raise MalformedManifest(f"{what}: negative size for {d.digest}")
    return view


def decode_config(data: bytes, what: str) -> ImageConfig:
    """Decode an image config (already size-capped and digest-verified by the caller)."""
    _reject_oversize(data, MAX_CONFIG_BYTES, what)
    return decode_json(_CONFIG, data, what)


def _reject_oversize(data: bytes, cap: int, what: str) -> None:
    if len(data) > cap:
        raise ManifestTooLarge(f"{what}: {len(data)} bytes, cap {cap}")


#: Annotations this module and its users read.
REF_NAME_ANNOTATION: Final = "org.opencontainers.image.ref.name"
DOCKER_REFERENCE_TYPE: Final = "vnd.docker.reference.type"
CONTAINERD_IMAGE_NAME: Final = "io.containerd.image.name"


def is_attestation(d: Descriptor) -> bool:
    """True for BuildKit attestation manifests (SBOM / provenance), which are not images."""
    if d.annotations and d.annotations.get(DOCKER_REFERENCE_TYPE) == "attestation-manifest":
        return True
    p = d.platform
    return p is not None and p.os == "unknown" and p.architecture == "unknown"
