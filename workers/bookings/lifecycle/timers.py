"""The booking lifecycle's timers (reminders, session start, grace, feedback) and its
side effects (notices, reminders, flags).

Deterministic code only (the sandbox re-imports this module): time is `workflow.now()`,
every timer is computed from it when it is set, all I/O is activities.
`LifecycleTimers` is a base of `BookingLifecycleWorkflow`, whose `__init__` sets the state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

from estuary.contracts import policies
from workers.temporal.base_workflows import BaseWorkflow

# The shared dataclasses pass through the sandbox too: the payload converter recognises
# `datetime` fields only by the real class, not the sandbox's restricted stand-in.
with workflow.unsafe.imports_passed_through():
    import workers.bookings.activities as shared_activities
    import workers.bookings.lifecycle.activities as activities
    from estuary.contracts.bookings import (
        REMINDER_OFFSETS,
        REMINDER_TYPES,
        BookingFlagInput,
        BookingNoticeInput,
        ReminderInput,
        utc_iso,
    )


@dataclass
class _Timer:
    kind: str
    at: datetime
    waiting_for: str


class LifecycleTimers(BaseWorkflow):
    """Timers and side effects of one booking's lifecycle (state: the workflow's `__init__`)."""

    # --- timers -----------------------------------------------------------------------------

    def _plan_reminders(self, now: datetime) -> None:
        """Plan the reminders for the current start; those not still ahead are skipped."""
        assert self._start_at is not None
        self._reminders = {}
        for rtype in REMINDER_TYPES:
            due = self._start_at - REMINDER_OFFSETS[rtype]
            ahead = due > now
            self._reminders[rtype] = {
                "state": "pending" if ahead else "skipped",
                "due_at": due,
                "start_at": self._start_at,
                "sent_at": None,
                "key": None,
                "reason": "" if ahead else "booked or moved too late for this reminder",
            }

    def _grace_deadline(self) -> datetime:
        assert self._end_at is not None
        return self._end_at + timedelta(minutes=int(self._policy["grace_period_minutes"]))

    def _next_timer(self) -> _Timer | None:
        assert self._start_at is not None
        candidates: list[_Timer] = []
        if self._outcome is None:
            for rtype in REMINDER_TYPES:
                r = self._reminders.get(rtype)
                if r and r["state"] == "pending":
                    candidates.append(
                        _Timer(f"reminder_{rtype}", r["due_at"], f"time of the {rtype} reminder")
                    )
            if self._stage == "awaiting_session":
                candidates.append(_Timer("session_start", self._start_at, "session start"))
            if not self._flagged:
                candidates.append(
                    _Timer(
                        "grace_period_end",
                        self._grace_deadline(),
                        "mark_completed or mark_no_show",
                    )
                )
        elif self._stage == "awaiting_feedback":
            if not self._feedback_reminder_sent and self._feedback_due is not None:
                candidates.append(
                    _Timer("feedback_reminder", self._feedback_due, "feedback_received")
                )
            elif self._feedback_close is not None:
                candidates.append(
                    _Timer("feedback_window_end", self._feedback_close, "feedback_received")
                )
        return min(candidates, key=lambda t: t.at) if candidates else None

    async def _sleep_until_next(self) -> None:
        """Wait for a signal/update or the next timer, computed from the time now."""
        nxt = self._next_timer()
        now = workflow.now()
        if nxt is not None and nxt.at <= now:
            return
        timeout = nxt.at - now if nxt is not None else None
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)

    async def _fire_due(self) -> None:
        assert self._start_at is not None
        for rtype in REMINDER_TYPES:
            r = self._reminders.get(rtype)
            if not r or r["state"] != "pending" or r["due_at"] > workflow.now():
                continue
            if self._outcome is None and workflow.now() < self._start_at:
                await self._send_reminder(rtype)
            else:
                r["state"], r["reason"] = "skipped", "session already started"
        now = workflow.now()
        if self._outcome is None:
            if self._stage == "awaiting_session" and now >= self._start_at:
                self._stage = "awaiting_outcome"
                self._step("session started")
            if not self._flagged and now >= self._grace_deadline():
                await self._flag_unresolved()
        elif self._stage == "awaiting_feedback":
            if (
                not self._feedback_reminder_sent
                and self._feedback_due
                and now >= self._feedback_due
            ):
                await self._notice("feedback_reminder", ["client"])
                self._feedback_reminder_sent = True
                self._feedback_close = workflow.now() + self._feedback_wait()
                self._step("feedback reminder sent")
            elif self._feedback_close is not None and now >= self._feedback_close:
                self._stage = "completed"
                self._step("feedback window closed without feedback")

    def _feedback_wait(self) -> timedelta:
        return timedelta(hours=int(self._policy["feedback_reminder_hours"]))

    # --- side effects (activities) ---------------------------------------------------------

    def _step(self, text: str) -> None:
        self._steps_done.append(text)

    async def _notice(
        self, kind: str, audience: list[str], *, key_suffix: str = "", details: dict | None = None
    ) -> None:
        at = workflow.now()
        result = await self.execute_activity(
            shared_activities.send_booking_notice,
            BookingNoticeInput(
                booking_id=self._booking_id,
                kind=kind,
                audience=audience,
                workflow_time=at,
                key_suffix=key_suffix,
                details=details or {},
            ),
            policy=policies.NOTIFICATION,
        )
        for key, created in zip(result.keys, result.created, strict=True):
            self._log_sent(kind, key, at, "sent" if created else "already_sent")

    def _log_sent(self, kind: str, key: str, at: datetime, state: str) -> None:
        """One line of the notices this run sent (or found sent already), for `progress`."""
        self._sent_log.append({"kind": kind, "key": key, "at": utc_iso(at), "state": state})

    async def _send_reminder(self, rtype: str) -> None:
        assert self._start_at is not None
        at = workflow.now()
        result = await self.execute_activity(
            activities.send_booking_reminder,
            ReminderInput(
                booking_id=self._booking_id,
                reminder_type=rtype,
                start_at=self._start_at,
                workflow_time=at,
                sent_by="lifecycle",
            ),
            policy=policies.NOTIFICATION,
        )
        r = self._reminders[rtype]
        r.update(state=result.state, key=result.key, sent_at=at, reason=result.reason)
        self._log_sent(f"reminder_{rtype}", result.key, at, result.state)
        self._step(f"reminder {rtype}: {result.state}")

    async def _flag(self, kind: str, message: str) -> None:
        await self.execute_activity(
            activities.raise_booking_flag,
            BookingFlagInput(
                booking_id=self._booking_id,
                kind=kind,
                message=message,
                workflow_id=workflow.info().workflow_id,
            ),
            # Retried for hours like a message: a flag must not be lost to a DB hiccup.
            policy=policies.NOTIFICATION,
        )

    async def _flag_unresolved(self) -> None:
        assert self._end_at is not None
        await self._flag(
            "unresolved_session",
            f"Booking {self._booking_id} ended at {utc_iso(self._end_at)} and was marked neither "
            f"completed nor no-show within {self._policy['grace_period_minutes']} minutes. "
            "The lifecycle keeps waiting: send mark_completed or mark_no_show.",
        )
        self._flagged = True
        self._stage = "unresolved"
        self._step("unresolved session flagged for ops")
