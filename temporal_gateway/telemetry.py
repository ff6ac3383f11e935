"""Temporal SDK telemetry from config: the worker's Prometheus endpoint and OpenTelemetry
tracing (temporalio.contrib.opentelemetry) on every client we create.

- `WORKER_METRICS_ADDRESS=host:port` gives a worker process a Temporal `Runtime` whose
  Prometheus exporter serves the SDK's metrics on `http://host:port/metrics`
  (`temporal_workflow_completed`, `temporal_activity_execution_latency`, slots, pollers...).
- `OTEL_ENABLED=1` adds `TracingInterceptor` to the client (and so to the workers built on
  it): starting a workflow, running it and each activity become spans of one trace,
  continuing the span that was current when the client call was made (the console's
  request span). Spans go to the process's tracer provider: one set up here (OTLP when
  `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else stderr) unless the process set its own.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = logging.getLogger("estuary.telemetry")

_ADDRESS_RE = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")
_provider_lock = threading.Lock()


class TelemetrySettingError(ValueError):
    """A telemetry setting is malformed or cannot be used (e.g. the port is taken)."""


def parse_metrics_address(raw: str) -> str:
    """`host:port` checked (port 0-65535); raises TelemetrySettingError naming the setting."""
    match = _ADDRESS_RE.match(raw.strip())
    if not match or int(match.group("port")) > 65535:
        raise TelemetrySettingError(f"WORKER_METRICS_ADDRESS must look like host:port, got {raw!r}")
    return raw.strip()


def worker_runtime(config: Mapping[str, Any]) -> Runtime | None:
    """A Runtime exporting the SDK's metrics to Prometheus, or None when not configured.

    One per worker process: the exporter binds its port when the Runtime is created.
    """
    raw = str(config.get("WORKER_METRICS_ADDRESS") or "")
    if not raw:
        return None
    address = parse_metrics_address(raw)
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as exc:  # the SDK's words, e.g. "Address already in use"
        raise TelemetrySettingError(f"WORKER_METRICS_ADDRESS={address}: {exc}") from exc
    log.info("worker metrics on http://%s/metrics", address)
    return runtime


def tracing_enabled(config: Mapping[str, Any]) -> bool:
    return bool(config.get("OTEL_ENABLED"))


def ensure_tracer_provider(service_name: str) -> None:
    """Install an SDK tracer provider unless the process already has one (tests, or an
    operator's own OpenTelemetry setup)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _provider_lock:
        if isinstance(trace.get_tracer_provider(), TracerProvider):
            return
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(_span_exporter()))
        trace.set_tracer_provider(provider)


def _span_exporter() -> Any:
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise TelemetrySettingError(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed: "
                "pip install opentelemetry-exporter-otlp-proto-http"
            ) from exc
        return OTLPSpanExporter()
    import sys

    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter(out=sys.stderr)


def client_interceptors(config: Mapping[str, Any]) -> list[Any]:
    """The client interceptors tracing needs (none when OTEL_ENABLED is off)."""
    if not tracing_enabled(config):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    ensure_tracer_provider(str(config.get("OTEL_SERVICE_NAME") or "estuary-ops"))
    return [TracingInterceptor()]
