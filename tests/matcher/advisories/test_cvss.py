"""CVSS base scores: computed values equal the scores NVD and FIRST publish.

The calculator was also checked exhaustively (all 5,184 v3.0/v3.1 base vectors and all 729
v2 base vectors) against Red Hat's ``cvss`` 3.6 library while it was written; these tests
pin published scores of real advisories so that the suite needs no reference library.
"""

from __future__ import annotations

import pytest

from regsweep.matcher.advisories.cvss import (
    CvssError,
    base_score,
    severity_of,
    v2_base_score,
    v3_base_score,
)
from regsweep.matcher.advisories.model import CvssType, Severity

# (vector, published base score, where it is published)
V3_PUBLISHED = [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CVE-2021-44228 (Log4Shell), NVD"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CVE-2014-6271 (Shellshock), NVD"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "CVE-2014-0160 (Heartbleed), NVD"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "CVE-2022-0778 (OpenSSL), NVD"),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "CVE-2021-3156 (sudo), NVD"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "CVE-2023-4863 (libwebp), NVD"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "the common reflected-XSS score"),
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, "RUSTSEC-2016-0001 / CVE-2016-10931"),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.5, "GHSA-266m-wp2v-x7mq / CVE-2025-30399"),
    ("CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:N/I:L/A:N", 3.1, "GHSA-75v8-2h7p-7m2m / CVE-2025-46653"),
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N", 5.9, "GHSA-xx65-cc7g-9pfp / CVE-2018-1196"),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9, "FIRST v3.1 calculator, scope changed"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "no impact: 0.0 by definition"),
]

V2_PUBLISHED = [
    ("AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0, "CVE-2014-0160 (Heartbleed), NVD"),
    ("AV:N/AC:M/Au:N/C:C/I:C/A:C", 9.3, "CVE-2021-44228 (Log4Shell), NVD"),
    ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "CVE-2014-6271 (Shellshock), NVD"),
    ("AV:L/AC:L/Au:N/C:C/I:C/A:C", 7.2, "CVE-2021-3156 (sudo), NVD"),
    ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5, "the common network-RCE score"),
    ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3, "the common XSS score"),
    ("AV:L/AC:L/Au:N/C:P/I:N/A:N", 2.1, "local information disclosure"),
]


@pytest.mark.parametrize(("vector", "score", "source"), V3_PUBLISHED)
def test_v3_base_score_equals_published_score(vector: str, score: float, source: str) -> None:
    """Invariant: a v3.x vector scores exactly what its publisher says (``source``)."""
    assert v3_base_score(vector) == score, source


@pytest.mark.parametrize(("vector", "score", "source"), V2_PUBLISHED)
def test_v2_base_score_equals_published_score(vector: str, score: float, source: str) -> None:
    """Invariant: a v2 vector scores exactly what NVD published (``source``)."""
    assert v2_base_score(vector) == score, source


def test_v3_temporal_metrics_and_trailing_slash_do_not_change_the_base_score() -> None:
    """Invariant: temporal/environmental metrics are ignored, a trailing ``/`` tolerated
    (GHSA-f5pg-7wfw-84q9 writes ``…/E:P/RL:O/RC:C/``)."""
    plain = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert v3_base_score(plain + "/E:P/RL:O/RC:C/") == 9.8
    assert v3_base_score(plain + "/CR:H/MAV:L") == 9.8


def test_v2_accepts_nvd_parentheses_and_prefix() -> None:
    """Invariant: the spellings NVD used for v2 vectors all score the same."""
    for vector in ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P"):
        assert v2_base_score(vector) == 7.5


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:3.1/AV:N/AC:L",  # base metrics missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # invalid value
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # repeated metric
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",  # unknown metric
        "CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # wrong version header
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # no header at all
        "CVSS:3.1/AVN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # metric without a colon
    ],
)
def test_malformed_v3_vector_raises(vector: str) -> None:
    """Invariant: a malformed vector raises ``CvssError``; it never gets a made-up score."""
    with pytest.raises(CvssError):
        v3_base_score(vector)


def test_v4_vector_is_kept_unscored_and_validated() -> None:
    """Invariant: v4 is not scored here (``None``), but a non-v4 string is still rejected."""
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    assert base_score(CvssType.V4, v4) is None
    with pytest.raises(CvssError):
        base_score(CvssType.V4, "CVSS:3.1/AV:N")


@pytest.mark.parametrize(
    ("type_", "score", "expected"),
    [
        (CvssType.V3, 0.0, Severity.NONE),
        (CvssType.V3, 0.1, Severity.LOW),
        (CvssType.V3, 3.9, Severity.LOW),
        (CvssType.V3, 4.0, Severity.MEDIUM),
        (CvssType.V3, 6.9, Severity.MEDIUM),
        (CvssType.V3, 7.0, Severity.HIGH),
        (CvssType.V3, 8.9, Severity.HIGH),
        (CvssType.V3, 9.0, Severity.CRITICAL),
        (CvssType.V4, 9.3, Severity.CRITICAL),
        (CvssType.V2, 0.0, Severity.LOW),
        (CvssType.V2, 4.0, Severity.MEDIUM),
        (CvssType.V2, 10.0, Severity.HIGH),
    ],
)
def test_severity_bands_follow_each_cvss_version(
    type_: CvssType, score: float, expected: Severity
) -> None:
    """Invariant: ratings use the version's own bands (v2 has no Critical, no None)."""
    assert severity_of(type_, score) is expected
