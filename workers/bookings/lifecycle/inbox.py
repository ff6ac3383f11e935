"""The booking lifecycle's inbox: signals and accepted updates, carried out one at a time by
the main loop (completion, no-show, feedback, cancellation, moving the session).

Deterministic code only (the sandbox re-imports this module): time is `workflow.now()`,
every timer is computed from it when it is set, all I/O is activities.
`LifecycleInbox` is a base of `BookingLifecycleWorkflow`, whose `__init__` sets the state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
)

from estuary.contracts import policies
from estuary.contracts.failures import innermost_message
from workers.temporal.base_workflows import as_utc, refusal

# The shared dataclasses pass through the sandbox too: the payload converter recognises
# `datetime` fields only by the real class, not the sandbox's restricted stand-in.
with workflow.unsafe.imports_passed_through():
    from estuary.contracts.bookings import (
        BookingOutcome,
        CancelArg,
        CancellationInput,
        CancelResult,
        CompleteBookingInput,
        FeedbackArg,
        FeedbackInput,
        MarkSessionArg,
        MoveBookingInput,
        NoShowInput,
        RescheduleArg,
        RescheduleResult,
        utc_iso,
    )
    from estuary.contracts.payments import (
        BookingCommissionInput,
        BookingCommissionResult,
        PackageSessionCompletedInput,
    )
from workers.bookings.lifecycle.timers import LifecycleTimers

with workflow.unsafe.imports_passed_through():
    import workers.bookings.lifecycle.activities as activities


FINAL_STAGES = ("completed", "no_show", "cancelled", "rescheduled")
# workflow.patched() ids: each names a change made while runs of the old code may be in
# flight. Remove a guard (keeping the new path) only once no run older than it can exist.
PATCH_FEEDBACK_NOTICE = "feedback-notice-to-practitioner"  # 2026-12-01
MAX_IGNORED_KEPT = 50


class LifecycleInbox(LifecycleTimers):
    """What the lifecycle does with each signal and accepted update."""

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
            self._ignore("mark_completed", arg, innermost_message(err))
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
        text = f"{step} failed: {innermost_message(err)}"
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
            self._ignore("mark_no_show", arg, innermost_message(err))
            return
        self._settle_outcome("no_show", arg.actor, outcome)
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

    def _settle_outcome(self, kind: str, actor: str, outcome: BookingOutcome) -> None:
        """The booking's outcome with its credit and fee; its open flag counts as resolved."""
        self._outcome, self._outcome_by = kind, actor
        self._flag_resolved = self._flagged
        self._credit_cents, self._fee_cents = outcome.credit_cents, outcome.fee_cents

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
            self._ignore("feedback_received", arg, innermost_message(err))
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
            raise refusal(innermost_message(err)) from err
        self._settle_outcome("cancelled", arg.actor, outcome)
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
        new_start = as_utc(arg.new_start_at)
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
            raise refusal(innermost_message(err)) from err
        self._start_at, self._end_at = as_utc(moved.start_at), as_utc(moved.end_at)
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
