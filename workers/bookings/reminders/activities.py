"""Batch reminder activities (BatchReminderWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/bookings/activities.py)."""

from __future__ import annotations

from estuary.contracts.bookings import (
    ReminderChunkInput,
    ReminderChunkResult,
    ReminderPage,
    ReminderPageInput,
)
from estuary.services import reminders
from workers.temporal.base_activities import read_activity, write_activity


@read_activity
def find_bookings_needing_reminder(inp: ReminderPageInput) -> ReminderPage:
    page = reminders.bookings_needing_reminder(
        inp.window_start,
        inp.window_end,
        inp.reminder_type,
        now=inp.workflow_time,
        after_booking_id=inp.after_booking_id,
        limit=inp.limit,
    )
    return ReminderPage(page.booking_ids, page.last_booking_id, page.exhausted, page.already_sent)


@write_activity
def send_reminder_chunk(inp: ReminderChunkInput) -> ReminderChunkResult:
    counts = reminders.send_reminders(
        list(inp.booking_ids), inp.reminder_type, now=inp.workflow_time
    )
    return ReminderChunkResult(counts.sent, counts.already_sent, counts.skipped)
