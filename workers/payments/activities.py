"""Payments activities: thin calls into estuary.services (which hold the rules).

Sync activities run on the worker's thread pool, each in its own Flask app context and,
where they write, one database transaction. Every side effect is keyed (see the
services), so a retried activity finds its first result instead of repeating it.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from temporalio import activity
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from estuary.contracts import policies
from estuary.contracts.commissions import (
    CommissionPageInput,
    CommissionPageResult,
)
from estuary.contracts.payments import (
    BookingCommissionInput,
    BookingCommissionResult,
    CheckPayoutTransferInput,
    CheckPayoutTransferResult,
    ClosePayoutInput,
    ClosePayoutResult,
    CreatePayoutInput,
    LoadPackageInput,
    MarkReconcilingInput,
    NotifyPayoutInput,
    PackageExpiryResult,
    PackagePayoutInput,
    PackageReleaseResult,
    PackageSessionCompletedInput,
    PackageState,
    PayoutCandidatePage,
    PayoutPolicy,
    PayoutPolicyInput,
    PayoutRecord,
    RecordPayoutDecisionInput,
    ReleasePackageSessionInput,
    SelectPayoutCandidatesInput,
    SessionCompletedSignal,
    SetPayoutStatusInput,
    SettleExpiredPackageInput,
    SubscriptionChargeInput,
    SubscriptionChargeResult,
    TransferPayoutInput,
    TransferPayoutResult,
    package_payout_workflow_id,
)
from estuary.contracts.payout_upkeep import (
    DecisionOutcome,
    DecisionOutcomes,
    GoneRun,
    GoneRunsInput,
    GoneRunsResult,
    LedgerReconciliationResult,
    OpenPayoutsInput,
    OpenPayoutsPage,
    PayoutReconciliationInput,
    PayoutReconciliationResult,
    PendingDecisionsPage,
    SettleOrphanInput,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.services import (
    audit,
    commissions,
    ledger,
    package_payouts,
    payout_batches,
    payout_policy,
    payout_reconciliation,
    payouts,
    pending_decisions,
    subscription_billing,
)
from workers.temporal.base_activities import (
    as_kwargs,
    bound_app,
    bound_client,
    read_activity,
    write_activity,
)

log = logging.getLogger("estuary.activity")

PACKAGE_PAYOUT_WORKFLOW = "ProgressivePackagePayoutWorkflow"


# --- ledger ---------------------------------------------------------------------------------


@read_activity
def check_ledger_balanced() -> LedgerReconciliationResult:
    result = ledger.check()
    return LedgerReconciliationResult(
        transactions=result.transactions,
        entries=result.entries,
        unbalanced_keys=result.unbalanced_keys,
        total_cents=result.total_cents,
        balanced=result.ok,
    )


# --- contracts for the other domains -------------------------------------------------------


@activity.defn(name="notify_package_session_completed")
async def notify_package_session_completed(inp: PackageSessionCompletedInput) -> None:
    """Signal-with-start the purchase's ProgressivePackagePayoutWorkflow.

    Starts `payments-package-payout-{purchase}` on this activity's own payments queue if
    it is not running (its expiry policy from PACKAGE_EXPIRY_POLICY, default
    release_remaining) and delivers `session_completed(booking_id)`. A run that already
    finished (all sessions released, or the package expired) is not started again: the
    money workflow's id policy refuses it, and the late signal is dropped with a log line
    (the workflow would have ignored it anyway).
    """
    info = activity.info()
    for name, value in (
        ("package_purchase_id", inp.package_purchase_id),
        ("booking_id", inp.booking_id),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ApplicationError(
                f"{name} must be a positive whole number, got {value!r}",
                type="BusinessRuleError",
                non_retryable=True,
            )
    workflow_id = package_payout_workflow_id(inp.package_purchase_id)
    policy = str(bound_app().config.get("PACKAGE_EXPIRY_POLICY") or "release_remaining")
    client = bound_client()
    log.info(
        "activity start notify_package_session_completed wf=%s attempt=%s -> %s booking=%s",
        info.workflow_id,
        info.attempt,
        workflow_id,
        inp.booking_id,
    )
    try:
        await client.start_workflow(
            PACKAGE_PAYOUT_WORKFLOW,
            PackagePayoutInput(package_purchase_id=inp.package_purchase_id, expiry_policy=policy),
            id=workflow_id,
            task_queue=info.task_queue,
            start_signal="session_completed",
            start_signal_args=[
                SessionCompletedSignal(
                    booking_id=inp.booking_id, actor=f"workflow:{info.workflow_id}"
                )
            ],
            id_reuse_policy=policies.MONEY_ID_REUSE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=run_attributes(
                "payments", "package_purchase", inp.package_purchase_id, "bookings"
            ),
            memo={
                "triggered_by": f"workflow:{info.workflow_id}",
                "reason": f"session completed (booking {inp.booking_id})",
            },
        )
    except WorkflowAlreadyStartedError:
        log.warning(
            "package payout %s has already finished; session_completed(%s) dropped",
            workflow_id,
            inp.booking_id,
        )


@write_activity
def record_booking_commission(inp: BookingCommissionInput) -> BookingCommissionResult:
    """Commission row + ledger entries for a completed booking, once per booking.

    A single booking also releases its net earnings to the practitioner here; a package
    session only takes its commission part (its earnings are released by the
    progressive package payout). Ledger legs: see estuary.services.commissions.
    """
    return commissions.record_booking_commission(inp.booking_id)


@write_activity
def charge_subscription(inp: SubscriptionChargeInput) -> SubscriptionChargeResult:
    """Charge one subscription period; one SubscriptionCharge row per (subscription, period).

    A declined charge returns status "failed" (not an exception); a repeat of the same
    attempt returns the recorded result, a higher `attempt` after a decline charges again.
    Paid: ledger external:subscriptions -> platform:subscription_revenue.

    Deterministic declines for tests: put the subscription id in
    `app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"]` (a set; remove it and the next
    attempt is paid). `PROVIDER_FAILURE_PERCENT` makes that share of calls fail
    transiently (an exception: the activity retries, nothing is written).
    """
    result = subscription_billing.charge_subscription(
        inp.subscription_id, inp.period_start, inp.amount_cents, inp.attempt
    )
    return SubscriptionChargeResult(
        subscription_id=result.subscription_id,
        charge_id=result.charge_id,
        status=result.status,
        failure_reason=result.failure_reason,
    )


# --- progressive package payout ----------------------------------------------------------


@read_activity
def load_package_state(inp: LoadPackageInput) -> PackageState:
    return package_payouts.load_state(inp.package_purchase_id)


@write_activity
def release_package_session(inp: ReleasePackageSessionInput) -> PackageReleaseResult:
    now = datetime.fromisoformat(inp.now) if inp.now else None
    return package_payouts.release_session(inp.package_purchase_id, inp.booking_id, now=now)


@write_activity
def settle_expired_package(inp: SettleExpiredPackageInput) -> PackageExpiryResult:
    return package_payouts.settle_expiry(inp.package_purchase_id, inp.policy, inp.workflow_id)


# --- payouts ---------------------------------------------------------------------------------


@read_activity
def load_payout_policy(inp: PayoutPolicyInput) -> PayoutPolicy:
    """The approval thresholds and timeout from the app config (recorded in history, so
    a run that was started without them stays deterministic)."""
    return payout_policy.policy_from_config(bound_app().config)


@write_activity
def create_payout(inp: CreatePayoutInput) -> PayoutRecord:
    return payouts.create_payout(
        workflow_id=inp.workflow_id,
        practitioner_id=inp.practitioner_id,
        amount_cents=inp.amount_cents,
        requested_by=inp.requested_by,
        reason=inp.reason,
        payment_method=inp.payment_method,
        approval_threshold_cents=inp.approval_threshold_cents,
        dual_approval_threshold_cents=inp.dual_approval_threshold_cents,
        approval_timeout_seconds=inp.approval_timeout_seconds,
        config=bound_app().config,
        run_id=inp.run_id,
    )


@write_activity
def record_payout_decision(inp: RecordPayoutDecisionInput) -> None:
    """Persist the decision before the workflow acts on it, and write its applied event to
    the audit log (naming the update id) in the same transaction: a decision the console
    could only report as "pending delivery" gets its real outcome in the audit trail."""
    already = payouts.decision_recorded(inp.payout_id, inp.approver)
    row = payouts.record_decision(
        payout_id=inp.payout_id,
        approver=inp.approver,
        decision=inp.decision,
        amount_cents=inp.amount_cents,
        payee_id=inp.payee_id,
        reason_code=inp.reason_code,
        note=inp.note,
    )
    if already:
        return
    info = activity.info()
    audit.record(
        action="payouts.decision_applied",
        target=f"payout:{inp.payout_id}",
        outcome="success",
        params={
            "decision": row.decision,
            "update_id": inp.update_id or "",
            "workflow_id": info.workflow_id,
            "amount_cents": row.amount_cents,
            "practitioner_id": row.payee_id,
        },
        reason=(row.reason_code or "") if row.decision == "reject" else (row.note or ""),
        detail=f"{row.decision} applied by the payout workflow (update {inp.update_id or '-'})",
        actor=row.approver,
        role="workflow",
    )


@write_activity
def mark_payout_reconciling(inp: MarkReconcilingInput) -> None:
    payouts.mark_reconciling(inp.payout_id, inp.reason)


@write_activity
def check_payout_transfer(inp: CheckPayoutTransferInput) -> CheckPayoutTransferResult:
    """Ask the provider by the payout's key; settle paid, or (after the window) decide."""
    return payouts.check_transfer(inp.payout_id, give_up=inp.give_up)


@write_activity
def set_payout_status(inp: SetPayoutStatusInput) -> None:
    payouts.set_status(inp.payout_id, inp.status)


@write_activity
def transfer_payout(inp: TransferPayoutInput) -> TransferPayoutResult:
    """Send the payout with its idempotency key and post the settlement. A provider
    decline is non-retryable; a transient provider error is retried by Temporal."""
    return payouts.transfer(inp.payout_id)


@write_activity
def close_unpaid_payout(inp: ClosePayoutInput) -> ClosePayoutResult:
    closed = payouts.close_unpaid(inp.payout_id, inp.outcome, inp.reason)
    return ClosePayoutResult(
        payout_id=closed.payout_id,
        status=closed.status,
        released_cents=closed.released_cents,
        provider_reference=closed.provider_reference,
    )


@write_activity
def notify_payout(inp: NotifyPayoutInput) -> None:
    payouts.notify(inp.payout_id, inp.event)


@read_activity
def select_payout_candidates(inp: SelectPayoutCandidatesInput) -> PayoutCandidatePage:
    return payout_batches.select_candidates(**as_kwargs(inp))


# --- the payout sweep and the reconciliation ---------------------------------------------------

_GONE_STATES = {
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
}


@read_activity
def list_open_payouts(inp: OpenPayoutsInput) -> OpenPayoutsPage:
    return OpenPayoutsPage(rows=payout_reconciliation.open_payouts(inp.after_payout_id, inp.limit))


@activity.defn(name="find_gone_payout_runs")
async def find_gone_payout_runs(inp: GoneRunsInput) -> GoneRunsResult:
    """Which of these payouts' workflows have no running run (latest run by workflow id,
    so a reset or a rerun that is running keeps its payout)."""
    client = bound_client()
    gone: list[GoneRun] = []
    now = datetime.fromisoformat(inp.now) if inp.now else datetime.now(UTC)
    for row in inp.rows:
        try:
            desc = await client.get_workflow_handle(row.workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                gone.append(GoneRun(row.payout_id, row.run_id, "not found"))
                continue
            raise
        if desc.status == WorkflowExecutionStatus.RUNNING or desc.status is None:
            continue
        closed = desc.close_time
        if closed is not None and (now - closed).total_seconds() < inp.min_closed_seconds:
            continue
        gone.append(GoneRun(row.payout_id, row.run_id, _GONE_STATES.get(desc.status, "closed")))
    return GoneRunsResult(gone=gone)


@write_activity
def settle_orphaned_payout(inp: SettleOrphanInput) -> str:
    return payout_reconciliation.settle_orphan(inp.payout_id, inp.run_id, inp.run_state)


@read_activity
def list_pending_decisions() -> PendingDecisionsPage:
    return PendingDecisionsPage(rows=pending_decisions.unresolved())


@activity.defn(name="find_decision_outcomes")
async def find_decision_outcomes(page: PendingDecisionsPage) -> DecisionOutcomes:
    """Ask Temporal what became of each pending decision, by its update id: refused (the
    validator or handler said no) or never applied (its run closed first). Applied ones
    and ones still waiting for a worker are left alone."""
    client = bound_client()
    found: list[DecisionOutcome] = []
    for row in page.rows:
        handle = client.get_workflow_handle(row.workflow_id)
        try:
            await handle.get_update_handle(row.update_id).result(rpc_timeout=timedelta(seconds=2))
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            found.append(
                DecisionOutcome(row, "refused", getattr(cause, "message", None) or str(cause))
            )
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            continue  # still not taken by a worker
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # Temporal forgets an update its validator rejected (an applied one stays in
            # the history and is found above); one never taken before its run closed is
            # gone too. Either way it was not applied.
            found.append(
                DecisionOutcome(
                    row,
                    "refused",
                    "the payout workflow did not apply it (refused by its checks, or its "
                    "run ended before a worker took it)",
                )
            )
    return DecisionOutcomes(outcomes=found)


@read_activity
def record_decision_outcomes(found: DecisionOutcomes) -> int:
    for o in found.outcomes:
        pending_decisions.record_outcome(o.row, o.outcome, o.message)
    return len(found.outcomes)


@write_activity
def reconcile_payouts(inp: PayoutReconciliationInput) -> PayoutReconciliationResult:
    report = payout_reconciliation.reconcile(settle=inp.settle)
    return PayoutReconciliationResult(
        transfers=report.transfers,
        payouts_checked=report.payouts_checked,
        provider_paid_cents=report.provider_paid_cents,
        provider_processing_cents=report.provider_processing_cents,
        ledger_external_payouts_cents=report.ledger_external_payouts_cents,
        settled=report.settled,
        findings=[f"{f.kind}: {f.message}" for f in report.findings[:200]],
        ok=report.ok,
    )


# --- commissions -----------------------------------------------------------------------------


@write_activity
def record_period_commissions(inp: CommissionPageInput) -> CommissionPageResult:
    page = commissions.record_period_page(
        date.fromisoformat(inp.period_start),
        date.fromisoformat(inp.period_end),
        inp.after_booking_id,
        inp.limit,
    )
    return CommissionPageResult(
        bookings_examined=page.bookings_examined,
        commissions_created=page.commissions_created,
        commission_cents_created=page.commission_cents_created,
        net_released_cents=page.net_released_cents,
        already_recorded=page.already_recorded,
        failures=list(page.failures or []),
        next_cursor=page.next_cursor,
        exhausted=page.exhausted,
    )
