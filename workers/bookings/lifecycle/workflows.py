"""BookingLifecycleWorkflow: the lifecycle of one booking (reminders, session, outcome,
feedback, cancellation and moving the session). The timers are in `timers.py`, the
inbox (what each signal and update does) in `inbox.py`, the activities in `activities.py`.

Deterministic code only (the sandbox re-imports this module): time is `workflow.now()`,
every timer is computed from it when it is set, all I/O is activities.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        BookingLifecycleInput,
        BookingLifecycleResult,
        BookingRef,
        BookingSnapshot,
        CancelArg,
        CancelResult,
        FeedbackArg,
        MarkSessionArg,
        RescheduleArg,
        RescheduledAwayArg,
        RescheduleResult,
        utc_iso,
    )
from workers.bookings.lifecycle.inbox import FINAL_STAGES, LifecycleInbox

with workflow.unsafe.imports_passed_through():
    import workers.bookings.lifecycle.activities as activities


@dataclass
class _Request:
    """An accepted update waiting for the main loop to carry it out."""

    name: str
    arg: Any
    done: bool = False
    result: Any = None
    error: str | None = None


# --- BookingLifecycleWorkflow -------------------------------------------------------------


@workflow.defn
class BookingLifecycleWorkflow(LifecycleInbox):
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
            raise refusal(innermost_message(err)) from err
        if snap.status != "confirmed":
            raise refusal(f"booking {snap.booking_id} is {snap.status}; it has no lifecycle to run")
        self._snapshot = snap
        self._start_at, self._end_at = as_utc(snap.start_at), as_utc(snap.end_at)
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
            self._check_move(as_utc(arg.new_start_at))
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
