"""OpenTelemetry tracing (OTEL_ENABLED): one trace from the console request that starts a
workflow, through the workflow run, to its activity. Real console view, real gateway,
real worker on the time-skipping server; spans read from an in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client

from temporal_gateway.telemetry import client_interceptors
from tests.conftest import gateway_for, running_workers
from tests.console.write_support import audit_events, login

WORKFLOW = "LedgerReconciliationWorkflow"


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """The process's tracer provider (set once) exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()


def test_tracing_is_off_by_default(app):
    assert app.config["OTEL_ENABLED"] is False
    assert client_interceptors(app.config) == []


async def test_one_trace_from_console_request_to_activity(app, time_env, spans):
    app.config["OTEL_ENABLED"] = True
    worker_client = Client(
        **{**time_env.client.config(), "interceptors": client_interceptors(app.config)}
    )
    client, _user = login(app, "operator")
    async with running_workers(worker_client, app, ["payments"]) as prefix:
        gateway_for(app, time_env, prefix)
        response = await asyncio.to_thread(
            client.post,
            f"/workflows/{WORKFLOW}/start",
            # no `requested_by`: a server-filled field is refused (the user is filled in)
            data={"action_reason": "trace check", "confirmed": "yes"},
        )
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:400]
        (event,) = [e for e in audit_events(app, action="catalog.start") if e.outcome == "success"]
        workflow_id = event.target.removeprefix("workflow:")
        result = await time_env.client.get_workflow_handle(workflow_id).result()
    assert result["balanced"] is True

    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    request_span = by_name["POST /workflows/<name>/start"]
    assert request_span.kind == SpanKind.SERVER
    assert request_span.attributes["http.response.status_code"] == response.status_code
    chain = [
        f"StartWorkflow:{WORKFLOW}",
        f"RunWorkflow:{WORKFLOW}",
        "StartActivity:check_ledger_balanced",
        "RunActivity:check_ledger_balanced",
    ]
    missing = [name for name in chain if name not in by_name]
    assert not missing, f"missing spans {missing}; got {sorted(by_name)}"
    trace_ids = {by_name[name].context.trace_id for name in chain}
    assert trace_ids == {request_span.context.trace_id}
    # The gateway's start is a child of the request span, not a new root.
    assert by_name[f"StartWorkflow:{WORKFLOW}"].parent.span_id == request_span.context.span_id


def test_otlp_endpoint_without_the_exporter_package_is_a_clear_error(monkeypatch):
    from temporal_gateway import telemetry

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        with pytest.raises(
            telemetry.TelemetrySettingError, match="pip install opentelemetry-exporter-otlp"
        ):
            telemetry._span_exporter()
    else:
        assert type(telemetry._span_exporter()).__name__ == "OTLPSpanExporter"


def test_without_an_endpoint_spans_go_to_stderr(monkeypatch):
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from temporal_gateway import telemetry

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert isinstance(telemetry._span_exporter(), ConsoleSpanExporter)
