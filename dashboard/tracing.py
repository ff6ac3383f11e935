"""OpenTelemetry spans for console requests (when OTEL_ENABLED): one SERVER span per
request, current while the view runs, so the gateway's Temporal calls (traced by
temporalio.contrib.opentelemetry, see temporal_gateway.telemetry) become its children and
a click's trace runs from the request through the workflow to its activities. A W3C
`traceparent` header from a proxy is continued."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACER_NAME = "estuary.console"


def init_request_tracing(app: Flask) -> None:
    if app.config.get("OTEL_ENABLED"):
        from temporal_gateway.telemetry import ensure_tracer_provider

        # At start, so an exporter that cannot be set up stops the console here and not
        # on every request.
        ensure_tracer_provider(_service_name(app))

    @app.before_request
    def start_request_span() -> None:
        if not app.config.get("OTEL_ENABLED") or request.endpoint == "static":
            return
        from temporal_gateway.telemetry import ensure_tracer_provider

        ensure_tracer_provider(_service_name(app))
        route = request.url_rule.rule if request.url_rule else "unmatched"
        span = trace.get_tracer(TRACER_NAME).start_span(
            f"{request.method} {route}",
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "http.route": route,
                "url.path": request.path,
                "estuary.request_id": g.get("request_id", ""),
            },
        )
        g.otel_span = span
        g.otel_token = context.attach(trace.set_span_in_context(span))

    @app.after_request
    def record_status(response: Any) -> Any:
        span = g.get("otel_span")
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    @app.teardown_request
    def end_request_span(exc: BaseException | None) -> None:
        span = g.pop("otel_span", None)
        token = g.pop("otel_token", None)
        if span is None:
            return
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        if token is not None:
            context.detach(token)


def _service_name(app: Flask) -> str:
    return str(app.config.get("OTEL_SERVICE_NAME") or "estuary-ops")
