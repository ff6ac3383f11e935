import asyncio

from temporalio.client import WorkflowExecutionStatus

from estuary.contracts.payments import LedgerReconciliationInput
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.services import ledger
from tests.conftest import running_workers
from workers.payments.workflows import LedgerReconciliationWorkflow


async def test_proof_workflow_time_skipping(app, time_env):
    with app.app_context():
        ledger.post("k1", "test", [ledger.Leg("a", 5), ledger.Leg("b", -5)])
        db.session.commit()
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        result = await time_env.client.execute_workflow(
            LedgerReconciliationWorkflow.run,
            LedgerReconciliationInput(),
            id="ledger-check-1",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "ledger", "all", "test"),
        )
    assert result.balanced and result.transactions == 1


async def test_proof_workflow_local(app, local_env):
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        handle = await local_env.client.start_workflow(
            LedgerReconciliationWorkflow.run,
            LedgerReconciliationInput(),
            id="ledger-check-2",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "ledger", "all", "test"),
        )
        result = await handle.result()
        assert result.balanced
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
    await asyncio.sleep(0)
