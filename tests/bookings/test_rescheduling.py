"""ReschedulingWorkflow: a booking replaced by a new booking at a new time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from estuary.contracts.bookings import ReschedulingInput, reminder_key, utc_iso
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Booking, Notification
from tests.bookings.conftest import Kit, booking_kit, booking_row, make_booking, outbox
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow
from workers.bookings.rescheduling.workflows import ReschedulingWorkflow


async def reschedule(kit: Kit, inp: ReschedulingInput):
    # No timers in the rescheduling itself: keep the clock locked while waiting for it.
    with kit.env.auto_time_skipping_disabled():
        return await kit.client.execute_workflow(
            ReschedulingWorkflow.run,
            inp,
            id=f"bookings-reschedule-{inp.booking_id}-{inp.key()}",
            task_queue=kit.queue,
            search_attributes=run_attributes(
                "bookings", "booking", inp.booking_id, "ops@test.local"
            ),
        )


def counts(app) -> tuple[int, int]:
    """Bookings, and messages other than reminders (those belong to the lifecycles)."""
    with app.app_context():
        return (
            db.session.scalar(select(func.count(Booking.id))),
            db.session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.template != "booking_reminder"
                )
            ),
        )


async def test_rescheduling_replaces_the_booking_and_its_lifecycle(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=3))
        old = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(old, lambda p: p["stage"] == "awaiting_session")
        new_start = booked.start_at + timedelta(days=1, hours=2)

        result = await reschedule(
            kit, ReschedulingInput(booked.booking_id, new_start, reason="client travels")
        )
        old_result = await old.result()
        new = kit.client.get_workflow_handle(result.lifecycle_workflow_id)
        await kit.sleep_until(new_start + timedelta(minutes=1))
        new_progress = await kit.wait_progress(new, lambda p: p["stage"] == "awaiting_outcome")

    assert result.created is True and result.new_start_at == utc_iso(new_start)
    assert result.lifecycle_workflow_id == f"bookings-lifecycle-{result.new_booking_id}"
    assert (old_result.outcome, old_result.rescheduled_to_booking_id) == (
        "rescheduled",
        result.new_booking_id,
    )
    old_row, new_row = booking_row(app, booked.booking_id), booking_row(app, result.new_booking_id)
    assert old_row["status"] == "rescheduled"
    assert (new_row["status"], new_row["start_at"], new_row["rescheduled_from_id"]) == (
        "confirmed",
        new_start,
        booked.booking_id,
    )
    assert new_row["end_at"] - new_row["start_at"] == booked.end_at - booked.start_at
    # The old booking's reminders never went out; the new one's did, at its own times.
    assert [r["key"] for r in outbox(app, "booking_reminder")] == [
        reminder_key(result.new_booking_id, "24h", new_start),
        reminder_key(result.new_booking_id, "1h", new_start),
    ]
    assert new_progress["start_at"] == utc_iso(new_start)
    rescheduled = outbox(app, "booking_rescheduled")
    assert {r["payload"]["audience"] for r in rescheduled} == {"client", "practitioner"}
    assert rescheduled[0]["payload"]["new_start_at"] == utc_iso(new_start)
    # The reschedule notice stands in for the new booking's confirmation.
    assert outbox(app, "booking_confirmation", booking_id=result.new_booking_id) == []


async def test_running_the_same_request_twice_changes_nothing_the_second_time(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=3))
        old = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(old, lambda p: p["stage"] == "awaiting_session")
        inp = ReschedulingInput(booked.booking_id, booked.start_at + timedelta(days=2))
        first = await reschedule(kit, inp)
        after_first = counts(app)
        second = await reschedule(kit, inp)
        desc = await kit.client.get_workflow_handle(first.lifecycle_workflow_id).describe()

    assert first.created is True and second.created is False
    assert second.new_booking_id == first.new_booking_id
    assert counts(app) == after_first  # no booking and no message added
    assert desc.status == WorkflowExecutionStatus.RUNNING


async def test_rescheduling_into_a_busy_slot_or_the_past_fails_clearly_and_changes_nothing(
    app, time_env
):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        booked = make_booking(app, now + timedelta(days=3))
        other = make_booking(app, now + timedelta(days=4), practitioner_id=booked.practitioner_id)
        lifecycle = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(lifecycle, lambda p: p["stage"] == "awaiting_session")
        before = counts(app)
        cases = [
            (other.start_at + timedelta(minutes=30), "the practitioner is not free then"),
            (now - timedelta(hours=1), "is not in the future"),
        ]
        for new_start, message in cases:
            with pytest.raises(WorkflowFailureError) as failed:
                await reschedule(kit, ReschedulingInput(booked.booking_id, new_start))
            assert message in failed.value.cause.message
        with pytest.raises(WorkflowFailureError) as failed:
            await reschedule(kit, ReschedulingInput(9_999_999, now + timedelta(days=5)))
        assert failed.value.cause.message == "booking 9999999 not found"
        progress = await lifecycle.query(BookingLifecycleWorkflow.progress)

    assert counts(app) == before
    assert booking_row(app, booked.booking_id)["status"] == "confirmed"
    assert progress["stage"] == "awaiting_session" and progress["outcome"] is None
