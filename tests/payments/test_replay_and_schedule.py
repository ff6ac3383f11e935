"""Replay of recorded payments histories (guards against non-determinism) and the weekly
batch schedule created by `flask schedules sync`."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.service import RPCError
from temporalio.worker import Replayer

from estuary.contracts.payments import ApprovePayoutDecision, BatchPayoutInput
from estuary.contracts.search_attributes import run_attributes
from tests.conftest import gateway_for, running_workers
from tests.payments.helpers import (
    APPROVER_A,
    APPROVER_B,
    payout_input,
    start_payout,
    wait_for_stage,
)
from workers.payments.workflows import (
    BatchPractitionerPayoutWorkflow,
    CommissionCalculationWorkflow,
    LedgerReconciliationWorkflow,
    PractitionerPayoutWorkflow,
    ProgressivePackagePayoutWorkflow,
)
from workers.temporal.schedules import definitions

ALL = [
    LedgerReconciliationWorkflow,
    ProgressivePackagePayoutWorkflow,
    PractitionerPayoutWorkflow,
    BatchPractitionerPayoutWorkflow,
    CommissionCalculationWorkflow,
]


async def test_recorded_histories_replay_without_nondeterminism(app, money, time_env):
    big = money.practitioner(balance=600_000)
    small = [money.practitioner(balance=2_000) for _ in range(3)]
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        payout = await start_payout(time_env.client, prefix, payout_input(big))
        await wait_for_stage(payout, "waiting for approval")
        for approver in (APPROVER_A, APPROVER_B):
            await payout.execute_update("approve", ApprovePayoutDecision(approver, 600_000, big))
        await payout.result()
        batch = await time_env.client.start_workflow(
            BatchPractitionerPayoutWorkflow.run,
            BatchPayoutInput(
                min_amount_cents=1_000,
                practitioner_ids=small,
                chunk_size=2,
                payout_date="29991231",
                approval_threshold_cents=50_000,
                dual_approval_threshold_cents=500_000,
                approval_timeout_seconds=3600,
            ),
            id="payments-batch-payout-replay",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "payout_batch", "all", "test"),
        )
        await batch.result()
        histories = [await payout.fetch_history(), await batch.fetch_history()]
    replayer = Replayer(workflows=ALL)
    for history in histories:
        await replayer.replay_workflow(history)


async def test_weekly_batch_schedule_syncs(app, runner, local_env):
    ours = [d for d in definitions() if d.schedule_id == "payments-weekly-batch-payout"]
    assert len(ours) == 1
    payload = ours[0].make_input()
    assert isinstance(payload, BatchPayoutInput) and not payload.dry_run
    assert payload.validate() == {}
    app.config["TEMPORAL_TASK_QUEUE_PREFIX"] = "tsched-"
    gateway_for(app, local_env, "tsched-")
    handle = local_env.client.get_schedule_handle("payments-weekly-batch-payout")
    # Another test of this session may have synced every schedule already.
    with contextlib.suppress(RPCError):
        await handle.delete()
    first = runner.invoke(args=["schedules", "sync"])
    second = runner.invoke(args=["schedules", "sync"])
    assert "created payments-weekly-batch-payout" in first.output, first.output
    assert "updated payments-weekly-batch-payout" in second.output, second.output
    desc = await handle.describe()
    assert desc.schedule.spec.cron_expressions == ["0 6 * * MON"] or desc.schedule.spec.calendars
    assert desc.schedule.action.workflow == "BatchPractitionerPayoutWorkflow"
    assert desc.schedule.action.task_queue == "tsched-payments"
    # `sync` created every schedule: remove them all, so none fires into this session's
    # shared server (the maintenance upkeep runs every 5 minutes).
    for defn in definitions():
        with contextlib.suppress(RPCError):
            await local_env.client.get_schedule_handle(defn.schedule_id).delete()
    await asyncio.sleep(0)
