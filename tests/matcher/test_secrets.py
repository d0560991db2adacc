"""Secret detection (format and name rules, hit and near-miss) and redaction that never leaks."""

from __future__ import annotations

import logging
import subprocess
from datetime import date

import msgspec
import pytest
import structlog
from hypothesis import assume, given
from hypothesis import strategies as st

from regsweep.matcher.checks import ConfigError, run_checks
from regsweep.matcher.records import ImageRef, MisconfigurationRecord
from regsweep.matcher.secrets import (
    SecretKind,
    is_placeholder,
    is_secret_name,
    redact,
    redact_text,
    scan_assignment,
    scan_text,
)
from tests.matcher.checks.helpers import IMAGE, image_config, make_jwt

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GHP = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
GH_FINE = "github_pat_" + "11ABCDEFG0123456789abc_" + "x" * 59
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GCP_KEY = "AIza" + "SyA1bCdEfGhIjKlMnOpQrStUvWxYz012345"
GITLAB = "glpat-" + "xYz1234567890abcdEFGH"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _rules(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.rule for h in hits]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (f"aws configure set aws_access_key_id {AWS_ID}", "aws-access-key-id"),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws-secret-access-key"),
        (f"curl -H 'x-goog-api-key: {GCP_KEY}' https://x", "gcp-api-key"),
        (f"git clone https://{GHP}@github.com/o/r", "github-token"),
        (f"GH={GH_FINE}", "github-fine-grained-pat"),
        (f"--token {GITLAB}", "gitlab-token"),
        (f"SLACK={SLACK}", "slack-token"),
        (f"curl -X POST {SLACK_HOOK}", "slack-webhook"),
        (f"stripe {STRIPE}", "stripe-secret-key"),
        (f"echo //registry.npmjs.org/:_authToken={NPM} > .npmrc", "npm-token"),
        (
            '{"type": "service_account", "private_key_id": "' + "0a" * 20 + '"}',
            "gcp-service-account-key",
        ),
    ],
)
def test_provider_formats_are_found(text: str, rule: str) -> None:
    """Each provider format is recognised in free text and classed as a provider credential."""
    hits = scan_text(text)
    assert rule in _rules(hits)
    assert all(h.kind is SecretKind.PROVIDER for h in hits if h.rule == rule)


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPL",  # 19 characters: one short
        "XAKIAIOSFODNN7EXAMPLE1",  # inside a longer token
        "ghp_" + "a" * 35,  # GitHub tokens carry 36+ characters after the prefix
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",  # Stripe test keys are not live secrets
        "AIza" + "b" * 34,  # GCP API keys are exactly 39 characters
        "secret " + AWS_SECRET,  # 40 base64 chars with no "aws" context
        "xoxz-1234567890-abcdef",  # not a Slack token type
        "GPG_KEY=7169605F62C751356D054A26A821E680E5FA6305",  # public fingerprint
        "https://hooks.slack.com/services/",
    ],
)
def test_provider_near_misses_are_not_secrets(text: str) -> None:
    """Look-alikes of provider formats (wrong length, wrong context, test keys) are not hits."""
    assert scan_text(text) == []


def test_aws_secret_key_next_to_aws_name_in_env() -> None:
    """An Env ``AWS_SECRET_ACCESS_KEY`` holding 40 base64 characters is an AWS secret key."""
    hits = scan_assignment("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    assert _rules(hits) == ["aws-secret-access-key"]
    assert (hits[0].start, hits[0].end) == (0, 40)


def test_private_key_from_openssl_is_found_and_only_its_size_shown() -> None:
    """A real PEM private key (openssl genpkey) is a private-key hit; evidence has its size only."""
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True, check=True, text=True
    ).stdout
    hits = scan_assignment("TLS_KEY_PEM", pem)
    assert [h.kind for h in hits] == [SecretKind.PRIVATE_KEY]
    assert hits[0].title == "PRIVATE KEY block"
    assert hits[0].shown == f"({len(pem.strip())} chars)"
    # The public half is not a secret.
    pub = subprocess.run(
        ["openssl", "pkey", "-pubout"], input=pem, capture_output=True, check=True, text=True
    ).stdout
    assert scan_assignment("TLS_PUB_PEM", pub) == []


def test_jwt_with_json_header_is_found_and_dotted_lookalike_is_not() -> None:
    """A real HS256 JWT is found; base64url triples whose header is not JSON with alg are not."""
    token = make_jwt({"sub": "1234567890", "name": "ci"})
    assert [h.kind for h in scan_text(f"Authorization: Bearer {token}")] == [SecretKind.JWT]
    no_alg = make_jwt({}).split(".", 1)[1]  # drop the header: payload "e30" + signature
    assert scan_text("eyJub3QiOiJhbGcifQ." + no_alg) == []  # header {"not":"alg"}
    assert scan_text("eyJhbGciOi.abc.def") == []  # header truncated: not JSON


def test_password_in_url_is_found_unless_it_is_a_variable() -> None:
    """``scheme://user:password@host`` is a secret; ``${DB_PASS}`` in its place is not."""
    hits = scan_assignment("DATABASE_URL", "postgres://app:s3cr3t-pw@db:5432/app")
    assert [(h.kind, h.shown) for h in hits] == [(SecretKind.URL_PASSWORD, "s3…(9 chars)")]
    assert scan_assignment("DATABASE_URL", "postgres://app:${DB_PASS}@db/app") == []
    assert scan_assignment("HOMEPAGE", "https://example.com/a:b@c") == []


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "SMTP_PASSWD",
        "REDIS_PASS",
        "CLIENT_SECRET",
        "DJANGO_SECRET_KEY",
        "SECRET_KEY_BASE",
        "GITHUB_TOKEN",
        "API_KEY",
        "STRIPE_API_KEY",
        "MAPS_APIKEY",
        "JWT_PRIVATE_KEY",
        "com.example.api-key",
        "vault.token",
        "password",
    ],
)
def test_secret_looking_names(name: str) -> None:
    """Names ending in a secret word are secret-looking, whatever the case and separators."""
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "POSTGRES_PASSWORD_FILE",
        "TOKEN_URL",
        "GPG_KEY",
        "AWS_ACCESS_KEY_ID",
        "BYPASS",
        "PWD",
        "PASSWORD_MIN_LENGTH",
        "KEYCLOAK_URL",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ],
)
def test_names_that_only_mention_a_secret_are_not_secret_names(name: str) -> None:
    """A path, URL, length or public key *about* a secret is not the secret."""
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "${DB_PASSWORD}",
        "$DB_PASSWORD",
        "$(cat /run/secrets/pw)",
        "%PW%",
        "{{ .Values.pw }}",
        "<redacted>",
        "[hidden]",
        "********",
        "xxxx",
        "null",
        "None",
        "false",
    ],
)
def test_placeholders_are_not_secrets(value: str) -> None:
    """Empty values, variable references, bracketed words and filler are placeholders."""
    assert is_placeholder(value)
    assert scan_assignment("DB_PASSWORD", value) == []


@pytest.mark.parametrize("value", ["changeme", "changeit", "hunter2", "p@ss w0rd"])
def test_weak_real_passwords_are_still_secrets(value: str) -> None:
    """A weak default such as ``changeme`` is what the container uses, so it is reported."""
    assert not is_placeholder(value)
    assert [h.kind for h in scan_assignment("DB_PASSWORD", value)] == [SecretKind.NAMED]


def test_history_assignments_buildkit_and_classic() -> None:
    """Secret-named assignments in history: classic ``ENV``, BuildKit ``|N K=v`` args, flags."""
    classic = "/bin/sh -c #(nop)  ENV ADMIN_PASSWORD=Tr0ub4dor&3"
    assert [h.shown for h in scan_text(classic)] == ["Tr…(9 chars)"]  # stops at the shell "&"
    buildkit = "|2 NPM_TOKEN=abcd1234efgh BUILD=1 /bin/sh -c npm ci"
    assert [(h.title, h.shown) for h in scan_text(buildkit)] == [
        ("value of NPM_TOKEN", "abc…(12 chars)")
    ]
    flag = 'RUN /bin/sh -c mysql --db-password="s3cret pass" -e "select 1"'
    assert [h.shown for h in scan_text(flag)] == ["s3…(11 chars)"]
    assert scan_text("RUN /bin/sh -c echo PASSWORD=$PASSWORD") == []


def test_redact_text_replaces_every_secret() -> None:
    """``redact_text`` (for showing commands) keeps the text but not the secrets."""
    cmd = f"app --api-key={GCP_KEY} --token {GHP} --name web"
    out = redact_text(cmd)
    assert GCP_KEY not in out and GHP not in out
    assert out.startswith("app --api-key=AIza…(39 chars) --token ghp_…(40 chars)")
    assert out.endswith("--name web")


@pytest.mark.parametrize(
    ("secret", "shown"),
    [(AWS_SECRET, "wJal…(40 chars)"), ("hunter22", "hu…(8 chars)"), ("abc", "…(3 chars)")],
)
def test_redact_shows_at_most_a_quarter(secret: str, shown: str) -> None:
    """Redaction shows ``min(4, len // 4)`` leading characters and the length."""
    assert redact(secret) == shown


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8))
def test_redact_never_contains_the_secret(secret: str) -> None:
    """For any secret of 8+ visible ASCII characters, its redaction does not contain it."""
    out = redact(secret)
    assert secret not in out
    assert out.endswith(f"({len(secret)} chars)")


# Everything a run produces: the records (as encoded JSON and as decoded text) and the logs.
def _run_and_capture(
    blob: bytes, caplog: pytest.LogCaptureFixture, image: ImageRef = IMAGE
) -> tuple[list[MisconfigurationRecord], str]:
    with caplog.at_level(logging.DEBUG), structlog.testing.capture_logs() as logs:
        records, _ = run_checks(blob, None, [], image, today=date(2026, 1, 1))
    produced = b"\n".join(msgspec.json.encode(r) for r in records).decode()
    produced += "\n" + "\n".join(str(r) for r in records)
    produced += "\n" + repr(logs) + "\n" + caplog.text
    return records, produced


ALL_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "GH": GHP,
    "SLACK_WEBHOOK": SLACK_HOOK,
    "STRIPE_KEY": STRIPE,
    "DB_PASSWORD": "correct-horse-battery-staple",
    "SESSION": make_jwt({"sub": "admin"}),
}


def test_no_secret_is_written_whole_in_records_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every secret placed in Env, labels, history and Cmd is reported, and none appears whole
    in any encoded record, record repr, structlog event or stdlib log line."""
    blob = image_config(
        env=[f"{k}={v}" for k, v in ALL_SECRETS.items()],
        labels={"com.example.deploy-token": "tok-" + "9" * 20},
        cmd=["app", f"--slack={SLACK}"],
        history=[f"/bin/sh -c #(nop)  ENV GH_PAT={GH_FINE}", f"|1 NPM_TOKEN={NPM} /bin/sh -c x"],
    )
    records, produced = _run_and_capture(blob, caplog)
    secrets = [*ALL_SECRETS.values(), "tok-" + "9" * 20, SLACK, GH_FINE, NPM]
    assert len([r for r in records if r.check.category == "secret"]) == len(secrets)
    for secret in secrets:
        assert secret not in produced
    assert "RS-IMG-002" in produced  # the capture did see the run


def test_config_error_message_never_quotes_the_blob() -> None:
    """A malformed config holding a secret fails with ConfigError whose text has no secret."""
    blob = image_config(env=[f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}"])
    for bad in (blob[:-3], blob.replace(b'"Env":[', b'"Env":[1,'), b"\xff" + blob):
        with pytest.raises(ConfigError) as err:
            run_checks(bad, None, [], IMAGE, today=date(2026, 1, 1))
        assert AWS_SECRET not in str(err.value)


_SECRET_CHARS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=._-",
    min_size=6,
    max_size=120,
)


@given(_SECRET_CHARS, st.sampled_from(["DB_PASSWORD", "API_KEY", "X_TOKEN", "APP_SECRET"]))
def test_random_secrets_are_found_and_never_leak(body: str, name: str) -> None:
    """Any non-placeholder value of a secret-named Env var, label or history ENV is reported
    and never appears whole in the records or the logs."""
    secret = f"7{body}7"  # digits around it: no title or remediation word can equal it
    assume(not is_placeholder(secret))
    blob = image_config(
        env=[f"{name}={secret}"],
        labels={name.lower(): secret},
        history=[f"/bin/sh -c #(nop)  ENV {name}={secret}"],
    )
    with structlog.testing.capture_logs() as logs:
        records, _ = run_checks(blob, None, [], ImageRef(ref="oci:l"), today=date(2026, 1, 1))
    secret_records = [r for r in records if r.check.category == "secret"]
    assert len(secret_records) == 3
    text = b"".join(msgspec.json.encode(r) for r in records).decode() + repr(logs)
    assert secret not in text
    assert all(secret not in (r.evidence or "") for r in records)


def test_secret_in_a_name_or_label_key_is_never_printed_as_a_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A secret sitting where a name is expected (a bare Env entry, a label key, an
    assignment's name) is reported by position, and the name is not echoed."""
    blob = image_config(
        env=[GHP, f"{NPM}_TOKEN=abcdefgh12"],
        labels={f"token.{GHP}": "x", "ok": f"{STRIPE}"},
        history=[f"/bin/sh -c export {GCP_KEY}_API_KEY=zzzzzzzz9"],
    )
    records, produced = _run_and_capture(blob, caplog)
    for secret in (GHP, NPM, GCP_KEY, STRIPE):
        assert secret not in produced
    evidence = sorted(r.evidence or "" for r in records if r.check.category == "secret")
    assert any(e.startswith("Env[0]:") for e in evidence)
    assert any(e.startswith("Env[1]:") for e in evidence)
    assert any(e.startswith("Labels[0] key:") for e in evidence)
    assert any(e.startswith("Label ok:") for e in evidence)


def test_answers_for_short_strings_are_remembered_and_long_ones_never_are() -> None:
    """A registry repeats the same Env entries and history lines in every image: a short
    string is scanned once and its answer reused (the same hits, a cache hit); a string
    over the memo's length is scanned every time, so a hostile config cannot fill memory."""
    from regsweep.matcher import secrets

    info = secrets._scan_text.cache_info  # type: ignore[attr-defined]
    text = f"RUN git clone https://ci:{'Tr0ub4dor' * 2}@git.example/x # {id(info)}"
    first, before = scan_text(text), info()
    assert scan_text(text) == first and first
    assert info().hits == before.hits + 1
    long = "RUN echo " + "x" * secrets._MEMO_LEN + " https://ci:hunter2hunter2@git.example/x"
    size = info().currsize
    assert [h.rule for h in scan_text(long)] == [h.rule for h in scan_text(long)]
    assert [h.rule for h in scan_text(long)] == ["url-password"]
    assert info().currsize == size
