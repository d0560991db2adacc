"""CVSS base scores (v2, v3.0, v3.1) and the qualitative rating of a score.

Small on purpose: only the *base* score, which is what advisories publish and what the
severity fallback needs. Temporal and environmental metrics are accepted in a vector (GHSA
writes some) and ignored. v4 vectors are kept by the model but not scored here: their
scoring needs the spec's large macro-vector table, and no feed we read lacks a v3 vector
where it has a v4 one.

Formulas are those of the FIRST specifications (v2: section 3.2.1; v3.1: section 7), with
the v3.1 ``Roundup`` for v3.0 as well: v3.1 redefined it only to remove floating-point
artefacts (``ceil(4.0000000001)``), which is exactly why it must be used for both.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import assert_never

from regsweep.matcher.advisories.model import CvssType, Severity

__all__ = ["CvssError", "base_score", "severity_of", "v2_base_score", "v3_base_score"]


class CvssError(ValueError):
    """A vector that is not a well-formed CVSS vector of the version it claims."""


_V3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    # Scope has no weight of its own: it switches formulas. Listed so it is validated.
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# With a changed scope, privileges weigh more (the attacker reaches beyond the component).
_V3_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
# Temporal and environmental metric names: allowed in a vector, ignored for the base score.
_V3_OTHER = frozenset(
    ("E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA")
)

_V2_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}
_V2_OTHER = frozenset(("E", "RL", "RC", "CDP", "TD", "CR", "IR", "AR"))


def _metrics(
    parts: list[str], weights: dict[str, dict[str, float]], other: frozenset[str], vector: str
) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in parts:
        if not part:
            # A trailing "/" (seen in GHSA data) or a doubled one: harmless.
            continue
        name, sep, value = part.partition(":")
        if not sep or not value:
            raise CvssError(f"malformed metric {part!r} in {vector!r}")
        if name in found:
            raise CvssError(f"metric {name} given twice in {vector!r}")
        if name in weights:
            if value not in weights[name]:
                raise CvssError(f"invalid value {value!r} for {name} in {vector!r}")
        elif name not in other:
            raise CvssError(f"unknown metric {name!r} in {vector!r}")
        found[name] = value
    missing = [m for m in weights if m not in found]
    if missing:
        raise CvssError(f"missing base metric(s) {', '.join(missing)} in {vector!r}")
    return found


def _roundup(value: float) -> float:
    # CVSS v3.1 Appendix A: the smallest one-decimal number >= value, computed on integers so
    # that 4.000000000000001 does not become 4.1.
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0


def v3_base_score(vector: str) -> float:
    """Base score of a ``CVSS:3.0/…`` or ``CVSS:3.1/…`` vector. Raises ``CvssError``."""
    head, _, body = vector.strip().partition("/")
    if head not in ("CVSS:3.0", "CVSS:3.1"):
        raise CvssError(f"not a CVSS v3 vector: {vector!r}")
    m = _metrics(body.split("/"), _V3_WEIGHTS, _V3_OTHER, vector)
    changed = m["S"] == "C"
    iss = 1 - (
        (1 - _V3_WEIGHTS["C"][m["C"]])
        * (1 - _V3_WEIGHTS["I"][m["I"]])
        * (1 - _V3_WEIGHTS["A"][m["A"]])
    )
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    pr = (_V3_PR_CHANGED if changed else _V3_WEIGHTS["PR"])[m["PR"]]
    exploitability = (
        8.22
        * _V3_WEIGHTS["AV"][m["AV"]]
        * _V3_WEIGHTS["AC"][m["AC"]]
        * pr
        * _V3_WEIGHTS["UI"][m["UI"]]
    )
    if impact <= 0:
        return 0.0
    if changed:
        return _roundup(min(1.08 * (impact + exploitability), 10.0))
    return _roundup(min(impact + exploitability, 10.0))


def v2_base_score(vector: str) -> float:
    """Base score of a CVSS v2 vector (``AV:N/AC:L/Au:N/C:P/I:P/A:P``, NVD's parentheses
    and a ``CVSS:2.0/`` prefix tolerated). Raises ``CvssError``."""
    body = vector.strip().removeprefix("(").removesuffix(")")
    body = body.removeprefix("CVSS:2.0/")
    m = _metrics(body.split("/"), _V2_WEIGHTS, _V2_OTHER, vector)
    w = _V2_WEIGHTS
    impact = 10.41 * (1 - (1 - w["C"][m["C"]]) * (1 - w["I"][m["I"]]) * (1 - w["A"][m["A"]]))
    exploitability = 20 * w["AV"][m["AV"]] * w["AC"][m["AC"]] * w["Au"][m["Au"]]
    f_impact = 0.0 if impact == 0 else 1.176
    raw = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact
    # v2 rounds half up to one decimal. Decimal of a 10-digit repr avoids 4.35 → 4.3 from
    # binary floats (4.3499999…).
    return float(Decimal(repr(round(raw, 10))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def base_score(type_: CvssType, vector: str) -> float | None:
    """The base score of ``vector``, ``None`` for v4 (not computed here).

    Raises ``CvssError`` when the vector does not parse.
    """
    match type_:
        case CvssType.V3:
            return v3_base_score(vector)
        case CvssType.V2:
            return v2_base_score(vector)
        case CvssType.V4:
            if not vector.startswith("CVSS:4.0/"):
                raise CvssError(f"not a CVSS v4 vector: {vector!r}")
            return None
        case _:
            assert_never(type_)


def severity_of(type_: CvssType, score: float) -> Severity:
    """The qualitative rating of a base score under the CVSS version's own bands.

    v3 and v4: 0 None, 0.1–3.9 Low, 4.0–6.9 Medium, 7.0–8.9 High, 9.0–10 Critical.
    v2 has no Critical and no None (NVD's bands): 0–3.9 Low, 4.0–6.9 Medium, 7.0–10 High.
    """
    match type_:
        case CvssType.V3 | CvssType.V4:
            if score == 0:
                return Severity.NONE
            if score < 4.0:
                return Severity.LOW
            if score < 7.0:
                return Severity.MEDIUM
            if score < 9.0:
                return Severity.HIGH
            return Severity.CRITICAL
        case CvssType.V2:
            if score < 4.0:
                return Severity.LOW
            if score < 7.0:
                return Severity.MEDIUM
            return Severity.HIGH
        case _:
            assert_never(type_)
