"""Replay of recorded BookingLifecycleWorkflow histories (tests/bookings/histories/,
recorded once from real runs by record_lifecycle_history.py). A change to the lifecycle
that would break running executions fails here; version such changes with
`workflow.patched()`, or re-record on purpose when no old run can exist."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.bookings.workflows import (
    BatchReminderWorkflow,
    BookingLifecycleWorkflow,
    ReschedulingWorkflow,
)
from workers.temporal.worker import MonitoringInterceptor

HISTORIES = Path(__file__).parent / "histories"
# What each recording covers, so the replay is known to exercise it.
EXPECTED = {
    "lifecycle_completed_with_feedback": {"signals": 3, "timers_fired": 3, "updates": 0},
    "lifecycle_moved_then_cancelled": {"signals": 0, "timers_fired": 1, "updates": 2},
    "lifecycle_unresolved_then_no_show": {"signals": 1, "timers_fired": 2, "updates": 0},
}


def load(name: str) -> tuple[WorkflowHistory, Counter]:
    text = (HISTORIES / f"{name}.json").read_text()
    events = Counter(e["eventType"] for e in json.loads(text)["events"])
    return WorkflowHistory.from_json("bookings-lifecycle-recorded", text), events


def test_every_recorded_history_is_listed():
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_lifecycle_history_replays_deterministically(name):
    history, events = load(name)
    expected = EXPECTED[name]
    assert events["EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"] == expected["signals"]
    assert events["EVENT_TYPE_TIMER_FIRED"] == expected["timers_fired"]
    assert events["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"] == expected["updates"]
    assert events["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"] == 1
    replayer = Replayer(
        workflows=[BookingLifecycleWorkflow, ReschedulingWorkflow, BatchReminderWorkflow],
        interceptors=[MonitoringInterceptor()],
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
