"""Against a real Temporal dev server: the lifecycle's updates and query, and the daily
reminder schedule created by `flask schedules sync` and fired by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from estuary.contracts.bookings import CancelArg, RescheduleArg, reminder_key
from tests.bookings.conftest import booking_kit, booking_row, make_booking, outbox
from tests.conftest import gateway_for
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow

pytestmark = pytest.mark.live


async def test_lifecycle_updates_and_query_on_the_dev_server(app, local_env):
    async with booking_kit(local_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        assert progress["next_timer"]["kind"] == "reminder_24h"

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                BookingLifecycleWorkflow.reschedule,
                RescheduleArg(actor="ops", new_start_at=booked.start_at - timedelta(days=9)),
            )
        assert "is not in the future" in str(refused.value.cause)
        new_start = booked.start_at + timedelta(days=1)
        moved = await handle.execute_update(
            BookingLifecycleWorkflow.reschedule, RescheduleArg(actor="ops", new_start_at=new_start)
        )
        assert moved.reminders["24h"].startswith("pending at")
        cancelled = await handle.execute_update(
            BookingLifecycleWorkflow.cancel, CancelArg(actor="ops", reason="ill", by="client")
        )
        result = await handle.result()

    assert cancelled.credit_cents == 9_000 and result.outcome == "cancelled"
    assert booking_row(app, booked.booking_id)["start_at"] == new_start
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_daily_reminder_schedule_syncs_and_its_run_reminds_tomorrows_sessions(
    app, runner, local_env
):
    async with booking_kit(local_env, app) as kit:
        gateway_for(app, local_env, kit.prefix)
        tomorrow = make_booking(app, await kit.now() + timedelta(hours=36))
        out = await asyncio.to_thread(runner.invoke, args=["schedules", "sync"])
        assert out.exit_code == 0, out.output
        assert "bookings-daily-reminders" in out.output
        schedule = local_env.client.get_schedule_handle("bookings-daily-reminders")
        try:
            desc = await schedule.describe()
            (calendar,) = desc.schedule.spec.calendars  # the server stores cron as calendars
            assert (calendar.hour[0].start, calendar.minute[0].start) == (6, 0)
            assert desc.schedule.action.workflow == "BatchReminderWorkflow"
            await schedule.trigger()
            for _ in range(100):
                if outbox(app, "booking_reminder"):
                    break
                await asyncio.sleep(0.1)
        finally:
            for line in out.output.splitlines():
                if line.startswith(("created ", "updated ")):
                    await local_env.client.get_schedule_handle(line.split()[1]).delete()

    assert [r["key"] for r in outbox(app, "booking_reminder")] == [
        reminder_key(tomorrow.booking_id, "24h", tomorrow.start_at)
    ]
