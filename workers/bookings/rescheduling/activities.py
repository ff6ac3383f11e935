"""Rescheduling activities (ReschedulingWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/bookings/activities.py)."""

from __future__ import annotations

from estuary.contracts.bookings import (
    RescheduledBooking,
    RescheduleRequestInput,
)
from estuary.services import bookings
from workers.temporal.base_activities import read_activity, write_activity


@read_activity
def check_reschedule(inp: RescheduleRequestInput) -> RescheduledBooking:
    check = bookings.check_reschedule(
        inp.booking_id,
        new_start_at=inp.new_start_at,
        reschedule_key=inp.reschedule_key,
        now=inp.workflow_time,
    )
    return RescheduledBooking(
        old_booking_id=check.old.id,
        new_booking_id=check.existing.id if check.existing else None,
        new_start_at=check.new_start_at,
        new_end_at=check.new_end_at,
        created=False,
    )


@write_activity
def create_rescheduled_booking(inp: RescheduleRequestInput) -> RescheduledBooking:
    old, new, created = bookings.create_rescheduled_booking(
        inp.booking_id,
        new_start_at=inp.new_start_at,
        reschedule_key=inp.reschedule_key,
        reason=inp.reason,
        actor=inp.actor,
        now=inp.workflow_time,
    )
    return RescheduledBooking(
        old_booking_id=old.id,
        new_booking_id=new.id,
        new_start_at=new.start_at,
        new_end_at=new.end_at,
        created=created,
    )
