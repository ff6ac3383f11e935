"""The gateway's Prometheus metrics: every Temporal call it makes, by RPC and outcome
(the console's `/metrics` exports them with its own, `dashboard.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TEMPORAL_CALLS = Counter(
    "estuary_console_temporal_calls",
    "Temporal calls made by the console gateway, by RPC and outcome.",
    ["rpc", "outcome"],
)
TEMPORAL_CALL_SECONDS = Histogram(
    "estuary_console_temporal_call_duration_seconds",
    "Latency of the console gateway's Temporal calls.",
    ["rpc"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_temporal_call(rpc: str, outcome: str, seconds: float) -> None:
    """Count one gateway call (called by `TemporalGateway.run`)."""
    TEMPORAL_CALLS.labels(rpc=rpc, outcome=outcome).inc()
    TEMPORAL_CALL_SECONDS.labels(rpc=rpc).observe(seconds)
