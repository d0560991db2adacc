"""The OS analyzer: os-release and friends → OsInfo and the canonical advisory ecosystem."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.analyzers.interface import Context, LayerFile
from regsweep.crawler.analyzers.os import OsAnalyzer, parse_os_release
from regsweep.matcher.advisories.ecosystems import parse_ecosystem
from regsweep.matcher.records import OsInfo
from tests import paths

DATA = paths.DATA / "crawler" / "os"
LAYER = "sha256:" + "a" * 64

# os-release files as the distributions ship them (the fields the analyzer reads are
# verbatim; URL lines are trimmed where they add nothing).
UBUNTU_2204 = b"""PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
"""
ALPINE_319 = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""
ALPINE_EDGE = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.0_alpha20240329
PRETTY_NAME="Alpine Linux edge"
"""
WOLFI = b"""ID=wolfi
NAME="Wolfi"
PRETTY_NAME="Wolfi"
VERSION_ID="20230201"
HOME_URL="https://wolfi.dev"
"""
ROCKY_93 = b"""NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
"""
ALMA_8 = b"""NAME="AlmaLinux"
VERSION="8.9 (Midnight Oncilla)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.9"
PRETTY_NAME="AlmaLinux 8.9 (Midnight Oncilla)"
"""
UBI_9 = b"""NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
"""
SLES_155 = b"""NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
"""
LEAP_155 = b"""NAME="openSUSE Leap"
VERSION="15.5"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.5"
PRETTY_NAME="openSUSE Leap 15.5"
"""
TUMBLEWEED = b"""NAME="openSUSE Tumbleweed"
ID="opensuse-tumbleweed"
ID_LIKE="opensuse suse"
VERSION_ID="20240301"
PRETTY_NAME="openSUSE Tumbleweed"
"""
DEBIAN_TRIXIE_SID = b"""PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
"""
FEDORA_39 = b"""NAME="Fedora Linux"
VERSION="39 (Container Image)"
ID=fedora
VERSION_ID=39
PRETTY_NAME="Fedora Linux 39 (Container Image)"
"""


def _run_paths(paths: dict[str, bytes]) -> tuple[OsInfo | None, str | None, list[str]]:
    view = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in paths.items()}
    r = OsAnalyzer().analyze(view, Context())
    return r.os, r.ecosystem, r.notes


CASES = [
    (UBUNTU_2204, "ubuntu", "22.04", "Ubuntu:22.04"),
    (ALPINE_319, "alpine", "3.19.1", "Alpine:v3.19"),
    (ALPINE_EDGE, "alpine", "3.20.0_alpha20240329", "Alpine:edge"),
    (WOLFI, "wolfi", "20230201", "Wolfi"),
    (ROCKY_93, "rocky", "9.3", "Rocky Linux:9"),
    (ALMA_8, "almalinux", "8.9", "AlmaLinux:8"),
    (UBI_9, "rhel", "9.3", "Red Hat:enterprise_linux:9::baseos"),
    (SLES_155, "sles", "15.5", "SUSE:SUSE Linux Enterprise Server 15 SP5"),
    (LEAP_155, "opensuse-leap", "15.5", "openSUSE:Leap 15.5"),
    (TUMBLEWEED, "opensuse-tumbleweed", "20240301", "openSUSE:Tumbleweed"),
]


@pytest.mark.parametrize(("data", "family", "version", "ecosystem"), CASES)
def test_os_release_gives_family_version_and_canonical_ecosystem(
    data: bytes, family: str, version: str, ecosystem: str
) -> None:
    """Invariant: the ecosystem is exactly the canonical string the advisory index uses
    (``parse_ecosystem`` maps it to itself), so OS packages meet advisories on one key."""
    os_info, eco, notes = _run_paths({"etc/os-release": data})
    assert os_info is not None
    assert (os_info.family, os_info.version) == (family, version)
    assert os_info.eol is None and os_info.eol_date is None
    assert eco == ecosystem
    info = parse_ecosystem(eco)
    assert info is not None and info.ecosystem == eco
    assert notes == []


def test_this_machines_debian_os_release() -> None:
    """Invariant: a real Debian 12 os-release gives Debian:12 and the distro's NAME."""
    os_info, eco, notes = _run_paths(
        {
            "etc/os-release": (DATA / "debian-12-os-release").read_bytes(),
            "etc/debian_version": (DATA / "debian-12-debian_version").read_bytes(),
        }
    )
    assert os_info == OsInfo(family="debian", name="Debian GNU/Linux", version="12")
    assert eco == "Debian:12"
    assert notes == []


def test_debian_testing_is_matched_as_the_release_it_becomes() -> None:
    """Invariant: Debian testing/sid (no VERSION_ID) keeps its codename as the version (so
    no EOL table calls it end-of-life) and is matched as its codename's release, with a note."""
    os_info, eco, notes = _run_paths(
        {"etc/os-release": DEBIAN_TRIXIE_SID, "etc/debian_version": b"trixie/sid\n"}
    )
    assert os_info is not None and os_info.version == "trixie/sid"
    assert eco == "Debian:13"
    assert any("testing/sid" in n for n in notes)


def test_unknown_debian_codename_has_no_ecosystem() -> None:
    """Invariant: an unknown codename is never guessed into a release."""
    os_info, eco, notes = _run_paths(
        {"etc/os-release": DEBIAN_TRIXIE_SID.replace(b"trixie", b"zzz")}
    )
    assert os_info is not None and eco is None and notes


def test_distro_without_advisory_feed_is_reported_without_ecosystem() -> None:
    """Invariant: an OS regsweep has no advisories for keeps its family and version, gets
    no ecosystem, and a note says its packages are not matched."""
    os_info, eco, notes = _run_paths({"etc/os-release": FEDORA_39})
    assert os_info == OsInfo(family="fedora", name="Fedora Linux", version="39")
    assert eco is None
    assert any("not matched" in n for n in notes)


def test_etc_os_release_wins_over_usr_lib() -> None:
    """Invariant: os-release(5) precedence: /etc first, /usr/lib only as a fallback."""
    os_info, eco, _ = _run_paths({"etc/os-release": UBUNTU_2204, "usr/lib/os-release": ALPINE_319})
    assert eco == "Ubuntu:22.04"
    os_info, eco, _ = _run_paths({"usr/lib/os-release": ALPINE_319})
    assert eco == "Alpine:v3.19"


@pytest.mark.parametrize(
    ("paths", "family", "version", "ecosystem"),
    [
        ({"etc/alpine-release": b"3.14.2\n"}, "alpine", "3.14.2", "Alpine:v3.14"),
        ({"etc/debian_version": b"11.6\n"}, "debian", "11", "Debian:11"),
        ({"etc/debian_version": b"bookworm/sid\n"}, "debian", "bookworm/sid", "Debian:12"),
        (
            {"etc/redhat-release": b"Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"},
            "rhel",
            "7.9",
            "Red Hat:enterprise_linux:7::baseos",
        ),
        (
            {"etc/redhat-release": b"Rocky Linux release 8.9 (Green Obsidian)\n"},
            "rocky",
            "8.9",
            "Rocky Linux:8",
        ),
        ({"etc/redhat-release": b"CentOS release 6.10 (Final)\n"}, "centos", "6.10", None),
    ],
)
def test_release_files_without_os_release(
    paths: dict[str, bytes], family: str, version: str, ecosystem: str | None
) -> None:
    """Invariant: images without os-release are still identified from their release file,
    and the ecosystem (when there is one) is canonical."""
    os_info, eco, _ = _run_paths(paths)
    assert os_info is not None
    assert (os_info.family, os_info.version) == (family, version)
    assert eco == ecosystem
    if eco is not None:
        info = parse_ecosystem(eco)
        assert info is not None and info.ecosystem == eco


def test_ubuntu_image_with_debian_version_is_ubuntu() -> None:
    """Invariant: Ubuntu ships ``debian_version`` too; os-release decides, not it."""
    _, eco, _ = _run_paths({"etc/os-release": UBUNTU_2204, "etc/debian_version": b"bookworm/sid\n"})
    assert eco == "Ubuntu:22.04"


def test_no_os_files_is_an_empty_result() -> None:
    """Invariant: a scratch image (no OS files) is not an error: no OS, no notes."""
    assert _run_paths({}) == (None, None, [])


def test_os_release_quoting() -> None:
    """Invariant: shell quoting is undone as os-release(5) specifies, comments skipped."""
    text = '# comment\nNAME=\'Single Quoted\'\nPRETTY_NAME="a \\"b\\" c"\nID=x\nBROKEN\n'
    fields = parse_os_release(text)
    assert fields == {"NAME": "Single Quoted", "PRETTY_NAME": 'a "b" c', "ID": "x"}


def test_binary_os_release_is_a_note() -> None:
    """Invariant: binary garbage where os-release should be is a note, not a crash."""
    os_info, eco, notes = _run_paths({"etc/os-release": b"\x7fELF\x00\x01\x02"})
    assert (os_info, eco) == (None, None)
    assert notes


def test_wants_only_the_release_files() -> None:
    """Invariant: the OS analyzer asks for its five files and nothing else."""
    a = OsAnalyzer()
    assert a.wants("etc/os-release") == a.wants("usr/lib/os-release") == 64 * 1024
    assert a.wants("etc/os-release.d/x") is None
    assert a.wants("opt/etc/os-release") is None


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    """Invariant: whatever bytes the release files hold, analyze returns (never raises)."""
    for path in ("etc/os-release", "etc/redhat-release", "etc/debian_version"):
        _run_paths({path: data})
