"""Payments workflows. Deterministic code only: the sandbox re-imports this module."""

from __future__ import annotations

from temporalio import workflow

from workers.payments.shared import LedgerReconciliationInput, LedgerReconciliationResult
from workers.temporal import policies
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

    @workflow.run
    async def run(self, inp: LedgerReconciliationInput) -> LedgerReconciliationResult:
        self._step = "checking ledger"
        result = await self.execute_activity(
            activities.check_ledger_balanced, policy=policies.DATABASE
        )
        self._step = "done"
        return result

    @workflow.query
    def progress(self) -> dict:
        return {"step": self._step}
