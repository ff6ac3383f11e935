"""A bench-only workflow whose history grows large: it counts `tick` signals, runs
activities in batches, sets a timer, and ends once it has seen what it was told to
expect. Deterministic, no side effects at import (the workflow sandbox re-imports it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class BenchInput:
    signals: int
    activities: int
    batch: int = 250
    # Stay open after the activities (the live-refresh bench polls a running run).
    stay_open: bool = False


@dataclass
class Tick:
    actor: str
    n: int = 0


@activity.defn(name="bench_step")
async def bench_step(n: int) -> int:
    return n


@workflow.defn(name="BenchHistoryWorkflow")
class BenchHistoryWorkflow:
    def __init__(self) -> None:
        self.ticks = 0

    @workflow.run
    async def run(self, inp: BenchInput) -> dict:
        await workflow.wait_condition(lambda: self.ticks >= inp.signals)
        done = 0
        while done < inp.activities:
            size = min(inp.batch, inp.activities - done)
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        bench_step, done + i, start_to_close_timeout=timedelta(seconds=30)
                    )
                    for i in range(size)
                )
            )
            done += size
        await workflow.sleep(timedelta(milliseconds=10))
        if inp.stay_open:
            await workflow.wait_condition(lambda: False)
        return {"ticks": self.ticks, "activities": done}

    @workflow.signal
    def tick(self, arg: Tick) -> None:
        self.ticks += 1

    @workflow.query
    def progress(self) -> dict:
        return {
            "stage": "counting",
            "steps_done": [],
            "waiting_for": "ticks",
            "waiting_until": None,
            "ticks": self.ticks,
        }
