"""Shared fixtures: app/client/runner/auth (flaskr style), a clean database per test
(SQLite file by default, PostgreSQL when TEST_DATABASE_URL is set), a time-skipping
Temporal environment and a dev-server environment, and workers bound to the test app.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config import TestingConfig
from estuary.contracts.search_attributes import ALL_KEYS
from estuary.db import db
from estuary.logs import EstuaryLogHandler, configure_logging
from estuary.models import StaffUser
from estuary_ops import create_app
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway
from tests import history_recording
from workers.temporal.base_activities import bind_app, bind_client
from workers.temporal.worker import build_worker

BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def _binary(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; run `make test` (it installs the pinned packages)")
    return found


# --- database ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


_schema_ready: set[str] = set()


def _reset_database(url: str) -> None:
    """Create the schema once per session, then empty every table before each test."""
    if url not in _schema_ready:
        db.drop_all()
        db.create_all()
        _schema_ready.add(url)
        return
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
        if _has_sqlite_sequence():
            db.session.execute(text("DELETE FROM sqlite_sequence"))
    db.session.commit()


def _has_sqlite_sequence() -> bool:
    return bool(
        db.session.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
    )


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        _reset_database(database_url)
    bind_app(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["temporal"].close()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def make_user(
    app: Flask, role: str, email: str | None = None, password: str = "correct horse battery"
) -> StaffUser:
    with app.app_context():
        user = StaffUser(email=email or f"{role}@test.local", name=role.title(), role=role)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


# --- Temporal ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server: days of timers pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL_KEYS
            },
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server on a free port, with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


@asynccontextmanager
async def running_workers(
    client: Client, app: Flask, domains: Sequence[str], prefix: str | None = None
) -> AsyncIterator[str]:
    """Run real workers for `domains` on `{prefix}{domain}` queues; yields the prefix."""
    prefix = prefix or unique_prefix()
    recording = history_recording.recording_dir() is not None
    if recording:  # `make record-histories`: note every run these workers execute
        client = history_recording.recording_client(client)
    bind_app(app)
    bind_client(client)
    app.config["TEMPORAL_TASK_QUEUE_PREFIX"] = prefix
    executor = ThreadPoolExecutor(max_workers=20 * len(domains))
    workers: list[Worker] = [
        build_worker(client, d, task_queue=f"{prefix}{d}", executor=executor) for d in domains
    ]
    async with _enter_all(workers):
        yield prefix
        if recording:
            await history_recording.write_recorded(client)
    executor.shutdown(wait=False)


@asynccontextmanager
async def _enter_all(workers: list[Worker]) -> AsyncIterator[None]:
    if not workers:
        yield
        return
    async with workers[0], _enter_all(workers[1:]):
        yield


def gateway_for(app: Flask, env: WorkflowEnvironment, prefix: str = "") -> TemporalGateway:
    """A console gateway with its own client, pointed at a test environment's server."""
    target = env.client.service_client.config.target_host
    gw = TemporalGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": target,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "TEMPORAL_TASK_QUEUE_PREFIX": prefix
            or app.config.get("TEMPORAL_TASK_QUEUE_PREFIX", ""),
        }
    )
    set_gateway(app, gw)
    return gw


# --- logs -------------------------------------------------------------------------------


@pytest.fixture
def log_output(app: Flask) -> Iterator[io.StringIO]:
    """What our root log handler writes, as JSON lines (text format restored afterwards)."""
    configure_logging("INFO", "json")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)
    configure_logging("INFO", "text")


def json_lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
