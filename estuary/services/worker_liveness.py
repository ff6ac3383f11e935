"""Whether a worker process's heartbeat says it is alive: a pure rule (no Flask, no
database), shared by the Workers page and its tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

HeartbeatState = Literal["live", "stale", "stopped"]

# Beats a worker may miss before it counts as stale: one late write (a slow database, a
# busy event loop) must not flap the page, three in a row mean the process is gone or stuck.
MISSED_BEATS_ALLOWED = 2


def heartbeat_state(
    last_beat_at: datetime,
    stopped_at: datetime | None,
    interval_seconds: int,
    now: datetime,
) -> HeartbeatState:
    """`stopped` after a clean shutdown; `stale` when more than MISSED_BEATS_ALLOWED beats
    are overdue; otherwise `live`."""
    if stopped_at is not None:
        return "stopped"
    allowed = timedelta(seconds=max(interval_seconds, 1) * (MISSED_BEATS_ALLOWED + 1))
    return "live" if now - last_beat_at <= allowed else "stale"
