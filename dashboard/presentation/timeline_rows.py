"""The rows of a run's timeline (activities, timers, signals, updates, children,
workflow-level marks), per-type statistics and the `Timeline` that holds them, as the
run detail page shows them. `dashboard.presentation.history` builds them from events.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from temporalio.api.common.v1 import Payloads

from dashboard.presentation.history_values import (
    FailureInfo,
    actor_in,
    decode_payloads,
    payload_text,
)

# How many timeline entries the page shows at most: the first HEAD and the last TAIL.
TIMELINE_HEAD = 40
TIMELINE_TAIL = 160


@dataclass
class ActivityRow:
    event_id: int
    activity_id: str
    activity_type: str
    task_queue: str
    scheduled_at: datetime
    started_at: datetime | None = None
    closed_at: datetime | None = None
    attempts: int = 0
    status: str = "scheduled"  # scheduled/started/completed/failed/timed_out/canceled
    last_failure: FailureInfo | None = None
    worker: str = ""

    kind = "activity"

    @property
    def at(self) -> datetime:
        return self.scheduled_at

    @property
    def duration(self) -> timedelta | None:
        """The last attempt's run time."""
        if self.started_at and self.closed_at:
            return self.closed_at - self.started_at
        return None

    @property
    def total(self) -> timedelta | None:
        """From scheduling to the end, retries and backoff included."""
        return self.closed_at - self.scheduled_at if self.closed_at else None


@dataclass
class TimerRow:
    event_id: int
    timer_id: str
    started_at: datetime
    fire_at: datetime | None
    fired_at: datetime | None = None
    status: str = "pending"  # pending/fired/canceled

    kind = "timer"

    @property
    def at(self) -> datetime:
        return self.started_at


@dataclass
class SignalRow:
    """One signal received. Its arguments are decoded only when shown: a long history
    holds thousands of signals and the page shows a few of them."""

    event_id: int
    name: str
    received_at: datetime
    identity: str
    # The signal's Payloads, serialised: a reference to the message itself would keep
    # the whole history page it was parsed from alive in a cached timeline.
    payloads: bytes = field(default=b"", repr=False)
    external_workflow_id: str = ""  # set when another workflow sent it

    kind = "signal"

    @property
    def at(self) -> datetime:
        return self.received_at

    @cached_property
    def _values(self) -> list[Any]:
        return decode_payloads(Payloads.FromString(self.payloads)) if self.payloads else []

    @cached_property
    def sender(self) -> str:
        actor = actor_in(self._values)
        if actor:
            return actor
        if self.external_workflow_id:
            return f"workflow {self.external_workflow_id}"
        return self.identity or "unknown"

    @cached_property
    def args(self) -> str:
        return payload_text(self._values, compact=True)


@dataclass
class UpdateRow:
    event_id: int
    update_id: str
    name: str
    accepted_at: datetime
    sender: str
    identity: str
    args: str
    status: str = "accepted"  # accepted/completed/failed
    completed_at: datetime | None = None
    failure: FailureInfo | None = None

    kind = "update"

    @property
    def at(self) -> datetime:
        return self.accepted_at


@dataclass
class ChildRow:
    event_id: int
    workflow_id: str
    workflow_type: str
    initiated_at: datetime
    run_id: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None
    status: str = "initiated"  # initiated/running/completed/failed/canceled/timed_out/...
    failure: FailureInfo | None = None

    kind = "child"

    @property
    def at(self) -> datetime:
        return self.initiated_at


@dataclass
class MarkRow:
    """A workflow-level moment: started, completed, failed, cancel requested, ..."""

    event_id: int
    label: str
    happened_at: datetime
    detail: str = ""
    tone: str = ""  # ok / bad / run

    kind = "mark"

    @property
    def at(self) -> datetime:
        return self.happened_at


def row_order(row: Any) -> tuple[datetime, int]:
    """Where a row stands in the timeline: its time, then its event id."""
    return (row.at, row.event_id)


@dataclass
class Elided:
    count: int
    by_kind: dict[str, int]

    kind = "elided"


@dataclass
class TypeStats:
    name: str
    count: int = 0
    failed: int = 0
    retried: int = 0
    total_seconds: float = 0.0
    timed: int = 0
    last_at: datetime | None = None
    last_sender: str = ""

    @property
    def average_seconds(self) -> float | None:
        return self.total_seconds / self.timed if self.timed else None


@dataclass
class Timeline:
    event_count: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    input: str
    result: str | None
    failure: FailureInfo | None
    close_label: str | None
    parent_workflow_id: str | None
    parent_run_id: str | None
    continued_from_run_id: str | None
    next_run_id: str | None
    activities: list[ActivityRow]
    timers: list[TimerRow]
    signals: list[SignalRow]
    updates: list[UpdateRow]
    children: list[ChildRow]
    marks: list[MarkRow]
    activity_stats: list[TypeStats]
    signal_stats: list[TypeStats]
    workflow_task_failures: int
    last_workflow_task_failure: FailureInfo | None
    event_type_counts: dict[str, int] = field(default_factory=dict)
    # Every row above in `row_order`, and how many of each kind (the builder keeps them).
    ordered: tuple[Any, ...] = ()
    kind_counts: dict[str, int] = field(default_factory=dict)

    def entries(self, head: int = TIMELINE_HEAD, tail: int = TIMELINE_TAIL) -> list[Any]:
        """Every row in time order; past head+tail, the middle is one `Elided` entry."""
        rows = self.ordered
        if len(rows) <= head + tail:
            return list(rows)
        first, last = rows[:head], rows[len(rows) - tail :]
        by_kind = Counter(self.kind_counts)
        by_kind.subtract(row.kind for row in (*first, *last))
        middle = {kind: n for kind, n in by_kind.items() if n > 0}
        return [*first, Elided(len(rows) - head - tail, middle), *last]

    @property
    def pending_timers(self) -> list[TimerRow]:
        return [t for t in self.timers if t.status == "pending"]
