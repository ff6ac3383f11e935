"""Payments schedules: the weekly batch payout (`flask schedules sync` creates it)."""

from __future__ import annotations

import os

from workers.payments.shared import BatchPayoutInput
from workers.temporal.schedules import ScheduleDefinition

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
    )
]
