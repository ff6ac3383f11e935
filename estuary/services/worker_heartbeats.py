"""Worker heartbeats: each worker process rewrites its row every few seconds (host, pid,
task queues, build id, activity slots in use); the Workers page reads them back with their
state from `worker_liveness`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from estuary.db import db
from estuary.models import WorkerHeartbeat
from estuary.models.base import utcnow
from estuary.services.worker_liveness import HeartbeatState, heartbeat_state

# Rows of processes that stopped or went silent this long ago are removed on the next beat.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Beat:
    identity: str
    host: str
    pid: int
    task_queues: tuple[str, ...]
    build_id: str | None
    activity_slots_used: int
    activity_slots_max: int
    interval_seconds: int


@dataclass(frozen=True)
class WorkerProcess(Beat):
    """A worker process as its last beat left it, with when it started, last beat and
    stopped, and its state."""

    started_at: datetime
    last_beat_at: datetime
    stopped_at: datetime | None
    state: HeartbeatState


def record_beat(beat: Beat, *, now: datetime | None = None, started: bool = False) -> None:
    """Write this process's row (insert or refresh) and forget long-gone processes.

    `started` marks the first beat of a run: start time reset, a previous stop cleared.
    """
    now = now or utcnow()
    row = db.session.scalar(
        select(WorkerHeartbeat).where(WorkerHeartbeat.identity == beat.identity)
    )
    if row is None:
        row = WorkerHeartbeat(identity=beat.identity, started_at=now)
        db.session.add(row)
    if started:
        row.started_at = now
        row.stopped_at = None
    row.host = beat.host[:255]
    row.pid = beat.pid
    row.task_queues = ",".join(beat.task_queues)[:1000]
    row.build_id = beat.build_id[:200] if beat.build_id else None
    row.activity_slots_used = beat.activity_slots_used
    row.activity_slots_max = beat.activity_slots_max
    row.interval_seconds = beat.interval_seconds
    row.last_beat_at = now
    db.session.execute(
        delete(WorkerHeartbeat).where(
            WorkerHeartbeat.last_beat_at < now - FORGET_AFTER,
            WorkerHeartbeat.identity != beat.identity,
        )
    )
    db.session.commit()


def record_stop(identity: str, *, now: datetime | None = None) -> None:
    """A clean shutdown: the row stays, shown as stopped rather than stale."""
    row = db.session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.identity == identity))
    if row is not None:
        row.stopped_at = now or utcnow()
        row.activity_slots_used = 0
        db.session.commit()


def worker_processes(now: datetime | None = None) -> list[WorkerProcess]:
    """Every known worker process, most recent beat first, with its state."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_beat_at.desc()).limit(200)
    )
    return [
        WorkerProcess(
            identity=r.identity,
            host=r.host,
            pid=r.pid,
            task_queues=tuple(q for q in r.task_queues.split(",") if q),
            build_id=r.build_id,
            activity_slots_used=r.activity_slots_used,
            activity_slots_max=r.activity_slots_max,
            interval_seconds=r.interval_seconds,
            started_at=r.started_at,
            last_beat_at=r.last_beat_at,
            stopped_at=r.stopped_at,
            state=heartbeat_state(r.last_beat_at, r.stopped_at, r.interval_seconds, now),
        )
        for r in rows
    ]
