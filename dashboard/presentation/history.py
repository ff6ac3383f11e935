"""A run's timeline, summarised on the server from its history events.

The run detail page reads the history in pages and feeds every event to a
`TimelineBuilder`; the page shows the summary (activities with attempts, durations and
last failure; timers with their fire times; signals and updates with their sender; child
workflows) instead of the raw events, so a 20,000-event history renders as a few hundred
rows. The raw events stay behind a paginated view and a JSON download.

Pure code over Temporal's protobuf history events: no HTTP, no client calls.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType

# How many timeline entries the page shows at most: the first HEAD and the last TAIL.
TIMELINE_HEAD = 40
TIMELINE_TAIL = 160
# Longest payload text kept per value (the page folds anything long).
MAX_PAYLOAD_CHARS = 20_000

E = EventType


# --- payloads and failures ---------------------------------------------------------------


def decode_payload(payload: Any) -> Any:
    """A Temporal payload as a Python value (JSON payloads) or a short description."""
    encoding = bytes(payload.metadata.get("encoding", b"")).decode("ascii", "replace")
    data = bytes(payload.data)
    if encoding == "binary/null":
        return None
    if encoding == "json/plain":
        try:
            return json.loads(data)
        except ValueError:
            return data[:MAX_PAYLOAD_CHARS].decode("utf-8", "replace")
    return f"<{len(data)} bytes, encoding {encoding or 'unknown'}>"


def decode_payloads(payloads: Any) -> list[Any]:
    return [decode_payload(p) for p in payloads.payloads] if payloads is not None else []


def payload_text(values: list[Any], *, compact: bool = False) -> str:
    """JSON for display (one value unwrapped), clipped to MAX_PAYLOAD_CHARS.

    `compact` keeps it on one line (signal and update arguments in the timeline)."""
    if not values:
        return ""
    value = values[0] if len(values) == 1 else values
    if compact:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    else:
        text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > MAX_PAYLOAD_CHARS:
        text = text[:MAX_PAYLOAD_CHARS] + f"\n… ({len(text) - MAX_PAYLOAD_CHARS} more characters)"
    return text


@dataclass(frozen=True)
class FailureInfo:
    message: str  # the chain of messages, outermost first
    type: str  # the innermost application error type, or the failure kind
    stack_trace: str = ""
    non_retryable: bool = False


def failure_info(failure: Any) -> FailureInfo | None:
    """A Temporal Failure (with its cause chain) as text fit to show, escaped by Jinja."""
    if failure is None or not failure.ByteSize():
        return None
    messages: list[str] = []
    kind = ""
    stack = ""
    non_retryable = False
    current = failure
    depth = 0
    while current is not None and current.ByteSize() and depth < 20:
        if current.message and current.message not in messages:
            messages.append(current.message)
        which = current.WhichOneof("failure_info") or ""
        if which == "application_failure_info":
            kind = current.application_failure_info.type or "ApplicationError"
            non_retryable = current.application_failure_info.non_retryable
        elif which and not kind:
            kind = which.removesuffix("_failure_info")
        if current.stack_trace:
            stack = current.stack_trace
        current = current.cause if current.HasField("cause") else None
        depth += 1
    return FailureInfo(": ".join(messages) or "(no message)", kind, stack[:5000], non_retryable)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(event: Any) -> datetime:
    # Arithmetic on the Timestamp's fields: a third of the cost of Timestamp.ToDatetime.
    ts = event.event_time
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def _duration(proto_duration: Any) -> timedelta | None:
    if proto_duration is None or not proto_duration.ByteSize():
        return None
    return proto_duration.ToTimedelta()


def _actor(args: list[Any]) -> str | None:
    first = args[0] if args else None
    if isinstance(first, dict):
        actor = first.get("actor")
        if isinstance(actor, str) and actor:
            return actor
    return None


# --- timeline rows -----------------------------------------------------------------------


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
    event_id: int
    name: str
    received_at: datetime
    sender: str
    identity: str
    args: str

    kind = "signal"

    @property
    def at(self) -> datetime:
        return self.received_at


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

    def entries(self, head: int = TIMELINE_HEAD, tail: int = TIMELINE_TAIL) -> list[Any]:
        """Every row in time order; past head+tail, the middle is one `Elided` entry."""
        rows: list[Any] = [
            *self.marks,
            *self.activities,
            *self.timers,
            *self.signals,
            *self.updates,
            *self.children,
        ]
        rows.sort(key=lambda r: (r.at, r.event_id))
        if len(rows) <= head + tail:
            return rows
        middle = rows[head : len(rows) - tail]
        by_kind = Counter(r.kind for r in middle)
        return [*rows[:head], Elided(len(middle), dict(by_kind)), *rows[len(rows) - tail :]]

    @property
    def pending_timers(self) -> list[TimerRow]:
        return [t for t in self.timers if t.status == "pending"]


# --- the builder -------------------------------------------------------------------------

_CHILD_CLOSE = {
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: (
        "completed",
        "child_workflow_execution_completed_event_attributes",
    ),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: (
        "failed",
        "child_workflow_execution_failed_event_attributes",
    ),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: (
        "canceled",
        "child_workflow_execution_canceled_event_attributes",
    ),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: (
        "timed_out",
        "child_workflow_execution_timed_out_event_attributes",
    ),
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: (
        "terminated",
        "child_workflow_execution_terminated_event_attributes",
    ),
}


class TimelineBuilder:
    """Feed history events in order with `add()` (page by page), then call `finish()`."""

    def __init__(self) -> None:
        self.count = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.input = ""
        self.result: str | None = None
        self.failure: FailureInfo | None = None
        self.close_label: str | None = None
        self.parent: tuple[str, str] | None = None
        self.continued_from: str | None = None
        self.next_run: str | None = None
        self.activities: dict[int, ActivityRow] = {}
        self.timers: dict[str, TimerRow] = {}
        self.timer_rows: list[TimerRow] = []
        self.signals: list[SignalRow] = []
        self.updates: dict[str, UpdateRow] = {}
        self.children: dict[int, ChildRow] = {}
        self.marks: list[MarkRow] = []
        self.wft_failures = 0
        self.last_wft_failure: FailureInfo | None = None
        self.type_counts: Counter[int] = Counter()

    def add_all(self, events: Iterable[Any]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: Any) -> None:
        self.count += 1
        et = event.event_type
        self.type_counts[et] += 1
        at = _time(event)
        if self.first is None:
            self.first = at
        self.last = at
        handler = _HANDLERS.get(et)
        if handler is not None:
            handler(self, event, event.event_id, at)

    # --- one method per kind of event (looked up in _HANDLERS) ---

    def _on_activity_scheduled(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_scheduled_event_attributes
        self.activities[eid] = ActivityRow(
            eid, a.activity_id, a.activity_type.name, a.task_queue.name, at
        )

    def _on_activity_started(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_started_event_attributes
        row = self.activities.get(a.scheduled_event_id)
        if row:
            row.started_at, row.attempts, row.status = at, a.attempt, "started"
            row.worker = a.identity
            row.last_failure = failure_info(a.last_failure) or row.last_failure

    def _on_activity_completed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_completed_event_attributes
        self._close_activity(a.scheduled_event_id, at, "completed", None)

    def _on_activity_failed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_failed_event_attributes
        self._close_activity(a.scheduled_event_id, at, "failed", failure_info(a.failure))

    def _on_activity_timed_out(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_timed_out_event_attributes
        self._close_activity(a.scheduled_event_id, at, "timed_out", failure_info(a.failure))

    def _on_activity_canceled(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_canceled_event_attributes
        self._close_activity(a.scheduled_event_id, at, "canceled", None)

    def _on_timer_started(self, event: Any, eid: int, at: datetime) -> None:
        a = event.timer_started_event_attributes
        delay = _duration(a.start_to_fire_timeout)
        row = TimerRow(eid, a.timer_id, at, at + delay if delay is not None else None)
        self.timers[a.timer_id] = row
        self.timer_rows.append(row)

    def _on_timer_fired(self, event: Any, eid: int, at: datetime) -> None:
        row = self.timers.get(event.timer_fired_event_attributes.timer_id)
        if row:
            row.fired_at, row.status = at, "fired"

    def _on_timer_canceled(self, event: Any, eid: int, at: datetime) -> None:
        row = self.timers.get(event.timer_canceled_event_attributes.timer_id)
        if row:
            row.fired_at, row.status = at, "canceled"

    def _on_signaled(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_signaled_event_attributes
        args = decode_payloads(a.input)
        sender = _actor(args) or a.identity or "unknown"
        if a.HasField("external_workflow_execution"):
            sender = _actor(args) or f"workflow {a.external_workflow_execution.workflow_id}"
        self.signals.append(
            SignalRow(eid, a.signal_name, at, sender, a.identity, payload_text(args, compact=True))
        )

    def _on_update_accepted(self, event: Any, eid: int, at: datetime) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        self._update_requested(request, eid, at)

    def _on_update_admitted(self, event: Any, eid: int, at: datetime) -> None:
        self._update_requested(
            event.workflow_execution_update_admitted_event_attributes.request, eid, at
        )

    def _update_requested(self, request: Any, eid: int, at: datetime) -> None:
        update_id = request.meta.update_id
        if update_id in self.updates:
            return
        args = decode_payloads(request.input.args)
        self.updates[update_id] = UpdateRow(
            eid,
            update_id,
            request.input.name,
            at,
            _actor(args) or request.meta.identity or "unknown",
            request.meta.identity,
            payload_text(args, compact=True),
        )

    def _on_update_completed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_update_completed_event_attributes
        row = self.updates.get(a.meta.update_id)
        if row:
            row.completed_at = at
            if a.outcome.HasField("failure"):
                row.status, row.failure = "failed", failure_info(a.outcome.failure)
            else:
                row.status = "completed"

    def _on_child_initiated(self, event: Any, eid: int, at: datetime) -> None:
        a = event.start_child_workflow_execution_initiated_event_attributes
        self.children[eid] = ChildRow(eid, a.workflow_id, a.workflow_type.name, at)

    def _on_child_start_failed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.start_child_workflow_execution_failed_event_attributes
        row = self.children.get(a.initiated_event_id)
        if row:
            row.status, row.closed_at = "start_failed", at

    def _on_child_started(self, event: Any, eid: int, at: datetime) -> None:
        a = event.child_workflow_execution_started_event_attributes
        row = self.children.get(a.initiated_event_id)
        if row:
            row.run_id, row.started_at, row.status = a.workflow_execution.run_id, at, "running"

    def _on_child_closed(self, event: Any, eid: int, at: datetime) -> None:
        status, attr = _CHILD_CLOSE[event.event_type]
        a = getattr(event, attr)
        row = self.children.get(a.initiated_event_id)
        if row:
            row.status, row.closed_at = status, at
            if hasattr(a, "failure"):
                row.failure = failure_info(a.failure)

    def _on_workflow_task_failed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_task_failed_event_attributes
        self.wft_failures += 1
        self.last_wft_failure = failure_info(a.failure)

    def _on_started(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_started_event_attributes
        self.input = payload_text(decode_payloads(a.input))
        if a.HasField("parent_workflow_execution"):
            p = a.parent_workflow_execution
            self.parent = (p.workflow_id, p.run_id)
        self.continued_from = a.continued_execution_run_id or None
        by = f"by {a.identity}" if a.identity else ""
        self.marks.append(MarkRow(eid, "Workflow started", at, by, "run"))

    def _on_completed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_completed_event_attributes
        self.result = payload_text(decode_payloads(a.result))
        self.close_label = "Completed"
        self.marks.append(MarkRow(eid, "Workflow completed", at, "", "ok"))

    def _on_failed(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_failed_event_attributes
        self.failure = failure_info(a.failure)
        self.close_label = "Failed"
        self.next_run = a.new_execution_run_id or None
        detail = self.failure.message if self.failure else ""
        self.marks.append(MarkRow(eid, "Workflow failed", at, detail, "bad"))

    def _on_timed_out(self, event: Any, eid: int, at: datetime) -> None:
        self.close_label = "TimedOut"
        self.marks.append(MarkRow(eid, "Workflow timed out", at, "", "bad"))

    def _on_cancel_requested(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_cancel_requested_event_attributes
        self.marks.append(MarkRow(eid, "Cancel requested", at, a.identity, "bad"))

    def _on_canceled(self, event: Any, eid: int, at: datetime) -> None:
        self.close_label = "Canceled"
        self.marks.append(MarkRow(eid, "Workflow canceled", at, "", "bad"))

    def _on_terminated(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_terminated_event_attributes
        self.close_label = "Terminated"
        detail = f"{a.reason} (by {a.identity})" if a.identity else a.reason
        self.marks.append(MarkRow(eid, "Workflow terminated", at, detail, "bad"))

    def _on_continued_as_new(self, event: Any, eid: int, at: datetime) -> None:
        a = event.workflow_execution_continued_as_new_event_attributes
        self.close_label = "ContinuedAsNew"
        self.next_run = a.new_execution_run_id or None
        self.marks.append(MarkRow(eid, "Continued as new", at, "", "ok"))

    def _on_signal_sent(self, event: Any, eid: int, at: datetime) -> None:
        a = event.signal_external_workflow_execution_initiated_event_attributes
        detail = f"{a.signal_name} to {a.workflow_execution.workflow_id}"
        self.marks.append(MarkRow(eid, "Signal sent", at, detail, ""))

    def _close_activity(
        self, scheduled_id: int, at: datetime, status: str, failure: FailureInfo | None
    ) -> None:
        row = self.activities.get(scheduled_id)
        if row is None:
            return
        row.closed_at, row.status = at, status
        if failure is not None:
            row.last_failure = failure

    def finish(self) -> Timeline:
        activities = list(self.activities.values())
        signals = self.signals
        return Timeline(
            event_count=self.count,
            first_event_at=self.first,
            last_event_at=self.last,
            input=self.input,
            result=self.result,
            failure=self.failure,
            close_label=self.close_label,
            parent_workflow_id=self.parent[0] if self.parent else None,
            parent_run_id=self.parent[1] if self.parent else None,
            continued_from_run_id=self.continued_from,
            next_run_id=self.next_run,
            activities=activities,
            timers=self.timer_rows,
            signals=signals,
            updates=list(self.updates.values()),
            children=list(self.children.values()),
            marks=self.marks,
            activity_stats=_activity_stats(activities),
            signal_stats=_signal_stats(signals),
            workflow_task_failures=self.wft_failures,
            last_workflow_task_failure=self.last_wft_failure,
            event_type_counts={_event_type_label(k): v for k, v in self.type_counts.most_common()},
        )


# Event type -> the builder's method for it: a table rather than an if-chain, whose
# protobuf enum lookups cost more than the rest of the summary on long histories.
_B = TimelineBuilder
_HANDLERS: dict[int, Any] = {
    E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: _B._on_activity_scheduled,
    E.EVENT_TYPE_ACTIVITY_TASK_STARTED: _B._on_activity_started,
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: _B._on_activity_completed,
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: _B._on_activity_failed,
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: _B._on_activity_timed_out,
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: _B._on_activity_canceled,
    E.EVENT_TYPE_TIMER_STARTED: _B._on_timer_started,
    E.EVENT_TYPE_TIMER_FIRED: _B._on_timer_fired,
    E.EVENT_TYPE_TIMER_CANCELED: _B._on_timer_canceled,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: _B._on_signaled,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: _B._on_update_accepted,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED: _B._on_update_admitted,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: _B._on_update_completed,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: _B._on_child_initiated,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: _B._on_child_start_failed,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: _B._on_child_started,
    **dict.fromkeys(_CHILD_CLOSE, _B._on_child_closed),
    E.EVENT_TYPE_WORKFLOW_TASK_FAILED: _B._on_workflow_task_failed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: _B._on_started,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: _B._on_completed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: _B._on_failed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: _B._on_timed_out,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: _B._on_cancel_requested,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: _B._on_canceled,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: _B._on_terminated,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: _B._on_continued_as_new,
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: _B._on_signal_sent,
}


def _event_type_label(value: int) -> str:
    try:
        raw = E.Name(value)
    except ValueError:
        return str(value)
    return "".join(p.capitalize() for p in raw.removeprefix("EVENT_TYPE_").split("_"))


def _activity_stats(rows: list[ActivityRow]) -> list[TypeStats]:
    stats: dict[str, TypeStats] = {}
    for row in rows:
        s = stats.setdefault(row.activity_type, TypeStats(row.activity_type))
        s.count += 1
        if row.status in ("failed", "timed_out"):
            s.failed += 1
        if row.attempts > 1:
            s.retried += 1
        if row.duration is not None:
            s.total_seconds += row.duration.total_seconds()
            s.timed += 1
        s.last_at = row.scheduled_at
    return sorted(stats.values(), key=lambda s: (-s.count, s.name))


def _signal_stats(rows: list[SignalRow]) -> list[TypeStats]:
    stats: dict[str, TypeStats] = {}
    for row in rows:
        s = stats.setdefault(row.name, TypeStats(row.name))
        s.count += 1
        s.last_at = row.received_at
        s.last_sender = row.sender
    return sorted(stats.values(), key=lambda s: (-s.count, s.name))


def summarise(events: Iterable[Any]) -> Timeline:
    builder = TimelineBuilder()
    builder.add_all(events)
    return builder.finish()
