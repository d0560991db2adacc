"""What users type to name images and registries, parsed in one place.

* Local sources (``scan``): ``oci:DIR[:TAG|@DIGEST]``, ``oci-archive:FILE[:TAG|@DIGEST]``
  (a tar of an OCI layout, as ``skopeo copy … oci-archive:`` and ``podman save --format
  oci-archive`` write it; tag and digest as for ``oci:``) and ``docker-archive:FILE``
  ``dir:PATH`` (an unpacked root filesystem, ``analyze.analyze_rootfs``) and
  ``sbom:FILE`` (a CycloneDX or SPDX JSON SBOM: its packages, no image)
  (``SourceRef``; the path may itself contain ``:`` and ``@``):

  - ``oci:DIR@sha256:HEX``: the text after the last ``@`` is a digest when it is a
    well-formed ``sha256:``/``sha512:`` digest; it may name a top-level entry of
    ``index.json`` or any manifest/index blob in the layout;
  - ``oci:DIR:TAG``: the text after the last ``:`` is a tag when it matches the Docker tag
    grammar ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`` (so never a path: no ``/``); it selects
    the ``index.json`` entries whose ``org.opencontainers.image.ref.name`` is the tag, or a
    full reference ending in ``:TAG``;
  - ``oci:DIR``: every entry of ``index.json``. A directory whose name ends in ``:word`` is
    written with a trailing colon, ``oci:/srv/img:v1:`` (an empty tag means "none");
  - ``docker-archive:FILE``: everything after the prefix is the path; all images in it.
* Registry images (``scan``): ``[docker://|http://|https://]HOST[:PORT]/REPO[:TAG|@DIGEST]``
  (``RegistryRef``); the first component is a host when it has a dot or a port or is
  ``localhost`` (Docker's rule).
* Registries (``crawl``): ``[http://|https://]HOST[:PORT]`` (``registry_url``).
* Repository and tag filters: globs (``select``, ``is_glob``).

``parse_image_ref`` tells the two kinds of image reference apart.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Sequence
from typing import Final

import msgspec
from yarl import URL

from regsweep.crawler.oci import InvalidReference, MalformedManifest, split_digest

_TAG_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HOST: Final = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?")
_DIGEST: Final = re.compile(r"sha256:[a-f0-9]{64}")


class SourceKind(enum.Enum):
    """The transports ``scan`` reads locally."""

    OCI_LAYOUT = "oci"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"
    SBOM = "sbom"
    DIR = "dir"


class SourceRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A parsed REF: the transport, the path, and an optional tag or digest (OCI only)."""

    text: str
    kind: SourceKind
    path: str
    tag: str | None = None
    digest: str | None = None


#: The transports of local sources: a reference that starts with one is never a registry's.
_LOCAL: Final = frozenset(k.value for k in SourceKind)
_FORMS: Final = (
    "oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE, "
    "dir:ROOTFS or sbom:FILE"
)


def parse_ref(text: str) -> SourceRef:
    """Parse ``oci:DIR[:TAG|@DIGEST]``, ``oci-archive:FILE[:TAG|@DIGEST]`` or
    ``docker-archive:FILE`` (grammar in the module doc); raises ``InvalidReference`` with
    the accepted forms."""
    transport, sep, rest = text.partition(":")
    if not sep:
        raise InvalidReference(f"{text!r}: expected {_FORMS}")
    if transport in (SourceKind.DOCKER_ARCHIVE.value, SourceKind.SBOM.value, SourceKind.DIR.value):
        if not rest:
            raise InvalidReference(f"{text!r}: {transport}: needs a path")
        return SourceRef(text=text, kind=SourceKind(transport), path=rest)
    try:
        kind = SourceKind(transport)
    except ValueError:
        raise InvalidReference(
            f"{text!r}: unknown transport {transport!r} (expected {_FORMS})"
        ) from None
    path, tag, digest = rest, None, None
    at = rest.rfind("@")
    if at >= 0 and _is_digest(rest[at + 1 :]):
        path, digest = rest[:at], rest[at + 1 :]
    else:
        colon = rest.rfind(":")
        if colon >= 0:
            suffix = rest[colon + 1 :]
            if suffix == "":
                path = rest[:colon]
            elif _TAG_RE.fullmatch(suffix):
                path, tag = rest[:colon], suffix
    if not path:
        what = "a layout directory" if kind is SourceKind.OCI_LAYOUT else "an archive file"
        raise InvalidReference(f"{text!r}: {transport}: needs {what}")
    return SourceRef(text=text, kind=kind, path=path, tag=tag, digest=digest)


def _is_digest(s: str) -> bool:
    try:
        split_digest(s)
    except MalformedManifest:
        return False
    return True


class RegistryRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``[docker://|http://|https://]HOST[:PORT]/REPO[:TAG|@DIGEST]``, parsed."""

    text: str
    #: What ``Registry`` is given: ``http://host:port`` for an explicit ``http://``, else
    #: the bare ``host[:port]`` (https; ``--insecure`` lets it fall back to http).
    url: str
    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The tag or digest to fetch (``latest`` when neither was written)."""
        return self.digest or self.tag or "latest"


def looks_like_registry_ref(text: str) -> bool:
    """Whether ``text`` is meant as a registry reference rather than a local source."""
    if text.startswith(("docker://", "http://", "https://")):
        return True
    if text.partition(":")[0] in _LOCAL:
        return False
    host, sep, _ = text.partition("/")
    return bool(sep) and _is_host(host)


def _is_host(host: str) -> bool:
    # Docker's rule: the first component is a registry host when it has a dot or a port,
    # or is localhost; anything else would be a Docker Hub namespace (not supported here).
    return bool(_HOST.fullmatch(host)) and ("." in host or ":" in host or host == "localhost")


#: The distribution spec's repository name grammar (``<name>``): what a registry accepts,
#: so nothing else is ever put into a request path.
_REPOSITORY_RE: Final = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)


def parse_registry_ref(text: str) -> RegistryRef:
    """Parse a registry image reference; ``InvalidReference`` with the accepted form."""
    rest, scheme = text, None
    for prefix in ("docker://", "http://", "https://"):
        if rest.startswith(prefix):
            rest, scheme = rest[len(prefix) :], prefix
            break
    host, sep, path = rest.partition("/")
    if not sep or not _is_host(host) or not path:
        raise InvalidReference(
            f"{text!r}: expected HOST[:PORT]/REPOSITORY[:TAG|@DIGEST] (the host needs a dot, "
            "a port, or to be localhost)"
        )
    tag = digest = None
    if "@" in path:
        path, _, digest = path.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"{text!r}: {digest!r} is not a sha256 digest")
    else:
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, _, tag = path.rpartition(":")
            if not _TAG_RE.fullmatch(tag):
                raise InvalidReference(f"{text!r}: {tag!r} is not a valid tag")
    if not path or path != path.lower():
        raise InvalidReference(f"{text!r}: repository names are lower case")
    if len(path) > 255 or not _REPOSITORY_RE.fullmatch(path):
        raise InvalidReference(
            f"{text[:300]!r}: not a repository name (components of a-z, 0-9 and single "
            "separators . _ __ -, joined by /)"
        )
    url = f"http://{host}" if scheme == "http://" else f"https://{host}"
    if scheme in (None, "docker://"):
        url = host
    return RegistryRef(text=text, url=url, host=host, repository=path, tag=tag, digest=digest)


def select(names: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """``names`` matching any ``include`` glob (all when there is none) and no ``exclude``."""
    return [
        n
        for n in names
        if (not include or any(fnmatch.fnmatchcase(n, g) for g in include))
        and not any(fnmatch.fnmatchcase(n, g) for g in exclude)
    ]


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has glob characters (a literal names one repository)."""
    return any(c in pattern for c in "*?[")


_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# An ``@`` that starts a digest: the only one a registry reference may hold.
_DIGEST_AT: Final = re.compile(r"@(?:sha256|sha512):")


def refuse_credentials(text: str) -> None:
    """``InvalidReference`` for a reference or registry URL that carries credentials
    (``https://user:secret@host/…``, a bare token ``tok@host``): every ``@`` that does not
    start a digest. The message shows nothing between the user name and the last such ``@``
    (a password may itself hold ``/``, ``:`` or ``@``): it is refused without being echoed
    into a terminal, a CI log or a bug report. A local source's path may hold any
    character."""
    if text.partition(":")[0] in _LOCAL:
        return
    last = max((i for i, c in enumerate(text) if c == "@" and not _DIGEST_AT.match(text, i)),
               default=-1)  # fmt: skip
    if last < 0:
        return
    scheme = m.group() if (m := _SCHEME.match(text)) else ""
    # A user name is shown (it helps to see which): it ends at the first ":", which a
    # password follows. A bare token, or a password, never is.
    user, colon, _ = text[len(scheme) : last].partition(":")
    who = f"{user}:***" if colon else "***"
    raise InvalidReference(
        f"{scheme}{who}@{text[last + 1 :]}: credentials do not belong in a reference (use "
        "--username and --password-stdin, or a docker config; a digest is @sha256:…)"
    )


def parse_image_ref(text: str) -> SourceRef | RegistryRef:
    """A ``scan`` REF: a registry image or a local source; ``InvalidReference`` otherwise
    (a reference carrying a password is refused without echoing it)."""
    refuse_credentials(text)
    return parse_registry_ref(text) if looks_like_registry_ref(text) else parse_ref(text)


def registry_url(text: str) -> str:
    """Check a ``crawl`` URL, ``[http://|https://]HOST[:PORT]`` (a bare host is https);
    returns it as given, ``InvalidReference`` otherwise (a password is never echoed)."""
    refuse_credentials(text)
    parsed = URL(text if "://" in text else "https://" + text)
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.path not in ("", "/"):
        raise InvalidReference(
            f"not a registry URL: {text!r} (expected [http://|https://]HOST[:PORT])"
        )
    return text
