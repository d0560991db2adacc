"""The one walk from a manifest or index down to platform images, whatever holds the blobs.

A ``BlobSource`` hands out documents by descriptor (manifests and indexes, image configs:
capped and digest-checked); the OCI layout and the docker archive (``sources``) and the
registry (``images``) implement it. ``Walker.walk`` follows a descriptor:

* a media type that is not an image's is skipped with a note; Docker schema 1 is refused;
* an index (nested at most ``MAX_INDEX_DEPTH`` deep) is followed to every child except
  attestation manifests and, under a platform filter, children whose descriptor names
  another platform (each skipped with a note); the children are walked concurrently and
  reported in the index's order. Images reached through an index record the outermost
  index (the one a tag points to);
* an image manifest whose config is not an image config (a signature, an SBOM) is skipped
  with a note; otherwise its config is fetched, and under a platform filter an image whose
  config declares another platform (or none) is skipped with a note; the image then goes to
  the walker's ``hook``, which makes of it what the caller needs (the layout's resolved
  image, the registry's analysed facts) or raises ``SourceError`` for an image it refuses.

A failure confined to one descriptor becomes a ``Problem`` (stage ``manifest``; ``blob``
for a config that cannot be fetched) about the image, or for an index about the index
(``index_digest``, no ``digest``), and the walk goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, Generic, Protocol, TypeVar

import msgspec

from regsweep.crawler.oci import (
    IMAGE_CONFIG_MEDIA_TYPES,
    Descriptor,
    DocumentKind,
    MalformedManifest,
    ManifestView,
    MediaType,
    Platform,
    SourceError,
    Unsupported,
    config_platform,
    decode_config,
    decode_index,
    decode_manifest,
    document_kind,
    is_attestation,
    parse_media_type,
    platform_matches,
)
from regsweep.crawler.registry import RegistryError
from regsweep.matcher.facts import Problem, problem_of
from regsweep.matcher.imageconfig import ImageConfig
from regsweep.matcher.records import ImageRef

#: Index nesting deeper than this is refused (a cycle cannot occur with content addressing,
#: but a deep chain of indexes is a cheap way to make a scanner do pointless work).
MAX_INDEX_DEPTH: Final = 8
#: What a source may raise for one descriptor (the walk goes on).
_FAULTS: Final = (RegistryError, SourceError)

_T = TypeVar("_T")


class BlobSource(Protocol):
    """Where a walk reads its documents."""

    async def document(self, desc: Descriptor, what: str) -> bytes:
        """The manifest or index ``desc`` names (``what`` says which, for messages): capped
        and checked against the descriptor's digest; ``SourceError`` (or a registry's
        ``RegistryError``) when it cannot be had."""
        ...

    async def config(self, desc: Descriptor) -> bytes:
        """The image config ``desc`` names: capped, checked against its digest and size."""
        ...


class Image(msgspec.Struct, frozen=True, kw_only=True):
    """A platform image the walk reached, handed to the hook."""

    desc: Descriptor
    media_type: MediaType
    manifest: ManifestView
    #: The config blob as fetched (digest-checked) and decoded.
    config: bytes
    view: ImageConfig
    #: Its reference: the walk's base with the digest, index and platform filled in.
    ref: ImageRef


class Found(Generic[_T]):
    """What a walk found: the hook's results in order, failures, notes, and how many
    manifest documents it went through."""

    __slots__ = ("failures", "images", "manifests", "notes")

    def __init__(self) -> None:
        self.images: list[_T] = []
        self.failures: list[Problem] = []
        self.notes: list[str] = []
        self.manifests = 0

    def extend(self, other: Found[_T]) -> None:
        """Append another walk's findings (an index child's)."""
        self.images += other.images
        self.failures += other.failures
        self.notes += other.notes
        self.manifests += other.manifests


class Walker(Generic[_T]):
    """Walks descriptors of one source down to its platform images (see the module doc).

    ``dedupe``: a manifest reached twice (two tags of a layout naming it) is one image,
    walked once per walker.
    """

    def __init__(
        self,
        source: BlobSource,
        hook: Callable[[Image], Awaitable[_T | None]],
        *,
        platform: Platform | None = None,
        dedupe: bool = False,
    ) -> None:
        self.source = source
        self.hook = hook
        self.platform = platform
        self._seen: set[str] | None = set() if dedupe else None

    async def walk(self, desc: Descriptor, base: ImageRef, data: bytes | None = None) -> Found[_T]:
        """Follow ``desc`` (its document is ``data`` when already at hand)."""
        found: Found[_T] = Found()
        await self._walk(desc, data, base, None, 0, found)
        return found

    async def _walk(
        self,
        desc: Descriptor,
        data: bytes | None,
        base: ImageRef,
        index_digest: str | None,
        depth: int,
        found: Found[_T],
    ) -> None:
        if self._seen is not None:
            if desc.digest in self._seen:
                return
            self._seen.add(desc.digest)
        media_type = parse_media_type(desc.media_type)
        if media_type is None:
            found.notes.append(
                f"skipped {desc.digest}: not an image (media type {desc.media_type!r})"
            )
            return
        ref = msgspec.structs.replace(
            base,
            digest=desc.digest,
            index_digest=index_digest,
            platform=str(desc.platform) if desc.platform else None,
        )
        kind = document_kind(media_type)
        found.manifests += 1
        try:
            if kind is DocumentKind.SCHEMA1:
                raise Unsupported(f"{desc.digest}: Docker schema 1 manifests are not supported")
            if kind is DocumentKind.INDEX:
                await self._index(desc, data, media_type, base, index_digest, depth, found)
            else:
                image = await self._image(desc, data, media_type, ref, found)
                if image is not None:
                    found.images.append(image)
        except _FAULTS as exc:
            if kind is DocumentKind.INDEX:
                # About the index: it has no image digest of its own.
                ref = msgspec.structs.replace(ref, digest=None, index_digest=desc.digest)
            found.failures.append(problem_of(exc, stage="manifest", image=ref, ref=base.ref))

    async def _index(
        self,
        desc: Descriptor,
        data: bytes | None,
        media_type: MediaType,
        base: ImageRef,
        index_digest: str | None,
        depth: int,
        found: Found[_T],
    ) -> None:
        if depth >= MAX_INDEX_DEPTH:
            raise MalformedManifest(f"{desc.digest}: indexes nested deeper than {MAX_INDEX_DEPTH}")
        if data is None:
            data = await self.source.document(desc, "index")
        index = decode_index(data, media_type, f"index {desc.digest}")
        children = []
        for child in index.manifests:
            if is_attestation(child):
                found.notes.append(f"skipped {child.digest}: attestation manifest")
            elif (
                self.platform is not None
                and child.platform is not None
                and not platform_matches(self.platform, child.platform)
            ):
                found.notes.append(
                    f"skipped {child.digest}: platform {child.platform} is not {self.platform}"
                )
            else:
                children.append(child)
        # The outermost index is the one a tag points to, so it is the one recorded.
        outer = index_digest or desc.digest
        # Platforms of one index concurrently (they usually share only small layers), each
        # into its own findings so that they follow the index's order, not completion's.
        parts: list[Found[_T]] = [Found() for _ in children]
        await asyncio.gather(
            *(
                self._walk(c, None, base, outer, depth + 1, part)
                for c, part in zip(children, parts, strict=True)
            )
        )
        for part in parts:
            found.extend(part)

    async def _image(
        self,
        desc: Descriptor,
        data: bytes | None,
        media_type: MediaType,
        ref: ImageRef,
        found: Found[_T],
    ) -> _T | None:
        if data is None:
            data = await self.source.document(desc, "manifest")
        manifest = decode_manifest(data, media_type, f"manifest {desc.digest}")
        if manifest.config.media_type not in IMAGE_CONFIG_MEDIA_TYPES:
            kind = manifest.artifact_type or manifest.config.media_type
            found.notes.append(f"skipped {desc.digest}: artifact of type {kind!r}")
            return None
        try:
            config = await self.source.config(manifest.config)
        except _FAULTS as exc:
            found.failures.append(problem_of(exc, stage="blob", image=ref, ref=ref.ref))
            return None
        view = decode_config(config, f"config {manifest.config.digest}")
        have = desc.platform or config_platform(view)
        # Index children were chosen by their descriptors' platforms; this catches an image
        # named directly, and a child whose descriptor names none, by what its config says.
        if self.platform is not None and (
            have is None or not platform_matches(self.platform, have)
        ):
            found.notes.append(
                f"skipped {desc.digest}: platform {have or 'unknown'} is not {self.platform}"
            )
            return None
        ref = msgspec.structs.replace(ref, platform=str(have) if have else None)
        return await self.hook(
            Image(
                desc=desc,
                media_type=media_type,
                manifest=manifest,
                config=config,
                view=view,
                ref=ref,
            )
        )
