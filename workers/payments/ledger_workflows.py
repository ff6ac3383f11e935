"""Payments bookkeeping workflows: the ledger check, the payout sweep, the payout reconciliation
and the commission calculation.

Deterministic code only: the workflow sandbox re-imports this module for every new run, so it
holds one workflow (or a small family) and imports only modules passed through the sandbox
(workers.temporal.worker.WORKFLOW_PASSTHROUGH_MODULES) besides its own.
"""

from __future__ import annotations

import dataclasses

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.commissions import (
    CommissionCalculationInput,
    CommissionCalculationResult,
    CommissionPageInput,
    CommissionPageResult,
)
from estuary.contracts.payout_upkeep import (
    DecisionOutcomes,
    GoneRunsInput,
    GoneRunsResult,
    LedgerReconciliationInput,
    LedgerReconciliationResult,
    OpenPayoutsInput,
    OpenPayoutsPage,
    PayoutReconciliationInput,
    PayoutReconciliationResult,
    PayoutSweepInput,
    PayoutSweepResult,
    PendingDecisionsPage,
    SettleOrphanInput,
)
from workers.payments.workflow_support import refuse_bad_input
from workers.temporal.base_workflows import BaseWorkflow, StepsWorkflow, progress_answer

with workflow.unsafe.imports_passed_through():
    import workers.payments.activities as activities


@workflow.defn
class LedgerReconciliationWorkflow(StepsWorkflow):
    @workflow.run
    async def run(self, inp: LedgerReconciliationInput) -> LedgerReconciliationResult:
        self._step = "checking ledger"
        result = await self.execute_activity(
            activities.check_ledger_balanced, policy=policies.DATABASE
        )
        self._done.append("checked ledger")
        self._step = "done"
        return result


# --- the payout sweep and the reconciliation ----------------------------------------------

SWEEP_PAGE = 200


@workflow.defn
class PayoutSweepWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: PayoutSweepInput) -> None:
        self._stage = "starting"
        self._result = PayoutSweepResult()

    @workflow.query
    def progress(self) -> dict:
        r = self._result
        return progress_answer(
            self._stage,
            r.lines[-50:],
            examined=r.examined,
            paid=r.paid,
            released=r.released,
            reconciling=r.reconciling,
        )

    @workflow.run
    async def run(self, inp: PayoutSweepInput) -> PayoutSweepResult:
        refuse_bad_input(inp)
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
class PayoutReconciliationWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: PayoutReconciliationInput) -> None:
        self._stage = "starting"
        self._done: list[str] = []

    @workflow.query
    def progress(self) -> dict:
        return progress_answer(self._stage, self._done)

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
        return progress_answer(
            self._stage,
            self._steps_done[-20:],
            cursor=self._cursor,
            bookings_examined=r.bookings_examined,
            commissions_created=r.commissions_created,
            commission_cents_created=r.commission_cents_created,
            already_recorded=r.already_recorded,
            failed=r.failed,
        )

    @workflow.run
    async def run(self, inp: CommissionCalculationInput) -> CommissionCalculationResult:
        refuse_bad_input(inp)
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
