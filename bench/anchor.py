"""The anchor for the batch payout benchmark: bare Temporal SDK, no app code.

A parent workflow pays N "practitioners" as child workflows, at most `window` in flight
(a sliding window: the next child starts as soon as one ends), and each child runs the
same sequence of no-op steps as a real payout below the approval threshold: `steps`
lists them in order, "activity" for an activity and "local" for a local activity. The
batch bench reads that sequence from one of our own payouts' history, so both sides run
the same activity count and kind; only our work differs. The default is the first
landing's shape (three activities: create the payout, transfer, post and notify).

`python bench/anchor.py --address A --task-queue Q` runs its worker. Deterministic and free
of side effects at import: the workflow sandbox re-imports it.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class AnchorBatchInput:
    practitioners: int
    window: int = 100
    steps: list[str] = field(default_factory=lambda: ["activity"] * 3)


@dataclass
class AnchorPayoutInput:
    practitioner_id: int
    steps: list[str] = field(default_factory=lambda: ["activity"] * 3)


@activity.defn(name="anchor_step")
def anchor_step(practitioner_id: int) -> int:
    return practitioner_id


@workflow.defn(name="AnchorPayoutWorkflow")
class AnchorPayoutWorkflow:
    @workflow.run
    async def run(self, inp: AnchorPayoutInput) -> int:
        for step in inp.steps:
            if step == "local":
                await workflow.execute_local_activity(
                    anchor_step, inp.practitioner_id, start_to_close_timeout=timedelta(seconds=30)
                )
            else:
                await workflow.execute_activity(
                    anchor_step, inp.practitioner_id, start_to_close_timeout=timedelta(seconds=30)
                )
        return inp.practitioner_id


@workflow.defn(name="AnchorBatchWorkflow")
class AnchorBatchWorkflow:
    @workflow.run
    async def run(self, inp: AnchorBatchInput) -> int:
        in_flight: set[asyncio.Task] = set()
        paid = 0
        for n in range(1, inp.practitioners + 1):
            if len(in_flight) >= inp.window:
                done, pending = await workflow.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight = set(pending)
                paid += len(done)
            in_flight.add(
                asyncio.ensure_future(
                    workflow.execute_child_workflow(
                        AnchorPayoutWorkflow.run,
                        AnchorPayoutInput(n, list(inp.steps)),
                        id=f"{workflow.info().workflow_id}-{n}",
                    )
                )
            )
        if in_flight:
            await workflow.wait(in_flight)
            paid += len(in_flight)
        return paid


async def _serve(address: str, task_queue: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    with ThreadPoolExecutor(max_workers=20) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[AnchorBatchWorkflow, AnchorPayoutWorkflow],
            activities=[anchor_step],
            activity_executor=pool,
        )
        await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the anchor's worker until killed.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.address, args.task_queue))
