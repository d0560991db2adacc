"""Helpers shared by the OS and core package analyzers: package URLs and capped notes.

Package URLs follow the purl specification (github.com/package-url/purl-spec): every
component is UTF-8 percent-encoded except the unreserved characters ``A-Z a-z 0-9 . - _ ~``
and the colon, which the spec leaves readable so a Debian epoch stays ``1:2.4.47-2``; ``+``
*is* encoded (``%2B``) because a URL decoder may read it as a space. Qualifiers are sorted
by key and empty ones are dropped, which makes the string canonical.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import msgspec

from regsweep.matcher.records import OsInfo, Package

__all__ = [
    "BINARY_MIN",
    "BINARY_SHARE",
    "Notes",
    "distribution",
    "package_url",
    "placed",
    "with_distro",
    "without_nul_entries",
]


_PLAIN = re.compile(r"[A-Za-z0-9._~:-]*")


def _pct(component: str) -> str:
    # ``quote`` keeps ``A-Za-z0-9_.-~`` unencoded; the spec adds ``:``. Most components
    # need no encoding at all, and the check is much cheaper than ``quote``.
    if _PLAIN.fullmatch(component):
        return component
    return quote(component, safe=":")


def package_url(
    type_: str,
    namespace: str | None,
    name: str,
    version: str | None,
    qualifiers: Mapping[str, str | None] | None = None,
) -> str:
    """A canonical purl: ``pkg:type/namespace/name@version?k=v&…``.

    ``namespace`` may hold several ``/``-separated segments; each is encoded on its own
    (``@scope`` becomes ``%40scope``).
    """
    out = [f"pkg:{type_.lower()}/"]
    if namespace:
        out.append("/".join(_pct(seg) for seg in namespace.split("/") if seg))
        out.append("/")
    out.append(_pct(name))
    if version:
        out.append("@")
        out.append(_pct(version))
    if qualifiers:
        pairs = sorted((k.lower(), v) for k, v in qualifiers.items() if v)
        if pairs:
            out.append("?")
            out.append("&".join(f"{k}={_pct(v)}" for k, v in pairs))
    return "".join(out)


class Notes:
    """Notes about skipped input, capped per analyzer run.

    A file of binary garbage can fail on every line; the first ``limit`` notes say what was
    wrong and one more says how many were left out, so a bad layer cannot flood the output.
    ``limit=None`` keeps every note.
    """

    __slots__ = ("_dropped", "_limit", "items")

    def __init__(self, limit: int | None = 50) -> None:
        self.items: list[str] = []
        # No cap is a cap no list reaches: ``add`` stays one comparison either way.
        self._limit = sys.maxsize if limit is None else limit
        self._dropped = 0

    def add(self, message: str) -> None:
        """Record one note (or count it once the cap is reached)."""
        if len(self.items) < self._limit:
            self.items.append(message)
        else:
            self._dropped += 1

    def result(self) -> list[str]:
        """The notes, with a final count of those left out."""
        if self._dropped:
            return [*self.items, f"{self._dropped} more notes left out"]
        return list(self.items)


#: More NUL bytes than this share of a database (and than a few): binary data, not a text
#: database with damaged entries (a zeroed disk block in a large status file is the latter).
BINARY_SHARE = 100
BINARY_MIN = 16


def without_nul_entries(data: bytes, path: str, what: str, notes: Notes) -> bytes | None:
    """A blank-line-separated text database (dpkg ``status``, apk ``installed``) without
    its entries that hold a NUL byte, each skipped with a note: one damaged entry must not
    hide the others (a vulnerable package among them). None, with a note, for data that
    is mostly binary: not such a database at all."""
    if b"\x00" not in data:
        return data
    nul = data.count(b"\x00")
    if nul > BINARY_MIN and nul > len(data) // BINARY_SHARE:
        notes.add(f"{path}: binary data, not {what}; ignored")
        return None
    kept = []
    for number, entry in enumerate(data.split(b"\n\n"), 1):
        if b"\x00" in entry:
            notes.add(f"{path}: entry {number} holds a NUL byte (damaged); skipped")
        else:
            kept.append(entry)
    return b"\n\n".join(kept)


def with_distro(purl: str, namespace: str | None, distro: str | None) -> str:
    """An OS package's purl, made by ``package_url`` without a namespace when its file was
    read (the distribution is not known then), with the distribution's ``namespace`` and
    ``distro`` qualifier added: the same string ``package_url`` would make with them."""
    head, _, rest = purl.partition("/")
    body, _, query = rest.partition("?")
    out = [head, "/"]
    if namespace:
        out.append("/".join(_pct(seg) for seg in namespace.split("/") if seg))
        out.append("/")
    out.append(body)
    pairs = query.split("&") if query else []
    if distro:
        pairs.append(f"distro={_pct(distro)}")
        pairs.sort(key=lambda pair: pair.partition("=")[0])
    if pairs:
        out.append("?")
        out.append("&".join(pairs))
    return "".join(out)


def distribution(os_info: OsInfo | None, default: str) -> tuple[str, str | None]:
    """The purl namespace (the OS family, ``default`` when the OS is unknown) and ``distro``
    qualifier (``debian-12``) of an image's OS packages."""
    if os_info is None:
        return default, None
    return os_info.family, f"{os_info.family}-{os_info.version}" if os_info.version else None


def placed(
    packages: Iterable[Package],
    ecosystem: str | None,
    namespace: str | None,
    distro: str | None,
    *,
    layer: str,
    path: str,
) -> list[Package]:
    """A package database's packages as an image holds them: its ecosystem, their purls
    with the distribution, the layer and path of the database."""
    return [
        msgspec.structs.replace(
            p,
            ecosystem=ecosystem,
            purl=with_distro(p.purl or "", namespace, distro),
            layer=layer,
            path=path,
        )
        for p in packages
    ]
