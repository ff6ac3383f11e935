"""Payments schedules (`flask schedules sync` creates them): the weekly batch payout, the
payout sweep (payouts whose run is gone) and the payout reconciliation (provider vs
payouts vs ledger)."""

from __future__ import annotations

import os

from estuary.contracts.catalogue import ScheduleDefinition
from estuary.contracts.payments import (
    BatchPayoutInput,
    PayoutReconciliationInput,
    PayoutSweepInput,
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
