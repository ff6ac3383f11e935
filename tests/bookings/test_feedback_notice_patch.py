"""The `feedback-notice-to-practitioner` patch of BookingLifecycleWorkflow: after feedback
the practitioner is told their rating. Histories recorded before the change still replay
(the guard keeps old runs on the old path); without the guard they would not; new runs
take the new path and record the patch marker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType

from estuary.contracts.bookings import FeedbackArg, MarkSessionArg
from tests.bookings.conftest import booking_kit, make_booking, outbox
from tests.test_replay_histories import Recorded, ReplayFailed, load, replay
from workers.bookings.lifecycle.inbox import PATCH_FEEDBACK_NOTICE
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow

HISTORIES = Path(__file__).parent.parent / "histories" / "BookingLifecycleWorkflow"
# Both recorded from the code before the change: runs that took feedback, no notice.
PRACTITIONER = MarkSessionArg(actor="practitioner@test.local")
BEFORE_CHANGE = (
    "before-feedback-notice--completion_then_feedback.json",
    "lifecycle_completed_with_feedback.json",
)


def _activities(history) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _markers(history) -> list[bytes]:
    """The serialised MarkerRecorded attributes (a patch marker carries its id)."""
    return [
        e.marker_recorded_event_attributes.SerializeToString()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


@pytest.mark.parametrize("name", BEFORE_CHANGE)
async def test_histories_from_before_the_change_still_replay(name):
    recorded = load(HISTORIES / name)
    assert "record_booking_feedback" in _activities(recorded.history)
    assert _markers(recorded.history) == []  # written before the patch existed
    await replay(recorded)


@pytest.mark.parametrize("name", BEFORE_CHANGE)
async def test_without_the_guard_they_would_not(name, monkeypatch):
    # The same change made without workflow.patched(): every run takes the new path.
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)
    with pytest.raises(ReplayFailed, match=r"no longer replays .* at event \d+ \(WorkflowExec"):
        await replay(load(HISTORIES / name))


async def test_new_runs_notify_the_practitioner_and_record_the_patch(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")
        await handle.signal(
            BookingLifecycleWorkflow.feedback_received,
            FeedbackArg(actor="client@test.local", rating=4, comment="Good"),
        )
        await handle.result()
        history = await handle.fetch_history()

    (notice,) = outbox(app, "booking_feedback_shared")
    assert notice["payload"]["rating"] == "4" and notice["payload"]["audience"] == "practitioner"
    assert any(PATCH_FEEDBACK_NOTICE.encode() in m for m in _markers(history))
    activities = _activities(history)
    after_feedback = activities[activities.index("record_booking_feedback") + 1 :]
    assert after_feedback[:1] == ["send_booking_notice"]
    # The new history replays with the current code too.
    await replay(Recorded(HISTORIES / "new-run.json", history))
