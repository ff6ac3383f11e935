"""A run's timeline, summarised on the server from its history events.

The run detail page reads the history in pages and feeds every event to a
`TimelineBuilder`; the page shows the summary (activities with attempts, durations and
last failure; timers with their fire times; signals and updates with their sender; child
workflows) instead of the raw events, so a 20,000-event history renders as a few hundred
rows. The raw events stay behind a paginated view and a JSON download.

This module owns the builder (one method per event type, dispatched by a table);
the rows and the `Timeline` are in `dashboard.presentation.timeline_rows`, the decoded
values (payloads, failures, times) in `dashboard.presentation.history_values`.

Pure code over Temporal's protobuf history events: no HTTP, no client calls.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, StartChildWorkflowExecutionFailedCause

from dashboard.presentation.history_values import (
    MAX_PAYLOAD_CHARS,
    FailureInfo,
    actor_in,
    decode_payload,
    decode_payloads,
    duration_of,
    event_time,
    failure_info,
    payload_text,
)
from dashboard.presentation.timeline_rows import (
    TIMELINE_HEAD,
    TIMELINE_TAIL,
    ActivityRow,
    ChildRow,
    Elided,
    MarkRow,
    SignalRow,
    Timeline,
    TimerRow,
    TypeStats,
    UpdateRow,
    row_order,
)

_Cause = StartChildWorkflowExecutionFailedCause
_ALREADY_EXISTS = _Cause.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS

# Names callers import from here (the rows and values live in their own modules).
__all__ = [
    "MAX_PAYLOAD_CHARS",
    "TIMELINE_HEAD",
    "TIMELINE_TAIL",
    "ActivityRow",
    "ChildRow",
    "Elided",
    "FailureInfo",
    "MarkRow",
    "SignalRow",
    "Timeline",
    "TimelineBuilder",
    "TimerRow",
    "TypeStats",
    "UpdateRow",
    "decode_payload",
    "decode_payloads",
    "failure_info",
    "payload_text",
    "summarise",
]

E = EventType


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
        # Signals by name, counted as they arrive (a long history holds thousands).
        self.signal_counts: Counter[str] = Counter()
        self.last_signal: dict[str, SignalRow] = {}
        # Activities by type: the closed ones counted as they close (a closed row does
        # not change again), the open ones added at each timeline (a few at most).
        self.closed_activity_stats: dict[str, TypeStats] = {}
        self.open_activities: dict[int, ActivityRow] = {}
        # The timeline of the events added so far, until another is added.
        self._finished: Timeline | None = None
        # Every row in time order, and how many of each kind, kept as rows are added:
        # a live refresh orders the rows it found, not the whole history again.
        self._ordered: list[Any] = []
        self._kinds: Counter[str] = Counter()
        self._merged: dict[str, int] = {}  # rows of each collection already in _ordered

    def add_all(self, events: Iterable[Any]) -> None:
        # The hot loop of a long history's first look: locals, and an event's time is
        # computed only for the events that make a row (not for workflow-task events).
        handlers, counts = _HANDLERS, self.type_counts
        first = last = None
        count = 0
        for event in events:
            if first is None:
                first = event
            count += 1
            et = event.event_type
            counts[et] = counts.get(et, 0) + 1
            handler = handlers.get(et)
            if handler is not None:
                handler(self, event, event.event_id, event_time(event))
            last = event
        if last is not None:
            self._finished = None
            self.count += count
            if self.first is None:
                self.first = event_time(first)
            self.last = event_time(last)

    def add(self, event: Any) -> None:
        self.add_all([event])

    # --- one method per kind of event (looked up in _HANDLERS) ---

    def _on_activity_scheduled(self, event: Any, eid: int, at: datetime) -> None:
        a = event.activity_task_scheduled_event_attributes
        row = ActivityRow(eid, a.activity_id, a.activity_type.name, a.task_queue.name, at)
        self.activities[eid] = row
        self.open_activities[eid] = row

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
        delay = duration_of(a.start_to_fire_timeout)
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
        external = (
            a.external_workflow_execution.workflow_id
            if a.HasField("external_workflow_execution")
            else ""
        )
        row = SignalRow(eid, a.signal_name, at, a.identity, a.input.SerializeToString(), external)
        self.signals.append(row)
        self.signal_counts[row.name] += 1
        self.last_signal[row.name] = row

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
            actor_in(args) or request.meta.identity or "unknown",
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
            if a.cause == _ALREADY_EXISTS:
                # Said in words: the id is taken (a batch's payout: that practitioner's
                # payout for the day already ran or runs; the batch lists it as skipped).
                row.failure = FailureInfo(
                    f"not started: a run under {a.workflow_id} already ran or runs (for a "
                    "payout: that practitioner's payout for the day is already taken; a "
                    "batch lists it as skipped)",
                    "WorkflowAlreadyExists",
                )

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
        if self.open_activities.pop(scheduled_id, None) is not None:
            _count_activity(self.closed_activity_stats, row)

    def finish(self) -> Timeline:
        """The timeline of the events added so far (the same object until another is
        added: a live refresh that found nothing new builds nothing)."""
        if self._finished is None:
            self._finished = self._build()
        return self._finished

    def _build(self) -> Timeline:
        rows = {
            "marks": self.marks,
            "activities": list(self.activities.values()),
            "timers": self.timer_rows,
            "signals": self.signals,
            "updates": list(self.updates.values()),
            "children": list(self.children.values()),
        }
        self._order_new_rows(rows)
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
            **rows,
            activity_stats=_activity_stats(
                self.closed_activity_stats, self.open_activities.values()
            ),
            signal_stats=_signal_stats(self.signal_counts, self.last_signal),
            workflow_task_failures=self.wft_failures,
            last_workflow_task_failure=self.last_wft_failure,
            event_type_counts={_event_type_label(k): v for k, v in self.type_counts.most_common()},
            ordered=tuple(self._ordered),
            kind_counts=dict(self._kinds),
        )

    def _order_new_rows(self, collections: dict[str, list[Any]]) -> None:
        """Put the rows added since the last timeline into `_ordered` (time, then event
        id). Rows are only ever appended to their collection and their time never
        changes; new rows come after the ordered ones unless an event's time went back
        (another server's clock), and then everything is sorted once more."""
        fresh: list[Any] = []
        for name, rows in collections.items():
            fresh.extend(rows[self._merged.get(name, 0) :])
            self._merged[name] = len(rows)
        if not fresh:
            return
        fresh.sort(key=row_order)
        if self._ordered and row_order(fresh[0]) < row_order(self._ordered[-1]):
            self._ordered = sorted([*self._ordered, *fresh], key=row_order)
        else:
            self._ordered.extend(fresh)
        self._kinds.update(row.kind for row in fresh)


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


def _activity_stats(
    closed: dict[str, TypeStats], open_rows: Iterable[ActivityRow]
) -> list[TypeStats]:
    """Each activity type's statistics: the closed activities' (counted as they closed)
    and the open ones', in new objects (a timeline's statistics do not change after)."""
    stats = {name: dataclasses.replace(s) for name, s in closed.items()}
    for row in open_rows:
        _count_activity(stats, row)
    return sorted(stats.values(), key=lambda s: (-s.count, s.name))


def _count_activity(stats: dict[str, TypeStats], row: ActivityRow) -> None:
    s = stats.get(row.activity_type)
    if s is None:
        s = stats[row.activity_type] = TypeStats(row.activity_type)
    s.count += 1
    if row.status in ("failed", "timed_out"):
        s.failed += 1
    if row.attempts > 1:
        s.retried += 1
    duration = row.duration
    if duration is not None:
        s.total_seconds += duration.total_seconds()
        s.timed += 1
    if s.last_at is None or row.scheduled_at > s.last_at:
        s.last_at = row.scheduled_at


def _signal_stats(counts: Counter[str], last: dict[str, SignalRow]) -> list[TypeStats]:
    stats = []
    for name, count in counts.items():
        row = last[name]  # decoded for the last signal of each name only
        stats.append(TypeStats(name, count, last_at=row.received_at, last_sender=row.sender))
    return sorted(stats, key=lambda s: (-s.count, s.name))


def summarise(events: Iterable[Any]) -> Timeline:
    builder = TimelineBuilder()
    builder.add_all(events)
    return builder.finish()
