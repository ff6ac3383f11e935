"""The timeline summary on its own: a long history is summarised, not listed in full."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from dashboard.presentation.history import (
    TIMELINE_HEAD,
    TIMELINE_TAIL,
    Elided,
    TimelineBuilder,
    summarise,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _payload(value) -> Payloads:
    return Payloads(
        payloads=[Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())]
    )


def _event(event_id: int, event_type: int, seconds: float, **attrs) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=event_type, **attrs)
    event.event_time.FromDatetime(T0 + timedelta(seconds=seconds))
    return event


def test_many_signals_are_elided_and_counted():
    events = [
        _event(
            1,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            0,
            workflow_execution_started_event_attributes={"input": _payload({"n": 1})},
        )
    ]
    for i in range(2, 3002):
        events.append(
            _event(
                i,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                i,
                workflow_execution_signaled_event_attributes={
                    "signal_name": "session_completed",
                    "input": _payload({"actor": f"ops{i % 3}@x", "booking_id": i}),
                    "identity": "console@1",
                },
            )
        )
    timeline = summarise(events)
    assert timeline.event_count == 3001
    assert len(timeline.signals) == 3000
    entries = timeline.entries()
    assert len(entries) == TIMELINE_HEAD + TIMELINE_TAIL + 1
    elided = [e for e in entries if isinstance(e, Elided)]
    assert elided and elided[0].by_kind == {"signal": 3000 - TIMELINE_HEAD - TIMELINE_TAIL + 1}
    (stats,) = timeline.signal_stats
    assert stats.name == "session_completed" and stats.count == 3000
    assert stats.last_sender == "ops1@x"  # 3001 % 3
    assert json.loads(timeline.input) == {"n": 1}


def test_activity_retries_and_timer_fire_time():
    sched = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    events = [
        _event(
            5,
            sched,
            0,
            activity_task_scheduled_event_attributes={
                "activity_id": "1",
                "activity_type": {"name": "transfer_money"},
            },
        ),
        _event(
            6,
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            30,
            activity_task_started_event_attributes={
                "scheduled_event_id": 5,
                "attempt": 3,
                "last_failure": {"message": "provider timeout"},
            },
        ),
        _event(
            7,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            32,
            activity_task_completed_event_attributes={"scheduled_event_id": 5},
        ),
        _event(
            8,
            EventType.EVENT_TYPE_TIMER_STARTED,
            40,
            timer_started_event_attributes={
                "timer_id": "9",
                "start_to_fire_timeout": {"seconds": 86400},
            },
        ),
    ]
    timeline = summarise(events)
    (activity,) = timeline.activities
    assert activity.attempts == 3 and activity.status == "completed"
    assert activity.last_failure.message == "provider timeout"
    assert activity.duration == timedelta(seconds=2)
    assert activity.total == timedelta(seconds=32)
    (timer,) = timeline.timers
    assert timer.status == "pending"
    assert timer.fire_at == T0 + timedelta(seconds=40, days=1)
    assert timeline.pending_timers == [timer]


def test_a_child_that_could_not_start_because_its_id_is_taken_says_so_in_words():
    from temporalio.api.enums.v1 import StartChildWorkflowExecutionFailedCause as Cause

    wid = "payments-payout-12-20261127"
    events = [
        _event(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0),
        _event(
            5,
            EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
            1,
            start_child_workflow_execution_initiated_event_attributes={
                "workflow_id": wid,
                "workflow_type": {"name": "PractitionerPayoutWorkflow"},
            },
        ),
        _event(
            6,
            EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
            2,
            start_child_workflow_execution_failed_event_attributes={
                "workflow_id": wid,
                "initiated_event_id": 5,
                "cause": Cause.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS,
            },
        ),
    ]
    (child,) = summarise(events).children
    assert child.status == "start_failed"
    assert child.failure is not None
    assert child.failure.message.startswith(f"not started: a run under {wid} already ran or runs")
    assert "payout for the day is already taken" in child.failure.message


def test_the_timeline_stays_in_time_order_as_pages_arrive():
    """The builder orders only the rows each page adds; the entries are those of every row
    sorted by time then event id, also when an event's time goes back (a clock skew)."""
    builder = TimelineBuilder()
    seconds = {}  # event id -> seconds after T0
    pages = [range(1, 120), range(120, 260), range(260, 400)]
    for page_number, page in enumerate(pages):
        events = []
        for i in page:
            # the last page starts 500 s earlier than the one before ended
            seconds[i] = i - (500 if page_number == 2 else 0)
            if i % 3 == 0:
                attrs = {
                    "activity_task_scheduled_event_attributes": {
                        "activity_id": str(i),
                        "activity_type": {"name": "send_reminder"},
                    }
                }
                kind = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            elif i % 3 == 1:
                attrs = {"timer_started_event_attributes": {"timer_id": str(i)}}
                kind = EventType.EVENT_TYPE_TIMER_STARTED
            else:
                attrs = {"workflow_execution_signaled_event_attributes": {"signal_name": "s"}}
                kind = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            events.append(_event(i, kind, seconds[i], **attrs))
        builder.add_all(events)
        timeline = builder.finish()
        every = sorted(
            [*timeline.activities, *timeline.timers, *timeline.signals],
            key=lambda r: (r.at, r.event_id),
        )
        entries = timeline.entries()
        if len(every) <= TIMELINE_HEAD + TIMELINE_TAIL:  # the first page: all of them
            assert entries == every
            continue
        shown = [e for e in entries if not isinstance(e, Elided)]
        assert shown == every[:TIMELINE_HEAD] + every[len(every) - TIMELINE_TAIL :]
        (elided,) = [e for e in entries if isinstance(e, Elided)]
        middle = every[TIMELINE_HEAD : len(every) - TIMELINE_TAIL]
        assert elided.count == len(middle)
        assert elided.by_kind == dict(Counter(r.kind for r in middle))
        assert builder.finish() is timeline  # nothing added since: the same timeline
    assert len(every) == 399
    assert shown[0].event_id == 260  # the skewed page's first event is the earliest


def _stats_from_rows(activities) -> list[tuple]:
    """Activity statistics counted from every row, as the timeline used to count them."""
    stats: dict[str, list] = {}
    for row in activities:
        s = stats.setdefault(row.activity_type, [row.activity_type, 0, 0, 0, 0.0, 0])
        s[1] += 1
        s[2] += row.status in ("failed", "timed_out")
        s[3] += row.attempts > 1
        if row.duration is not None:
            s[4] = round(s[4] + row.duration.total_seconds(), 6)
            s[5] += 1
    return sorted((tuple(s) for s in stats.values()), key=lambda s: (-s[1], s[0]))


def test_activity_statistics_are_kept_as_activities_open_and_close():
    """Closed activities are counted once, when they close; open ones at each timeline.
    Page by page (activities scheduled on one page and closed on a later one, retried,
    failed, timed out), the statistics are those counted from every row again, and a
    timeline already shown keeps its own."""
    kinds = ("send_reminder", "charge_card", "notify")
    builder = TimelineBuilder()
    shown = []
    event_id = 1
    open_ids: list[int] = []
    for page in range(6):
        events = []
        for n in range(40):
            scheduled = event_id
            events.append(
                _event(
                    scheduled,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
                    scheduled,
                    activity_task_scheduled_event_attributes={
                        "activity_id": str(scheduled),
                        "activity_type": {"name": kinds[(page + n) % 3]},
                    },
                )
            )
            event_id += 1
            open_ids.append(scheduled)
            if n % 2:  # every other one is started (retried on every fourth)
                events.append(
                    _event(
                        event_id,
                        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                        event_id,
                        activity_task_started_event_attributes={
                            "scheduled_event_id": scheduled,
                            "attempt": 2 if n % 4 == 1 else 1,
                        },
                    )
                )
                event_id += 1
        # close the activities of the page before (so some close pages after they began)
        closing, open_ids = open_ids[:-40], open_ids[-40:]
        for k, scheduled in enumerate(closing):
            outcome = (
                (EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, "activity_task_completed"),
                (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, "activity_task_failed"),
                (EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, "activity_task_timed_out"),
            )[k % 3]
            events.append(
                _event(
                    event_id,
                    outcome[0],
                    event_id + 0.5 * k,
                    **{f"{outcome[1]}_event_attributes": {"scheduled_event_id": scheduled}},
                )
            )
            event_id += 1
        builder.add_all(events)
        timeline = builder.finish()
        stats = [
            (s.name, s.count, s.failed, s.retried, round(s.total_seconds, 6), s.timed)
            for s in timeline.activity_stats
        ]
        assert stats == _stats_from_rows(timeline.activities)
        shown.append((timeline, stats))
    assert sum(s[1] for s in stats) == 240
    assert any(s[2] for s in stats) and any(s[3] for s in stats) and any(s[5] for s in stats)
    for timeline, stats in shown:  # earlier timelines keep the statistics they had
        assert [
            (s.name, s.count, s.failed, s.retried, round(s.total_seconds, 6), s.timed)
            for s in timeline.activity_stats
        ] == stats
