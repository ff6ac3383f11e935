"""Workers: each domain's task queue, the workers polling it, and whether any is live;
below, every worker process's heartbeat (host, pid, queues, build id, slots in use)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Blueprint, render_template

from dashboard.gateway_calls import temporal
from dashboard.permissions import require
from estuary.contracts import catalogue
from estuary.services.worker_heartbeats import worker_processes
from temporal_gateway.access import gateway
from temporal_gateway.gateway import Poller

bp = Blueprint("workers_page", __name__, url_prefix="/workers")

# A poller seen within this window counts as a live worker (Temporal forgets pollers it
# has not seen for about five minutes anyway).
LIVE_WITHIN = timedelta(minutes=2)


@dataclass(frozen=True)
class QueueStatus:
    domain: str
    task_queue: str
    pollers: list[Poller] | None  # None: Temporal could not be asked

    @property
    def known(self) -> bool:
        return self.pollers is not None

    @property
    def live(self) -> bool:
        if not self.pollers:
            return False
        cutoff = datetime.now(UTC) - LIVE_WITHIN
        return any(p.last_access_time is None or p.last_access_time >= cutoff for p in self.pollers)

    def kinds(self) -> set[str]:
        return {p.kind for p in self.pollers or []}


def queue_statuses() -> dict[str, QueueStatus]:
    """Every registered domain's task queue with its pollers: one call per domain."""
    gw = gateway()
    out: dict[str, QueueStatus] = {}
    for name in catalogue.domains():
        queue = gw.task_queue(name)
        pollers = temporal(gw.task_queue_pollers, queue)
        out[name] = QueueStatus(name, queue, pollers)
    return out


@bp.get("")
@require("view")
def index():
    processes = worker_processes()
    # Heartbeats answer "is anything serving this queue" even when Temporal cannot be asked.
    live_processes = Counter(
        queue for p in processes if p.state == "live" for queue in p.task_queues
    )
    return render_template(
        "workers/index.html",
        queues=list(queue_statuses().values()),
        processes=processes,
        live_processes=live_processes,
    )
