"""Connecting to Temporal: address, namespace, TLS and API-key settings from config."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from temporal_gateway import telemetry
from temporal_gateway.codec import data_converter


class TemporalUnreachable(RuntimeError):
    """The Temporal server did not answer within the connect timeout."""


def tls_enabled(config: Mapping[str, Any]) -> bool:
    """TEMPORAL_TLS when set; unset, TLS is on whenever an API key is given, so the key is
    never sent in plaintext (`TEMPORAL_TLS=0` with a key is allowed, with a warning)."""
    setting = config.get("TEMPORAL_TLS")
    if setting is None:
        return bool(config.get("TEMPORAL_API_KEY"))
    return bool(setting)


def tls_config(config: Mapping[str, Any]) -> TLSConfig | bool:
    """The client's TLS: off, the system's roots, or a TLSConfig with the client
    certificate (mTLS), a self-hosted cluster's CA and the server name to expect."""
    if not tls_enabled(config):
        return False
    cert, key = config.get("TEMPORAL_TLS_CLIENT_CERT"), config.get("TEMPORAL_TLS_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise ValueError(
            "TEMPORAL_TLS_CLIENT_CERT and TEMPORAL_TLS_CLIENT_KEY must be given together"
        )
    ca, server_name = (
        config.get("TEMPORAL_TLS_SERVER_CA_CERT"),
        config.get("TEMPORAL_TLS_SERVER_NAME"),
    )
    if not (cert or ca or server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=Path(ca).read_bytes() if ca else None,
        domain=server_name or None,
        client_cert=Path(cert).read_bytes() if cert else None,
        client_private_key=Path(key).read_bytes() if key else None,
    )


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
        "tls": tls_config(config),
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
