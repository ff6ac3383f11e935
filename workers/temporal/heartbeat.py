"""The worker process's heartbeat: a row in the app database rewritten every
WORKER_HEARTBEAT_SECONDS (host, pid, task queues, build id, activity slots in use), read by
the console's Workers page. Temporal's own poller list says a queue is polled; the
heartbeat says which process, which code, and how busy it is."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

from flask import Flask
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from estuary.services import worker_heartbeats

log = logging.getLogger("estuary.worker")


def process_identity() -> str:
    """`pid@host`: the identity Temporal shows for this process's pollers."""
    return f"{os.getpid()}@{socket.gethostname()}"


class ActivitySlots(Interceptor):
    """Counts the activities this process is running right now (all its workers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._in_use

    def _change(self, delta: int) -> None:
        with self._lock:
            self._in_use += delta

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountingActivityInbound(next, self)


class _CountingActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, slots: ActivitySlots) -> None:
        super().__init__(next)
        self._slots = slots

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        self._slots._change(1)
        try:
            return await super().execute_activity(input)
        finally:
            self._slots._change(-1)


def build_id_of(worker: Worker) -> str | None:
    """The build id the worker is versioned under (its deployment version, or an explicit
    build id); None for an unversioned worker."""
    config = worker.config()
    deployment = config.get("deployment_config")
    if deployment is not None:
        return deployment.version.build_id
    return config.get("build_id") or None


class HeartbeatWriter:
    """Writes this process's heartbeat row until told to stop, then marks it stopped."""

    def __init__(
        self,
        app: Flask,
        *,
        identity: str,
        task_queues: Sequence[str],
        build_id: str | None,
        slots: ActivitySlots,
        max_slots: int,
        interval_seconds: int,
    ) -> None:
        self.app = app
        self.identity = identity
        self.task_queues = tuple(task_queues)
        self.build_id = build_id
        self.slots = slots
        self.max_slots = max_slots
        self.interval_seconds = max(1, interval_seconds)
        self.beats = 0

    def _beat(self) -> worker_heartbeats.Beat:
        return worker_heartbeats.Beat(
            identity=self.identity,
            host=socket.gethostname(),
            pid=os.getpid(),
            task_queues=self.task_queues,
            build_id=self.build_id,
            activity_slots_used=self.slots.in_use,
            activity_slots_max=self.max_slots,
            interval_seconds=self.interval_seconds,
        )

    def _write(self, started: bool) -> None:
        with self.app.app_context():
            worker_heartbeats.record_beat(self._beat(), started=started)

    def _write_stop(self) -> None:
        with self.app.app_context():
            worker_heartbeats.record_stop(self.identity)

    async def beat_once(self, *, started: bool = False) -> bool:
        """One write; a failure (database locked or down) is one warning line, and the
        next beat tries again."""
        try:
            await asyncio.to_thread(self._write, started)
        except Exception as exc:
            log.warning("worker heartbeat not written: %s: %s", type(exc).__name__, exc)
            return False
        self.beats += 1
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await self.beat_once(started=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval_seconds)
            except TimeoutError:
                await self.beat_once()
        try:
            await asyncio.to_thread(self._write_stop)
        except Exception as exc:
            log.warning("worker heartbeat stop not written: %s: %s", type(exc).__name__, exc)
