"""Prometheus metrics of one application instance (``GET /metrics``).

Each application gets its own registry, so several instances in one process (tests) do
not mix their counters.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """The counters and histograms the service exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._webhook_children: dict[tuple[str, str, str], Any] = {}
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self.requests = Counter(
            "decroche_http_requests",
            "HTTP requests served, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "decroche_webhooks",
            "Webhook deliveries by source and result "
            "(accepted, duplicate, refused) and, for refusals, the reason.",
            ["source", "result", "reason"],
            registry=self.registry,
        )
        self.wall_clients = Gauge(
            "decroche_wall_clients",
            "Wall screens connected to this instance's live stream.",
            registry=self.registry,
        )
        self.leader = Gauge(
            "decroche_scheduler_leader",
            "1 while this instance is the scheduler's leader (runs the scheduled jobs).",
            registry=self.registry,
        )
        self.refused = Counter(
            "decroche_refused_requests",
            "Requests refused before reaching a handler, by reason (no credentials, bad "
            "token, role too low, CSRF, throttled login, body too large or unreadable…).",
            ["reason"],
            registry=self.registry,
        )
        self.ingest_latency = Histogram(
            "decroche_ingest_latency_seconds",
            "Time from a delivery's arrival in the ingest queue to its commit.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.ingest_batch = Histogram(
            "decroche_ingest_batch_size",
            "Deliveries committed together (group commit).",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )

        self.fold_batch = Histogram(
            "decroche_fold_batch_size",
            "Calls refolded together from their events.",
            registry=self.registry,
            buckets=(1, 4, 16, 64, 256, 500),
        )
        self.fold_seconds = Histogram(
            "decroche_fold_seconds",
            "Time to refold one batch of calls.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

        self.digest_messages = Counter(
            "decroche_digest_messages",
            "Weekly digest messages by result: sent, retry (refused or unreachable, tried "
            "again later), failed (gave up), unknown (may have gone; not sent again).",
            ["result"],
            registry=self.registry,
        )
        for result in ("sent", "retry", "failed", "unknown"):
            self.digest_messages.labels(result=result)

        self.wall_rebuild_seconds = Histogram(
            "decroche_wall_rebuild_seconds",
            "Time to rebuild the wall's snapshot from the stored calls.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

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
