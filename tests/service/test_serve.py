"""``regsweep serve`` as a user runs it: a subprocess, against the real ``docker-registry``.

The registry (Debian's Distribution 2.8) is configured with ``notifications.endpoints``
pointing at the service, so a ``skopeo copy`` into it reaches the service as the push
notification it really sends. Images are the example image (real dpkg, apk, Python and npm
metadata); the index is built from the bundled real advisory samples. What is checked:
the start-up crawl, a push in the output within 5 s, metrics parsed with
prometheus_client's parser, the write endpoints' token, size and rate bounds, the image
API, rematch when the index file is replaced (and its equality with a fresh crawl), a
SIGTERM stop, and ``kill -9`` at random moments with nothing lost and nothing doubled.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests import paths
from tests.crawler.registry.conftest import RegistryServer, _start, _stop
from tests.example import REGSWEEP, advisory_index, example_image
from tests.service.common import call, free_port, notifications

TOKEN = "svc-token-5f1e0c9a7b"
Record = dict[str, Any]


def _skopeo_copy(layout: Path, dest: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--all", "--dest-tls-verify=false", "--quiet",
         f"oci:{layout}:latest", f"docker://{dest}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _tag_copies(base: str, repo: str, tag: str, names: list[str]) -> None:
    """More tags for one image: its index manifest PUT under each name (what a CI
    pipeline tagging every build does), so that crawls and rematches have work to cut."""
    accept = "application/vnd.oci.image.index.v1+json"
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body, media_type = resp.read(), resp.headers["Content-Type"]
    for name in names:
        put = urllib.request.Request(
            f"{base}/v2/{repo}/manifests/{name}", data=body, method="PUT",
            headers={"Content-Type": media_type},
        )  # fmt: skip
        with urllib.request.urlopen(put, timeout=10) as resp:
            assert resp.status == 201


def _build_index(path: Path, *, without: str | None = None) -> Path:
    """An index of the bundled advisories (``without`` one advisory file), built beside
    ``path`` and renamed onto it: how ``db build``/``db update`` replace an index."""
    if without is None:
        built = advisory_index(path.with_suffix(".new"))
    else:
        src = path.parent / f"adv-{path.stem}"
        if not src.exists():
            shutil.copytree(paths.DATA / "advisories", src)
            next(src.rglob(without)).unlink()
        built = path.with_suffix(".new")
        subprocess.run(
            [REGSWEEP, "db", "build", "--db", str(built), str(src / "osv"), str(src / "secdb")],
            check=True, capture_output=True,
        )  # fmt: skip
    os.replace(built, path)
    return path


@dataclass
class Service:
    """A running ``regsweep serve`` and everything around it."""

    root: Path
    registry: RegistryServer
    port: int
    layout: Path
    db: Path
    out: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return self.registry.url.removeprefix("http://")

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [REGSWEEP, "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=self.env,
            )  # fmt: skip
        wait_for(lambda: self.call("GET", "/healthz")[0] == 200, 20, self)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def call(
        self, method: str, path: str, body: bytes | None = None, *, token: str | None = None,
        content_type: str = "application/json", auth: str | None = None,
    ) -> tuple[int, bytes]:  # fmt: skip
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if auth is not None:
            headers["Authorization"] = auth
        return call(self.api + path, method, body, headers)

    def records(self) -> list[Record]:
        """Every record of the complete output parts, in part order."""
        parts = sorted((p for p in self.out.rglob("part-*.ndjson")), key=lambda p: p.name)
        return [msgspec.json.decode(line) for p in parts for line in p.read_bytes().splitlines()]

    def log_events(self) -> list[Record]:
        events = []
        for line in self.log.read_bytes().splitlines():
            try:
                events.append(msgspec.json.decode(line))
            except msgspec.DecodeError:
                continue
        return events


def wait_for(check: Callable[[], object], seconds: float, service: Service | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = service.log.read_text()[-3000:] if service is not None else ""
            raise AssertionError(f"not within {seconds} s; service log:\n{tail}")
        time.sleep(0.05)


def _config(service_port: int, registry_url: str, dead_port: int, root: Path) -> str:
    return f"""
[server]
listen = "127.0.0.1:{service_port}"
token_env = "REGSWEEP_TEST_TOKEN"
max_body = "64KiB"
write_rate = 40

[paths]
db = "{root / "db.lmdb"}"
state = "{root / "state" / "state.lmdb"}"
output = "{root / "out"}"

[output]
max_age = "1s"

[[registry]]
url = "{registry_url}"
repos = ["team/*"]
interval = "1h"
credentials = "none"
platform = "linux/amd64"

[[registry]]
url = "http://127.0.0.1:{dead_port}"
interval = "1h"
credentials = "none"
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    root = tmp_path_factory.mktemp("serve")
    port, dead_port = free_port(), free_port()
    notify = notifications(port, TOKEN)
    registry = _start(root / "run", root / "storage", "notify", notify)
    layout = example_image(root / "image")
    host = registry.url.removeprefix("http://")
    _skopeo_copy(layout, f"{host}/team/app:1.0")
    _tag_copies(registry.url, "team/app", "1.0", [f"c{i}" for i in range(30)])
    _skopeo_copy(layout, f"{host}/team/gone:1.0")  # deleted by a test
    db = _build_index(root / "db.lmdb")
    config = root / "serve.toml"
    config.write_text(_config(port, registry.url, dead_port, root))
    # A wait between writing each unit's lines and committing them: the kill -9 test's
    # signals then land inside that window, not only between units.
    env = {**os.environ, "REGSWEEP_TEST_TOKEN": TOKEN, "REGSWEEP_SERVE_UNIT_DELAY": "0.01"}
    svc = Service(
        root=root, registry=registry, port=port, layout=layout, db=db, out=root / "out",
        config=config, log=root / "serve.log", env=env,
    )  # fmt: skip
    svc.start()
    try:
        yield svc
    finally:
        if svc.proc is not None:
            svc.proc.kill()
            svc.proc.wait(10)
        _stop(registry)


def _kill(service: Service) -> None:
    if service.proc is not None:
        service.proc.kill()
        service.proc.wait(10)
        service.proc = None


def _samples(service: Service, name: str, label: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(service.call("GET", "/metrics")[1].decode()):
        for s in family.samples:
            if s.name == name:
                out[s.labels[label]] = s.value
    return out


def _crawl_status(service: Service, name: str) -> Record:
    code, body = service.call("GET", "/v1/crawls")
    assert code == 200
    return next(r for r in msgspec.json.decode(body)["registries"] if r["registry"] == name)


def _keys(records: list[Record], kind: str) -> list[tuple[str, str]]:
    return sorted((r["image"]["ref"], r["image"]["platform"]) for r in records if r["kind"] == kind)


def test_the_start_up_crawl_writes_the_registry_and_a_dead_one_backs_off(
    service: Service,
) -> None:
    """At start the registry is crawled: image records for both platforms of the example
    image, its findings, a summary; a registry that cannot be reached is reported and backs
    off while the other goes on. Crawl starts, ends and failures are JSON log lines."""
    wait_for(lambda: _crawl_status(service, service.host)["last_outcome"] == "ok", 30, service)
    records = wait_for(lambda: [r for r in service.records() if r["kind"] == "summary"]
                       and service.records(), 10, service)  # fmt: skip
    tags = ["app:1.0", *(f"app:c{i}" for i in range(30)), "gone:1.0"]
    # The registry's platform filter: the arm64 images of the index are left out.
    assert _keys(records, "image") == sorted(
        (f"{service.host}/team/{t}", "linux/amd64") for t in tags
    )
    assert {r["advisory"]["id"] for r in records if r["kind"] == "vulnerability"} >= {
        "DSA-5044-1",
        "PYSEC-2020-342",
    }
    dead = wait_for(
        lambda: (s := _crawl_status(service, next(
            n for n in (r["registry"] for r in msgspec.json.decode(
                service.call("GET", "/v1/crawls")[1])["registries"]) if n != service.host
        )))["consecutive_failures"] >= 1 and s, 20, service,
    )  # fmt: skip
    assert dead["last_outcome"] == "failed" and dead["next_run_at"] is not None
    events = Counter((e.get("event"), e.get("registry")) for e in service.log_events())
    assert events[("crawl_start", service.host)] >= 1
    assert events[("crawl_done", service.host)] >= 1
    assert events[("crawl_failed", dead["registry"])] >= 1


def test_a_push_is_in_the_output_within_5_seconds(service: Service) -> None:
    """``skopeo copy`` into the registry sends a real notification; the pushed image's
    records are in a complete part within 5 s. A push to a repository the crawl does not
    cover is not scanned."""
    wait_for(lambda: _crawl_status(service, service.host)["last_outcome"] == "ok", 30, service)
    _skopeo_copy(service.layout, f"{service.host}/team/app:2.0")
    pushed = time.monotonic()
    ref = f"{service.host}/team/app:2.0"
    wait_for(lambda: (ref, "linux/amd64") in _keys(service.records(), "vulnerability"), 5, service)
    took = time.monotonic() - pushed
    assert took < 5
    _skopeo_copy(service.layout, f"{service.host}/other/app:1.0")
    time.sleep(1.5)
    assert not any("other/app" in r.get("image", {}).get("ref", "") for r in service.records()
                   if r.get("image"))  # fmt: skip


def test_metrics_parse_and_name_the_work(service: Service) -> None:
    """``GET /metrics`` parses with prometheus_client's own parser and has the named
    metrics, with counts that match the work done."""
    from prometheus_client.parser import text_string_to_metric_families

    code, body = service.call("GET", "/metrics")
    assert code == 200
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    for name in (
        "regsweep_images_scanned_total", "regsweep_layers_fetched_total",
        "regsweep_bytes_fetched_total", "regsweep_errors_total", "regsweep_findings",
        "regsweep_crawl_duration_seconds_bucket", "regsweep_crawl_duration_seconds_count",
        "regsweep_last_crawl_success_timestamp_seconds", "regsweep_queue_depth",
    ):  # fmt: skip
        assert name in samples, name
    assert samples["regsweep_images_scanned_total"][0].value >= 2
    assert samples["regsweep_layers_fetched_total"][0].value >= 1
    assert samples["regsweep_bytes_fetched_total"][0].value > 0
    success = {s.labels["registry"]: s.value for s in
               samples["regsweep_last_crawl_success_timestamp_seconds"]}  # fmt: skip
    assert success[service.host] > time.time() - 600
    findings = {s.labels["severity"]: s.value for s in samples["regsweep_findings"]}
    assert sum(findings.values()) >= 9
    errors = {s.labels["stage"]: s.value for s in samples["regsweep_errors_total"]}
    assert errors.get("crawl", 0) >= 1  # the dead registry


def test_write_endpoints_need_the_token_and_bound_size_and_rate(service: Service) -> None:
    """No token or a wrong one: 401 (the token is never echoed); a body over max_body: 413;
    a registry that is not configured: 404, never fetched from; a burst over write_rate:
    429. The token appears in no log line, metric, API answer or output record."""
    ref = msgspec.json.encode({"ref": f"{service.host}/team/app:1.0"})
    assert service.call("POST", "/v1/scan", ref)[0] == 401
    assert service.call("POST", "/v1/scan", ref, token="wrong")[0] == 401
    assert service.call("POST", "/v1/notifications", b"{}", token="wrong")[0] == 401
    code, body = service.call("POST", "/v1/scan", ref, token=TOKEN)
    assert code == 202, body
    big = msgspec.json.encode({"events": [{"action": "push"}] * 5000})
    assert len(big) > 64 * 1024
    code, _ = service.call(
        "POST", "/v1/notifications", big, token=TOKEN,
        content_type="application/vnd.docker.distribution.events.v1+json",
    )  # fmt: skip
    assert code == 413
    other = msgspec.json.encode({"ref": "registry.example.com/team/app:1.0"})
    assert service.call("POST", "/v1/scan", other, token=TOKEN)[0] == 404
    assert service.call("POST", "/v1/scan", b"[1]", token=TOKEN)[0] == 400
    # A repository the registry's crawl does not cover is not fetched on request either.
    uncovered = msgspec.json.encode({"ref": f"{service.host}/other/app:1.0"})
    assert service.call("POST", "/v1/scan", uncovered, token=TOKEN)[0] == 403
    # The scheme is case-insensitive; a header that is not UTF-8 is refused, not a 500.
    assert service.call("POST", "/v1/scan", ref, token=None, auth=f"bearer {TOKEN}")[0] == 202
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    conn.putrequest("POST", "/v1/scan")
    conn.putheader("Authorization", b"Bearer \xff\xfe")
    conn.putheader("Content-Length", str(len(ref)))
    conn.endheaders(ref)
    assert conn.getresponse().status == 401
    conn.close()
    # Notifications: a tag outside the registry's grammar is never put in a request; a
    # target URL with user information names no configured host and is not logged whole.
    events = {"events": [
        {"action": "push", "target": {
            "mediaType": "application/vnd.oci.image.index.v1+json", "repository": "team/app",
            "tag": "../../../../v2/_catalog#", "url": f"http://{service.host}/v2/x"}},
        {"action": "push", "target": {
            "mediaType": "application/vnd.oci.image.index.v1+json", "repository": "team/app",
            "tag": "1.0", "url": "http://intruder:pa55word@evil.example:443/v2/x"}},
    ]}  # fmt: skip
    code, _ = service.call(
        "POST", "/v1/notifications", msgspec.json.encode(events), token=TOKEN,
        content_type="application/vnd.docker.distribution.events.v1+json",
    )  # fmt: skip
    assert code == 200
    outcomes = _samples(service, "regsweep_notifications_total", "outcome")
    assert outcomes.get("invalid", 0) >= 1 and outcomes.get("unknown_registry", 0) >= 1
    assert service.call("POST", "/v1/notifications", b"{}", token=TOKEN,
                        content_type="text/plain")[0] == 415  # fmt: skip
    codes = Counter(service.call("POST", "/v1/scan", ref, token=TOKEN)[0] for _ in range(120))
    assert codes[429] > 0 and codes[202] > 0
    time.sleep(2)  # the bucket refills for the registry's own notifications
    answers = [service.call("GET", p)[1] for p in ("/metrics", "/v1/crawls", "/readyz")]
    for blob in (*answers, service.log.read_bytes(),
                 *(p.read_bytes() for p in service.out.rglob("*") if p.is_file())):  # fmt: skip
        assert TOKEN.encode() not in blob
        assert b"pa55word" not in blob


def test_a_second_service_on_the_same_output_is_refused(service: Service) -> None:
    """Two services writing one output directory would interleave parts: the second exits
    2 with one line saying so, and the first goes on."""
    proc = subprocess.run([REGSWEEP, "serve", "--config", str(service.config)],
                          capture_output=True, text=True, timeout=30, env=service.env)  # fmt: skip
    assert proc.returncode == 2
    assert "service_cannot_start" in proc.stderr and "another" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert service.call("GET", "/healthz")[0] == 200


def test_image_api_answers_the_current_records(service: Service) -> None:
    """``GET /v1/images/{digest}``: the records of that image as judged now, the same as the
    crawl wrote them (timestamps aside); an unknown digest is 404."""
    records = service.records()
    image = next(r for r in records if r["kind"] == "image"
                 and r["image"]["platform"] == "linux/amd64")  # fmt: skip
    digest = image["image"]["digest"]
    code, body = service.call("GET", f"/v1/images/{digest}")
    assert code == 200
    answered = [msgspec.json.decode(line) for line in body.splitlines()]
    ref = answered[0]["image"]["ref"]
    written = [r for r in records if r.get("image", {}) and r["image"].get("ref") == ref
               and r["image"]["digest"] == digest and r["kind"] in ("image", "vulnerability",
               "misconfiguration")]  # fmt: skip

    def stable(rs: list[Record]) -> list[bytes]:
        return sorted(msgspec.json.encode({k: v for k, v in r.items() if k != "scanned_at"})
                      for r in rs)  # fmt: skip

    assert stable(answered) == stable(written)
    assert service.call("GET", "/v1/images/sha256:" + "0" * 64)[0] == 404
    assert service.call("GET", "/v1/images/nope")[0] == 400
    assert service.call("GET", "/v1/images/sha256:" + "Z" * 64)[0] == 400


def _state_from_stream(records: list[Record]) -> dict[tuple[str, str], Counter[tuple[Any, ...]]]:
    """Per image key, each finding's count over the stream: +1 per vulnerability record,
    −1 per resolved one (an image record for a new digest starts the image afresh)."""
    out: dict[tuple[str, str], Counter[tuple[Any, ...]]] = {}
    for r in records:
        if r["kind"] not in ("vulnerability", "resolved", "image"):
            continue
        key = (r["image"]["ref"], r["image"]["platform"])
        if r["kind"] == "image":
            continue
        p = r["package"]
        fid = (p["name"], p["version"], p["type"], p.get("path"), r["advisory"]["id"])
        out.setdefault(key, Counter())[fid] += 1 if r["kind"] == "vulnerability" else -1
        assert out[key][fid] in (0, 1), (key, fid, "doubled or resolved twice")
    return out


def _fresh_findings(service: Service) -> dict[tuple[str, str], set[tuple[Any, ...]]]:
    proc = subprocess.run(
        [REGSWEEP, "crawl", service.registry.url, "--repo", "team/*", "--db", str(service.db),
         "--platform", "linux/amd64",
         "--state", str(service.root / f"fresh-{time.monotonic_ns()}.lmdb")],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out: dict[tuple[str, str], set[tuple[Any, ...]]] = {}
    for line in proc.stdout.splitlines():
        r = msgspec.json.decode(line)
        if r["kind"] == "image":
            out.setdefault((r["image"]["ref"], r["image"]["platform"]), set())
        if r["kind"] == "vulnerability":
            p = r["package"]
            out.setdefault((r["image"]["ref"], r["image"]["platform"]), set()).add(
                (p["name"], p["version"], p["type"], p.get("path"), r["advisory"]["id"])
            )
    return out


def _current(records: list[Record]) -> dict[tuple[str, str], set[tuple[Any, ...]]]:
    state = _state_from_stream(records)
    images = {(r["image"]["ref"], r["image"]["platform"]) for r in records if r["kind"] == "image"}
    return {k: {f for f, n in state.get(k, Counter()).items() if n} for k in images}


def test_a_replaced_index_is_rematched_and_equals_a_fresh_crawl(service: Service) -> None:
    """The index file replaced (as db update does): every stored image is judged again with
    no registry traffic; the withdrawn advisory gets a resolved record per image, and the
    findings the stream now adds up to equal a fresh crawl's with the new index."""
    before = len(service.records())
    _build_index(service.db, without="DSA-5044-1.json")
    resolved = wait_for(
        lambda: [r for r in service.records()[before:] if r["kind"] == "resolved"], 10, service
    )
    assert {r["advisory"]["id"] for r in resolved} == {"DSA-5044-1"}
    assert {r["reason"] for r in resolved} == {"withdrawn"}
    # The rematch's summary counts what it wrote: the resolved records, no new finding.
    summary = wait_for(lambda: [r for r in service.records()[before:] if r["kind"] == "summary"],
                       10, service)[0]  # fmt: skip
    assert summary["resolved"] == len(resolved) and summary["vulnerabilities"] == 0
    fresh = _fresh_findings(service)
    # Within the parts' max_age (and a tick), once the rematch is done.
    wait_for(lambda: _current(service.records()) == fresh, 10, service)


def test_kill_9_at_random_moments_loses_and_doubles_nothing(service: Service) -> None:
    """The index swapped back and forth while the service is killed with SIGKILL at random
    moments of the work it causes, and restarted each time: over the complete parts, no
    finding is reported twice without a resolved between, no image record repeats, and
    what the stream adds up to equals a fresh crawl with the last index."""
    rng = random.Random(17)
    killed_in = Counter()
    for n in range(6):
        without = None if n % 2 == 0 else "DSA-5044-1.json"
        mark = len(service.log_events())
        if n % 3 == 2:
            # Swapped while the service is down: the start-up crawl meets the new index.
            _kill(service)
            _build_index(service.db, without=without)
            service.start()
            event = "crawl_start"
        else:
            _build_index(service.db, without=without)
            event = "rematch_start"
        wait_for(
            lambda m=mark, e=event: any(
                x.get("event") == e  # type: ignore[misc]
                for x in service.log_events()[m:]
            ),
            10,
            service,
        )
        time.sleep(rng.uniform(0, 0.25))
        events = [x.get("event") for x in service.log_events()[mark:]]
        killed_in[event.replace("start", "done") not in events] += 1
        _kill(service)
        service.start()
        wait_for(lambda: _crawl_status(service, service.host)["last_outcome"] == "ok", 30,
                 service)  # fmt: skip
    # At least one kill landed in the middle of the work (else the test proves little).
    assert killed_in[True] >= 1, killed_in
    fresh = _fresh_findings(service)
    wait_for(lambda: _current(service.records()) == fresh, 10, service)
    records = service.records()
    images = Counter(
        (r["image"]["ref"], r["image"]["platform"], r["image"]["digest"])
        for r in records if r["kind"] == "image"
    )  # fmt: skip
    assert max(images.values()) == 1, images


def test_a_rematch_cut_off_by_kill_9_is_resumed_at_start(service: Service) -> None:
    """Killed as soon as a rematch starts: the restarted service sees that the stored images
    were last judged in full against another index and judges them again, so the stream
    adds up to a fresh crawl's findings even for images its start-up crawl finds unchanged."""
    wait_for(lambda: _crawl_status(service, service.host)["last_outcome"] == "ok", 30, service)
    # The other index than the one in use: every image then has a change to write.
    present = any("DSA-5044-1" in str(f) for f in _fresh_findings(service).values())
    without = "DSA-5044-1.json" if present else None
    mark = len(service.log_events())
    _build_index(service.db, without=without)
    wait_for(lambda: any(e.get("event") == "rematch_start" for e in service.log_events()[mark:]),
             10, service)  # fmt: skip
    _kill(service)
    assert not any(e.get("event") == "rematch_done" for e in service.log_events()[mark:])
    mark = len(service.log_events())
    service.start()
    done = wait_for(lambda: [e for e in service.log_events()[mark:]
                             if e.get("event") == "rematch_done"], 20, service)  # fmt: skip
    assert done[0]["reason"] == "index_changed_while_stopped"
    fresh = _fresh_findings(service)
    wait_for(lambda: _current(service.records()) == fresh, 10, service)


def test_a_deleted_tag_s_findings_are_resolved_as_image_gone(service: Service) -> None:
    """The only tag of a repository deleted (its manifest DELETEd, as a registry's cleanup
    does): the next crawl finds the repository with no tag, writes a ``resolved`` record
    (``image_gone``) for each finding of the tag's image, and stores none for it."""
    wait_for(lambda: _crawl_status(service, service.host)["last_outcome"] == "ok", 30, service)
    ref = f"{service.host}/team/gone:1.0"
    before = len(service.records())
    had = _current(service.records())[(ref, "linux/amd64")]
    assert had
    req = urllib.request.Request(
        f"{service.registry.url}/v2/team/gone/manifests/1.0", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        digest = resp.headers["Docker-Content-Digest"]
    delete = urllib.request.Request(
        f"{service.registry.url}/v2/team/gone/manifests/{digest}", method="DELETE"
    )
    with urllib.request.urlopen(delete, timeout=10) as resp:
        assert resp.status == 202
    _kill(service)
    service.start()  # its start-up crawl
    gone = wait_for(
        lambda: [r for r in service.records()[before:] if r["kind"] == "resolved"
                 and r["image"]["ref"] == ref], 20, service,
    )  # fmt: skip
    assert {r["reason"] for r in gone} == {"image_gone"}
    assert len(gone) == len(had)
    assert (ref, "linux/amd64") not in {k for k, v in _current(service.records()).items() if v}
    code, _ = service.call("GET", f"/v1/images/{gone[0]['image']['digest']}")
    assert code == 200  # the same image is still stored under team/app's tags


def test_duckdb_reads_the_parts(service: Service) -> None:
    """The complete parts read as one table: ``read_json`` over ``out/**/*.ndjson``."""
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"SELECT kind, count(*) FROM read_json('{service.out}/**/*.ndjson', "
        "format='newline_delimited', union_by_name=true) GROUP BY kind"
    ).fetchall()
    assert dict(rows) == dict(Counter(r["kind"] for r in service.records()))


def test_sigterm_stops_cleanly_with_every_part_complete(service: Service) -> None:
    """SIGTERM: exit 0, every part renamed into place (no temporary part left)."""
    assert service.stop(signal.SIGTERM) == 0
    assert not [p for p in service.out.rglob(".*") if p.is_file() and "lock" not in p.name]
    events = [e.get("event") for e in service.log_events()]
    assert events[-1] == "service_stopped"
