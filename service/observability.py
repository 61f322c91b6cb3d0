"""Prometheus metrics of one application instance (``GET /metrics``).

Each application gets its own registry, so several instances in one process (tests) do
not mix their counters.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


# Histogram buckets, in seconds or in items.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_WORK_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_INGEST_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_FOLD_BATCH_BUCKETS = (1, 4, 16, 64, 256, 500)

_DIGEST_RESULTS = ("sent", "retry", "failed", "unknown")


class Metrics:
    """The counters and histograms the service exposes."""

    def __init__(self) -> None:
        # Declared in the order /metrics lists them.
        self.registry = r = CollectorRegistry()
        self._webhook_children: dict[tuple[str, str, str], Any] = {}
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self.requests, self.webhooks = _traffic(r)
        self.wall_clients, self.leader = _instance(r)
        self.refused = _refusals(r)
        self.ingest_latency, self.ingest_batch = _ingest(r)
        self.fold_batch, self.fold_seconds = _folding(r)
        self.digest_messages = _digest(r)
        self.wall_rebuild_seconds = _wall(r)

    def fold(self, calls: int, seconds: float) -> None:
        self.fold_batch.observe(calls)
        self.fold_seconds.observe(seconds)

    def webhook(self, source: str, result: str, reason: str = "") -> None:
        key = (source, result, reason)
        child = self._webhook_children.get(key)
        if child is None:
            # labels() builds and looks up a key each call; this runs on every delivery.
            child = self._webhook_children[key] = self.webhooks.labels(*key)
        child.inc()

    def refuse(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def request(self, method: str, route: str, status: int) -> None:
        key = (method, route, str(status))
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()

    def digest(self, result: str) -> None:
        self.digest_messages.labels(result=result).inc()

    def batch(self, size: int, oldest_wait_s: float) -> None:
        self.ingest_batch.observe(size)
        self.ingest_latency.observe(oldest_wait_s)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _traffic(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """What came in: HTTP requests served and webhook deliveries."""
    requests = Counter(
        "decroche_http_requests",
        "HTTP requests served, by route and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    webhooks = Counter(
        "decroche_webhooks",
        "Webhook deliveries by source and result "
        "(accepted, duplicate, refused) and, for refusals, the reason.",
        ["source", "result", "reason"],
        registry=registry,
    )
    return requests, webhooks


def _instance(registry: CollectorRegistry) -> tuple[Gauge, Gauge]:
    """This instance's state: its wall screens, its part in the scheduler."""
    wall_clients = Gauge(
        "decroche_wall_clients",
        "Wall screens connected to this instance's live stream.",
        registry=registry,
    )
    leader = Gauge(
        "decroche_scheduler_leader",
        "1 while this instance is the scheduler's leader (runs the scheduled jobs).",
        registry=registry,
    )
    return wall_clients, leader


def _refusals(registry: CollectorRegistry) -> Counter:
    return Counter(
        "decroche_refused_requests",
        "Requests refused before reaching a handler, by reason (no credentials, bad "
        "token, role too low, CSRF, throttled login, body too large or unreadable…).",
        ["reason"],
        registry=registry,
    )


def _ingest(registry: CollectorRegistry) -> tuple[Histogram, Histogram]:
    """The ingest queue: how long a delivery waits for its commit, how many commit together."""
    latency = Histogram(
        "decroche_ingest_latency_seconds",
        "Time from a delivery's arrival in the ingest queue to its commit.",
        registry=registry,
        buckets=_LATENCY_BUCKETS,
    )
    batch = Histogram(
        "decroche_ingest_batch_size",
        "Deliveries committed together (group commit).",
        registry=registry,
        buckets=_INGEST_BATCH_BUCKETS,
    )
    return latency, batch


def _folding(registry: CollectorRegistry) -> tuple[Histogram, Histogram]:
    """The folder: calls refolded per batch, and the time a batch takes."""
    batch = Histogram(
        "decroche_fold_batch_size",
        "Calls refolded together from their events.",
        registry=registry,
        buckets=_FOLD_BATCH_BUCKETS,
    )
    seconds = Histogram(
        "decroche_fold_seconds",
        "Time to refold one batch of calls.",
        registry=registry,
        buckets=_WORK_SECONDS_BUCKETS,
    )
    return batch, seconds


def _digest(registry: CollectorRegistry) -> Counter:
    messages = Counter(
        "decroche_digest_messages",
        "Weekly digest messages by result: sent, retry (refused or unreachable, tried "
        "again later), failed (gave up), unknown (may have gone; not sent again).",
        ["result"],
        registry=registry,
    )
    # Each result's series exists from the start, at zero: a rate or an alert on it needs
    # the series before the first message of that result.
    for result in _DIGEST_RESULTS:
        messages.labels(result=result)
    return messages


def _wall(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "decroche_wall_rebuild_seconds",
        "Time to rebuild the wall's snapshot from the stored calls.",
        registry=registry,
        buckets=_WORK_SECONDS_BUCKETS,
    )
