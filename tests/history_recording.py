"""Recording workflow histories for the replay test (tests/test_replay_histories.py).

`make record-histories` runs a chosen set of workflow tests (scripts/record_histories.py)
with ESTUARY_RECORD_HISTORIES pointing at tests/histories/. While it is set, the workers
that `tests.conftest.running_workers` starts carry `HistoryRecorder`, which notes every
workflow run they execute (top-level runs, children, continued-as-new runs). When the
workers stop, the longest closed history of each workflow type in that test is written to
`tests/histories/<WorkflowType>/<test module>--<test name>.json` (Temporal's own JSON
history format, the one `temporal workflow show -o json` prints).

Files are overwritten by name and never deleted: a history recorded from a released
version stays until no run of that version can still be in flight, which is what the
replay test is for.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from temporalio import client as temporal_client
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

ENV_VAR = "ESTUARY_RECORD_HISTORIES"
# Terminated runs are left out: tests terminate what they leave open, mid-step.
RECORDED_STATUSES = {
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
    WorkflowExecutionStatus.CONTINUED_AS_NEW,
    WorkflowExecutionStatus.TIMED_OUT,
}

# (workflow id, run id, workflow type) of every run a recording worker executed. Written
# from inside the workflow sandbox: this module is not re-imported there (interceptors
# are passed in from outside), so it is the one set.
_seen: set[tuple[str, str, str]] = set()
# Files written in this recording session with their event counts (longest one wins).
_written: dict[Path, int] = {}


def recording_dir() -> Path | None:
    raw = os.environ.get(ENV_VAR)
    return Path(raw) if raw else None


class _RecordingInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        _seen.add((info.workflow_id, info.run_id, info.workflow_type))
        return await super().execute_workflow(input)


class HistoryRecorder(temporal_client.Interceptor, Interceptor):
    """A client interceptor that is also a worker interceptor: a worker built on a client
    carrying it notes every workflow run it executes."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RecordingInbound


def recording_client(client: Client) -> Client:
    config = client.config()
    config["interceptors"] = [*config.get("interceptors", []), HistoryRecorder()]
    return Client(**config)


def _scenario_name() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "unknown::unknown").split(" ")[0]
    path, _, test = current.partition("::")
    name = f"{Path(path).stem.removeprefix('test_')}--{test}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120]


async def write_recorded(client: Client) -> list[Path]:
    """Write the longest closed history per workflow type seen since the last call."""
    target = recording_dir()
    runs = sorted(_seen)
    _seen.clear()
    if target is None:
        return []
    best: dict[str, Any] = {}
    for workflow_id, run_id, workflow_type in runs:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            desc = await handle.describe()
        except Exception:  # the run is gone (another test's server state): nothing to record
            continue
        if desc.status not in RECORDED_STATUSES:
            continue
        history = await handle.fetch_history()
        if workflow_type not in best or len(history.events) > len(best[workflow_type].events):
            best[workflow_type] = history
    written: list[Path] = []
    for workflow_type, history in sorted(best.items()):
        path = target / workflow_type / f"{_scenario_name()}.json"
        if _written.get(path, -1) >= len(history.events):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(history.to_json() + "\n")
        _written[path] = len(history.events)
        written.append(path)
    return written
