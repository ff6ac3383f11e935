"""The payments domain's workflows and schedules: the payout, the batch payout, the
package payout, the ledger check, the payout sweep and reconciliation, the commissions
(the classes are in `workers/payments/`); and the weekly batch payout, payout sweep and
payout reconciliation schedules."""

from __future__ import annotations

import os
from datetime import datetime

from estuary.contracts.commissions import CommissionCalculationInput
from estuary.contracts.package_payouts import PackagePayoutInput, package_payout_workflow_id
from estuary.contracts.payments import (
    ApprovePayoutDecision,
    BatchPayoutInput,
    PractitionerPayoutInput,
    RejectPayoutDecision,
    SessionCompletedSignal,
    payout_workflow_id,
)
from estuary.contracts.payout_upkeep import (
    LedgerReconciliationInput,
    PayoutReconciliationInput,
    PayoutSweepInput,
)
from estuary.contracts.spec import ScheduleDefinition, WorkflowSpec, for_all, timestamped_id

DOMAIN = "payments"


def batch_payout_id(inp: BatchPayoutInput, now: datetime) -> str:
    if inp.dry_run:
        return f"payments-batch-payout-dry-run-{now:%Y-%m-%d-%H%M%S}"
    return f"payments-batch-payout-{now:%Y-%m-%d}"


WORKFLOWS = (
    WorkflowSpec(
        name="PractitionerPayoutWorkflow",
        domain=DOMAIN,
        input_type=PractitionerPayoutInput,
        description=(
            "Pays one practitioner: payout record and hold, approval at or above the "
            "threshold (two approvers above the dual threshold; expires after the timeout), "
            "transfer with the payout's idempotency key, ledger settlement, notification. "
            "An unknown transfer outcome keeps the hold and asks the provider again until "
            "the settle window ends."
        ),
        business_id=lambda inp, now: payout_workflow_id(inp.practitioner_id, now),
        entity_type="practitioner",
        entity_id=lambda inp: inp.practitioner_id,
        money=True,
        updates=(("approve", ApprovePayoutDecision), ("reject", RejectPayoutDecision)),
    ),
    WorkflowSpec(
        name="BatchPractitionerPayoutWorkflow",
        domain=DOMAIN,
        input_type=BatchPayoutInput,
        description=(
            "Pays every practitioner whose available balance is at least the minimum, one "
            "PractitionerPayoutWorkflow child each, a bounded number in flight at once "
            "(continues as new for big batches). Dry run lists what would be paid and "
            "moves nothing."
        ),
        business_id=batch_payout_id,
        entity_type="payout_batch",
        entity_id=lambda inp: "dry-run" if inp.dry_run else "all",
        money=True,
    ),
    WorkflowSpec(
        name="ProgressivePackagePayoutWorkflow",
        domain=DOMAIN,
        input_type=PackagePayoutInput,
        description=(
            "Releases a practitioner's net earnings for a package one exact part per "
            "completed session (signal session_completed); ends when all are released or "
            "the package expires (expiry policy)."
        ),
        business_id=lambda inp, now: package_payout_workflow_id(inp.package_purchase_id),
        entity_type="package_purchase",
        entity_id=lambda inp: inp.package_purchase_id,
        money=True,
        signals=(("session_completed", SessionCompletedSignal),),
    ),
    WorkflowSpec(
        name="LedgerReconciliationWorkflow",
        domain=DOMAIN,
        input_type=LedgerReconciliationInput,
        description="Checks that every ledger transaction balances to zero; lists any that do not.",
        business_id=timestamped_id("payments-ledger-check"),
        entity_type="ledger",
        entity_id=for_all,
    ),
    WorkflowSpec(
        name="PayoutSweepWorkflow",
        domain=DOMAIN,
        input_type=PayoutSweepInput,
        description=(
            "Finds payouts that still hold money while their run is gone (terminated, timed "
            "out, failed) and settles them safely: paid if the provider paid, hold returned "
            "if no transfer was ever sent, otherwise left reconciling and flagged to ops. "
            "Also audits the outcome of decisions the console reported as pending delivery."
        ),
        business_id=timestamped_id("payments-payout-sweep"),
        entity_type="payout_sweep",
        entity_id=for_all,
    ),
    WorkflowSpec(
        name="PayoutReconciliationWorkflow",
        domain=DOMAIN,
        input_type=PayoutReconciliationInput,
        description=(
            "Compares the payment provider's transfers with payouts and the ledger (missing, "
            "duplicate, amount mismatch, totals); settles what the provider proves paid, "
            "once; flags the rest to ops with the evidence (console: Reconciliation)."
        ),
        business_id=timestamped_id("payments-payout-reconciliation"),
        entity_type="payout_reconciliation",
        entity_id=for_all,
    ),
    WorkflowSpec(
        name="CommissionCalculationWorkflow",
        domain=DOMAIN,
        input_type=CommissionCalculationInput,
        description=(
            "Records the platform commission (by practitioner tier) of every completed "
            "booking in a period; each booking's commission row and ledger entries are "
            "written once, however often this runs."
        ),
        business_id=lambda inp, now: f"payments-commissions-{inp.period_start}-{inp.period_end}",
        entity_type="commission_period",
        entity_id=lambda inp: f"{inp.period_start}..{inp.period_end}",
    ),
)

# Minimum balance paid by the weekly batch, in cents (default 10.00).
WEEKLY_MIN_AMOUNT_CENTS = int(os.environ.get("PAYOUT_BATCH_MIN_AMOUNT_CENTS", "1000"))


def weekly_batch_input() -> BatchPayoutInput:
    # Approval thresholds are left empty on purpose: each firing reads the current config
    # through the workflow's `load_payout_policy` activity (recorded in its history), so a
    # config change needs no re-sync of the schedule.
    return BatchPayoutInput(
        min_amount_cents=WEEKLY_MIN_AMOUNT_CENTS,
        payment_method="bank_transfer",
        requested_by="schedule:weekly-batch-payout",
    )


SCHEDULES = [
    ScheduleDefinition(
        schedule_id="payments-weekly-batch-payout",
        workflow_name="BatchPractitionerPayoutWorkflow",
        make_input=weekly_batch_input,
        cron="0 6 * * MON",  # Mondays 06:00 in the schedule's time zone (UTC unless set)
        description="Weekly practitioner batch payout",
        workflow_id_prefix="payments-batch-payout",
    ),
    ScheduleDefinition(
        schedule_id="payments-payout-sweep",
        workflow_name="PayoutSweepWorkflow",
        make_input=lambda: PayoutSweepInput(requested_by="schedule:payout-sweep"),
        cron="*/15 * * * *",  # every 15 minutes
        description="Settle payouts whose run is gone (holds never left behind)",
        workflow_id_prefix="payments-payout-sweep",
    ),
    ScheduleDefinition(
        schedule_id="payments-payout-reconciliation",
        workflow_name="PayoutReconciliationWorkflow",
        make_input=lambda: PayoutReconciliationInput(requested_by="schedule:reconciliation"),
        cron="5 * * * *",  # hourly, at :05
        description="Reconcile provider transfers with payouts and the ledger",
        workflow_id_prefix="payments-payout-reconciliation",
    ),
]
