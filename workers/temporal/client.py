"""Connecting to Temporal: address, namespace, TLS and API-key settings from config."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from workers.temporal import telemetry
from workers.temporal.codec import data_converter


class TemporalUnreachable(RuntimeError):
    """The Temporal server did not answer within the connect timeout."""


def _tls(config: Mapping[str, Any]) -> TLSConfig | bool:
    if not config.get("TEMPORAL_TLS"):
        return False
    cert, key = config.get("TEMPORAL_TLS_CLIENT_CERT"), config.get("TEMPORAL_TLS_CLIENT_KEY")
    if cert and key:
        return TLSConfig(
            client_cert=Path(cert).read_bytes(), client_private_key=Path(key).read_bytes()
        )
    return True


async def connect(
    config: Mapping[str, Any], *, identity: str | None = None, runtime: Runtime | None = None
) -> Client:
    """Connect using the app config; fail within TEMPORAL_CONNECT_TIMEOUT seconds.

    `runtime` carries the worker's metrics exporter (`telemetry.worker_runtime`); tracing
    interceptors are added when OTEL_ENABLED is on. The client carries our data converter
    (payload encryption when keys are configured), so every value it sends or reads goes
    through the same codec.
    """
    address = config["TEMPORAL_ADDRESS"]
    timeout = float(config.get("TEMPORAL_CONNECT_TIMEOUT", 3))
    kwargs: dict[str, Any] = {
        "namespace": config.get("TEMPORAL_NAMESPACE", "default"),
        "tls": _tls(config),
        "data_converter": data_converter(config),
    }
    if config.get("TEMPORAL_API_KEY"):
        kwargs["api_key"] = config["TEMPORAL_API_KEY"]
    if identity:
        kwargs["identity"] = identity
    if runtime is not None:
        kwargs["runtime"] = runtime
    interceptors = telemetry.client_interceptors(config)
    if interceptors:
        kwargs["interceptors"] = interceptors
    try:
        return await asyncio.wait_for(Client.connect(address, **kwargs), timeout)
    except (TimeoutError, RuntimeError, OSError) as exc:
        raise TemporalUnreachable(
            f"Temporal at {address} is not reachable ({type(exc).__name__}: {exc})"
        ) from exc
