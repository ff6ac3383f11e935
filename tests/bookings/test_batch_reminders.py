"""BatchReminderWorkflow: reminders for a window of bookings, deduplicated with the
lifecycles' reminders by notification key, in bounded chunks."""

from __future__ import annotations

from datetime import datetime, timedelta

from estuary.contracts.bookings import BatchReminderInput, reminder_key
from estuary.contracts.search_attributes import run_attributes
from tests.bookings.conftest import Kit, booking_kit, make_booking, outbox
from workers.bookings.reminders.workflows import BatchReminderWorkflow


async def run_batch(kit: Kit, inp: BatchReminderInput, run: int = 1):
    # The batch has no timers: run it on a locked clock, or the time-skipping server may
    # jump far ahead while it waits (past the window).
    with kit.env.auto_time_skipping_disabled():
        return await kit.client.execute_workflow(
            BatchReminderWorkflow.run,
            inp,
            id=f"bookings-batch-reminders-{inp.window_label()}-{run}",
            task_queue=kit.queue,
            search_attributes=run_attributes(
                "bookings", "reminder_window", inp.window_label(), "t"
            ),
        )


def reminder_keys(app) -> list[str]:
    return [r["key"] for r in outbox(app, "booking_reminder")]


async def test_batch_reminds_each_booking_in_the_window_once_in_bounded_chunks(app, time_env):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        window = (now + timedelta(days=2), now + timedelta(days=3))
        inside = [make_booking(app, window[0] + timedelta(hours=h)) for h in (1, 3, 5, 7, 9)]
        make_booking(app, window[1] + timedelta(hours=1))  # after the window
        make_booking(app, window[0] + timedelta(hours=2), status="cancelled")
        inp = BatchReminderInput(window[0], window[1], "24h", chunk_size=2)
        first = await run_batch(kit, inp)
        second = await run_batch(kit, inp, run=2)

    assert (first.sent, first.already_sent, first.chunks) == (5, 0, 3)
    assert (second.sent, second.already_sent) == (0, 5)
    assert sorted(reminder_keys(app)) == sorted(
        reminder_key(b.booking_id, "24h", b.start_at) for b in inside
    )
    payload = outbox(app, "booking_reminder")[0]["payload"]
    assert payload["sent_by"] == "batch" and payload["reminder_type"] == "24h"


async def test_batch_does_not_repeat_a_reminder_the_lifecycle_sent(app, time_env):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        with_lifecycle = make_booking(app, now + timedelta(days=3))
        without = make_booking(app, now + timedelta(days=2, hours=12))
        handle = await kit.start_lifecycle(with_lifecycle.booking_id)
        await kit.sleep_until(with_lifecycle.start_at - timedelta(hours=23))
        progress = await kit.wait_progress(
            handle, lambda p: p["reminders"]["24h"]["state"] == "sent"
        )
        window_end = with_lifecycle.start_at + timedelta(hours=1)
        result = await run_batch(kit, BatchReminderInput(await kit.now(), window_end, "24h"), run=1)

    # The booking without a lifecycle gets its reminder; the lifecycle's is not repeated.
    assert (result.sent, result.already_sent) == (1, 1)
    lifecycle_key = reminder_key(with_lifecycle.booking_id, "24h", with_lifecycle.start_at)
    assert progress["reminders"]["24h"]["key"] == lifecycle_key
    assert sorted(reminder_keys(app)) == sorted(
        [lifecycle_key, reminder_key(without.booking_id, "24h", without.start_at)]
    )


async def test_lifecycle_does_not_repeat_a_reminder_the_batch_sent(app, time_env):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        booked = make_booking(app, now + timedelta(hours=30))
        result = await run_batch(kit, BatchReminderInput(now, now + timedelta(days=2), "24h"))
        assert result.sent == 1
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.start_at - timedelta(minutes=30))
        progress = await kit.wait_progress(
            handle, lambda p: p["reminders"]["1h"]["state"] == "sent"
        )

    (r24,) = [e for e in progress["sent_log"] if e["kind"] == "reminder_24h"]
    assert r24["state"] == "already_sent"
    assert datetime.fromisoformat(r24["at"]) >= booked.start_at - timedelta(hours=24)
    assert reminder_keys(app) == [
        reminder_key(booked.booking_id, "24h", booked.start_at),
        reminder_key(booked.booking_id, "1h", booked.start_at),
    ]


async def test_without_a_window_the_batch_covers_bookings_24_to_48_hours_ahead(app, time_env):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        make_booking(app, now + timedelta(hours=10))
        tomorrow = make_booking(app, now + timedelta(hours=30))
        make_booking(app, now + timedelta(hours=60))
        result = await kit.client.execute_workflow(
            BatchReminderWorkflow.run,
            BatchReminderInput(),
            id=f"bookings-batch-reminders-daily-{tomorrow.booking_id}",
            task_queue=kit.queue,
            search_attributes=run_attributes("bookings", "reminder_window", "24h-daily", "t"),
        )

    started = datetime.fromisoformat(result.window_start)
    assert started >= now + timedelta(hours=24)
    assert datetime.fromisoformat(result.window_end) - started == timedelta(hours=24)
    assert (result.sent, result.already_sent) == (1, 0)
    # Not `soon` (10 h ahead) nor `later` (60 h ahead).
    assert reminder_keys(app) == [reminder_key(tomorrow.booking_id, "24h", tomorrow.start_at)]


async def test_a_continued_batch_resumes_after_its_cursor_with_its_counts(app, time_env):
    async with booking_kit(time_env, app) as kit:
        now = await kit.now()
        window = (now + timedelta(hours=30), now + timedelta(hours=40))
        booked = [make_booking(app, window[0] + timedelta(hours=h)) for h in (1, 2, 3, 4)]
        # As continue-as-new would pass it on: the first two were done by the earlier run.
        inp = BatchReminderInput(
            window[0],
            window[1],
            "1h",
            chunk_size=1,
            resume_cursor=booked[1].booking_id,
            sent_so_far=2,
        )
        result = await run_batch(kit, inp)

    assert (result.sent, result.already_sent) == (4, 0)
    assert reminder_keys(app) == [reminder_key(b.booking_id, "1h", b.start_at) for b in booked[2:]]
