"""The built-in feed catalog: what ``regsweep db update`` downloads when no ``--from`` is given.

One feed per OSV ecosystem the matcher knows (``advisories.Ecosystem``): osv.dev's export of
that ecosystem, ``https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip``,
the ecosystem spelled as OSV spells it and percent-encoded (``Rocky%20Linux``, ``Red%20Hat``).
osv.dev stopped exporting the ``<Ecosystem>:<release>`` folders (``Debian:12``,
``Alpine:v3.20``) in 2024: the main ecosystem's zip holds every release, so that is the one
fetched. The bucket also lists its ecosystems in ``ecosystems.txt`` at its root; the catalog
does not read it, because regsweep can only match the ecosystems it knows, and a new name
there means nothing to the matcher until ``Ecosystem`` learns it.

No distro feed beyond OSV is needed:

- **Alpine**: osv.dev converts Alpine's secdb (``secdb.alpinelinux.org``) into
  ``Alpine/all.zip``, every release and repository in one file. Fetching the secdb too
  would report each Alpine finding twice, under osv.dev's id and under the secdb reader's
  ``Alpine:v3.x/<package>/<CVE>`` id, which the matcher cannot merge.
- **Wolfi and Chainguard**: osv.dev exports their ``CGA-…`` advisories, which carry the
  advisory documents' verdicts. Their ``security.json`` secdb is a flattened copy of the
  same data that keeps only fixes and false positives (see ``advisories.wolfi``), and would
  double every finding in the same way.

Not in the catalog: **DHI** (Docker Hardened Images), which osv.dev does not export; build
from its advisory files with ``db build``, or name a URL with ``db update --from``.

Beside the advisories, the **CVE records** that rate the CVEs they name (``advisories.cve``;
Debian's DSAs and Alpine's secdb rate nothing themselves):

- **NVD** (``NVD-<year>``, fetched by default; ``NVD`` names them all): NVD's JSON 2.0 feeds,
  one per CVE year from 2002 (which also holds 1999–2001) to this one,
  ``https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-<year>.json.zip``. Besides NVD's own
  analysis they republish the CNA's scores and CISA-ADP's, so they carry every rater.
- **CVE List** (``CVE-List``, only when named): GitHub's archive of the ``cvelistV5``
  repository's main branch, the CVE JSON 5 records themselves. It rates nothing the NVD
  feeds do not, only hours sooner, for a download of every record (~300,000 files) each
  time one changes; the CVE List's own releases have a new file name every hour, which no
  catalog URL can follow.

The CVE feeds come first: an NVD year is one JSON document, read whole, and is best read
while the build holds nothing else.

``--mirror BASE`` puts every feed on a mirror with the same paths (``BASE/Debian/all.zip``),
for machines that cannot reach the internet; ``--ecosystem`` keeps some of the feeds. A
mirror (or ``--from``) URL with credentials in it is refused, without echoing them
(``check_url`` says why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import SplitResult, quote, urlsplit

import msgspec

from regsweep.matcher.advisories.ecosystems import Ecosystem
from regsweep.matcher.index.errors import AdvisoryIndexError

__all__ = [
    "CATALOG",
    "CVE_FEEDS",
    "CVE_LIST",
    "GROUPS",
    "NOT_IN_CATALOG",
    "NVD_FEEDS",
    "NVD_FIRST_YEAR",
    "OSV_EXPORTS",
    "CatalogError",
    "CveFeed",
    "Feed",
    "check_url",
    "mirrored",
    "redacted",
    "select",
]

#: ``scheme://userinfo@`` at the start of a URL (``user:password`` or a bare token): an
#: ``@`` before the first ``/`` after the scheme is never part of a host.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<info>[^/@]*)@")

#: osv.dev's export bucket, served over HTTPS.
OSV_EXPORTS = "https://osv-vulnerabilities.storage.googleapis.com/"

#: Ecosystems the matcher knows that have no feed here, and why.
NOT_IN_CATALOG: dict[Ecosystem, str] = {
    Ecosystem.DHI: "osv.dev does not export Docker Hardened Images advisories; "
    "use db build on its files, or db update --from URL",
}


class CatalogError(AdvisoryIndexError):
    """An ecosystem not in the catalog, or a mirror URL that cannot be used."""


class Feed(msgspec.Struct, frozen=True, kw_only=True):
    """One feed of the catalog."""

    #: The ecosystem as OSV spells it (``Rocky Linux``): what ``--ecosystem`` names.
    name: str
    #: Where it is published.
    url: str
    #: The ecosystem families its records are in.
    families: tuple[Ecosystem, ...]

    @property
    def cache_name(self) -> str:
        """The file the feed is cached as, beside the index: one per feed whatever the host
        (a mirror serves the same file), ending in ``.zip`` so that ingest reads it as one."""
        return f"osv-{quote(self.name, safe='')}-all.zip"


def _osv_feed(family: Ecosystem) -> Feed:
    # ``quote`` leaves ``.`` (crates.io) alone and writes the space as %20, as the bucket wants.
    return Feed(
        name=family.value,
        url=f"{OSV_EXPORTS}{quote(family.value, safe='')}/all.zip",
        families=(family,),
    )


#: Every feed, in ``Ecosystem`` order.
CATALOG: tuple[Feed, ...] = tuple(_osv_feed(e) for e in Ecosystem if e not in NOT_IN_CATALOG)


class CveFeed(Feed, frozen=True, kw_only=True):
    """A feed of CVE records: ratings for the CVEs every ecosystem's advisories name, no
    package of its own (``families`` is empty)."""

    #: The file it is cached as (the name it is published under, so that ingest reads it
    #: by its suffix).
    cache_as: str
    #: Why it is fetched only when named, or ``None`` for a feed fetched by default.
    by_name_only: str | None = None

    @property
    def cache_name(self) -> str:
        """The cached file's name (see ``cache_as``)."""
        return self.cache_as


#: NVD's JSON 2.0 feeds, and the first CVE year it has one for.
NVD_FEEDS = "https://nvd.nist.gov/feeds/json/cve/2.0/"
NVD_FIRST_YEAR = 2002
#: GitHub's archive of the CVE List repository's main branch.
CVE_LIST = "https://github.com/CVEProject/cvelistV5/archive/refs/heads/main.zip"


def _cve_feeds(this_year: int) -> tuple[CveFeed, ...]:
    nvd = tuple(
        CveFeed(
            name=f"NVD-{year}",
            url=f"{NVD_FEEDS}nvdcve-2.0-{year}.json.zip",
            families=(),
            cache_as=f"nvdcve-2.0-{year}.json.zip",
        )
        for year in range(NVD_FIRST_YEAR, this_year + 1)
    )
    cve_list = CveFeed(
        name="CVE-List",
        url=CVE_LIST,
        families=(),
        cache_as="cvelistV5-main.zip",
        by_name_only="the NVD feeds carry its CNA and CISA-ADP scores too; it is every "
        "CVE record (~300,000 files) again, for ratings a few hours sooner",
    )
    return (*nvd, cve_list)


#: The CVE feeds: an NVD feed per CVE year up to this one, and the CVE List.
CVE_FEEDS: tuple[CveFeed, ...] = _cve_feeds(datetime.now(UTC).year)
#: Names that stand for several feeds (``--ecosystem NVD``).
GROUPS: dict[str, tuple[Feed, ...]] = {
    "NVD": tuple(f for f in CVE_FEEDS if f.name.startswith("NVD-")),
}


def select(names: Iterable[str] = ()) -> list[Feed]:
    """The feeds named (case-insensitively, as OSV spells them; ``NVD`` for every NVD
    year), or every feed fetched by default: the CVE feeds but the CVE List, then
    ``CATALOG``.

    Raises ``CatalogError`` naming the catalog's feeds when a name is not one of them.
    """
    every: tuple[Feed, ...] = (*CVE_FEEDS, *CATALOG)
    wanted = [n.strip() for n in names]
    if not wanted:
        return [f for f in every if not (isinstance(f, CveFeed) and f.by_name_only)]
    by_name: dict[str, tuple[Feed, ...]] = {f.name.casefold(): (f,) for f in every}
    by_name |= {group.casefold(): feeds for group, feeds in GROUPS.items()}
    unknown = [n for n in wanted if n.casefold() not in by_name]
    if unknown:
        years = GROUPS["NVD"]
        known = ", ".join(
            [f.name for f in CATALOG]
            + [f"NVD ({years[0].name} … {years[-1].name})"]
            + [f.name for f in CVE_FEEDS if f.by_name_only]
        )
        raise CatalogError(f"not in the feed catalog: {', '.join(unknown)} (known: {known})")
    chosen = {f.name for n in wanted for f in by_name[n.casefold()]}
    return [f for f in every if f.name in chosen]


def redacted(url: str) -> str:
    """``url`` as it may be shown: a password or a bare token before ``@`` as ``***``
    (``http://user:***@host/``, ``http://***@host/``), even in a URL that does not parse."""
    m = _USERINFO.match(url)
    if m is None:
        return url
    user, colon, _ = m["info"].partition(":")
    # A user name is shown (it tells which account); a bare token or a password is not.
    who = f"{user}:***" if colon else "***"
    return f"{m['scheme'] or ''}{who}@{url[m.end() :]}"


def check_url(url: str, what: str = "a feed") -> SplitResult:
    """``url`` split, if it is one ``db update`` can fetch: ``http://`` or ``https://``, a
    host, a port in range, no credentials. ``CatalogError`` otherwise (``what`` says what it
    was meant to be), never the ``ValueError`` that ``urlsplit`` raises for ``http://[::1/``.

    Credentials are refused rather than used: a feed's URL is written into its state file
    and the index's manifest, and shown by ``db feeds``, ``db info`` and every error about
    the feed (some of which the HTTP library words), so a password in it would end up in
    files and CI logs. The message shows the URL without it (``redacted``).
    """
    shown = redacted(url)
    if shown != url:
        raise CatalogError(
            f"{shown}: credentials do not belong in {what} URL (it is stored beside the index "
            "and shown in messages); use a mirror that needs none"
        )
    try:
        parts = urlsplit(url)
        # The port is only parsed when asked for: a bad one is found here, not mid-update.
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise CatalogError(f"{url}: {what} must be an http:// or https:// URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CatalogError(f"{url}: {what} must be an http:// or https:// URL")
    return parts


def mirrored(url: str, base: str) -> str:
    """``url`` moved onto the mirror at ``base``, path kept: ``mirrored(
    "https://osv-vulnerabilities.storage.googleapis.com/Red%20Hat/all.zip",
    "http://mirror.internal/osv/")`` is ``http://mirror.internal/osv/Red%20Hat/all.zip``.
    """
    parts = check_url(base, "a mirror")
    if parts.query or parts.fragment:
        raise CatalogError(f"{base}: a mirror URL has no query or fragment")
    src = urlsplit(url)
    path = src.path + (f"?{src.query}" if src.query else "")
    return base.rstrip("/") + path
