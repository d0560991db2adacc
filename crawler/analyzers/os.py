"""The OS analyzer: which distribution and release an image is, and its advisory ecosystem.

Sources, in order of trust: ``etc/os-release``, then ``usr/lib/os-release`` (os-release(5):
the first wins), then the distro-specific files ``etc/alpine-release``,
``etc/debian_version`` and ``etc/redhat-release`` for images too old or too slim to carry an
os-release. ``OsInfo.family`` is the os-release ``ID`` (``debian``, ``ubuntu``, ``alpine``,
``rhel``, ``rocky`` …), ``version`` its ``VERSION_ID`` as written (Alpine ``3.19.1``, Rocky
``9.3``); the EOL fields are left to the configuration checks.

The ecosystem is the canonical string ``matcher.advisories.ecosystems.parse_ecosystem``
produces, so the OS packages meet the index on the same key:

=================  =========================================  ===========================
os-release ID      ecosystem                                  from
=================  =========================================  ===========================
debian             ``Debian:12``                              VERSION_ID (major)
ubuntu             ``Ubuntu:22.04``                           VERSION_ID
alpine             ``Alpine:v3.19`` (``Alpine:edge``)         VERSION_ID major.minor
wolfi, chainguard  ``Wolfi``, ``Chainguard``                  rolling: no release
rocky, almalinux   ``Rocky Linux:9``, ``AlmaLinux:9``         VERSION_ID major
rhel               ``Red Hat:enterprise_linux:9::baseos``     VERSION_ID major
sles, sles_sap,    ``SUSE:SUSE Linux Enterprise Server 15     VERSION_ID ``15.5`` → SP5
sle-micro          SP5`` (the product's PRETTY_NAME)
opensuse-leap      ``openSUSE:Leap 15.5``                     VERSION_ID
opensuse-tumble…   ``openSUSE:Tumbleweed``
=================  =========================================  ===========================

Anything else (Fedora, Amazon Linux, CentOS, Oracle Linux, derivatives) is reported with
its family and version but no ecosystem, and a note says its OS packages cannot be matched.

Debian testing and sid carry no ``VERSION_ID``; their ``VERSION_CODENAME`` (or the
``trixie/sid`` of ``debian_version``) names the release they will become, and they are
matched as that release (``Debian:13`` for trixie): advisories for it are the closest there
are, and a note says so. ``version`` is then the codename string as written, which no EOL
table knows, so such images are never called end-of-life.

Red Hat publishes separate ecosystems per product stream (BaseOS, AppStream …) and an rpm
database does not record which repository a package came from; BaseOS, where the core
packages live, is the default here and the rpm analyzer may refine it per package.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import ClassVar

from regsweep.crawler.analyzers._pkgutil import Notes
from regsweep.crawler.analyzers.interface import (
    AnalyzerResult,
    BufferedAnalyzer,
    Context,
    FactsView,
    FileFacts,
)
from regsweep.matcher.records import OsInfo

__all__ = ["DEBIAN_CODENAMES", "OsAnalyzer", "os_ecosystem", "parse_os_release"]

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
ALPINE_RELEASE = "etc/alpine-release"
DEBIAN_VERSION = "etc/debian_version"
REDHAT_RELEASE = "etc/redhat-release"
#: What ``etc/redhat-release`` is a symlink to on the distributions that ship one (read so
#: that the link resolves to something read: the walker reads each file by its own name).
_RELEASE_TARGETS = (
    "etc/centos-release",
    "etc/rocky-release",
    "etc/almalinux-release",
    "etc/fedora-release",
    "etc/oracle-release",
    "etc/system-release",
)
_WANTED = frozenset(
    (*OS_RELEASE, ALPINE_RELEASE, DEBIAN_VERSION, REDHAT_RELEASE, *_RELEASE_TARGETS)
)
#: These files are a few hundred bytes; anything bigger is not one of them.
SIZE_CAP = 64 * 1024

#: Debian release codenames → release number (for testing/sid and bare ``debian_version``).
DEBIAN_CODENAMES: dict[str, str] = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAJOR = re.compile(r"(\d+)")
_MAJOR_MINOR = re.compile(r"(\d+)\.(\d+)")
# "CentOS Linux release 7.9.2009 (Core)", "Red Hat Enterprise Linux Server release 7.9 (Maipo)"
_REDHAT = re.compile(r"(?P<name>.*?)\s+release\s+(?P<version>[0-9][0-9.]*)")
_REDHAT_FAMILIES = (
    ("red hat enterprise linux", "rhel"),
    ("centos", "centos"),
    ("rocky linux", "rocky"),
    ("almalinux", "almalinux"),
    ("fedora", "fedora"),
    ("amazon linux", "amzn"),
    ("oracle linux", "ol"),
)


def parse_os_release(text: str, notes: Notes | None = None, path: str = "") -> dict[str, str]:
    """``KEY=value`` lines of an os-release file, shell quoting undone (os-release(5))."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            if notes is not None:
                notes.add(f"{path}:{lineno}: not a KEY=value line, skipped")
            continue
        try:
            words = shlex.split(value, comments=False, posix=True)
        except ValueError:
            # An unterminated quote: keep what is there rather than lose the field.
            words = [value.strip().strip("\"'")]
        out[key] = " ".join(words)
    return out


def _decode(path: str, data: bytes, notes: Notes) -> str | None:
    if b"\x00" in data:
        notes.add(f"{path}: binary data, not a text file; ignored")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        notes.add(f"{path}: not valid UTF-8; undecodable bytes replaced")
        return data.decode("utf-8", errors="replace")


def _suse_ecosystem(fields: Mapping[str, str], version: str | None) -> str | None:
    # OSV keys SUSE by product name: "SUSE Linux Enterprise Server 15 SP5". PRETTY_NAME is
    # exactly that on SLES and SLE BCI images; rebuild it from VERSION_ID otherwise.
    pretty = fields.get("PRETTY_NAME", "")
    if pretty.startswith("SUSE Linux Enterprise"):
        return f"SUSE:{pretty}"
    if version is None:
        return None
    m = _MAJOR_MINOR.match(version) or _MAJOR.match(version)
    if m is None:
        return None
    major = m.group(1)
    minor = m.group(2) if m.re is _MAJOR_MINOR else "0"
    sp = f" SP{minor}" if minor != "0" else ""
    return f"SUSE:SUSE Linux Enterprise Server {major}{sp}"


def _ecosystem(
    family: str, version: str | None, fields: Mapping[str, str], notes: Notes
) -> str | None:
    """The canonical advisory ecosystem for an os-release ID and VERSION_ID."""
    if family in ("wolfi", "chainguard"):
        return "Wolfi" if family == "wolfi" else "Chainguard"
    if family == "opensuse-tumbleweed":
        return "openSUSE:Tumbleweed"
    if family == "debian":
        m = _MAJOR.match(version or "")
        if m:
            return f"Debian:{m.group(1)}"
        # testing / sid: no VERSION_ID, a codename ("trixie") or "trixie/sid".
        codename = fields.get("VERSION_CODENAME") or (version or "").split("/")[0]
        number = DEBIAN_CODENAMES.get(codename.strip().lower())
        if number is None:
            notes.add(f"debian release {version or codename!r} unknown: no advisory ecosystem")
            return None
        notes.add(
            f"debian {version or codename} (testing/sid) matched as Debian:{number}, "
            "the release it will become"
        )
        return f"Debian:{number}"
    if version is None:
        notes.add(f"os {family!r} has no VERSION_ID: no advisory ecosystem")
        return None
    if family == "ubuntu":
        m = _MAJOR_MINOR.match(version)
        if m is None:
            notes.add(f"ubuntu VERSION_ID {version!r} is not YY.MM: no advisory ecosystem")
            return None
        return f"Ubuntu:{m.group(1)}.{m.group(2)}"
    if family == "alpine":
        # Edge snapshots carry versions like 3.20.0_alpha20240329 and PRETTY_NAME "edge".
        if "_alpha" in version or "edge" in fields.get("PRETTY_NAME", "").lower():
            return "Alpine:edge"
        m = _MAJOR_MINOR.match(version)
        if m is None:
            notes.add(f"alpine version {version!r} is not X.Y[.Z]: no advisory ecosystem")
            return None
        return f"Alpine:v{m.group(1)}.{m.group(2)}"
    major_m = _MAJOR.match(version)
    major = major_m.group(1) if major_m else None
    if family == "rocky" and major:
        return f"Rocky Linux:{major}"
    if family == "almalinux" and major:
        return f"AlmaLinux:{major}"
    if family == "rhel" and major:
        return f"Red Hat:enterprise_linux:{major}::baseos"
    if family in ("sles", "sles_sap", "sle-micro", "sled"):
        return _suse_ecosystem(fields, version)
    if family == "opensuse-leap":
        return f"openSUSE:Leap {version}"
    notes.add(f"os {family} {version}: no advisory ecosystem, OS packages are not matched")
    return None


def os_ecosystem(family: str, version: str | None) -> str | None:
    """The advisory ecosystem of an os-release ``ID`` and ``VERSION_ID`` (an SBOM's
    operating system, a purl's ``distro``), or None (as for an image: see the module doc)."""
    return _ecosystem(family, version, {}, Notes())


class OsAnalyzer(BufferedAnalyzer):
    """Finds the OS (family, name, version) and its advisory ecosystem."""

    NAME: ClassVar[str] = "os"
    VERSION: ClassVar[int] = 3

    def wants(self, path: str) -> int | None:
        """The os-release family of files, at most 64 KiB each."""
        return SIZE_CAP if path in _WANTED else None

    def read(self, path: str, data: bytes, truncated: bool) -> FileFacts | None:
        """The file's text (a few hundred bytes: its text is what it means)."""
        notes = Notes()
        text = _decode(path, data, notes)
        return FileFacts(text=text, notes=tuple(notes.result()))

    def assemble(self, view: FactsView, ctx: Context) -> AnalyzerResult:
        """Read the best source present; no source at all is an empty result, not an error."""
        notes = Notes()

        def text(path: str) -> str | None:
            found = view.get(self.NAME, path)
            if found is None:
                return None
            for note in found.facts.notes:
                notes.add(note)
            return found.facts.text

        os_info: OsInfo | None = None
        ecosystem: str | None = None
        for path in OS_RELEASE:
            content = text(path)
            if content is None:
                continue
            fields = parse_os_release(content, notes, path)
            family = fields.get("ID", "").strip().lower()
            if not family:
                notes.add(f"{path}: no ID field; ignored")
                continue
            version = fields.get("VERSION_ID") or None
            if family == "debian" and version is None:
                version = self._debian_version(text) or fields.get("VERSION_CODENAME")
            os_info = OsInfo(family=family, name=fields.get("NAME") or None, version=version)
            ecosystem = _ecosystem(family, version, fields, notes)
            break
        else:
            os_info, ecosystem = self._fallback(text, notes)
        return AnalyzerResult(os=os_info, ecosystem=ecosystem, notes=notes.result())

    @staticmethod
    def _debian_version(text: Callable[[str], str | None]) -> str | None:
        content = text(DEBIAN_VERSION)
        if content is None:
            return None
        return content.strip() or None

    def _fallback(
        self, text: Callable[[str], str | None], notes: Notes
    ) -> tuple[OsInfo | None, str | None]:
        """No os-release: the distro-specific release files."""
        content = text(ALPINE_RELEASE)
        if content is not None and content.strip():
            version = content.strip().split()[0]
            return (
                OsInfo(family="alpine", name="Alpine Linux", version=version),
                _ecosystem("alpine", version, {}, notes),
            )
        raw = self._debian_version(text)
        if raw is not None:
            # "11.6" → release 11 (what VERSION_ID says); "bookworm/sid" stays as written.
            m = _MAJOR.match(raw)
            version = m.group(1) if m else raw
            return (
                OsInfo(family="debian", name="Debian GNU/Linux", version=version),
                _ecosystem("debian", version, {}, notes),
            )
        content = text(REDHAT_RELEASE)
        if content is not None:
            m = _REDHAT.match(content.strip())
            if m is None:
                notes.add(f"{REDHAT_RELEASE}: not a 'NAME release VERSION' line; ignored")
                return None, None
            name = m.group("name").strip()
            folded = name.lower()
            family = next((fam for key, fam in _REDHAT_FAMILIES if folded.startswith(key)), None)
            if family is None:
                notes.add(f"{REDHAT_RELEASE}: unknown distribution {name!r}")
                return None, None
            version = m.group("version").rstrip(".")
            return (
                OsInfo(family=family, name=name, version=version),
                _ecosystem(family, version, {}, notes),
            )
        return None, None
