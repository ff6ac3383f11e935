"""Starting payments workflows in tests the way the gateway does (ids, search attributes)."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowHandle

from estuary.contracts.payments import PractitionerPayoutInput
from estuary.contracts.search_attributes import run_attributes
from workers.payments.workflows import PractitionerPayoutWorkflow

# Runs started by a test; the `close_open_runs` fixture terminates any still running
# when the test ends, so a failed test cannot leave timers that fire later on the
# session-wide time-skipping server with no worker to run them.
OPEN_HANDLES: list[WorkflowHandle] = []

REQUESTER = "ops-requester@test.local"
APPROVER_A = "approver-a@test.local"
APPROVER_B = "approver-b@test.local"
APPROVER_C = "approver-c@test.local"


def payout_input(practitioner_id: int, **overrides) -> PractitionerPayoutInput:
    values = {
        "practitioner_id": practitioner_id,
        "requested_by": REQUESTER,
        "reason": "test payout",
        "approval_threshold_cents": 50_000,
        "dual_approval_threshold_cents": 500_000,
        "approval_timeout_seconds": 7 * 24 * 3600,
        **overrides,
    }
    return PractitionerPayoutInput(**values)


async def start_payout(
    client: Client,
    prefix: str,
    inp: PractitionerPayoutInput,
    *,
    workflow_id: str | None = None,
    triggered_by: str = "test",
) -> WorkflowHandle:
    handle = await client.start_workflow(
        PractitionerPayoutWorkflow.run,
        inp,
        id=workflow_id or f"payments-payout-{inp.practitioner_id}-{uuid.uuid4().hex[:8]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes(
            "payments", "practitioner", inp.practitioner_id, triggered_by
        ),
    )
    OPEN_HANDLES.append(handle)
    return handle


async def close_open_runs() -> None:
    from temporalio.client import WorkflowExecutionStatus

    while OPEN_HANDLES:
        handle = OPEN_HANDLES.pop()
        try:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test ended")
        except Exception:  # the run or its server is gone: nothing left to close
            continue


async def wait_for_stage(handle: WorkflowHandle, stage: str, tries: int = 200) -> dict:
    import asyncio

    progress: dict = {}
    for _ in range(tries):
        progress = await handle.query("progress")
        if progress["stage"] == stage:
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached stage {stage!r}; last progress {progress}")
