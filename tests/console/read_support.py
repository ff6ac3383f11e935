"""Helpers for the read-side console tests (plain functions, so they do not clash with
fixtures other console tests define)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask
from temporalio.client import Client, WorkflowHandle

from estuary.contracts.search_attributes import run_attributes
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway
from tests.conftest import make_user
from tests.console.read_workflows import QUEUE, ReadSideTestWorkflow, ReadTestInput

PASSWORD = "correct horse battery"


def login(app: Flask, role: str = "viewer", email: str | None = None):
    """A test client signed in as a new staff user with `role`."""
    app.config["WTF_CSRF_ENABLED"] = False
    user = make_user(app, role, email=email or f"{role}-{uuid.uuid4().hex[:6]}@test.local")
    client = app.test_client()
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


class CountingGateway(TemporalGateway):
    """A real gateway that counts every call it makes to Temporal (all go through run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def run(self, fn: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        return super().run(fn, timeout)


def counting_gateway_for(app: Flask, env: Any, prefix: str) -> CountingGateway:
    gw = CountingGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        }
    )
    set_gateway(app, gw)
    return gw


def unreachable_gateway(app: Flask) -> TemporalGateway:
    """A gateway pointed at a closed port: every call fails as TemporalUnavailable."""
    gw = TemporalGateway(
        {**app.config, "TEMPORAL_ADDRESS": "127.0.0.1:9", "TEMPORAL_CONNECT_TIMEOUT": 2}
    )
    set_gateway(app, gw)
    return gw


async def start_read_test(
    client: Client,
    prefix: str,
    inp: ReadTestInput,
    *,
    workflow_id: str | None = None,
    entity_id: str = "1",
    entity_type: str = "readtest",
    memo: dict | None = None,
) -> WorkflowHandle:
    return await client.start_workflow(
        ReadSideTestWorkflow.run,
        inp,
        id=workflow_id or f"readtest-{uuid.uuid4().hex[:10]}",
        task_queue=f"{prefix}{QUEUE}",
        search_attributes=run_attributes("payments", entity_type, entity_id, "tests"),
        memo=memo or {"triggered_by": "tests", "reason": "read-side test"},
    )


async def get(client, url: str):
    """The sync Flask client from async tests, off the event loop (workers keep running)."""
    return await asyncio.to_thread(lambda: client.get(url, buffered=True))


async def eventually(check: Callable[[], Any], seconds: float = 15, every: float = 0.25) -> Any:
    """Poll `check` (sync, run in a thread) until it returns something truthy."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met in {seconds}s (last: {last!r})")
