"""A worker killed mid-workflow (SIGKILL) and started again completes the workflow.

Real processes: `flask start-worker` subprocesses against the Temporal dev server and
the test database. The first worker runs the booking lifecycle to its wait; it is killed;
an update sent while no worker runs is answered by the second worker, which replays the
history and finishes the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from estuary.contracts.bookings import BookingLifecycleInput, CancelArg
from estuary.db import db
from estuary.models import Booking, Client, Practitioner, Service
from temporal_gateway.codec import new_key_entry
from temporal_gateway.gateway import NoWorkerAnswered
from tests.conftest import gateway_for, unique_prefix

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [FLASK, "start-worker", "--domains", "bookings", "--domains", "payments"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _wait_for(predicate, seconds: float = 30.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.3)


async def test_killed_worker_restarts_and_completes_the_run(app, local_env, database_url, tmp_path):
    with app.app_context():
        practitioner = Practitioner(
            name="Kill Test", email="kill@example.com", status="active", accepts_bookings=True
        )
        client = Client(name="Client", email="client@example.com")
        db.session.add_all([practitioner, client])
        db.session.flush()
        service = Service(practitioner_id=practitioner.id, name="Massage", price_cents=9000)
        db.session.add(service)
        db.session.flush()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        booking = Booking(
            client_id=client.id,
            practitioner_id=practitioner.id,
            service_id=service.id,
            start_at=start,
            end_at=start + timedelta(hours=1),
            price_cents=9000,
        )
        db.session.add(booking)
        db.session.commit()
        booking_id = booking.id

    prefix = unique_prefix()
    # The worker process and the test's gateway share a key, as every part of a
    # deployment must (workers encrypt what the gateway reads back).
    app.config["PAYLOAD_KEYS"] = new_key_entry("restart")
    gw = gateway_for(app, local_env, prefix)
    env = {
        **os.environ,
        "FLASK_APP": "estuary_ops",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": local_env.client.namespace,
        "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        "ESTUARY_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "PAYLOAD_KEYS": app.config["PAYLOAD_KEYS"],
    }
    log = tmp_path / "worker.log"
    first = _start_worker(env, log)
    second = None
    try:
        started = await asyncio.to_thread(
            gw.start,
            "BookingLifecycleWorkflow",
            BookingLifecycleInput(booking_id),
            triggered_by="test",
            reason="restart test",
        )

        async def waiting():
            try:
                p = await asyncio.to_thread(gw.query, started.workflow_id, "progress")
            except Exception:
                return None
            return p if p.get("waiting_for") else None

        progress = await _wait_for(waiting)
        assert "confirmation" in " ".join(progress["steps_done"])

        first.send_signal(signal.SIGKILL)
        first.wait(10)

        # Nothing answers while no worker runs: the console gets a clear, typed error.
        with pytest.raises(NoWorkerAnswered):
            await asyncio.to_thread(
                gw.update,
                started.workflow_id,
                "cancel",
                CancelArg(actor="ops@test", reason="client moved away", by="ops"),
            )

        second = _start_worker(env, log)

        # The update the dead worker never saw is still admitted on the server: the new
        # worker replays the history, applies it and completes the run.
        async def closed():
            info = await asyncio.to_thread(gw.describe, started.workflow_id)
            return info if info.status != "Running" else None

        info = await _wait_for(closed, 60)
        assert info.status == "Completed", log.read_text()
        with app.app_context():
            assert db.session.get(Booking, booking_id).status == "cancelled"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
