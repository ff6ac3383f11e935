"""PractitionerPayoutWorkflow: one practitioner's payout, from hold to transfer (or release).

Deterministic code only: the workflow sandbox re-imports this module for every new run, so it
holds one workflow (or a small family) and imports only modules passed through the sandbox
(workers.temporal.worker.WORKFLOW_PASSTHROUGH_MODULES) besides its own. The settlement
steps (transfer, reconciliation, failure, paid) are in `payout_settlement.PayoutSettlement`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from estuary.contracts import approval_rules, policies
from estuary.contracts.failures import innermost_message
from estuary.contracts.payments import (
    REASON_CODES,
    ApprovePayoutDecision,
    ClosePayoutInput,
    ClosePayoutResult,
    CreatePayoutInput,
    PayoutPolicy,
    PayoutPolicyInput,
    PayoutRecord,
    PayoutWaitingSignal,
    PractitionerPayoutInput,
    PractitionerPayoutResult,
    RecordPayoutDecisionInput,
    RejectPayoutDecision,
    SetPayoutStatusInput,
    policy_given,
)
from estuary.contracts.search_attributes import TRIGGERED_BY
from workers.payments.payout_settlement import PayoutSettlement
from workers.payments.workflow_support import refuse_bad_input

with workflow.unsafe.imports_passed_through():
    import workers.payments.activities as activities


@workflow.defn
class PractitionerPayoutWorkflow(PayoutSettlement):
    """One payout. Updates `approve(ApprovePayoutDecision)` / `reject(RejectPayoutDecision)`
    are validated against the payout as recorded (loaded by `create_payout` before any
    decision is accepted): never the payout's requester, never an approver already
    recorded, never after a rejection, and the decision must name the payout's exact
    amount and payee. Each decision is persisted (activity) before it is answered."""

    @workflow.init
    def __init__(self, inp: PractitionerPayoutInput) -> None:
        self._inp = inp
        triggered = workflow.info().typed_search_attributes.get(TRIGGERED_BY)
        # Who this run asks for; the payout's own requester (loaded) is what decisions
        # are checked against.
        self._requester = (inp.requested_by or triggered or "").strip()
        self._stage = "creating payout"
        self._steps_done: list[str] = []
        self._record: PayoutRecord | None = None
        self._approvals: list[dict] = []
        self._rejection: dict | None = None
        self._decision: str | None = None  # approved / rejected / expired / cancelled
        self._waiting = False
        self._deadline: datetime | None = None
        self._provider_reference: str | None = None
        self._failure: str | None = None
        self._reconciling = False
        self._final: str | None = None

    # --- queries and updates ---------------------------------------------------------------

    @workflow.query
    def progress(self) -> dict:
        record = self._record
        required = record.approvals_required if record else None
        waiting_for = None
        if self._waiting and required:
            waiting_for = f"approval ({len(self._approvals)} of {required})"
        elif self._reconciling:
            waiting_for = "the provider's answer about the transfer (asked by idempotency key)"
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": waiting_for,
            "waiting_until": self._deadline.isoformat()
            if self._deadline and (self._waiting or self._reconciling)
            else None,
            "payout_id": record.payout_id if record else None,
            "practitioner_id": self._inp.practitioner_id,
            "amount_cents": record.amount_cents if record else self._inp.amount_cents,
            "status": self._status(),
            "requested_by": self._payout_requester(),
            "approvals_required": required,
            "approvals": list(self._approvals),
            "rejection": self._rejection,
            "approval_deadline": self._deadline.isoformat() if self._deadline else None,
            "provider_reference": self._provider_reference,
            "failure": self._failure,
        }

    def _payout_requester(self) -> str:
        if self._record is not None and self._record.requested_by:
            return self._record.requested_by
        return self._requester

    def _status(self) -> str:
        """The payout's status (one of PAYOUT_STATUSES once the record exists)."""
        if self._record is None:
            return "creating"
        if self._final is not None:
            return self._final
        if self._decision in ("rejected", "expired", "cancelled"):
            return self._decision
        if self._reconciling:
            return "reconciling"
        if self._stage == "done":
            return "paid" if self._provider_reference else "failed"
        if self._stage.startswith("transfer"):
            return "processing"
        if self._waiting or (self._record.approvals_required and self._decision is None):
            return "pending_approval"
        return "approved"

    def _refusal(self, actor: str, amount_cents: object, practitioner_id: object) -> str | None:
        """Why a decision is refused, or None. Checked by the validators and again at the
        start of the handlers (two updates in one workflow task both pass validation
        before either handler runs). Until the payout is loaded every decision is refused:
        four-eyes needs the payout's own requester and recorded approvers."""
        who = (actor or "").strip()
        if not who:
            return "the decision must name who makes it (actor)"
        record = self._record
        requesters = [self._requester] + ([record.requested_by] if record else [])
        if any(approval_rules.same_person(who, r) for r in requesters):
            return f"{who} requested this payout and cannot approve or reject it"
        if record is None:
            return f"the payout is not loaded yet (stage: {self._stage}); try again shortly"
        if self._rejection is not None or record.rejection is not None:
            return "the payout was rejected; a rejection is final"
        if self._decision is not None:
            return f"the payout is already {self._decision}; no more decisions are taken"
        if not self._waiting:
            return f"the payout is not waiting for approval (stage: {self._stage})"
        if any(approval_rules.same_person(a["actor"], who) for a in self._approvals):
            return (
                f"{who} has already approved this payout; the next approval must come from "
                "a different approver"
            )
        if len(self._approvals) >= record.approvals_required:
            # Another approval, still being recorded, already completes it.
            return "the payout has all the approvals it needs"
        if not isinstance(practitioner_id, int) or practitioner_id != record.practitioner_id:
            return (
                f"the decision names practitioner {practitioner_id} but the payout is for "
                f"practitioner {record.practitioner_id}"
            )
        if (
            not isinstance(amount_cents, int)
            or isinstance(amount_cents, bool)
            or amount_cents != record.amount_cents
        ):
            return (
                f"the decision is for {amount_cents} cents but the payout is for "
                f"{record.amount_cents} cents"
            )
        return None

    def _reject_refusal(self, d: RejectPayoutDecision) -> str | None:
        refusal = self._refusal(d.actor, d.amount_cents, d.practitioner_id)
        if refusal:
            return refusal
        if d.reason_code not in REASON_CODES:
            return f"reason_code must be one of: {', '.join(REASON_CODES)}"
        if d.reason_code == "other" and not (d.note or "").strip():
            return "a rejection with reason 'other' needs a note"
        return None

    def _update_id(self) -> str | None:
        info = workflow.current_update_info()
        return info.id if info else None

    async def _persist_decision(self, inp: RecordPayoutDecisionInput) -> None:
        try:
            await self.execute_activity(
                activities.record_payout_decision, inp, policy=policies.DATABASE
            )
        except ActivityError as err:
            raise ApplicationError(
                f"the decision was not recorded: {innermost_message(err)}",
                type="DecisionRefused",
                non_retryable=True,
            ) from err

    @workflow.update
    async def approve(self, d: ApprovePayoutDecision) -> dict:
        refusal = self._refusal(d.actor, d.amount_cents, d.practitioner_id)
        if refusal:
            raise ApplicationError(refusal, type="DecisionRefused", non_retryable=True)
        assert self._record is not None
        who = d.actor.strip()
        # Claim the approver's place first (a second update in the same task sees it),
        # persist, and only then count it.
        entry = {"actor": who, "at": workflow.now().isoformat(), "note": d.note}
        self._approvals.append(entry)
        try:
            await self._persist_decision(
                RecordPayoutDecisionInput(
                    payout_id=self._record.payout_id,
                    approver=who,
                    decision="approve",
                    amount_cents=d.amount_cents,
                    payee_id=d.practitioner_id,
                    note=d.note or None,
                    update_id=self._update_id(),
                )
            )
        except ApplicationError:
            self._approvals.remove(entry)
            raise
        if len(self._approvals) >= self._record.approvals_required and self._decision is None:
            self._decision = "approved"
        return {
            "decision": "approve",
            "approvals": len(self._approvals),
            "approvals_required": self._record.approvals_required,
            "status": "approved" if self._decision == "approved" else "pending_approval",
        }

    @approve.validator
    def _validate_approve(self, d: ApprovePayoutDecision) -> None:
        refusal = self._refusal(d.actor, d.amount_cents, d.practitioner_id)
        if refusal:
            raise ValueError(refusal)

    @workflow.update
    async def reject(self, d: RejectPayoutDecision) -> dict:
        refusal = self._reject_refusal(d)
        if refusal:
            raise ApplicationError(refusal, type="DecisionRefused", non_retryable=True)
        assert self._record is not None
        who = d.actor.strip()
        rejection = {
            "actor": who,
            "at": workflow.now().isoformat(),
            "reason_code": d.reason_code,
            "note": d.note,
        }
        # Claimed at once so no approval can slip in while the rejection is persisted.
        self._rejection = rejection
        try:
            await self._persist_decision(
                RecordPayoutDecisionInput(
                    payout_id=self._record.payout_id,
                    approver=who,
                    decision="reject",
                    amount_cents=d.amount_cents,
                    payee_id=d.practitioner_id,
                    reason_code=d.reason_code,
                    note=d.note or None,
                    update_id=self._update_id(),
                )
            )
        except ApplicationError:
            self._rejection = None
            raise
        self._decision = "rejected"
        return {"decision": "reject", "status": "rejected", "reason_code": d.reason_code}

    @reject.validator
    def _validate_reject(self, d: RejectPayoutDecision) -> None:
        refusal = self._reject_refusal(d)
        if refusal:
            raise ValueError(refusal)

    # --- the run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PractitionerPayoutInput) -> PractitionerPayoutResult:
        refuse_bad_input(inp)
        problem = approval_rules.requester_problem(self._requester)
        if problem:
            raise ApplicationError(problem, type="InvalidInput", non_retryable=True)
        threshold, dual, timeout = await self._policy(inp)
        record = await self._create_payout(inp, threshold, dual, timeout)
        if record.status in ("paid", "processing", "reconciling"):
            return await self._transfer()
        try:
            closed = await self._approval(record, timeout)
        except asyncio.CancelledError:
            # Cancelled before any transfer was sent: give the hold back, then end as
            # cancelled (the release runs although the run is being cancelled).
            self._decision = "cancelled"
            self._waiting = False
            await self._close_unpaid("cancelled")
            raise
        if closed is not None:
            return closed
        return await self._transfer()

    async def _create_payout(
        self, inp: PractitionerPayoutInput, threshold: int, dual: int, timeout: int
    ) -> PayoutRecord:
        """Create (or resume) the payout record and its hold; load recorded approvals."""
        record: PayoutRecord = await self.execute_activity(
            activities.create_payout,
            CreatePayoutInput(
                workflow_id=workflow.info().workflow_id,
                practitioner_id=inp.practitioner_id,
                amount_cents=inp.amount_cents,
                requested_by=self._requester,
                reason=inp.reason,
                payment_method=inp.payment_method,
                approval_threshold_cents=threshold,
                dual_approval_threshold_cents=dual,
                approval_timeout_seconds=timeout,
                run_id=workflow.info().run_id,
            ),
            policy=policies.DATABASE,
        )
        for closed in record.closed_rejected:
            self._steps_done.append(
                f"payout {closed} under this id had a recorded rejection: closed as rejected, "
                "hold returned"
            )
        self._approvals = [
            {"actor": a, "at": None, "note": "recorded before this run"} for a in record.approved_by
        ]
        self._record = record
        self._steps_done.append(
            f"payout {record.payout_id} created, {record.amount_cents} cents held"
            + (" (resumed)" if record.reused else "")
        )
        return record

    async def _approval(
        self, record: PayoutRecord, timeout: int
    ) -> PractitionerPayoutResult | None:
        """Wait for the approvals the payout needs: the closed result if it was rejected
        or expired, None when it may be transferred."""
        if record.status == "pending_approval" and record.approvals_required:
            if len(self._approvals) < record.approvals_required:
                await self._wait_for_decision(timeout)
            else:
                self._decision = "approved"
            if self._decision in ("rejected", "expired"):
                return await self._close_unpaid(self._decision)
            await self.execute_activity(
                activities.set_payout_status,
                SetPayoutStatusInput(record.payout_id, "approved"),
                policy=policies.DATABASE,
            )
            self._steps_done.append("approved by " + ", ".join(a["actor"] for a in self._approvals))
        elif record.status in ("pending_approval", "approved"):
            self._steps_done.append("below the approval threshold: no approval needed")
        return None

    async def _policy(self, inp: PractitionerPayoutInput) -> tuple[int, int, int]:
        threshold = inp.approval_threshold_cents
        dual = inp.dual_approval_threshold_cents
        timeout = inp.approval_timeout_seconds
        if not policy_given(inp):
            self._stage = "reading approval policy"
            policy: PayoutPolicy = await self.execute_activity(
                activities.load_payout_policy,
                PayoutPolicyInput(inp.practitioner_id),
                policy=policies.DATABASE,
            )
            filled = policy.for_input(inp)
            threshold = filled.approval_threshold_cents
            dual = filled.dual_approval_threshold_cents
            timeout = filled.approval_timeout_seconds
        self._stage = "creating payout"
        return threshold, dual, timeout

    async def _wait_for_decision(self, timeout_seconds: int) -> None:
        assert self._record is not None
        timeout = timedelta(seconds=timeout_seconds)
        self._deadline = workflow.now() + timeout
        self._stage = "waiting for approval"
        self._waiting = True
        await self._tell_batch_waiting()
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
        except TimeoutError:
            if self._decision is None:
                self._decision = "expired"
        finally:
            self._waiting = False
        # Let the deciding handler finish recording its decision before moving on.
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _tell_batch_waiting(self) -> None:
        """A batch's child tells its batch it now waits for approvers, so the batch's
        summary counts what happened instead of what it expected at start."""
        parent = workflow.info().parent
        if parent is None or self._record is None:
            return
        try:
            await workflow.get_external_workflow_handle(
                parent.workflow_id, run_id=parent.run_id
            ).signal(
                "payout_waiting",
                PayoutWaitingSignal(workflow.info().workflow_id, self._record.amount_cents),
            )
        except Exception:  # the batch has moved on (continued as new or closed)
            workflow.logger.info("batch %s no longer listens for payout_waiting", parent)

    async def _close_unpaid(self, outcome: str) -> PractitionerPayoutResult:
        record = self._record
        assert record is not None
        self._stage = f"closing ({outcome})"
        reason = ""
        if outcome == "rejected" and self._rejection:
            reason = f"rejected by {self._rejection['actor']}: {self._rejection['reason_code']}"
            if self._rejection.get("note"):
                reason += f" ({self._rejection['note']})"
        elif outcome == "expired":
            reason = "no decision before the approval deadline"
        elif outcome == "cancelled":
            reason = "the payout run was cancelled while waiting"
        closed: ClosePayoutResult = await self.execute_activity(
            activities.close_unpaid_payout,
            ClosePayoutInput(record.payout_id, outcome, reason),
            policy=policies.DATABASE,
        )
        self._steps_done.append(f"{outcome}: hold of {closed.released_cents} cents returned")
        await self._notify(outcome)
        self._stage = "done"
        self._final = outcome
        return self._result(outcome)
