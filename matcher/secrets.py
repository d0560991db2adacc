"""Secret detection and redaction, for image config strings (Env, labels, history, commands)
and, through ``scan_formats``, the text files of layers (``crawler.analyzers.secrets``).

Two ways a string is judged a secret:

* **Its format** — provider credentials with a recognisable shape (AWS access key ids and
  secret keys, GCP API keys and service-account key ids, GitHub, GitLab, Slack, Stripe, npm,
  PyPI, SendGrid, Docker Hub tokens, Google OAuth client secrets), PEM private keys, JWTs
  (three base64url parts whose header decodes to a JSON object with ``alg``), and passwords
  in URLs (``scheme://user:password@host``).
* **Its name** — a value assigned to a secret-looking name (``*_PASSWORD``, ``*_PASSWD``,
  ``*_PASS``, ``*_PASSPHRASE``, ``*_SECRET``, ``*_SECRET_KEY``, ``*_SECRET_ACCESS_KEY``,
  ``*_TOKEN``, ``API_KEY``/``*_API_KEY``/``*_APIKEY``, ``*_PRIVATE_KEY``,
  ``*_ENCRYPTION_KEY``, ``*_MASTER_KEY``; ``-``/``.`` count as ``_``, case ignored), unless the
  value is an obvious placeholder. Names are matched on their *last segments*, so
  ``POSTGRES_PASSWORD_FILE``, ``TOKEN_URL`` and ``GPG_KEY`` (a public fingerprint in the
  official python images) are not secrets.

Placeholders (not reported): empty or blank; a variable reference (``${VAR}``, ``$VAR``,
``$(cmd)``, ``%VAR%``, ``{{ tmpl }}``); an angle- or square-bracketed word (``<redacted>``,
``[hidden]``); one character repeated (``********``, ``xxxx``); and the words ``null``,
``none``, ``nil``, ``undefined``, ``redacted``, ``placeholder``, ``unset``, ``empty``,
``true``, ``false``, ``yes``, ``no``. A weak but real value such as ``changeme`` or
``changeit`` *is* reported: it is what the container will use.

Redaction (``redact``): the first ``min(4, len // 4)`` characters and the length —
``wJal…(40 chars)``. At most a quarter of a secret is ever shown, so a short password
shows fewer characters (``hu…(8 chars)``) and one under four characters shows none. A hit
never stores the secret itself: only its span in the scanned text and the redacted form.
Names are echoed in evidence only through ``show_name``, which redacts a name that looks
like a token pasted in the wrong place.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

import msgspec

__all__ = [
    "FORMAT_ANCHORS",
    "SecretHit",
    "SecretKind",
    "is_placeholder",
    "is_secret_name",
    "named_hit",
    "redact",
    "redact_text",
    "scan_assignment",
    "scan_formats",
    "scan_text",
    "show_name",
]


class SecretKind(enum.StrEnum):
    """How a secret was recognised; each kind is reported under its own check id."""

    PROVIDER = "provider"
    PRIVATE_KEY = "private-key"
    JWT = "jwt"
    URL_PASSWORD = "url-password"
    NAMED = "named"


class SecretHit(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One secret found in a string: where it is and how to show it, never the value."""

    rule: str
    title: str
    kind: SecretKind
    #: Span of the secret in the scanned string (``text[start:end]``).
    start: int
    end: int
    #: The redacted form for evidence (``wJal…(40 chars)``).
    shown: str


def redact(secret: str) -> str:
    """The evidence form of a secret: a prefix of at most a quarter of it, and its length."""
    n = len(secret)
    return f"{secret[: min(4, n // 4)]}…({n} chars)"


# (rule id, title, anchors, pattern); group 1 is the secret and every match contains one of
# the literal ``anchors``. Look-arounds stop a match inside a longer token, so a random
# base64 blob is not read as an AWS key by accident.
_PROVIDER_RULES: tuple[tuple[str, str, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (rule, title, anchors, re.compile(pattern))
    for rule, title, anchors, pattern in (
        (
            "aws-access-key-id",
            "AWS access key ID",
            ("AKIA", "ASIA", "ABIA", "ACCA"),
            r"(?<![A-Z0-9])((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])",
        ),
        # A secret key is 40 base64 characters: too generic on its own, so only next to "aws
        # ... secret" (an Env name, a CLI flag, a credentials file line).
        (
            "aws-secret-access-key",
            "AWS secret access key",
            # Anchored on "secret", not "aws": "aws" is in every licence ("laws", "draws").
            ("secret", "SECRET", "Secret"),
            r"(?:aws|AWS|Aws)[\w.-]{0,24}?(?:secret|SECRET|Secret)[\w.-]{0,24}?[\"']?\s*[=:]\s*[\"']?"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        ),
        (
            "gcp-api-key",
            "Google Cloud API key",
            ("AIza",),
            r"(?<![A-Za-z0-9_-])(AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])",
        ),
        (
            "gcp-service-account-key",
            "Google Cloud service-account key (private_key_id)",
            ("private_key_id",),
            r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\"",
        ),
        (
            "github-token",
            "GitHub token",
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
            r"(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{36,255})(?![A-Za-z0-9_])",
        ),
        (
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token",
            ("github_pat_",),
            r"(?<![A-Za-z0-9_])(github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])",
        ),
        (
            "gitlab-token",
            "GitLab personal access token",
            ("glpat-",),
            r"(?<![A-Za-z0-9_-])(glpat-[A-Za-z0-9_-]{20,255})",
        ),
        (
            "slack-token",
            "Slack token",
            ("xox",),
            r"(?<![A-Za-z0-9-])(xox[baprs]-[A-Za-z0-9-]{10,250})",
        ),
        (
            "slack-webhook",
            "Slack webhook URL",
            ("hooks.slack.com",),
            r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{20,512})",
        ),
        (
            "stripe-secret-key",
            "Stripe live secret key",
            ("_live_",),
            r"(?<![A-Za-z0-9_])((?:sk|rk)_live_[A-Za-z0-9]{20,247})(?![A-Za-z0-9_])",
        ),
        (
            "npm-token",
            "npm access token",
            ("npm_",),
            r"(?<![A-Za-z0-9_])(npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])",
        ),
        (
            "pypi-token",
            "PyPI API token",
            ("pypi-",),
            r"(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,512})",
        ),
        (
            "sendgrid-api-key",
            "SendGrid API key",
            ("SG.",),
            r"(?<![A-Za-z0-9_-])(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])",
        ),
        (
            "dockerhub-pat",
            "Docker Hub personal access token",
            ("dckr_pat_",),
            r"(dckr_pat_[A-Za-z0-9_-]{27,64})",
        ),
        (
            "google-oauth-client-secret",
            "Google OAuth client secret",
            ("GOCSPX-",),
            r"(GOCSPX-[A-Za-z0-9_-]{28})(?![A-Za-z0-9_-])",
        ),
    )
)

# PEM (and OpenSSH/PGP armour) private key blocks; the body runs to the END line or, in a
# truncated value, to the end of the string.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.DOTALL,
)
_JWT = re.compile(
    r"(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{2,8192})\.([A-Za-z0-9_-]{2,65536})\.([A-Za-z0-9_-]{0,8192})"
)
_URL_PASSWORD = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/\s:@\"']{1,256}:([^/\s@\"']{1,256})@"
)
# NAME=value in free text (history, commands): ``ENV X=y``, BuildKit's ``|2 X=y Z=w /bin/sh``,
# ``--db-password=y``. A quoted value keeps its quotes out of the span.
_ASSIGNMENT = re.compile(
    r"(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_.-]{0,127})="
    r"(?:\"([^\"\n]{0,4096})\"|'([^'\n]{0,4096})'|([^\s\"';&|]{1,4096}))"
)

# Last segments of a secret-looking name (the name upper-cased and split on ``_ - .``).
_SECRET_SUFFIXES: tuple[tuple[str, ...], ...] = (
    ("PASSWORD",),
    ("PASSWD",),
    ("PASS",),
    ("PASSPHRASE",),
    ("SECRET",),
    ("SECRET", "KEY"),
    ("SECRET", "ACCESS", "KEY"),
    ("SECRET", "KEY", "BASE"),
    ("TOKEN",),
    ("API", "KEY"),
    ("APIKEY",),
    ("PRIVATE", "KEY"),
    ("ENCRYPTION", "KEY"),
    ("MASTER", "KEY"),
)
_SEGMENTS = re.compile(r"[_.\-]+")

_PLACEHOLDER_WORDS = frozenset(
    {
        "null",
        "none",
        "nil",
        "undefined",
        "redacted",
        "placeholder",
        "unset",
        "empty",
        "true",
        "false",
        "yes",
        "no",
    }
)
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\(.*\)|%[A-Za-z_][A-Za-z0-9_]*%|\{\{.*\}\}"
    r"|<[^<>]*>|\[[^\[\]]*\]|(.)\1*",
    re.DOTALL,
)


_LONG_SEGMENT = 24


_F = TypeVar("_F", bound=Callable[..., object])
#: Strings scanned per image are mostly the same across a registry (a base image's history,
#: the same Env): answers for strings up to this long are kept, at most ``_MEMO`` of each.
_MEMO_LEN = 4096
_MEMO = 8192


def _memo(fn: _F) -> _F:
    """``fn`` with its answers for short strings remembered (it is pure); a long string is
    scanned every time, so that a hostile config cannot fill memory through the cache."""
    cached = functools.lru_cache(maxsize=_MEMO)(fn)

    @functools.wraps(fn)
    def call(*texts: str) -> object:
        if sum(map(len, texts)) <= _MEMO_LEN:
            return cached(*texts)
        return fn(*texts)

    call.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


@_memo
def show_name(name: str) -> str:
    """A variable or label name as evidence may print it.

    Names are printed (the output contract lists Env names anyway), except one that may be
    a secret pasted into the wrong place: a segment longer than 24 characters is no word
    but a token (``AIzaSy…_API_KEY``), so such a name is redacted like a secret.
    """
    if any(len(seg) > _LONG_SEGMENT for seg in _SEGMENTS.split(name)) or scan_text(name):
        return redact(name)
    return name


def is_secret_name(name: str) -> bool:
    """Whether a variable or label name says its value is a secret (see the module doc)."""
    segments = tuple(s for s in _SEGMENTS.split(name.upper()) if s)
    return any(segments[-len(suffix) :] == suffix for suffix in _SECRET_SUFFIXES)


def is_placeholder(value: str) -> bool:
    """Whether a value is an obvious placeholder rather than a secret (see the module doc)."""
    v = value.strip()
    return not v or v.lower() in _PLACEHOLDER_WORDS or _PLACEHOLDER.fullmatch(v) is not None


def _jwt_header_ok(part: str) -> bool:
    # A JWT's header is base64url JSON with an "alg" string; this rules out look-alikes such
    # as dotted base64 that merely starts with "eyJ".
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        header = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


def _format_hits(text: str) -> Iterator[SecretHit]:
    for rule, title, anchors, pattern in _PROVIDER_RULES:
        # A plain substring search is ~50x faster than a regex pass over a long history;
        # every pattern contains one of its anchors, so skipping on a miss loses nothing.
        if not any(a in text for a in anchors):
            continue
        for m in pattern.finditer(text):
            yield SecretHit(
                rule=rule,
                title=title,
                kind=SecretKind.PROVIDER,
                start=m.start(1),
                end=m.end(1),
                shown=redact(m.group(1)),
            )
    for m in _PRIVATE_KEY.finditer(text) if "-----BEGIN " in text else ():
        label = (m.group(1) + "PRIVATE KEY").strip()
        yield SecretHit(
            rule="private-key",
            title=f"{label} block",
            kind=SecretKind.PRIVATE_KEY,
            start=m.start(),
            end=m.end(),
            # The BEGIN line is public knowledge; the body is the secret, so only its size.
            shown=f"({m.end() - m.start()} chars)",
        )
    # Same literal prefilters as the provider rules: a JWT header starts with "eyJ" ('{"').
    for m in _JWT.finditer(text) if "eyJ" in text else ():
        if _jwt_header_ok(m.group(1)):
            yield SecretHit(
                rule="jwt",
                title="JSON Web Token",
                kind=SecretKind.JWT,
                start=m.start(),
                end=m.end(),
                shown=redact(m.group(0)),
            )
    for m in _URL_PASSWORD.finditer(text) if "://" in text else ():
        if not is_placeholder(m.group(1)):
            yield SecretHit(
                rule="url-password",
                title="password in URL",
                kind=SecretKind.URL_PASSWORD,
                start=m.start(1),
                end=m.end(1),
                shown=redact(m.group(1)),
            )


def _keep_disjoint(hits: Iterator[SecretHit]) -> list[SecretHit]:
    # One secret can match two rules (a JWT inside a URL password); the first rule in
    # ``_format_hits`` order wins, then position order for the report.
    kept: list[SecretHit] = []
    for hit in hits:
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    kept.sort(key=lambda h: h.start)
    return kept


#: Literals at least one of which every format rule's match contains: a text holding none of
#: them has no format hit, whatever its length (the prefilter of file scanning).
FORMAT_ANCHORS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [a for _, _, anchors, _ in _PROVIDER_RULES for a in anchors] + ["-----BEGIN ", "eyJ", "://"]
    )
)


def scan_formats(text: str) -> list[SecretHit]:
    """Secrets recognised by their format alone (provider credentials, private keys, JWTs,
    passwords in URLs): for text whose ``NAME=value`` pairs are code or prose, not settings
    (a file's). Spans are offsets in ``text``."""
    return _keep_disjoint(_format_hits(text))


def scan_text(text: str) -> list[SecretHit]:
    """Secrets in free text (a history ``created_by``, a command argument): format rules,
    then ``NAME=value`` assignments whose name is secret-looking."""
    return list(_scan_text(text))


@_memo
def _scan_text(text: str) -> tuple[SecretHit, ...]:
    def all_hits() -> Iterator[SecretHit]:
        formats = list(_format_hits(text))
        yield from formats
        for m in _ASSIGNMENT.finditer(text) if "=" in text else ():
            group = next(g for g in (2, 3, 4) if m.group(g) is not None)
            value = m.group(group)
            # The name goes into the evidence ("value of X_TOKEN"): never one that overlaps
            # a format hit, which would print (part of) that secret.
            if any(h.start < m.end(1) and h.end > m.start(1) for h in formats):
                continue
            if is_secret_name(m.group(1)) and not is_placeholder(value):
                yield SecretHit(
                    rule="secret-name",
                    title=f"value of {show_name(m.group(1))}",
                    kind=SecretKind.NAMED,
                    start=m.start(group),
                    end=m.end(group),
                    shown=redact(value),
                )

    return tuple(_keep_disjoint(all_hits()))


def scan_assignment(name: str, value: str) -> list[SecretHit]:
    """Secrets in a ``name=value`` pair (an Env entry, a label), spans relative to ``value``.

    The format rules run over ``name=value`` so that context in the name counts
    (``AWS_SECRET_ACCESS_KEY=…``); only hits inside the value are kept. When no format rule
    fires, a secret-looking name with a non-placeholder value is one hit over the value.
    """
    return list(_scan_assignment(name, value))


@_memo
def _scan_assignment(name: str, value: str) -> tuple[SecretHit, ...]:
    offset = len(name) + 1
    joined = f"{name}={value}"
    hits = [
        msgspec.structs.replace(h, start=h.start - offset, end=h.end - offset)
        for h in _keep_disjoint(_format_hits(joined))
        if h.start >= offset
    ]
    if not hits and is_secret_name(name) and not is_placeholder(value):
        hits.append(named_hit(name, value))
    return tuple(hits)


def named_hit(name: str, value: str) -> SecretHit:
    """``value`` as a secret by its setting's ``name`` alone, spanning all of it."""
    return SecretHit(
        rule="secret-name",
        title=f"value of {show_name(name)}",
        kind=SecretKind.NAMED,
        start=0,
        end=len(value),
        shown=redact(value),
    )


def redact_text(text: str) -> str:
    """``text`` with every secret ``scan_text`` finds replaced by its redacted form.

    For showing strings that may carry secrets (an entrypoint or command in the ``image``
    record's config summary) without leaking them.
    """
    out: list[str] = []
    pos = 0
    for hit in scan_text(text):
        out.append(text[pos : hit.start])
        out.append(hit.shown)
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)
