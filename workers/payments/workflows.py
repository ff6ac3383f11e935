"""Payments workflows. Deterministic code only: the sandbox re-imports this module."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

from estuary.contracts import approval_rules, policies
from estuary.contracts.payments import (
    BATCH_LINE_LIMIT,
    REASON_CODES,
    ApprovePayoutDecision,
    BatchPayoutInput,
    BatchPayoutLine,
    BatchPayoutResult,
    CheckPayoutTransferInput,
    CheckPayoutTransferResult,
    ClosePayoutInput,
    ClosePayoutResult,
    CommissionCalculationInput,
    CommissionCalculationResult,
    CommissionPageInput,
    CommissionPageResult,
    CreatePayoutInput,
    DecisionOutcomes,
    GoneRunsInput,
    GoneRunsResult,
    LedgerReconciliationInput,
    LedgerReconciliationResult,
    LoadPackageInput,
    MarkReconcilingInput,
    NotifyPayoutInput,
    OpenPayoutsInput,
    OpenPayoutsPage,
    PackagePayoutInput,
    PackagePayoutResult,
    PackageReleaseResult,
    PackageState,
    PayoutCandidate,
    PayoutCandidatePage,
    PayoutPolicy,
    PayoutPolicyInput,
    PayoutReconciliationInput,
    PayoutReconciliationResult,
    PayoutRecord,
    PayoutSweepInput,
    PayoutSweepResult,
    PayoutWaitingSignal,
    PendingDecisionsPage,
    PractitionerPayoutInput,
    PractitionerPayoutResult,
    RecordPayoutDecisionInput,
    RejectPayoutDecision,
    ReleasePackageSessionInput,
    SelectPayoutCandidatesInput,
    SessionCompletedSignal,
    SetPayoutStatusInput,
    SettleExpiredPackageInput,
    SettleOrphanInput,
    TransferPayoutInput,
    TransferPayoutResult,
    input_problems,
)
from estuary.contracts.search_attributes import TRIGGERED_BY
from workers.temporal.base_workflows import BaseWorkflow
from workers.temporal.decorators import monitored_workflow

with workflow.unsafe.imports_passed_through():
    from workers.payments import activities


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=LedgerReconciliationInput,
    description="Checks that every ledger transaction balances to zero; lists any that do not.",
    business_id=lambda inp, now: f"payments-ledger-check-{now:%Y%m%d-%H%M%S}",
    entity_type="ledger",
    entity_id=lambda inp: "all",
)
class LedgerReconciliationWorkflow(BaseWorkflow):
    def __init__(self) -> None:
        self._step = "starting"
        self._done: list[str] = []

    @workflow.run
    async def run(self, inp: LedgerReconciliationInput) -> LedgerReconciliationResult:
        self._step = "checking ledger"
        result = await self.execute_activity(
            activities.check_ledger_balanced, policy=policies.DATABASE
        )
        self._done.append("checked ledger")
        self._step = "done"
        return result

    @workflow.query
    def progress(self) -> dict:
        return {
            "step": self._step,
            "stage": self._step,
            "steps_done": list(self._done),
            "waiting_for": None,
            "waiting_until": None,
        }


# --- progressive package payout ---------------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=PackagePayoutInput,
    description=(
        "Releases a practitioner's net earnings for a package one exact part per completed "
        "session (signal session_completed); ends when all are released or the package "
        "expires (expiry policy)."
    ),
    business_id=lambda inp, now: f"payments-package-payout-{inp.package_purchase_id}",
    entity_type="package_purchase",
    entity_id=lambda inp: inp.package_purchase_id,
    money=True,
    signals=(("session_completed", SessionCompletedSignal),),
)
class ProgressivePackagePayoutWorkflow(BaseWorkflow):
    """One run per package purchase.

    `session_completed(booking_id)` queues a booking once (repeats are ignored here, and
    the release activity is idempotent per booking besides). Each queued booking releases
    the next exact part of the net total (part k = net // n, the last part takes the
    remainder), so the parts sum to the net total whatever order sessions complete in.
    At `expires_at` the expiry policy settles what is left.
    """

    @workflow.init
    def __init__(self, inp: PackagePayoutInput) -> None:
        self._inp = inp
        self._stage = "loading package"
        self._steps_done: list[str] = []
        self._queue: list[int] = []
        self._seen: set[int] = set()
        self._duplicates = 0
        self._ignored: list[int] = []
        self._state: PackageState | None = None
        self._sessions_released = 0
        self._released_cents = 0
        self._expires_at: datetime | None = None
        self._waiting_for: str | None = None

    @workflow.signal
    def session_completed(self, signal: SessionCompletedSignal) -> None:
        booking_id = signal.booking_id
        if not isinstance(booking_id, int) or isinstance(booking_id, bool) or booking_id < 1:
            workflow.logger.warning("session_completed with a bad booking id %r", booking_id)
            return
        if booking_id in self._seen:
            self._duplicates += 1
            return
        self._seen.add(booking_id)
        self._queue.append(booking_id)

    @workflow.query
    def progress(self) -> dict:
        state = self._state
        total = state.sessions_total if state else None
        net = state.net_cents if state else None
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done[-50:]),
            "waiting_for": self._waiting_for,
            "waiting_until": self._expires_at.isoformat() if self._expires_at else None,
            "sessions_done": self._sessions_released,
            "sessions_total": total,
            "released_cents": self._released_cents,
            "remaining_cents": (net - self._released_cents) if net is not None else None,
            "net_cents": net,
            "queued_booking_ids": list(self._queue),
            "duplicates_ignored": self._duplicates,
            "ignored_booking_ids": list(self._ignored),
            "expiry_policy": self._inp.expiry_policy,
        }

    @workflow.run
    async def run(self, inp: PackagePayoutInput) -> PackagePayoutResult:
        _refuse_bad_input(inp)
        state: PackageState = await self.execute_activity(
            activities.load_package_state,
            LoadPackageInput(inp.package_purchase_id),
            policy=policies.DATABASE,
        )
        self._state = state
        self._released_cents = state.released_cents
        self._sessions_released = len(state.released_booking_ids)
        self._expires_at = datetime.fromisoformat(state.expires_at)
        already = set(state.released_booking_ids)
        self._seen |= already
        self._queue = [b for b in self._queue if b not in already]
        self._steps_done.append("loaded package")
        if state.expiry_settled or self._sessions_released >= state.sessions_total:
            self._stage = "already settled"
            return self._result(state, "already_settled")

        while self._sessions_released < state.sessions_total:
            if self._queue:
                await self._release(self._queue.pop(0))
                continue
            left = self._expires_at - workflow.now()
            if left <= timedelta(0):
                break
            self._stage = "waiting for sessions"
            self._waiting_for = (
                f"session_completed ({self._sessions_released} of {state.sessions_total} done)"
            )
            try:
                await workflow.wait_condition(lambda: bool(self._queue), timeout=left)
            except TimeoutError:
                break
            finally:
                self._waiting_for = None

        outcome = "completed"
        settlement = 0
        if self._sessions_released < state.sessions_total:
            self._stage = "settling expiry"
            expiry = await self.execute_activity(
                activities.settle_expired_package,
                SettleExpiredPackageInput(
                    inp.package_purchase_id, inp.expiry_policy, workflow.info().workflow_id
                ),
                policy=policies.DATABASE,
            )
            settlement = expiry.amount_cents
            outcome = "expired"
            self._steps_done.append(f"expired: {expiry.outcome} ({expiry.amount_cents} cents)")
        self._stage = "done"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result(state, outcome, settlement)

    async def _release(self, booking_id: int) -> None:
        assert self._state is not None
        self._stage = f"releasing booking {booking_id}"
        result: PackageReleaseResult = await self.execute_activity(
            activities.release_package_session,
            ReleasePackageSessionInput(
                self._state.package_purchase_id,
                booking_id,
                workflow.info().workflow_id,
                workflow.now().isoformat(),
            ),
            policy=policies.DATABASE,
        )
        if result.released:
            self._sessions_released = result.sessions_released
            self._released_cents = result.released_cents_total
            self._steps_done.append(
                f"released part {result.part} ({result.amount_cents} cents, booking {booking_id})"
            )
        else:
            self._ignored.append(booking_id)
            self._steps_done.append(f"ignored booking {booking_id}: {result.ignored_reason}")

    def _result(
        self, state: PackageState, outcome: str, settlement: int = 0
    ) -> PackagePayoutResult:
        return PackagePayoutResult(
            package_purchase_id=state.package_purchase_id,
            outcome=outcome,
            sessions_total=state.sessions_total,
            sessions_released=self._sessions_released,
            net_cents=state.net_cents,
            released_cents=self._released_cents,
            remaining_cents=state.net_cents - self._released_cents,
            expiry_policy=self._inp.expiry_policy,
            expiry_settlement_cents=settlement,
            ignored_booking_ids=list(self._ignored),
        )


# --- single payout -----------------------------------------------------------------------


def _payout_business_id(inp: PractitionerPayoutInput, now: datetime) -> str:
    return f"payments-payout-{inp.practitioner_id}-{now:%Y%m%d}"


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=PractitionerPayoutInput,
    description=(
        "Pays one practitioner: payout record and hold, approval at or above the threshold "
        "(two approvers above the dual threshold; expires after the timeout), transfer with "
        "the payout's idempotency key, ledger settlement, notification. An unknown transfer "
        "outcome keeps the hold and asks the provider again until the settle window ends."
    ),
    business_id=_payout_business_id,
    entity_type="practitioner",
    entity_id=lambda inp: inp.practitioner_id,
    money=True,
    updates=(("approve", ApprovePayoutDecision), ("reject", RejectPayoutDecision)),
)
class PractitionerPayoutWorkflow(BaseWorkflow):
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
                f"the decision was not recorded: {_failure_text(err)}",
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
        _refuse_bad_input(inp)
        problem = approval_rules.requester_problem(self._requester)
        if problem:
            raise ApplicationError(problem, type="InvalidInput", non_retryable=True)
        threshold, dual, timeout = await self._policy(inp)
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
        if record.status == "paid":
            return await self._transfer()
        if record.status in ("processing", "reconciling"):
            return await self._transfer()
        try:
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
                self._steps_done.append(
                    "approved by " + ", ".join(a["actor"] for a in self._approvals)
                )
            elif record.status in ("pending_approval", "approved"):
                self._steps_done.append("below the approval threshold: no approval needed")
        except asyncio.CancelledError:
            # Cancelled before any transfer was sent: give the hold back, then end as
            # cancelled (the release runs although the run is being cancelled).
            self._decision = "cancelled"
            self._waiting = False
            await self._close_unpaid("cancelled")
            raise
        return await self._transfer()

    async def _policy(self, inp: PractitionerPayoutInput) -> tuple[int, int, int]:
        threshold = inp.approval_threshold_cents
        dual = inp.dual_approval_threshold_cents
        timeout = inp.approval_timeout_seconds
        if threshold is None or dual is None or timeout is None:
            self._stage = "reading approval policy"
            policy: PayoutPolicy = await self.execute_activity(
                activities.load_payout_policy,
                PayoutPolicyInput(inp.practitioner_id),
                policy=policies.DATABASE,
            )
            threshold = policy.approval_threshold_cents if threshold is None else threshold
            dual = policy.dual_approval_threshold_cents if dual is None else dual
            timeout = policy.approval_timeout_seconds if timeout is None else timeout
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

    async def _transfer(self) -> PractitionerPayoutResult:
        record = self._record
        assert record is not None
        self._stage = "transferring"
        await self.execute_activity(
            activities.set_payout_status,
            SetPayoutStatusInput(record.payout_id, "processing"),
            policy=policies.DATABASE,
        )
        sent: TransferPayoutResult | None = None
        transfer = workflow.start_activity(
            activities.transfer_payout,
            TransferPayoutInput(record.payout_id),
            start_to_close_timeout=policies.PAYOUT_TRANSFER.start_to_close,
            retry_policy=policies.PAYOUT_TRANSFER.retry,
        )
        try:
            try:
                # Shielded: cancelling the run must not abandon a transfer in flight.
                sent = await asyncio.shield(transfer)
            except asyncio.CancelledError:
                self._steps_done.append("cancel requested during the transfer: finishing it")
                sent = await transfer
        except ActivityError as err:
            self._failure = _failure_text(err)
            if not _known_not_sent(err):
                return await self._reconcile(f"transfer outcome unknown: {self._failure}")
            return await self._fail(err)
        if sent.status != "paid":
            return await self._reconcile("the provider accepted the transfer and is processing it")
        self._provider_reference = sent.provider_reference
        return await self._paid()

    async def _fail(self, err: BaseException) -> PractitionerPayoutResult:
        """The provider refused the transfer for good: nothing left; return the hold."""
        record = self._record
        assert record is not None
        self._stage = "transfer failed: returning the hold"
        closed: ClosePayoutResult = await self.execute_activity(
            activities.close_unpaid_payout,
            ClosePayoutInput(record.payout_id, "failed", self._failure or ""),
            policy=policies.DATABASE,
        )
        if closed.status == "paid":
            # The provider had paid it after all (its answers were lost): it is paid.
            self._provider_reference = closed.provider_reference
            self._failure = None
            return await self._paid()
        if closed.status == "reconciling":
            return await self._reconcile("the provider has a transfer for this payout")
        self._steps_done.append(
            f"transfer failed ({self._failure}); hold of {closed.released_cents} cents returned"
        )
        await self._notify("failed")
        self._stage = "done"
        self._final = "failed"
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(
            f"payout {record.payout_id} failed: {self._failure}; the hold of "
            f"{closed.released_cents} cents was returned to the available balance",
            type="PayoutFailed",
            non_retryable=True,
        ) from err

    async def _reconcile(self, why: str) -> PractitionerPayoutResult:
        """The transfer's outcome is unknown: never "not paid". Keep the hold and ask the
        provider by idempotency key (durable timers, backing off) until the settle
        window has passed; then decide from the provider's answer."""
        record = self._record
        assert record is not None
        self._reconciling = True
        await self.execute_activity(
            activities.mark_payout_reconciling,
            MarkReconcilingInput(record.payout_id, why),
            policy=policies.DATABASE,
        )
        # Named only once the payout row says so too (the console and tests read both).
        self._stage = "reconciling with the provider"
        self._steps_done.append(f"reconciling: {why}; the hold stays")
        policy: PayoutPolicy = await self.execute_activity(
            activities.load_payout_policy,
            PayoutPolicyInput(record.practitioner_id),
            policy=policies.DATABASE,
        )
        self._deadline = workflow.now() + timedelta(seconds=policy.settle_window_seconds)
        delay = RECONCILE_FIRST_CHECK
        while True:
            give_up = workflow.now() >= self._deadline
            check: CheckPayoutTransferResult = await self.execute_activity(
                activities.check_payout_transfer,
                CheckPayoutTransferInput(record.payout_id, give_up=give_up),
                policy=policies.DATABASE,
            )
            if check.outcome == "paid":
                self._reconciling = False
                self._provider_reference = check.provider_reference
                self._failure = None
                self._steps_done.append(
                    f"the provider confirms it paid ({check.provider_reference})"
                )
                return await self._paid()
            if check.outcome == "not_paid":
                self._reconciling = False
                self._steps_done.append(
                    "the provider has no transfer after the settle window: "
                    f"hold of {check.released_cents} cents returned"
                )
                await self._notify("failed")
                self._stage = "done"
                self._final = "failed"
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(
                    f"payout {record.payout_id} failed: the provider has no transfer for it "
                    f"after the settle window; the hold of {check.released_cents} cents was "
                    "returned to the available balance",
                    type="PayoutFailed",
                    non_retryable=True,
                )
            if check.outcome == "in_doubt":
                self._steps_done.append(
                    f"still in doubt after the settle window ({check.provider_reference}): "
                    "left reconciling with its hold, flagged to ops"
                )
                self._stage = "done"
                self._final = "reconciling"
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._result("reconciling")
            if check.outcome == "missing":
                resent = await self._resend(record.payout_id)
                if resent == "paid":
                    continue  # the next look settles it
                if resent == "refused":
                    self._reconciling = False
                    return await self._fail(
                        ApplicationError(self._failure or "refused", type="ProviderDeclined")
                    )
            left = self._deadline - workflow.now()
            if left <= timedelta(0):
                continue
            await workflow.sleep(min(delay, left))
            delay = min(delay * 2, RECONCILE_MAX_INTERVAL)

    async def _resend(self, payout_id: int) -> str:
        """Send again under the same key (the provider has no record of it): paid /
        unknown (still no answer) / refused (the provider declined for good)."""
        try:
            sent: TransferPayoutResult = await self.execute_activity(
                activities.transfer_payout,
                TransferPayoutInput(payout_id),
                policy=policies.PAYOUT_TRANSFER_RESEND,
            )
        except ActivityError as err:
            if _known_not_sent(err):
                self._failure = _failure_text(err)
                return "refused"
            return "unknown"
        return "paid" if sent.status == "paid" else "unknown"

    async def _paid(self) -> PractitionerPayoutResult:
        self._steps_done.append(f"transferred ({self._provider_reference})")
        await self._notify("paid")
        self._stage = "done"
        self._final = "paid"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("paid")

    async def _notify(self, event: str) -> None:
        assert self._record is not None
        await self.execute_activity(
            activities.notify_payout,
            NotifyPayoutInput(self._record.payout_id, event),
            policy=policies.NOTIFICATION,
        )
        self._steps_done.append(f"practitioner notified ({event})")

    def _result(self, status: str) -> PractitionerPayoutResult:
        record = self._record
        assert record is not None
        return PractitionerPayoutResult(
            payout_id=record.payout_id,
            practitioner_id=record.practitioner_id,
            amount_cents=record.amount_cents,
            status=status,
            idempotency_key=record.idempotency_key,
            approvals=[a["actor"] for a in self._approvals],
            provider_reference=self._provider_reference,
            reason_code=self._rejection["reason_code"] if self._rejection else None,
        )


# The first look at the provider after an unknown outcome (a bank transfer the provider
# accepted takes minutes to pay out), and the longest gap between looks (durable timers:
# a worker restart does not lose them).
RECONCILE_FIRST_CHECK = timedelta(minutes=5)
RECONCILE_MAX_INTERVAL = timedelta(hours=1)
# Errors after which the provider is known not to have sent anything.
_NOT_SENT_TYPES = ("ProviderDeclined", "BusinessRuleError", "NotFoundError")


def _known_not_sent(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in _NOT_SENT_TYPES:
            return True
        cause = cause.__cause__
    return False


def _refuse_bad_input(inp: object) -> None:
    """Input that skipped `parse_input` (a raw client start) is refused before any step."""
    problem = input_problems(inp)
    if problem:
        raise ApplicationError(problem, type="InvalidInput", non_retryable=True)


def _failure_text(err: BaseException) -> str:
    cause: BaseException | None = err
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


# --- batch payout ------------------------------------------------------------------------


def _batch_business_id(inp: BatchPayoutInput, now: datetime) -> str:
    if inp.dry_run:
        return f"payments-batch-payout-dry-run-{now:%Y-%m-%d-%H%M%S}"
    return f"payments-batch-payout-{now:%Y-%m-%d}"


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=BatchPayoutInput,
    description=(
        "Pays every practitioner whose available balance is at least the minimum, one "
        "PractitionerPayoutWorkflow child each, in bounded chunks (continues as new for big "
        "batches). Dry run lists what would be paid and moves nothing."
    ),
    business_id=_batch_business_id,
    entity_type="payout_batch",
    entity_id=lambda inp: "dry-run" if inp.dry_run else "all",
    money=True,
)
class BatchPractitionerPayoutWorkflow(BaseWorkflow):
    """Children below the approval threshold are awaited (paid or failed); children that
    need approval are started and left to wait for their approvers (ParentClosePolicy
    ABANDON). The summary counts outcomes, not intentions: a child that needs approval
    counts as waiting_for_approval only once it has told the batch it waits (signal
    `payout_waiting`, sent after its payout and hold exist); one that ended first counts
    by how it ended (failed, paid, ...).
    A practitioner who already has a payout run today (same child id) is skipped."""

    @workflow.init
    def __init__(self, inp: BatchPayoutInput) -> None:
        self._inp = inp
        self._result = inp.carried or BatchPayoutResult(dry_run=inp.dry_run)
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._cursor = inp.cursor
        self._in_flight = 0
        self._waiting_children: set[str] = set()

    @workflow.signal
    def payout_waiting(self, signal: PayoutWaitingSignal) -> None:
        self._waiting_children.add(signal.workflow_id)

    @workflow.query
    def progress(self) -> dict:
        r = self._result
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done[-20:]),
            "waiting_for": (
                f"{self._in_flight} payouts in this chunk" if self._in_flight else None
            ),
            "waiting_until": None,
            "dry_run": self._inp.dry_run,
            "cursor": self._cursor,
            "run": r.runs,
            "paid": {"count": r.paid_count, "cents": r.paid_cents},
            "waiting_for_approval": {
                "count": r.waiting_for_approval_count,
                "cents": r.waiting_for_approval_cents,
            },
            "skipped": {"count": r.skipped_count, "cents": r.skipped_cents},
            "failed": {"count": r.failed_count, "cents": r.failed_cents},
            "would_pay": {"count": r.would_pay_count, "cents": r.would_pay_cents},
        }

    def _line(self, line: BatchPayoutLine) -> None:
        r = self._result
        if len(r.lines) < BATCH_LINE_LIMIT:
            r.lines.append(line)
        else:
            r.lines_truncated = True
        counters = {
            "paid": ("paid_count", "paid_cents"),
            "waiting_for_approval": ("waiting_for_approval_count", "waiting_for_approval_cents"),
            "skipped": ("skipped_count", "skipped_cents"),
            "failed": ("failed_count", "failed_cents"),
            "would_pay": ("would_pay_count", "would_pay_cents"),
        }
        count_name, cents_name = counters[line.outcome]
        setattr(r, count_name, getattr(r, count_name) + 1)
        setattr(r, cents_name, getattr(r, cents_name) + line.amount_cents)

    @workflow.run
    async def run(self, inp: BatchPayoutInput) -> BatchPayoutResult:
        _refuse_bad_input(inp)
        payout_date = inp.payout_date or workflow.now().strftime("%Y%m%d")
        threshold, dual, timeout = await self._policy(inp)
        triggered = workflow.info().typed_search_attributes.get(TRIGGERED_BY)
        requester = (inp.requested_by or triggered or "schedule").strip()
        handled = 0
        while True:
            self._stage = f"selecting practitioners after id {self._cursor}"
            page: PayoutCandidatePage = await self.execute_activity(
                activities.select_payout_candidates,
                SelectPayoutCandidatesInput(
                    min_amount_cents=inp.min_amount_cents,
                    after_practitioner_id=self._cursor,
                    limit=inp.chunk_size,
                    practitioner_ids=inp.practitioner_ids,
                ),
                policy=policies.BATCH,
            )
            for line in page.skipped:
                self._line(line)
            if inp.dry_run:
                for c in page.candidates:
                    self._line(BatchPayoutLine(c.practitioner_id, c.available_cents, "would_pay"))
            elif page.candidates:
                await self._pay_chunk(
                    page.candidates, inp, payout_date, requester, threshold, dual, timeout
                )
            self._cursor = page.next_cursor
            handled += len(page.candidates) + len(page.skipped)
            self._steps_done.append(
                f"chunk up to practitioner {self._cursor}: {len(page.candidates)} candidates, "
                f"{len(page.skipped)} skipped"
            )
            if page.exhausted:
                break
            if (
                handled >= min(inp.items_per_run, policies.CONTINUE_AS_NEW_AFTER_ITEMS)
                or workflow.info().is_continue_as_new_suggested()
            ):
                self._stage = "continuing as new"
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._result.runs += 1
                workflow.continue_as_new(
                    dataclasses.replace(
                        inp,
                        cursor=self._cursor,
                        payout_date=payout_date,
                        requested_by=requester,
                        approval_threshold_cents=threshold,
                        dual_approval_threshold_cents=dual,
                        approval_timeout_seconds=timeout,
                        carried=self._result,
                    )
                )
        self._stage = "done"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _policy(self, inp: BatchPayoutInput) -> tuple[int, int, int]:
        if inp.dry_run or None not in (
            inp.approval_threshold_cents,
            inp.dual_approval_threshold_cents,
            inp.approval_timeout_seconds,
        ):
            return (
                inp.approval_threshold_cents or 0,
                inp.dual_approval_threshold_cents or 0,
                inp.approval_timeout_seconds or 0,
            )
        policy: PayoutPolicy = await self.execute_activity(
            activities.load_payout_policy, PayoutPolicyInput(), policy=policies.DATABASE
        )
        return (
            policy.approval_threshold_cents
            if inp.approval_threshold_cents is None
            else inp.approval_threshold_cents,
            policy.dual_approval_threshold_cents
            if inp.dual_approval_threshold_cents is None
            else inp.dual_approval_threshold_cents,
            policy.approval_timeout_seconds
            if inp.approval_timeout_seconds is None
            else inp.approval_timeout_seconds,
        )

    async def _pay_chunk(
        self,
        candidates: list[PayoutCandidate],
        inp: BatchPayoutInput,
        payout_date: str,
        requester: str,
        threshold: int,
        dual: int,
        timeout: int,
    ) -> None:
        self._stage = f"paying {len(candidates)} practitioners"
        awaited: list[tuple[PayoutCandidate, str, workflow.ChildWorkflowHandle]] = []
        approval: list[tuple[PayoutCandidate, str, workflow.ChildWorkflowHandle]] = []
        for c in candidates:
            child_id = f"payments-payout-{c.practitioner_id}-{payout_date}"
            child_input = PractitionerPayoutInput(
                practitioner_id=c.practitioner_id,
                amount_cents=c.available_cents,
                requested_by=requester,
                reason=f"batch {workflow.info().workflow_id}",
                payment_method=inp.payment_method,
                approval_threshold_cents=threshold,
                dual_approval_threshold_cents=dual,
                approval_timeout_seconds=timeout,
            )
            try:
                handle = await workflow.start_child_workflow(
                    PractitionerPayoutWorkflow.run,
                    child_input,
                    id=child_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=policies.MONEY_ID_REUSE,
                    search_attributes=self.child_search_attributes(
                        "practitioner", c.practitioner_id
                    ),
                )
            except WorkflowAlreadyStartedError:
                self._line(
                    BatchPayoutLine(
                        c.practitioner_id,
                        c.available_cents,
                        "skipped",
                        "a payout for this practitioner already ran or runs today",
                        child_id,
                    )
                )
                continue
            if c.available_cents >= threshold:
                approval.append((c, child_id, handle))
                continue
            awaited.append((c, child_id, handle))
        self._in_flight = len(awaited) + len(approval)
        outcomes = await asyncio.gather(*(h for _, _, h in awaited), return_exceptions=True)
        # A child that needs approval has either said it waits, or ended (failed before
        # its payout existed, or was decided already): count what happened.
        await workflow.wait_condition(
            lambda: all(cid in self._waiting_children or h.done() for _, cid, h in approval)
        )
        self._in_flight = 0
        for c, child_id, handle in approval:
            if not handle.done():
                self._line(
                    BatchPayoutLine(
                        c.practitioner_id,
                        c.available_cents,
                        "waiting_for_approval",
                        "needs approval; the batch does not wait for it",
                        child_id,
                    )
                )
                continue
            awaited.append((c, child_id, handle))
            outcomes.append(handle.exception() or handle.result())
        for (c, child_id, _), outcome in zip(awaited, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._line(
                    BatchPayoutLine(
                        c.practitioner_id,
                        c.available_cents,
                        "failed",
                        _failure_text(outcome),
                        child_id,
                    )
                )
            else:
                status = outcome.status if outcome.status == "paid" else "failed"
                self._line(
                    BatchPayoutLine(
                        c.practitioner_id, outcome.amount_cents, status, outcome.status, child_id
                    )
                )


# --- the payout sweep and the reconciliation ----------------------------------------------

SWEEP_PAGE = 200


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=PayoutSweepInput,
    description=(
        "Finds payouts that still hold money while their run is gone (terminated, timed "
        "out, failed) and settles them safely: paid if the provider paid, hold returned if "
        "no transfer was ever sent, otherwise left reconciling and flagged to ops. Also "
        "audits the outcome of decisions the console reported as pending delivery."
    ),
    business_id=lambda inp, now: f"payments-payout-sweep-{now:%Y%m%d-%H%M%S}",
    entity_type="payout_sweep",
    entity_id=lambda inp: "all",
)
class PayoutSweepWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: PayoutSweepInput) -> None:
        self._stage = "starting"
        self._result = PayoutSweepResult()

    @workflow.query
    def progress(self) -> dict:
        r = self._result
        return {
            "stage": self._stage,
            "steps_done": list(r.lines[-50:]),
            "waiting_for": None,
            "waiting_until": None,
            "examined": r.examined,
            "paid": r.paid,
            "released": r.released,
            "reconciling": r.reconciling,
        }

    @workflow.run
    async def run(self, inp: PayoutSweepInput) -> PayoutSweepResult:
        _refuse_bad_input(inp)
        r = self._result
        cursor = 0
        while True:
            self._stage = f"reading open payouts after {cursor}"
            page: OpenPayoutsPage = await self.execute_activity(
                activities.list_open_payouts,
                OpenPayoutsInput(cursor, SWEEP_PAGE),
                policy=policies.DATABASE,
            )
            if not page.rows:
                break
            cursor = page.rows[-1].payout_id
            r.examined += len(page.rows)
            self._stage = "asking Temporal which runs are gone"
            gone: GoneRunsResult = await self.execute_activity(
                activities.find_gone_payout_runs,
                GoneRunsInput(page.rows, inp.min_closed_seconds, workflow.now().isoformat()),
                policy=policies.BATCH,
            )
            r.running += len(page.rows) - len(gone.gone)
            for g in gone.gone:
                self._stage = f"settling payout {g.payout_id}"
                done: str = await self.execute_activity(
                    activities.settle_orphaned_payout,
                    SettleOrphanInput(g.payout_id, g.run_id, g.run_state),
                    policy=policies.DATABASE,
                )
                if done in ("paid", "released", "reconciling", "skipped"):
                    setattr(r, done, getattr(r, done) + 1)
                r.lines.append(f"payout {g.payout_id} (run {g.run_state}): {done}")
            if len(page.rows) < SWEEP_PAGE:
                break
        self._stage = "auditing the outcome of decisions sent as pending delivery"
        pending: PendingDecisionsPage = await self.execute_activity(
            activities.list_pending_decisions, policy=policies.DATABASE
        )
        if pending.rows:
            found: DecisionOutcomes = await self.execute_activity(
                activities.find_decision_outcomes, pending, policy=policies.BATCH
            )
            if found.outcomes:
                r.decisions_resolved = await self.execute_activity(
                    activities.record_decision_outcomes, found, policy=policies.DATABASE
                )
        self._stage = "done"
        return r


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=PayoutReconciliationInput,
    description=(
        "Compares the payment provider's transfers with payouts and the ledger (missing, "
        "duplicate, amount mismatch, totals); settles what the provider proves paid, once; "
        "flags the rest to ops with the evidence (console: Reconciliation)."
    ),
    business_id=lambda inp, now: f"payments-payout-reconciliation-{now:%Y%m%d-%H%M%S}",
    entity_type="payout_reconciliation",
    entity_id=lambda inp: "all",
)
class PayoutReconciliationWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: PayoutReconciliationInput) -> None:
        self._stage = "starting"
        self._done: list[str] = []

    @workflow.query
    def progress(self) -> dict:
        return {
            "stage": self._stage,
            "steps_done": list(self._done),
            "waiting_for": None,
            "waiting_until": None,
        }

    @workflow.run
    async def run(self, inp: PayoutReconciliationInput) -> PayoutReconciliationResult:
        self._stage = "comparing provider transfers with payouts and the ledger"
        result: PayoutReconciliationResult = await self.execute_activity(
            activities.reconcile_payouts, inp, policy=policies.BATCH
        )
        self._done.append(
            f"{result.transfers} transfers, {result.payouts_checked} payouts: "
            f"{result.settled} settled, {len(result.findings) - result.settled} to look at"
        )
        self._stage = "done"
        return result


# --- commissions ---------------------------------------------------------------------------

COMMISSION_PAGE_SIZE = 200
COMMISSION_PAGES_PER_RUN = 50
COMMISSION_FAILURE_LIMIT = 100


@workflow.defn
@monitored_workflow(
    domain="payments",
    input=CommissionCalculationInput,
    description=(
        "Records the platform commission (by practitioner tier) of every completed booking "
        "in a period; each booking's commission row and ledger entries are written once, "
        "however often this runs."
    ),
    business_id=lambda inp, now: f"payments-commissions-{inp.period_start}-{inp.period_end}",
    entity_type="commission_period",
    entity_id=lambda inp: f"{inp.period_start}..{inp.period_end}",
)
class CommissionCalculationWorkflow(BaseWorkflow):
    """Not a `money=True` run on purpose: running it again is safe (once per booking by
    unique constraints) and needed to pick up bookings completed late in the period."""

    @workflow.init
    def __init__(self, inp: CommissionCalculationInput) -> None:
        self._inp = inp
        self._result = inp.carried or CommissionCalculationResult(inp.period_start, inp.period_end)
        self._stage = "starting"
        self._cursor = inp.cursor
        self._steps_done: list[str] = []

    @workflow.query
    def progress(self) -> dict:
        r = self._result
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done[-20:]),
            "waiting_for": None,
            "waiting_until": None,
            "cursor": self._cursor,
            "bookings_examined": r.bookings_examined,
            "commissions_created": r.commissions_created,
            "commission_cents_created": r.commission_cents_created,
            "already_recorded": r.already_recorded,
            "failed": r.failed,
        }

    @workflow.run
    async def run(self, inp: CommissionCalculationInput) -> CommissionCalculationResult:
        _refuse_bad_input(inp)
        r = self._result
        pages = 0
        while True:
            self._stage = f"recording commissions after booking {self._cursor}"
            page: CommissionPageResult = await self.execute_activity(
                activities.record_period_commissions,
                CommissionPageInput(
                    inp.period_start, inp.period_end, self._cursor, COMMISSION_PAGE_SIZE
                ),
                policy=policies.BATCH,
            )
            pages += 1
            r.bookings_examined += page.bookings_examined
            r.commissions_created += page.commissions_created
            r.commission_cents_created += page.commission_cents_created
            r.net_released_cents += page.net_released_cents
            r.already_recorded += page.already_recorded
            r.failed += len(page.failures)
            room = COMMISSION_FAILURE_LIMIT - len(r.failures)
            r.failures.extend(page.failures[: max(room, 0)])
            self._cursor = page.next_cursor
            self._steps_done.append(
                f"{page.bookings_examined} bookings up to {page.next_cursor}: "
                f"{page.commissions_created} new"
            )
            if page.exhausted:
                break
            if pages >= COMMISSION_PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                r.runs += 1
                workflow.continue_as_new(dataclasses.replace(inp, cursor=self._cursor, carried=r))
        self._stage = "done"
        return r
