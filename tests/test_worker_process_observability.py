"""A real `flask start-worker` process: its heartbeat row appears and shows live on the
Workers page, the Temporal SDK's Prometheus metrics are served on WORKER_METRICS_ADDRESS
after it ran a workflow, and a clean SIGTERM leaves the row marked stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from estuary.contracts.payments import LedgerReconciliationInput
from estuary.db import db
from estuary.models import WorkerHeartbeat
from temporal_gateway.codec import new_key_entry
from tests.conftest import gateway_for, unique_prefix
from tests.console.read_support import login

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(predicate, what: str, seconds: float = 30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached in {seconds:.0f} s")
        await asyncio.sleep(0.2)


def heartbeat_row(app, pid: int) -> WorkerHeartbeat | None:
    with app.app_context():
        row = db.session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.pid == pid))
        if row is not None:
            db.session.expunge(row)
        return row


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


async def test_worker_process_heartbeat_and_sdk_metrics(app, local_env, database_url, tmp_path):
    prefix = unique_prefix()
    port = free_port()
    # The worker process encrypts payloads; the test's gateway reads them with the same key.
    app.config["PAYLOAD_KEYS"] = new_key_entry("observability")
    env = {
        **os.environ,
        "FLASK_APP": "estuary_ops",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": local_env.client.namespace,
        "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        "ESTUARY_VAR_DIR": str(tmp_path),
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "PAYLOAD_KEYS": app.config["PAYLOAD_KEYS"],
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [FLASK, "start-worker", "--domains", "payments"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def beating():
            row = await asyncio.to_thread(heartbeat_row, app, proc.pid)
            return row if row is not None and row.stopped_at is None else None

        row = await wait_for(beating, "a heartbeat row")
        assert row.task_queues == f"{prefix}payments"
        assert row.host == socket.gethostname()
        assert row.identity == f"{proc.pid}@{socket.gethostname()}"
        assert (row.activity_slots_used, row.activity_slots_max) == (0, 20)
        assert row.interval_seconds == 1
        first_beat = row.last_beat_at

        async def beat_again():
            again = await asyncio.to_thread(heartbeat_row, app, proc.pid)
            return again if again.last_beat_at > first_beat else None

        await wait_for(beat_again, "a second heartbeat")

        gw = gateway_for(app, local_env, prefix)
        started = await asyncio.to_thread(
            gw.start,
            "LedgerReconciliationWorkflow",
            LedgerReconciliationInput(requested_by="metrics test"),
            triggered_by="test",
            reason="worker metrics",
        )
        result = await asyncio.to_thread(gw.result, started.workflow_id)
        assert result["balanced"] is True

        metrics = await asyncio.to_thread(scrape, port)
        completed = [
            line
            for line in metrics.splitlines()
            if line.startswith("temporal_workflow_completed")
            and 'workflow_type="LedgerReconciliationWorkflow"' in line
        ]
        assert completed and float(completed[0].rsplit(" ", 1)[1]) >= 1, metrics[:2000]
        assert 'activity_type="check_ledger_balanced"' in metrics
        assert f'task_queue="{prefix}payments"' in metrics

        page = login(app).get("/workers").get_data(as_text=True)
        process_row = page.split(f'data-testid="process-{row.identity}"')[1].split("</tr>")[0]
        assert ">live<" in process_row and f"{prefix}payments" in process_row

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 40) == 0, log.read_text()
        stopped = await asyncio.to_thread(heartbeat_row, app, proc.pid)
        assert stopped.stopped_at is not None, log.read_text()
        page = login(app).get("/workers").get_data(as_text=True)
        process_row = page.split(f'data-testid="process-{row.identity}"')[1].split("</tr>")[0]
        assert ">stopped<" in process_row
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
