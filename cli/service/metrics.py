"""The service's Prometheus metrics (``GET /metrics``), on a registry of its own.

Labels are registry names (``host[:port]``), stages, severities and outcomes: never a
reference, a repository or anything a user typed, so the series stay few and nothing
secret can reach a scrape.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from regsweep.matcher.records import Severity

#: Crawl durations from a small repository to a whole registry.
_CRAWL_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the service exports (the names are a public interface: dashboards)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.images_scanned = Counter(
            "regsweep_images_scanned", "Platform images analysed (crawls and scans).",
            registry=r,
        )  # fmt: skip
        self.layers_fetched = Counter(
            "regsweep_layers_fetched", "Layer blobs downloaded from registries.", registry=r
        )
        self.bytes_fetched = Counter(
            "regsweep_bytes_fetched", "Blob bytes downloaded from registries.", registry=r
        )
        self.errors = Counter(
            "regsweep_errors", "Error records written, by stage.", ["stage"], registry=r
        )
        self.findings = Gauge(
            "regsweep_findings",
            "Current vulnerability findings over every stored image, by severity.",
            ["severity"],
            registry=r,
        )
        self.crawl_duration = Histogram(
            "regsweep_crawl_duration_seconds", "Duration of registry crawls.", ["registry"],
            buckets=_CRAWL_BUCKETS, registry=r,
        )  # fmt: skip
        self.last_success = Gauge(
            "regsweep_last_crawl_success_timestamp_seconds",
            "When the last successful crawl of a registry ended (Unix time).",
            ["registry"],
            registry=r,
        )
        self.crawls = Counter(
            "regsweep_crawls", "Crawls ended, by outcome (ok, failed, stopped).",
            ["registry", "outcome"], registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "regsweep_queue_depth", "Scan requests waiting (push notifications, POST /v1/scan).",
            registry=r,
        )  # fmt: skip
        self.notifications = Counter(
            "regsweep_notifications", "Registry notification events, by outcome.",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.records = Counter(
            "regsweep_records_written", "NDJSON records written to the output, by kind.",
            ["kind"], registry=r,
        )  # fmt: skip
        self.rematches = Counter(
            "regsweep_rematches", "Re-judgements of every stored image (index changes).",
            registry=r,
        )  # fmt: skip
        for severity in Severity:
            self.findings.labels(severity.value)

    def exposition(self) -> bytes:
        """The text format scraped at ``GET /metrics``."""
        return generate_latest(self.registry)
