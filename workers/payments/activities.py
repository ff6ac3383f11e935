"""Payments activities: thin calls into dashboard.services."""

from __future__ import annotations

from temporalio import activity

from dashboard.services import ledger
from workers.payments.shared import LedgerReconciliationResult
from workers.temporal.base_activities import app_activity
from workers.temporal.decorators import monitored_activity


@activity.defn(name="check_ledger_balanced")
@monitored_activity
@app_activity
def check_ledger_balanced() -> LedgerReconciliationResult:
    result = ledger.check()
    return LedgerReconciliationResult(
        transactions=result.transactions,
        entries=result.entries,
        unbalanced_keys=result.unbalanced_keys,
        total_cents=result.total_cents,
        balanced=result.ok,
    )
