"""A small workflow for the read-side tests: it waits for `step` signals, runs a flaky
activity after each (first attempt fails, the retry succeeds), sets a timer, answers
`progress`, takes a `note` update, and can end with a failure whose message the test
chooses. It runs on its own `{prefix}readtest` queue, so it never disturbs the domain
workers; the console lists it because the queue carries the console's prefix.

Deterministic code only at module level: the workflow sandbox re-imports this module.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

QUEUE = "readtest"


@dataclass
class ReadTestInput:
    steps: int = 2
    label: str = ""
    fail_message: str = ""
    timer_seconds: float = 0.2
    with_child: bool = False
    # Attempts of each step's activity that fail before one succeeds; the retry
    # interval grows with it so a test can catch the activity pending between attempts.
    failing_attempts: int = 1


@dataclass
class StepSignal:
    actor: str
    note: str = ""


@dataclass
class NoteUpdate:
    actor: str
    text: str = ""


@dataclass
class StepArg:
    step: int
    label: str = ""
    failing_attempts: int = 1


@dataclass
class ReadTestResult:
    steps_done: list[str] = field(default_factory=list)
    label: str = ""


@activity.defn(name="read_test_record_step")
async def record_step(arg: StepArg) -> str:
    attempt = activity.info().attempt
    if attempt <= arg.failing_attempts:
        if arg.failing_attempts == 1:
            raise ApplicationError(f"step {arg.step} flaked once (expected in tests)")
        raise ApplicationError(f"step {arg.step} attempt {attempt} failed (expected in tests)")
    return f"step {arg.step} recorded"


@workflow.defn(name="ReadSideTestWorkflow")
class ReadSideTestWorkflow:
    @workflow.init
    def __init__(self, inp: ReadTestInput) -> None:
        self._inp = inp
        self._released = 0
        self._done: list[str] = []
        self._stage = "starting"
        self._notes: list[str] = []

    @workflow.run
    async def run(self, inp: ReadTestInput) -> ReadTestResult:
        for i in range(inp.steps):
            self._stage = f"waiting for step {i + 1}"
            await workflow.wait_condition(lambda i=i: self._released > i)
            self._stage = f"recording step {i + 1}"
            await workflow.execute_activity(
                record_step,
                StepArg(i + 1, inp.label, inp.failing_attempts),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(
                        milliseconds=100 if inp.failing_attempts < 2 else 1500
                    ),
                    backoff_coefficient=1.0,
                    maximum_attempts=inp.failing_attempts + 2,
                ),
            )
            self._done.append(f"step {i + 1}")
        if inp.with_child:
            self._stage = "running a child"
            await workflow.execute_child_workflow(
                ReadSideTestWorkflow.run,
                ReadTestInput(steps=0, label="child", timer_seconds=0.1),
                id=f"{workflow.info().workflow_id}-child",
            )
        self._stage = "resting"
        await workflow.sleep(timedelta(seconds=inp.timer_seconds))
        if inp.fail_message:
            raise ApplicationError(inp.fail_message, non_retryable=True)
        self._stage = "done"
        return ReadTestResult(self._done, inp.label)

    @workflow.signal
    def step(self, arg: StepSignal) -> None:
        self._released += 1

    @workflow.update
    def note(self, arg: NoteUpdate) -> str:
        self._notes.append(arg.text)
        return f"noted {len(self._notes)}"

    @workflow.query
    def progress(self) -> dict:
        waiting = f"step {self._released + 1} signal" if self._stage.startswith("waiting") else None
        return {
            "stage": self._stage,
            "steps_done": list(self._done),
            "waiting_for": waiting,
            "waiting_until": None,
            "notes": len(self._notes),
        }


@asynccontextmanager
async def read_test_worker(client, prefix: str):
    """A worker for ReadSideTestWorkflow on `{prefix}readtest` for the block's duration."""
    from temporalio.worker import Worker

    worker = Worker(
        client,
        task_queue=f"{prefix}{QUEUE}",
        workflows=[ReadSideTestWorkflow],
        activities=[record_step],
    )
    async with worker:
        yield worker
    await asyncio.sleep(0)
