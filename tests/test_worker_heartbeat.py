"""Worker heartbeats: the live/stale/stopped rule, the rows a process writes, the Workers
page that shows them, and the activity-slot count a heartbeat reports."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio import activity, workflow
from temporalio.worker import Worker

from estuary.db import db
from estuary.models import WorkerHeartbeat
from estuary.services import worker_heartbeats
from estuary.services.worker_liveness import heartbeat_state
from tests.console.read_support import login, unreachable_gateway
from workers.temporal.heartbeat import ActivitySlots, HeartbeatWriter

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age_seconds", "stopped", "state"),
    [(0, False, "live"), (45, False, "live"), (46, False, "stale"), (5, True, "stopped")],
)
def test_heartbeat_state(age_seconds, stopped, state):
    last = NOW - timedelta(seconds=age_seconds)
    stopped_at = NOW if stopped else None
    # Interval 15 s: up to two missed beats (45 s) is still live.
    assert heartbeat_state(last, stopped_at, 15, NOW) == state


def beat(identity: str = "123@worker-a", **overrides) -> worker_heartbeats.Beat:
    values = {
        "identity": identity,
        "host": "worker-a",
        "pid": 123,
        "task_queues": ("payments", "bookings"),
        "build_id": "build-2026-12-01",
        "activity_slots_used": 3,
        "activity_slots_max": 40,
        "interval_seconds": 15,
        **overrides,
    }
    return worker_heartbeats.Beat(**values)


def test_beats_refresh_one_row_and_a_clean_stop_is_kept(app):
    with app.app_context():
        worker_heartbeats.record_beat(beat(), now=NOW, started=True)
        worker_heartbeats.record_beat(beat(activity_slots_used=7), now=NOW + timedelta(seconds=15))
        assert db.session.scalar(select(func.count(WorkerHeartbeat.id))) == 1
        (proc,) = worker_heartbeats.worker_processes(now=NOW + timedelta(seconds=20))
        assert (proc.state, proc.activity_slots_used, proc.task_queues) == (
            "live",
            7,
            ("payments", "bookings"),
        )
        assert proc.started_at == NOW and proc.last_beat_at == NOW + timedelta(seconds=15)
        worker_heartbeats.record_stop("123@worker-a", now=NOW + timedelta(seconds=21))
        (proc,) = worker_heartbeats.worker_processes(now=NOW + timedelta(days=0, seconds=30))
        assert (proc.state, proc.activity_slots_used) == ("stopped", 0)
        # Started again under the same identity: live, with a new start time.
        worker_heartbeats.record_beat(beat(), now=NOW + timedelta(minutes=5), started=True)
        (proc,) = worker_heartbeats.worker_processes(now=NOW + timedelta(minutes=5))
        assert proc.state == "live" and proc.started_at == NOW + timedelta(minutes=5)


def test_processes_silent_for_a_day_are_forgotten(app):
    with app.app_context():
        worker_heartbeats.record_beat(beat("1@old-host"), now=NOW - timedelta(days=2))
        worker_heartbeats.record_beat(beat("2@recent-host"), now=NOW - timedelta(hours=3))
        worker_heartbeats.record_beat(beat("3@this-host"), now=NOW)
        identities = {p.identity for p in worker_heartbeats.worker_processes(now=NOW)}
    assert identities == {"2@recent-host", "3@this-host"}


def test_workers_page_shows_live_stale_and_stopped_processes(app):
    now = datetime.now(UTC)
    with app.app_context():
        worker_heartbeats.record_beat(beat("10@live-host", host="live-host"), now=now)
        worker_heartbeats.record_beat(
            beat("11@stale-host", host="stale-host", build_id=None),
            now=now - timedelta(minutes=5),
        )
        worker_heartbeats.record_beat(beat("12@gone-host"), now=now - timedelta(minutes=1))
        worker_heartbeats.record_stop("12@gone-host", now=now)
    unreachable_gateway(app)  # the heartbeats come from the database, not Temporal
    html = login(app).get("/workers").get_data(as_text=True)
    section = html.split('data-testid="worker-processes"')[1]

    def row(identity: str) -> str:
        return section.split(f'data-testid="process-{identity}"')[1].split("</tr>")[0]

    assert ">live<" in row("10@live-host")
    assert "payments, bookings" in row("10@live-host")
    assert "build-2026-12-01" in row("10@live-host") and "3 of 40" in row("10@live-host")
    assert ">stale<" in row("11@stale-host") and "unversioned" in row("11@stale-host")
    assert ">stopped<" in row("12@gone-host")
    # Per queue: the live processes serving it, known from heartbeats alone.
    payments = html.split('data-testid="queue-payments"')[1].split("</section>")[0]
    assert "1 live worker process by heartbeat" in payments
    assert "unknown" in payments  # Temporal itself could not be asked
    practitioners = html.split('data-testid="queue-practitioners"')[1].split("</section>")[0]
    assert "0 live worker processes by heartbeat" in practitioners


def test_workers_page_without_heartbeats_says_how_to_start_one(app):
    unreachable_gateway(app)
    html = login(app).get("/workers").get_data(as_text=True)
    assert "No worker process has written a heartbeat yet" in html


# --- the writer and the slot count, against the time-skipping server ----------------------

_release = threading.Event()
_entered = threading.Event()


@activity.defn(name="heartbeat_test_hold")
def hold_slot() -> str:
    _entered.set()
    _release.wait(30)
    return "released"


# Not sandboxed: the sandbox would re-import this test module and with it the whole app;
# the workflow itself only runs one activity.
@workflow.defn(name="HeartbeatTestWorkflow", sandboxed=False)
class HeartbeatTestWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "heartbeat_test_hold", start_to_close_timeout=timedelta(seconds=60)
        )


def _row(app, identity: str) -> WorkerHeartbeat | None:
    with app.app_context():
        row = db.session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.identity == identity))
        if row is not None:
            db.session.expunge(row)
        return row


async def test_heartbeat_reports_activity_slots_in_use(app, time_env):
    _release.clear()
    _entered.clear()
    slots = ActivitySlots()
    queue = f"heartbeat-{uuid.uuid4().hex[:8]}"
    identity = f"test-{uuid.uuid4().hex[:8]}@here"
    writer = HeartbeatWriter(
        app,
        identity=identity,
        task_queues=[queue],
        build_id=None,
        slots=slots,
        max_slots=5,
        interval_seconds=3600,  # beats are driven by hand below
    )
    executor = ThreadPoolExecutor(max_workers=5)
    async with Worker(
        time_env.client,
        task_queue=queue,
        workflows=[HeartbeatTestWorkflow],
        activities=[hold_slot],
        activity_executor=executor,
        max_concurrent_activities=5,
        interceptors=[slots],
    ):
        handle = await time_env.client.start_workflow(
            HeartbeatTestWorkflow.run, id=f"heartbeat-test-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        assert await asyncio.to_thread(_entered.wait, 30)
        assert await writer.beat_once(started=True)
        row = _row(app, identity)
        assert row is not None
        assert (row.activity_slots_used, row.activity_slots_max, row.task_queues) == (1, 5, queue)
        _release.set()
        assert await handle.result() == "released"
        assert await writer.beat_once()
        assert _row(app, identity).activity_slots_used == 0
    executor.shutdown(wait=False)


async def test_writer_beats_at_start_and_marks_the_stop(app):
    identity = f"test-{uuid.uuid4().hex[:8]}@here"
    writer = HeartbeatWriter(
        app,
        identity=identity,
        task_queues=["payments"],
        build_id="b1",
        slots=ActivitySlots(),
        max_slots=20,
        interval_seconds=3600,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    while writer.beats == 0 and not task.done():
        await asyncio.sleep(0.01)
    row = _row(app, identity)
    assert row is not None and row.stopped_at is None and row.build_id == "b1"
    stop.set()
    await asyncio.wait_for(task, 30)
    assert _row(app, identity).stopped_at is not None
