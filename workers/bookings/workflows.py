"""Bookings workflows: the lifecycle of one booking, rescheduling into a new booking, and
batch reminders. Deterministic code only (the sandbox re-imports this module): time is
`workflow.now()`, every timer is computed from it when it is set, all I/O is activities.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)

from estuary.contracts import policies
from estuary.contracts.search_attributes import TRIGGERED_BY
from workers.temporal.base_workflows import BaseWorkflow
from workers.temporal.decorators import monitored_workflow

# The shared dataclasses pass through the sandbox too: the payload converter recognises
# `datetime` fields only by the real class, not the sandbox's restricted stand-in.
with workflow.unsafe.imports_passed_through():
    from estuary.contracts.bookings import (
        REMINDER_OFFSETS,
        REMINDER_TYPES,
        BatchReminderInput,
        BatchReminderResult,
        BookingFlagInput,
        BookingLifecycleInput,
        BookingLifecycleResult,
        BookingNoticeInput,
        BookingRef,
        BookingSnapshot,
        CancelArg,
        CancellationInput,
        CancelResult,
        CompleteBookingInput,
        FeedbackArg,
        FeedbackInput,
        MarkSessionArg,
        MoveBookingInput,
        NoShowInput,
        ReminderChunkInput,
        ReminderInput,
        ReminderPageInput,
        RescheduleArg,
        RescheduledAwayArg,
        RescheduleRequestInput,
        RescheduleResult,
        ReschedulingInput,
        ReschedulingResult,
        utc_iso,
    )
    from estuary.contracts.payments import (
        BookingCommissionInput,
        BookingCommissionResult,
        PackageSessionCompletedInput,
    )
    from workers.bookings import activities

FINAL_STAGES = ("completed", "no_show", "cancelled", "rescheduled")
# workflow.patched() ids: each names a change made while runs of the old code may be in
# flight. Remove a guard (keeping the new path) only once no run older than it can exist.
PATCH_FEEDBACK_NOTICE = "feedback-notice-to-practitioner"  # 2026-12-01
MAX_IGNORED_KEPT = 50


def lifecycle_workflow_id(booking_id: int) -> str:
    return f"bookings-lifecycle-{booking_id}"


def failure_text(err: BaseException) -> str:
    """The innermost message of a Temporal failure chain (the service's own words)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return getattr(err, "message", None) or str(err)


def refusal(message: str) -> ApplicationError:
    return ApplicationError(message, type=policies.BUSINESS_RULE_ERROR, non_retryable=True)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class _Request:
    """An accepted update waiting for the main loop to carry it out."""

    name: str
    arg: Any
    done: bool = False
    result: Any = None
    error: str | None = None


@dataclass
class _Timer:
    kind: str
    at: datetime
    waiting_for: str


# --- BookingLifecycleWorkflow -------------------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="bookings",
    input=BookingLifecycleInput,
    description=(
        "One booking from confirmation to outcome: confirmation, reminders 24 h and 1 h "
        "ahead, waits for mark_completed / mark_no_show (flags ops after the grace period), "
        "then follow-up and one feedback reminder; no-show and cancellation apply their "
        "policies; reschedule moves the timers in place."
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
)
class BookingLifecycleWorkflow(BaseWorkflow):
    """Signals and updates only queue work; the main loop carries it out in arrival
    order, so a reminder, a cancellation and a move never race each other."""

    @workflow.init
    def __init__(self, inp: BookingLifecycleInput) -> None:
        self._input = inp
        self._booking_id = inp.booking_id
        self._snapshot: BookingSnapshot | None = None
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._start_at: datetime | None = None
        self._end_at: datetime | None = None
        self._policy: dict[str, Any] = {}
        self._reminders: dict[str, dict[str, Any]] = {}
        self._sent_log: list[dict[str, Any]] = []
        self._moves: list[dict[str, Any]] = []
        self._inbox: list[tuple[str, Any, _Request | None]] = []
        self._ignored: list[dict[str, Any]] = []
        self._outcome: str | None = None
        self._outcome_by: str | None = None
        self._credit_cents = 0
        self._fee_cents = 0
        self._flagged = False
        self._flag_resolved = False
        self._problems: list[str] = []
        self._payments: dict[str, Any] = {"package_signalled": False, "commission_cents": None}
        self._feedback: dict[str, Any] | None = None
        self._feedback_due: datetime | None = None
        self._feedback_reminder_sent = False
        self._feedback_close: datetime | None = None
        self._rescheduled_to: int | None = None

    # --- run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: BookingLifecycleInput) -> BookingLifecycleResult:
        try:
            snap = await self.execute_activity(
                activities.load_booking, BookingRef(inp.booking_id), policy=policies.DATABASE
            )
        except ActivityError as err:
            raise refusal(failure_text(err)) from err
        if snap.status != "confirmed":
            raise refusal(f"booking {snap.booking_id} is {snap.status}; it has no lifecycle to run")
        self._snapshot = snap
        self._start_at, self._end_at = _aware(snap.start_at), _aware(snap.end_at)
        self._policy = self._resolve_policy(inp, snap)
        self._step("booking loaded")
        now = workflow.now()
        self._plan_reminders(now)
        if snap.rescheduled_from_id is not None:
            self._step("confirmation covered by the reschedule notice")
        elif now < self._start_at:
            self._stage = "confirming"
            await self._notice("confirmation", ["client", "practitioner"])
            self._step("confirmation sent")
        ahead = workflow.now() < self._start_at
        self._stage = "awaiting_session" if ahead else "awaiting_outcome"

        while self._stage not in FINAL_STAGES:
            await self._drain_inbox()
            if self._stage in FINAL_STAGES:
                break
            await self._fire_due()
            if self._stage in FINAL_STAGES:
                break
            await self._sleep_until_next()

        await self._drain_inbox()  # answer anything accepted just before the end
        await workflow.wait_condition(workflow.all_handlers_finished)
        return BookingLifecycleResult(
            booking_id=self._booking_id,
            outcome=self._outcome or self._stage,
            start_at=utc_iso(self._start_at),
            credit_cents=self._credit_cents,
            fee_cents=self._fee_cents,
            feedback_rating=self._feedback["rating"] if self._feedback else None,
            feedback_reminder_sent=self._feedback_reminder_sent,
            reminders_sent=[
                e["key"]
                for e in self._sent_log
                if e["kind"].startswith("reminder_") and e["state"] == "sent"
            ],
            rescheduled_to_booking_id=self._rescheduled_to,
        )

    @staticmethod
    def _resolve_policy(inp: BookingLifecycleInput, snap: BookingSnapshot) -> dict[str, Any]:
        """Input values win; empty ones come from the config the first activity read."""
        names = (
            "no_show_fee_percent",
            "no_show_credit_forfeited",
            "cancel_full_credit_hours",
            "late_cancel_credit_percent",
            "grace_period_minutes",
            "feedback_reminder_hours",
        )
        out: dict[str, Any] = {}
        for name in names:
            given = getattr(inp, name)
            out[name] = getattr(snap, name) if given is None else given
        return out

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
            activities.send_booking_notice,
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
            self._sent_log.append(
                {
                    "kind": kind,
                    "key": key,
                    "at": utc_iso(at),
                    "state": "sent" if created else "already_sent",
                }
            )

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
        self._sent_log.append(
            {
                "kind": f"reminder_{rtype}",
                "key": result.key,
                "at": utc_iso(at),
                "state": result.state,
            }
        )
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

    # --- the inbox ----------------------------------------------------------------------------

    async def _drain_inbox(self) -> None:
        while self._inbox:
            name, arg, request = self._inbox.pop(0)
            if request is None:
                await self._on_signal(name, arg)
                continue
            try:
                request.result = await self._on_request(name, arg)
            except ApplicationError as err:
                request.error = err.message
            request.done = True

    def _ignore(self, name: str, arg: Any, reason: str) -> None:
        if len(self._ignored) < MAX_IGNORED_KEPT:
            self._ignored.append(
                {
                    "name": name,
                    "actor": getattr(arg, "actor", ""),
                    "reason": reason,
                    "at": utc_iso(workflow.now()),
                }
            )

    async def _on_signal(self, name: str, arg: Any) -> None:
        if name == "rescheduled_away":
            if self._outcome is not None:
                self._ignore(name, arg, f"booking is already {self._outcome}")
                return
            self._outcome, self._outcome_by = "rescheduled", arg.actor
            self._rescheduled_to = arg.new_booking_id
            self._stage = "rescheduled"
            self._step(f"replaced by booking {arg.new_booking_id}")
            return
        if name == "feedback_received":
            await self._on_feedback(arg)
            return
        assert self._start_at is not None
        if self._outcome is not None:
            self._ignore(name, arg, f"booking is already {self._outcome}")
            return
        if workflow.now() < self._start_at:
            self._ignore(name, arg, f"session has not started (starts {utc_iso(self._start_at)})")
            return
        if name == "mark_completed":
            await self._on_completed(arg)
        else:
            await self._on_no_show(arg)

    async def _on_completed(self, arg: MarkSessionArg) -> None:
        try:
            await self.execute_activity(
                activities.complete_booking,
                CompleteBookingInput(self._booking_id, arg.actor, workflow.now(), arg.note),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            self._ignore("mark_completed", arg, failure_text(err))
            return
        self._outcome, self._outcome_by = "completed", arg.actor
        self._flag_resolved = self._flagged
        self._stage = "completing"
        self._step(f"completed (by {arg.actor})")
        await self._payments_steps()
        await self._notice("follow_up", ["client"])
        self._step("follow-up with feedback request sent")
        self._feedback_due = workflow.now() + self._feedback_wait()
        self._stage = "awaiting_feedback"

    async def _payments_steps(self) -> None:
        """Package payout signal (package sessions) and commission (every session), on
        the payments queue. A failure is flagged for ops; the lifecycle goes on."""
        await self._tell_package_payout()
        try:
            commission = await self.execute_activity(
                "record_booking_commission",
                BookingCommissionInput(self._booking_id),
                domain="payments",
                policy=policies.DATABASE,
                result_type=BookingCommissionResult,
            )
            self._payments["commission_cents"] = commission.commission_cents
            self._step("commission recorded")
        except ActivityError as err:
            await self._payments_problem("commission", err)

    async def _tell_package_payout(self) -> None:
        """A package session's outcome goes to the purchase's progressive payout, which
        decides whether it releases a part (completed and past; a no-show per the no-show
        policy). A failure is flagged for ops; the lifecycle goes on."""
        assert self._snapshot is not None
        purchase_id = self._snapshot.package_purchase_id
        if purchase_id is None:
            return
        try:
            await self.execute_activity(
                "notify_package_session_completed",
                PackageSessionCompletedInput(purchase_id, self._booking_id),
                domain="payments",
                policy=policies.DATABASE,
            )
            self._payments["package_signalled"] = True
            self._step(f"package {purchase_id} payout told of the session")
        except ActivityError as err:
            await self._payments_problem("package payout signal", err)

    async def _payments_problem(self, step: str, err: ActivityError) -> None:
        text = f"{step} failed: {failure_text(err)}"
        self._problems.append(text)
        await self._flag(
            "payments_step_failed", f"Booking {self._booking_id} completed but its {text}"
        )

    async def _on_no_show(self, arg: MarkSessionArg) -> None:
        try:
            outcome = await self.execute_activity(
                activities.apply_no_show,
                NoShowInput(
                    booking_id=self._booking_id,
                    actor=arg.actor,
                    workflow_time=workflow.now(),
                    fee_percent=int(self._policy["no_show_fee_percent"]),
                    credit_forfeited=bool(self._policy["no_show_credit_forfeited"]),
                    note=arg.note,
                ),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            self._ignore("mark_no_show", arg, failure_text(err))
            return
        self._outcome, self._outcome_by = "no_show", arg.actor
        self._flag_resolved = self._flagged
        self._credit_cents, self._fee_cents = outcome.credit_cents, outcome.fee_cents
        self._step(f"no-show (by {arg.actor}): {outcome.note}")
        # Runs recorded before this told the package payout nothing of a no-show.
        if workflow.patched("package-no-show-to-payout"):
            await self._tell_package_payout()
        await self._notice(
            "no_show",
            ["client", "practitioner"],
            details={
                "credit_cents": str(outcome.credit_cents),
                "fee_cents": str(outcome.fee_cents),
            },
        )
        self._stage = "no_show"

    async def _on_feedback(self, arg: FeedbackArg) -> None:
        if self._outcome != "completed":
            self._ignore("feedback_received", arg, "session is not marked completed")
            return
        if self._feedback is not None:
            self._ignore("feedback_received", arg, "feedback already received")
            return
        if not 1 <= arg.rating <= 5:
            self._ignore("feedback_received", arg, f"rating {arg.rating} is not between 1 and 5")
            return
        at = workflow.now()
        try:
            result = await self.execute_activity(
                activities.record_booking_feedback,
                FeedbackInput(self._booking_id, arg.rating, arg.comment, arg.actor, at),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            self._ignore("feedback_received", arg, failure_text(err))
            return
        self._feedback = {"rating": result.rating, "comment": arg.comment, "at": utc_iso(at)}
        self._step(f"feedback received ({result.rating}/5)")
        # Practitioners now hear about each rating. Runs that took feedback before this
        # change sent no such notice, so their histories replay without it.
        if workflow.patched(PATCH_FEEDBACK_NOTICE):
            await self._notice("feedback", ["practitioner"], details={"rating": str(result.rating)})
        self._stage = "completed"

    async def _on_request(self, name: str, arg: Any) -> Any:
        """Carry out an accepted update, re-checking what may have changed since it was
        validated; raise ApplicationError to refuse it with a reason."""
        self._check_open("cancelled" if name == "cancel" else "rescheduled")
        if name == "cancel":
            return await self._cancel(arg)
        return await self._move(arg)

    async def _cancel(self, arg: CancelArg) -> CancelResult:
        assert self._start_at is not None
        if arg.by == "client" and workflow.now() >= self._start_at:
            raise refusal(self._started_text("the client can no longer cancel it"))
        try:
            outcome = await self.execute_activity(
                activities.apply_cancellation,
                CancellationInput(
                    booking_id=self._booking_id,
                    actor=arg.actor,
                    by=arg.by,
                    reason=arg.reason,
                    workflow_time=workflow.now(),
                    full_credit_hours=int(self._policy["cancel_full_credit_hours"]),
                    late_credit_percent=int(self._policy["late_cancel_credit_percent"]),
                ),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            raise refusal(failure_text(err)) from err
        self._outcome, self._outcome_by = "cancelled", arg.actor
        self._flag_resolved = self._flagged
        self._credit_cents, self._fee_cents = outcome.credit_cents, outcome.fee_cents
        for r in self._reminders.values():
            if r["state"] == "pending":
                r["state"], r["reason"] = "cancelled", "booking cancelled"
        self._step(f"cancelled by {arg.by} ({arg.actor}): {outcome.note}")
        await self._notice(
            "cancelled",
            ["client", "practitioner"],
            details={"reason": arg.reason, "credit_cents": str(outcome.credit_cents)},
        )
        self._stage = "cancelled"
        return CancelResult(
            booking_id=self._booking_id,
            credit_cents=outcome.credit_cents,
            fee_cents=outcome.fee_cents,
            full_credit=outcome.fee_cents == 0 and outcome.credit_cents > 0,
            note=outcome.note,
        )

    async def _move(self, arg: RescheduleArg) -> RescheduleResult:
        assert self._start_at is not None
        new_start = _aware(arg.new_start_at)
        self._check_move(new_start)
        old_start = self._start_at
        try:
            moved = await self.execute_activity(
                activities.move_booking,
                MoveBookingInput(
                    booking_id=self._booking_id,
                    new_start_at=new_start,
                    expected_start_at=old_start,
                    actor=arg.actor,
                    reason=arg.reason,
                    workflow_time=workflow.now(),
                ),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            raise refusal(failure_text(err)) from err
        self._start_at, self._end_at = _aware(moved.start_at), _aware(moved.end_at)
        self._plan_reminders(workflow.now())
        self._moves.append(
            {
                "from": utc_iso(old_start),
                "to": utc_iso(self._start_at),
                "by": arg.actor,
                "reason": arg.reason,
                "at": utc_iso(workflow.now()),
            }
        )
        self._step(f"moved from {utc_iso(old_start)} to {utc_iso(self._start_at)}")
        await self._notice(
            "moved",
            ["client", "practitioner"],
            key_suffix=utc_iso(self._start_at),
            details={"previous_start_at": utc_iso(old_start), "reason": arg.reason},
        )
        return RescheduleResult(
            booking_id=self._booking_id,
            start_at=utc_iso(self._start_at),
            end_at=utc_iso(self._end_at),
            reminders={
                rtype: (
                    f"pending at {utc_iso(r['due_at'])}" if r["state"] == "pending" else r["state"]
                )
                for rtype, r in self._reminders.items()
            },
        )

    # --- validation shared by validators and the loop -----------------------------------------

    def _started_text(self, tail: str) -> str:
        assert self._start_at is not None
        return f"booking {self._booking_id}'s session started at {utc_iso(self._start_at)}; {tail}"

    def _check_open(self, action: str) -> None:
        if self._snapshot is None:
            raise refusal(
                f"the lifecycle of booking {self._booking_id} is still starting; try again shortly"
            )
        if self._outcome is not None or self._stage in FINAL_STAGES:
            state = self._outcome or self._stage
            raise refusal(f"booking {self._booking_id} is {state}; it cannot be {action}")

    def _check_move(self, new_start: datetime) -> None:
        assert self._start_at is not None
        now = workflow.now()
        if new_start <= now:
            raise refusal(f"new_start_at {utc_iso(new_start)} is not in the future")
        if now >= self._start_at:
            raise refusal(self._started_text("it can no longer be rescheduled"))
        if new_start == self._start_at:
            raise refusal(f"booking {self._booking_id} already starts at {utc_iso(new_start)}")

    # --- signals, updates, query ---------------------------------------------------------------

    @workflow.signal
    async def mark_completed(self, arg: MarkSessionArg) -> None:
        self._inbox.append(("mark_completed", arg, None))

    @workflow.signal
    async def mark_no_show(self, arg: MarkSessionArg) -> None:
        self._inbox.append(("mark_no_show", arg, None))

    @workflow.signal
    async def feedback_received(self, arg: FeedbackArg) -> None:
        self._inbox.append(("feedback_received", arg, None))

    @workflow.signal
    async def rescheduled_away(self, arg: RescheduledAwayArg) -> None:
        """Internal: sent by ReschedulingWorkflow after it replaced this booking."""
        self._inbox.append(("rescheduled_away", arg, None))

    async def _submit(self, name: str, arg: Any) -> Any:
        request = _Request(name, arg)
        self._inbox.append((name, arg, request))
        await workflow.wait_condition(lambda: request.done)
        if request.error is not None:
            raise refusal(request.error)
        return request.result

    @workflow.update
    async def cancel(self, arg: CancelArg) -> CancelResult:
        return await self._submit("cancel", arg)

    @cancel.validator
    def validate_cancel(self, arg: CancelArg) -> None:
        try:
            self._check_open("cancelled")
        except ApplicationError as err:
            raise ValueError(err.message) from None
        if not arg.reason.strip():
            raise ValueError("reason is required")
        if arg.by not in ("client", "practitioner", "ops"):
            raise ValueError(f"by must be client, practitioner or ops, not {arg.by!r}")
        assert self._start_at is not None
        if arg.by == "client" and workflow.now() >= self._start_at:
            raise ValueError(self._started_text("the client can no longer cancel it"))

    @workflow.update
    async def reschedule(self, arg: RescheduleArg) -> RescheduleResult:
        return await self._submit("reschedule", arg)

    @reschedule.validator
    def validate_reschedule(self, arg: RescheduleArg) -> None:
        try:
            self._check_open("rescheduled")
            self._check_move(_aware(arg.new_start_at))
        except ApplicationError as err:
            raise ValueError(err.message) from None

    @workflow.query
    def progress(self) -> dict[str, Any]:
        loaded = self._start_at is not None and self._stage not in FINAL_STAGES
        nxt = self._next_timer() if loaded else None
        waiting_for = None
        if nxt is not None:
            waiting_for = nxt.waiting_for
        elif self._stage == "unresolved":
            waiting_for = "mark_completed or mark_no_show"
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": waiting_for,
            "waiting_until": utc_iso(nxt.at) if nxt else None,
            "next_timer": {"kind": nxt.kind, "at": utc_iso(nxt.at)} if nxt else None,
            "booking_id": self._booking_id,
            "start_at": utc_iso(self._start_at) if self._start_at else None,
            "end_at": utc_iso(self._end_at) if self._end_at else None,
            "package_purchase_id": self._snapshot.package_purchase_id if self._snapshot else None,
            "reminders": {
                rtype: {
                    "state": r["state"],
                    "due_at": utc_iso(r["due_at"]),
                    "sent_at": utc_iso(r["sent_at"]) if r["sent_at"] else None,
                    "key": r["key"],
                    "reason": r["reason"],
                }
                for rtype, r in self._reminders.items()
            },
            "sent_log": [dict(e) for e in self._sent_log],
            "moves": [dict(m) for m in self._moves],
            "outcome": self._outcome,
            "outcome_by": self._outcome_by,
            "credit_cents": self._credit_cents,
            "fee_cents": self._fee_cents,
            "flagged": self._flagged,
            "flag_resolved": self._flag_resolved,
            "payments": dict(self._payments),
            "problems": list(self._problems),
            "feedback": dict(self._feedback) if self._feedback else None,
            "feedback_reminder_sent": self._feedback_reminder_sent,
            "rescheduled_to_booking_id": self._rescheduled_to,
            "ignored_signals": [dict(i) for i in self._ignored],
            "policy": dict(self._policy),
        }


# --- ReschedulingWorkflow -------------------------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="bookings",
    input=ReschedulingInput,
    description=(
        "Moves a booking to a new booking at a new time: validates the slot, ends the old "
        "lifecycle, creates the new booking and its lifecycle, notifies both parties. "
        "Running the same request twice changes nothing the second time."
    ),
    business_id=lambda inp, now: f"bookings-reschedule-{inp.booking_id}-{inp.key()}",
    entity_type="booking",
    entity_id=lambda inp: inp.booking_id,
)
class ReschedulingWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: ReschedulingInput) -> None:
        self._input = inp
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._new_booking_id: int | None = None
        self._created: bool | None = None

    @workflow.run
    async def run(self, inp: ReschedulingInput) -> ReschedulingResult:
        info = workflow.info()
        # The memo names the person (it is encrypted); the search attribute holds only a
        # reference such as staff:12 when the console started the run.
        actor = (
            workflow.memo_value("triggered_by", None, type_hint=str)
            or info.typed_search_attributes.get(TRIGGERED_BY)
            or "workflow"
        )
        request = RescheduleRequestInput(
            booking_id=inp.booking_id,
            new_start_at=_aware(inp.new_start_at),
            reschedule_key=info.workflow_id,
            reason=inp.reason,
            actor=actor,
            workflow_time=workflow.now(),
        )
        self._stage = "validating the new slot"
        try:
            await self.execute_activity(
                activities.check_reschedule, request, policy=policies.DATABASE
            )
            self._steps_done.append("new slot validated")
            self._stage = "creating the new booking"
            created = await self.execute_activity(
                activities.create_rescheduled_booking,
                dataclasses.replace(request, workflow_time=workflow.now()),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            raise refusal(failure_text(err)) from err
        new_id = created.new_booking_id
        assert new_id is not None
        self._new_booking_id, self._created = new_id, created.created
        self._steps_done.append(
            f"new booking {new_id} {'created' if created.created else 'found (request repeated)'}"
        )

        self._stage = "ending the old lifecycle"
        old_lifecycle = workflow.get_external_workflow_handle(lifecycle_workflow_id(inp.booking_id))
        try:
            await old_lifecycle.signal(
                BookingLifecycleWorkflow.rescheduled_away,
                RescheduledAwayArg(actor=actor, new_booking_id=new_id, reason=inp.reason),
            )
            self._steps_done.append("old lifecycle told")
        except FailureError:
            self._steps_done.append("old lifecycle not running")

        self._stage = "starting the new lifecycle"
        new_lifecycle_id = lifecycle_workflow_id(new_id)
        try:
            await workflow.start_child_workflow(
                BookingLifecycleWorkflow.run,
                BookingLifecycleInput(booking_id=new_id),
                id=new_lifecycle_id,
                task_queue=info.task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=self.child_search_attributes("booking", new_id),
            )
            self._steps_done.append(f"lifecycle {new_lifecycle_id} started")
        except WorkflowAlreadyStartedError:
            self._steps_done.append(f"lifecycle {new_lifecycle_id} already started")

        self._stage = "notifying"
        await self.execute_activity(
            activities.send_booking_notice,
            BookingNoticeInput(
                booking_id=inp.booking_id,
                kind="rescheduled",
                audience=["client", "practitioner"],
                workflow_time=workflow.now(),
                key_suffix=str(new_id),
                details={
                    "new_booking_id": str(new_id),
                    "new_start_at": utc_iso(created.new_start_at),
                    "reason": inp.reason,
                },
            ),
            policy=policies.NOTIFICATION,
        )
        self._steps_done.append("both parties notified")
        self._stage = "done"
        return ReschedulingResult(
            old_booking_id=inp.booking_id,
            new_booking_id=new_id,
            new_start_at=utc_iso(created.new_start_at),
            lifecycle_workflow_id=new_lifecycle_id,
            created=created.created,
        )

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": None,
            "waiting_until": None,
            "booking_id": self._input.booking_id,
            "new_start_at": utc_iso(self._input.new_start_at),
            "new_booking_id": self._new_booking_id,
            "created": self._created,
        }


# --- BatchReminderWorkflow ------------------------------------------------------------------


def _batch_id(inp: BatchReminderInput, now: datetime) -> str:
    if inp.window_start is None:
        return f"bookings-batch-reminders-{inp.reminder_type}-daily-{now:%Y%m%d}"
    return f"bookings-batch-reminders-{inp.window_label()}"


@workflow.defn
@monitored_workflow(
    domain="bookings",
    input=BatchReminderInput,
    description=(
        "Sends a reminder (24h or 1h) to every confirmed booking starting in the window "
        "that has not had it, in bounded chunks; lifecycle reminders are never repeated "
        "(same notification key). Without a window: bookings starting 24-48 h ahead."
    ),
    business_id=_batch_id,
    entity_type="reminder_window",
    entity_id=lambda inp: inp.window_label(),
)
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
            window = (_aware(inp.window_start), _aware(inp.window_end))
        self._window = window
        looked_at = 0
        while True:
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
            looked_at += len(page.booking_ids) + page.already_sent
            self._cursor = page.last_booking_id
            self._steps_done.append(f"chunk {self._chunks} up to booking {self._cursor}")
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

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": None,
            "waiting_until": None,
            "window_start": utc_iso(self._window[0]) if self._window else None,
            "window_end": utc_iso(self._window[1]) if self._window else None,
            "reminder_type": self._input.reminder_type,
            "sent": self._sent,
            "already_sent": self._already,
            "skipped": self._skipped,
            "chunks": self._chunks,
            "cursor": self._cursor,
        }
