"""The console's Prometheus metrics (prometheus-client) and who may read them.

- `estuary_console_request_duration_seconds{endpoint,method,status}`: every request but
  static files, by Flask endpoint (a bounded set; unmatched URLs are `unmatched`).
- `estuary_console_temporal_calls_total{rpc,outcome}` and
  `estuary_console_temporal_call_duration_seconds{rpc}`: each gateway call
  (`temporal_gateway.metrics`), outcome `ok` or the gateway error's class name.
- `estuary_payouts_awaiting_approval` / `_cents`, `estuary_reconciliation_mismatches`:
  read from the database at scrape time.

With `PROMETHEUS_MULTIPROC_DIR` set (several gunicorn workers), prometheus-client keeps
the counters in files in that directory and a scrape of any worker adds all of them up.

`/metrics` answers a request that carries `Authorization: Bearer <METRICS_TOKEN>` when a
token is configured, otherwise only clients on the loopback interface.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Request, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("estuary.request")

REQUEST_SECONDS = Histogram(
    "estuary_console_request_duration_seconds",
    "Console request latency by Flask endpoint.",
    ["endpoint", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class DatabaseGauges(Collector):
    """Business gauges computed from the app database when scraped (needs an app context)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy.exc import SQLAlchemyError

        from estuary.db import db
        from estuary.services import gauges

        try:
            awaiting = gauges.payouts_awaiting_approval()
            mismatches = gauges.reconciliation_mismatches()
        except SQLAlchemyError as exc:
            # The scrape still answers (process and gateway metrics matter most when the
            # database is in trouble); the business gauges are absent and this says why.
            db.session.rollback()
            log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
            yield GaugeMetricFamily(
                "estuary_database_gauges_up", "1 when the database gauges could be read.", 0
            )
            return
        yield GaugeMetricFamily(
            "estuary_database_gauges_up", "1 when the database gauges could be read.", 1
        )
        yield GaugeMetricFamily(
            "estuary_payouts_awaiting_approval",
            "Payouts waiting for an approver's decision.",
            value=awaiting.count,
        )
        yield GaugeMetricFamily(
            "estuary_payouts_awaiting_approval_cents",
            "Total amount of the payouts waiting for approval, in cents.",
            value=awaiting.cents,
        )
        yield GaugeMetricFamily(
            "estuary_reconciliation_mismatches",
            "Open ops flags raised by reconciliation.",
            value=mismatches,
        )


def exposition() -> bytes:
    """The text a scrape returns: process metrics (all gunicorn workers' in multiprocess
    mode) followed by the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process_text = generate_latest(registry)
    else:
        process_text = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseGauges())
    return process_text + generate_latest(database)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def scrape_refusal(req: Request, token: str) -> str | None:
    """Why this request may not read /metrics, or None when it may."""
    if token:
        given = req.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return None
        return "metrics need an Authorization: Bearer header with the METRICS_TOKEN"
    try:
        if ipaddress.ip_address(req.remote_addr or "").is_loopback:
            return None
    except ValueError:
        pass
    return "metrics are served to loopback clients only unless METRICS_TOKEN is set"


def init_request_metrics(app: Flask) -> None:
    """Time every request and log one line for it with its request id and actor."""

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response: Any) -> Any:
        if request.endpoint == "static":
            return response
        started = g.get("request_started")
        if started is None:
            return response
        elapsed = time.perf_counter() - started
        endpoint = request.endpoint or "unmatched"
        REQUEST_SECONDS.labels(
            endpoint=endpoint, method=request.method, status=str(response.status_code)
        ).observe(elapsed)
        # A decoded path may hold line breaks (%0A): escaped, so no one can forge a line.
        path = request.path.replace("\r", "\\r").replace("\n", "\\n")
        log.info(
            "%s %s -> %s in %.1fms", request.method, path, response.status_code, elapsed * 1000
        )
        return response
