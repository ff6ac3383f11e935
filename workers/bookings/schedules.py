"""Temporal Schedules of the bookings domain (`flask schedules sync` creates them)."""

from __future__ import annotations

from estuary.contracts.bookings import BatchReminderInput
from estuary.contracts.catalogue import ScheduleDefinition

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
