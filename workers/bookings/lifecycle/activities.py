"""Booking lifecycle activities (BookingLifecycleWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/bookings/activities.py)."""

from __future__ import annotations

from estuary.contracts.bookings import (
    BookingFlagInput,
    BookingFlagResult,
    BookingOutcome,
    BookingRef,
    BookingSnapshot,
    CancellationInput,
    CompleteBookingInput,
    FeedbackInput,
    FeedbackResult,
    MoveBookingInput,
    MovedBooking,
    NoShowInput,
    ReminderInput,
    ReminderResult,
)
from estuary.services import booking_policies, bookings, reminders
from workers.temporal.base_activities import read_activity, write_activity


@read_activity
def load_booking(inp: BookingRef) -> BookingSnapshot:
    booking = bookings.get_booking(inp.booking_id)
    policy = booking_policies.defaults()
    return BookingSnapshot(
        booking_id=booking.id,
        status=booking.status,
        start_at=booking.start_at,
        end_at=booking.end_at,
        client_id=booking.client_id,
        practitioner_id=booking.practitioner_id,
        package_purchase_id=booking.package_purchase_id,
        rescheduled_from_id=booking.rescheduled_from_id,
        price_cents=booking.price_cents,
        currency=booking.currency,
        no_show_fee_percent=policy.no_show_fee_percent,
        no_show_credit_forfeited=policy.no_show_credit_forfeited,
        cancel_full_credit_hours=policy.cancel_full_credit_hours,
        late_cancel_credit_percent=policy.late_cancel_credit_percent,
        grace_period_minutes=policy.grace_period_minutes,
        feedback_reminder_hours=policy.feedback_reminder_hours,
    )


@write_activity
def send_booking_reminder(inp: ReminderInput) -> ReminderResult:
    return reminders.send_reminder(
        inp.booking_id,
        inp.reminder_type,
        start_at=inp.start_at,
        now=inp.workflow_time,
        sent_by=inp.sent_by,
    )


@write_activity
def complete_booking(inp: CompleteBookingInput) -> BookingOutcome:
    return bookings.complete(inp.booking_id, actor=inp.actor, at=inp.workflow_time)


@write_activity
def apply_no_show(inp: NoShowInput) -> BookingOutcome:
    return bookings.apply_no_show(
        inp.booking_id,
        actor=inp.actor,
        at=inp.workflow_time,
        fee_percent=inp.fee_percent,
        credit_forfeited=inp.credit_forfeited,
    )


@write_activity
def apply_cancellation(inp: CancellationInput) -> BookingOutcome:
    return bookings.apply_cancellation(
        inp.booking_id,
        actor=inp.actor,
        by=inp.by,
        reason=inp.reason,
        at=inp.workflow_time,
        full_credit_hours=inp.full_credit_hours,
        late_credit_percent=inp.late_credit_percent,
    )


@write_activity
def move_booking(inp: MoveBookingInput) -> MovedBooking:
    booking = bookings.move(
        inp.booking_id,
        new_start_at=inp.new_start_at,
        expected_start_at=inp.expected_start_at,
        at=inp.workflow_time,
    )
    return MovedBooking(booking.id, booking.start_at, booking.end_at)


@write_activity
def record_booking_feedback(inp: FeedbackInput) -> FeedbackResult:
    rating, created = bookings.record_feedback(
        inp.booking_id, rating=inp.rating, comment=inp.comment, at=inp.workflow_time
    )
    return FeedbackResult(inp.booking_id, rating, created)


@write_activity
def raise_booking_flag(inp: BookingFlagInput) -> BookingFlagResult:
    flag = bookings.raise_booking_flag(
        inp.booking_id, kind=inp.kind, message=inp.message, workflow_id=inp.workflow_id
    )
    return BookingFlagResult(key=flag.key, flag_id=flag.id)
