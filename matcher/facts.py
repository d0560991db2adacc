"""The facts model: what the crawler found about an image, as the matcher judges it.

The crawler (local sources and registries alike) produces one ``ImageFacts`` per platform
image and one kind of failure, ``Problem``; ``matcher.judge`` turns them into records. They
live on the matcher's side of the house because the matcher must not import the crawler;
the crawler already speaks the matcher's record types (``ImageRef``, ``Package``,
``OsInfo``).
"""

from __future__ import annotations

import re

import msgspec

from regsweep.matcher.records import ErrorRecord, ImageRef, OsInfo, Package


class Problem(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Something that could not be done, as its ``error`` record will say it.

    ``image`` and ``ref`` say what it is about when that is not the image being judged (a
    tag whose manifest would not resolve, a registry's catalog); a problem inside an image's
    facts takes the image's own.
    """

    stage: str
    error: str
    message: str
    retryable: bool = False
    image: ImageRef | None = None
    ref: str | None = None

    def record(self, image: ImageRef | None = None) -> ErrorRecord:
        """The ``error`` record, about ``image`` unless the problem names its own."""
        about = self.image or image
        return ErrorRecord(
            image=about,
            ref=self.ref if self.ref is not None else (about.ref if about else None),
            stage=self.stage,
            error=self.error,
            message=self.message,
            retryable=self.retryable,
        )


class FileSecret(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A secret left in a file of an image's layers, redacted (``crawler.analyzers.secrets``)."""

    path: str
    #: Digest of the layer that holds it.
    layer: str
    line: int
    #: ``matcher.secrets`` rule id and title.
    rule: str
    title: str
    #: ``matcher.secrets.SecretKind`` value.
    kind: str
    #: The redacted form.
    shown: str
    #: A later layer deletes or replaces the file: the secret is still in this layer's
    #: blob, for anyone who pulls it.
    removed: bool = False


class ImageFacts(msgspec.Struct, kw_only=True):
    """What one platform image holds. ``complete`` is False when a layer could not be read:
    such an image must never be reported as clean."""

    image: ImageRef
    #: The image config blob as fetched (digest-checked), or see ``config_scrubbed``.
    config: bytes
    layers: int
    size: int
    packages: list[Package] = []
    os: OsInfo | None = None
    #: Advisory ecosystem of the OS packages (``Debian:12`` …), as the OS analyzer named it.
    ecosystem: str | None = None
    problems: list[Problem] = []
    complete: bool = True
    #: Secrets in the layers' files.
    secrets: list[FileSecret] = []
    #: ``config`` is the crawler's state store's form of the config (``checks.scrub``:
    #: its secrets taken out, what the checks found in them kept), not the blob as
    #: fetched. Only the crawler sets it, for a config it read back from its store.
    config_scrubbed: bool = False


# Word starts in a class name: before an upper case letter that follows a lower case letter or
# digit, or that starts a word after an acronym (TLSError -> tls_error).
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def error_code(exc: BaseException) -> str:
    """A stable machine-readable code from an exception class: ``DigestMismatch`` →
    ``digest_mismatch``."""
    return _CAMEL.sub("_", type(exc).__name__).lower()


def problem_of(
    exc: BaseException,
    *,
    stage: str,
    retryable: bool | None = None,
    image: ImageRef | None = None,
    ref: str | None = None,
) -> Problem:
    """An exception as a ``Problem``: its class names the error, its text the message; an
    exception with a ``retryable`` attribute (a registry's) says whether to retry, an
    ``OSError`` is retryable, anything else is not (unless ``retryable`` says)."""
    if retryable is None:
        flag = getattr(exc, "retryable", None)
        retryable = flag if isinstance(flag, bool) else isinstance(exc, OSError)
    return Problem(
        stage=stage,
        error=error_code(exc),
        message=str(exc),
        retryable=retryable,
        image=image,
        ref=ref,
    )
