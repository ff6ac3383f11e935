"""The bookings domain's workflows and schedules, as the console and the commands know
them (the classes are in `workers/bookings/<feature>/workflows.py`)."""

from __future__ import annotations

from datetime import datetime

from estuary.contracts.bookings import (
    BatchReminderInput,
    BookingLifecycleInput,
    CancelArg,
    FeedbackArg,
    MarkSessionArg,
    RescheduleArg,
    ReschedulingInput,
    lifecycle_actions,
    lifecycle_workflow_id,
)
from estuary.contracts.spec import ScheduleDefinition, WorkflowSpec

DOMAIN = "bookings"


def batch_reminders_id(inp: BatchReminderInput, now: datetime) -> str:
    if inp.window_start is None:
        return f"bookings-batch-reminders-{inp.reminder_type}-daily-{now:%Y%m%d}"
    return f"bookings-batch-reminders-{inp.window_label()}"


WORKFLOWS = (
    WorkflowSpec(
        name="BookingLifecycleWorkflow",
        domain=DOMAIN,
        input_type=BookingLifecycleInput,
        description=(
            "One booking from confirmation to outcome: confirmation, reminders 24 h and 1 h "
            "ahead, waits for mark_completed / mark_no_show (flags ops after the grace "
            "period), then follow-up and one feedback reminder; no-show and cancellation "
            "apply their policies; reschedule moves the timers in place."
        ),
        business_id=lambda inp, now: lifecycle_workflow_id(inp.booking_id),
        entity_type="booking",
        entity_id=lambda inp: inp.booking_id,
        signals=(
            ("mark_completed", MarkSessionArg),
            ("mark_no_show", MarkSessionArg),
            ("feedback_received", FeedbackArg),
        ),
        updates=(("cancel", CancelArg), ("reschedule", RescheduleArg)),
        actions_now=lifecycle_actions,
    ),
    WorkflowSpec(
        name="BatchReminderWorkflow",
        domain=DOMAIN,
        input_type=BatchReminderInput,
        description=(
            "Sends a reminder (24h or 1h) to every confirmed booking starting in the window "
            "that has not had it, in bounded chunks; lifecycle reminders are never repeated "
            "(same notification key). Without a window: bookings starting 24-48 h ahead."
        ),
        business_id=batch_reminders_id,
        entity_type="reminder_window",
        entity_id=lambda inp: inp.window_label(),
    ),
    WorkflowSpec(
        name="ReschedulingWorkflow",
        domain=DOMAIN,
        input_type=ReschedulingInput,
        description=(
            "Moves a booking to a new booking at a new time: validates the slot, ends the "
            "old lifecycle, creates the new booking and its lifecycle, notifies both "
            "parties. Running the same request twice changes nothing the second time."
        ),
        business_id=lambda inp, now: f"bookings-reschedule-{inp.booking_id}-{inp.key()}",
        entity_type="booking",
        entity_id=lambda inp: inp.booking_id,
    ),
)

SCHEDULES = [
    ScheduleDefinition(
        schedule_id="bookings-daily-reminders",
        workflow_name="BatchReminderWorkflow",
        # No window: each run covers bookings starting 24-48 h after it starts, so the
        # window moves with the firing time (the input is fixed when the schedule syncs).
        make_input=lambda: BatchReminderInput(reminder_type="24h"),
        cron="0 6 * * *",
        description="Daily 24h reminders for sessions starting 24-48 h ahead",
        workflow_id_prefix="bookings-batch-reminders-daily",
    ),
]
