"""BatchReminderWorkflow: the reminders due for the bookings of a time window, in chunks.

Deterministic code only (the sandbox re-imports this module): time is `workflow.now()`,
every timer is computed from it when it is set, all I/O is activities.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from estuary.contracts import policies
from workers.temporal.base_workflows import BaseWorkflow, as_utc, progress_answer

# The shared dataclasses pass through the sandbox too: the payload converter recognises
# `datetime` fields only by the real class, not the sandbox's restricted stand-in.
with workflow.unsafe.imports_passed_through():
    from estuary.contracts.bookings import (
        REMINDER_OFFSETS,
        BatchReminderInput,
        BatchReminderResult,
        ReminderChunkInput,
        ReminderPage,
        ReminderPageInput,
        utc_iso,
    )

with workflow.unsafe.imports_passed_through():
    import workers.bookings.reminders.activities as activities


@workflow.defn
class BatchReminderWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: BatchReminderInput) -> None:
        self._input = inp
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._window: tuple[datetime, datetime] | None = None
        self._cursor = inp.resume_cursor
        self._sent = inp.sent_so_far
        self._already = inp.already_sent_so_far
        self._skipped = 0
        self._chunks = 0

    @workflow.run
    async def run(self, inp: BatchReminderInput) -> BatchReminderResult:
        offset = REMINDER_OFFSETS[inp.reminder_type]
        if inp.window_start is None or inp.window_end is None:
            start = workflow.now() + offset
            window = (start, start + timedelta(hours=24))
        else:
            window = (as_utc(inp.window_start), as_utc(inp.window_end))
        self._window = window
        looked_at = 0
        while True:
            page = await self._send_chunk(inp, window)
            looked_at += len(page.booking_ids) + page.already_sent
            if page.exhausted:
                break
            if (
                workflow.info().is_continue_as_new_suggested()
                or looked_at >= policies.CONTINUE_AS_NEW_AFTER_ITEMS
            ):
                workflow.continue_as_new(
                    dataclasses.replace(
                        inp,
                        window_start=window[0],
                        window_end=window[1],
                        resume_cursor=self._cursor,
                        sent_so_far=self._sent,
                        already_sent_so_far=self._already,
                    )
                )
        self._stage = "done"
        return BatchReminderResult(
            window_start=utc_iso(window[0]),
            window_end=utc_iso(window[1]),
            reminder_type=inp.reminder_type,
            sent=self._sent,
            already_sent=self._already,
            chunks=self._chunks,
        )

    async def _send_chunk(
        self, inp: BatchReminderInput, window: tuple[datetime, datetime]
    ) -> ReminderPage:
        """Find the next page of bookings due a reminder and send theirs; the page."""
        self._stage = "finding bookings"
        page = await self.execute_activity(
            activities.find_bookings_needing_reminder,
            ReminderPageInput(
                window_start=window[0],
                window_end=window[1],
                reminder_type=inp.reminder_type,
                workflow_time=workflow.now(),
                after_booking_id=self._cursor,
                limit=inp.chunk_size,
            ),
            policy=policies.BATCH,
        )
        self._already += page.already_sent
        if page.booking_ids:
            self._stage = "sending reminders"
            counts = await self.execute_activity(
                activities.send_reminder_chunk,
                ReminderChunkInput(page.booking_ids, inp.reminder_type, workflow.now()),
                policy=policies.BATCH,
            )
            self._sent += counts.sent
            self._already += counts.already_sent
            self._skipped += counts.skipped
        self._chunks += 1
        self._cursor = page.last_booking_id
        self._steps_done.append(f"chunk {self._chunks} up to booking {self._cursor}")
        return page

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return progress_answer(
            self._stage,
            self._steps_done,
            window_start=utc_iso(self._window[0]) if self._window else None,
            window_end=utc_iso(self._window[1]) if self._window else None,
            reminder_type=self._input.reminder_type,
            sent=self._sent,
            already_sent=self._already,
            skipped=self._skipped,
            chunks=self._chunks,
            cursor=self._cursor,
        )
