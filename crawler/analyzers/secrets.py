"""The secrets analyzer: credentials left in a layer's files.

Every regular file of a layer under ``SIZE_CAP`` is searched as it streams by, except where
secrets are not kept or are known to be fakes (``skipped``):

* what the OS and language package managers install (``usr/share``, ``usr/lib``, ``lib``,
  ``usr/include``, package databases and caches, ``node_modules``, ``site-packages``,
  ``dist-packages``, Go's module cache, vendored trees): a secret there ships in a public
  package, and searching them would cost the layer walk its speed;
* test fixtures (``test``, ``tests``, ``testdata``, ``fixtures``, ``examples`` … at any
  depth): the keys and tokens in them are published on purpose;
* binary files (a NUL byte in the first 8 KiB) and file types that hold no text (images,
  archives, compiled code, fonts, databases).

A file is first searched for the literals every format rule needs (``FORMAT_ANCHORS``, in
one compiled pass: ``matcher.anchors``) and for a password in a URL: most files hold none
and cost that one pass, at about 1 GB/s. One that does is decoded and searched
with the format rules of ``matcher.secrets`` (provider credentials, private keys, JWTs,
passwords in URLs). Settings files where a value is a secret by its name (``.env``,
``.npmrc``, ``.pypirc``, ``.netrc``, ``.git-credentials``, AWS ``credentials``, Docker's
``config.json``, Google's application-default credentials) are also read line by line as
``NAME=value`` / ``NAME: value`` / ``"NAME": "value"`` pairs. The AWS documentation's example
keys are never reported.

Each hit is kept as a ``FileSecret`` with the file's path, layer, line and the redacted
form only (``matcher.secrets.redact``): no secret is ever stored, not even in the layer
cache. Secrets are collected from every layer, also from files a later layer deletes or
replaces: the layer blob still holds them for anyone who pulls it (``removed`` says so).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Final

import msgspec

from regsweep.crawler.analyzers.interface import (
    Analyzer,
    AnalyzerResult,
    Context,
    FactsView,
    FileFacts,
    FileReader,
    Found,
    SecretFound,
)
from regsweep.matcher.anchors import AnchorSet
from regsweep.matcher.facts import FileSecret
from regsweep.matcher.secrets import (
    FORMAT_ANCHORS,
    SecretHit,
    is_placeholder,
    named_hit,
    scan_assignment,
    scan_formats,
)

__all__ = ["SIZE_CAP", "SecretsAnalyzer", "file_secrets", "skipped"]

#: A file with a NUL byte in its first bytes is binary: not searched.
_BINARY_PROBE: Final = 8192
#: Files are searched up to this size (configuration and application files are far
#: smaller; a longer one is searched in its first ``SIZE_CAP`` bytes).
SIZE_CAP: Final = 1 << 20

# The prefilter: the literals of every format rule but the URL one, searched in one compiled
# pass; "://" is in most text files, so the URL rule's own pattern (a literal-led regex,
# also one fast pass) stands in for it.
_ANCHORS: Final = AnchorSet(a.encode() for a in FORMAT_ANCHORS if a != "://")
_URL_PASSWORD: Final = re.compile(rb"://[^/\s:@\"']{1,256}:[^/\s@\"']{1,256}@")

#: Path prefixes (from the image root) whose files come from package managers.
_SYSTEM_PREFIXES: Final = (
    "usr/share/",
    "usr/lib/",
    "usr/lib64/",
    "usr/libexec/",
    "usr/include/",
    # Kernel headers and sources; /usr/src/app is an app's WORKDIR (the node images'), read.
    "usr/src/linux",
    "lib/",
    "lib64/",
    "var/lib/dpkg/",
    "var/lib/apt/",
    "var/lib/rpm/",
    "var/lib/apk/",
    "var/cache/",
    "var/log/",
    "etc/ssl/certs/",
    "etc/pki/ca-trust/",
    "usr/local/lib/",
    "usr/local/share/",
    "usr/local/include/",
    "usr/bin/",
    "usr/sbin/",
    "bin/",
    "sbin/",
    "proc/",
    "sys/",
    "dev/",
)
#: Directory names, at any depth, of dependency trees and published test fixtures.
_SKIPPED_DIRS: Final = frozenset(
    {
        "node_modules",
        "site-packages",
        "dist-packages",
        "vendor",
        ".git",
        "__pycache__",
        "test",
        "tests",
        "testdata",
        "testing",
        "__tests__",
        "fixtures",
        "__fixtures__",
        "example",
        "examples",
        "gems",  # installed Ruby gems (their specs and fixtures)
    }
)
#: Path pieces of package caches whose directory names say nothing alone (Go's ``mod``).
_SKIPPED_PIECES: Final = ("/go/pkg/mod/", "/.cargo/registry/", "/.m2/repository/")
_SKIPPED_SUFFIXES: Final = (
    ".so", ".a", ".o", ".pyc", ".pyo", ".class", ".jar", ".war", ".whl", ".egg", ".zip",
    ".gz", ".tgz", ".xz", ".bz2", ".zst", ".7z", ".png", ".jpg", ".jpeg", ".gif", ".ico",
    ".webp", ".bmp", ".ttf", ".otf", ".woff", ".woff2", ".pdf", ".mo", ".db", ".sqlite",
    ".wasm", ".dll", ".exe", ".bin", ".mp3", ".mp4", ".svg", ".map", ".min.js", ".lock",
)  # fmt: skip

#: Settings files where a value is a secret by its name; path suffixes.
_SETTINGS: Final = (
    ".env",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".aws/credentials",
    ".aws/config",
    ".docker/config.json",
    "gcloud/application_default_credentials.json",
    ".s3cfg",
    ".boto",
)
# ``.env.production``, ``prod.env``: dotenv files by another name.
_DOTENV: Final = re.compile(r"(?:^|/)(?:\.env(?:\.[\w-]+)?|[\w.-]+\.env)$")
# ``NAME=value``, ``NAME = value``, ``NAME: value``, ``"NAME": "value"`` (one per line).
_PAIR: Final = re.compile(
    r"""^\s*(?:export\s+)?["']?([A-Za-z_/][\w.:/@-]{0,127}?)["']?\s*[:=]\s*"""
    r"""(?:"([^"\n]*)"|'([^'\n]*)'|([^\n]*))"""
)
# What ends an unquoted value: a comment, or the separator of a JSON or INI line.
_VALUE_END: Final = re.compile(r"\s+#.*$|[\s,;]*$")
#: Names of settings whose value is a credential though the name does not say so.
_CREDENTIAL_NAMES: Final = frozenset(
    {"_authtoken", "_auth", "auth", "aws_secret_access_key", "password", "refresh_token"}
)
#: The AWS documentation's example credentials: in countless READMEs and samples.
_PUBLISHED_FAKES: Final = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def skipped(path: str) -> bool:
    """Whether ``path`` is left unsearched (see the module doc)."""
    if path.startswith(_SYSTEM_PREFIXES) or path.endswith(_SKIPPED_SUFFIXES):
        return True
    if any(piece in f"/{path}" for piece in _SKIPPED_PIECES):
        return True
    return not _SKIPPED_DIRS.isdisjoint(path.split("/")[:-1])


def _is_settings(path: str) -> bool:
    return path.endswith(_SETTINGS) or _DOTENV.search(path) is not None


class _Reader:
    """Keeps a file's first ``cap`` bytes for ``SecretsAnalyzer.read``, and stops at the
    first piece of a binary file (a NUL byte), which is then skipped at header speed."""

    __slots__ = ("_analyzer", "_binary", "_cap", "_have", "_parts", "_path", "_size")

    def __init__(self, analyzer: SecretsAnalyzer, path: str, size: int, cap: int) -> None:
        self._analyzer, self._path, self._size, self._cap = analyzer, path, size, cap
        self._parts: list[bytes] = []
        self._have = 0
        self._binary = False

    def feed(self, chunk: bytes) -> bool:
        if not self._have and b"\0" in chunk[:_BINARY_PROBE]:
            self._binary = True
            return False
        chunk = chunk[: self._cap - self._have]
        if chunk:
            self._parts.append(chunk)
            self._have += len(chunk)
        return self._have < self._cap

    def close(self) -> FileFacts | None:
        if self._binary:
            return None
        data = b"".join(self._parts)
        self._parts = []
        return self._analyzer.read(self._path, data, self._size > len(data))


class SecretsAnalyzer(Analyzer):
    """Credentials in files (see the module doc)."""

    NAME: ClassVar[str] = "secrets"
    VERSION: ClassVar[int] = 1

    def wants(self, path: str) -> int | None:
        """Every file outside the skipped trees, types and fixtures, its first MiB."""
        return None if skipped(path) else SIZE_CAP

    def open(self, path: str, size: int, cap: int) -> FileReader:
        """A reader that keeps the first ``cap`` bytes of a text file (a binary one is left
        at its first piece). Its memory is the cap whatever the file, so it takes no share
        of the buffer budget (``buffers`` is False): most files it reads are skipped by
        the prefilter, and a share per file would cost each a lock round trip."""
        return _Reader(self, path, size, cap)

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """The secrets in the file, redacted; None for a file with none."""
        settings = _is_settings(path)
        if not settings and not _ANCHORS.search(data) and not _URL_PASSWORD.search(data):
            return None
        if b"\0" in data[:_BINARY_PROBE]:
            return None
        text = data.decode("utf-8", "replace")
        hits = [h for h in scan_formats(text) if not _published(text, h)]
        if settings:
            taken = [(h.start, h.end) for h in hits]
            hits += [h for h in _settings_hits(text) if _apart(h, taken)]
            if path.endswith(".json"):
                # A JSON settings file on one line (``echo '{"auths":…}' > config.json``).
                taken = [(h.start, h.end) for h in hits]
                hits += [h for h in _json_hits(text) if _apart(h, taken)]
        if not hits:
            return None
        lines = _line_starts(text)
        return FileFacts(
            secrets=tuple(
                SecretFound(
                    rule=h.rule,
                    title=h.title,
                    kind=h.kind.value,
                    line=_line_of(lines, h.start),
                    shown=h.shown,
                )  # fmt: skip
                for h in sorted(hits, key=lambda h: h.start)
            )
        )

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Nothing for the image's packages: ``file_secrets`` collects the hits, from every
        layer (a file a later layer deletes is still in its blob)."""
        return AnalyzerResult()


def _published(text: str, hit: SecretHit) -> bool:
    return text[hit.start : hit.end] in _PUBLISHED_FAKES


def _apart(hit: SecretHit, taken: Sequence[tuple[int, int]]) -> bool:
    return all(hit.end <= s or hit.start >= e for s, e in taken)


def _settings_hits(text: str) -> Iterable[SecretHit]:
    offset = 0
    for line in text.splitlines(keepends=True):
        m = _PAIR.match(line)
        if m is not None:
            group = next(g for g in (2, 3, 4) if m.group(g) is not None)
            name, value = m.group(1), m.group(group)
            if group == 4:  # the rest of the line, as dotenv reads it
                value = _VALUE_END.sub("", value, count=1)
            start = offset + m.start(group)
            bare = name.rsplit(":", 1)[-1].lower()  # //registry/:_authToken
            hits = scan_assignment(name, value)
            if not hits and bare in _CREDENTIAL_NAMES and value and not is_placeholder(value):
                hits = [named_hit(name, value)]
            for h in hits:
                if value[h.start : h.end] not in _PUBLISHED_FAKES:
                    yield msgspec.structs.replace(h, start=start + h.start, end=start + h.end)
        offset += len(line)


def _json_hits(text: str) -> Iterable[SecretHit]:
    """The secret-named string values of a JSON document, whatever its layout; each at the
    first place its JSON form appears in ``text``."""
    try:
        doc = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return
    stack: list[object] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        if not isinstance(node, dict):
            continue
        for name, value in node.items():
            if not isinstance(value, str):
                stack.append(value)
                continue
            if not isinstance(name, str) or not value or is_placeholder(value):
                continue
            hits = scan_assignment(name, value)
            if not hits and name.lower() in _CREDENTIAL_NAMES:
                hits = [named_hit(name, value)]
            at = text.find(msgspec.json.encode(value).decode()[1:-1])
            if at < 0:
                continue
            for h in hits:
                if value[h.start : h.end] not in _PUBLISHED_FAKES:
                    yield msgspec.structs.replace(h, start=at + h.start, end=at + h.end)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _line_of(starts: list[int], offset: int) -> int:
    # 1-based: the number of lines that start at or before ``offset``.
    return bisect.bisect_right(starts, offset)


def file_secrets(
    layers: Sequence[Iterable[Found]], visible: Mapping[str, Found]
) -> list[FileSecret]:
    """Every secret the analyzer found, layer by layer (bottom first), in path order;
    ``visible`` is what the merged image shows of this analyzer's files: a hit whose file
    is not the visible one was removed or replaced by a later layer."""
    out: list[FileSecret] = []
    for found in layers:
        for f in sorted(found, key=lambda f: f.path):
            if f.analyzer != SecretsAnalyzer.NAME:
                continue
            shown = visible.get(f.path)
            removed = shown is None or shown.layer != f.layer
            out.extend(
                FileSecret(
                    path=f.path,
                    layer=f.layer,
                    line=hit.line,
                    rule=hit.rule,
                    title=hit.title,
                    kind=hit.kind,
                    shown=hit.shown,
                    removed=removed,
                )  # fmt: skip
                for hit in f.facts.secrets
            )
    return out
