"""What the gateway answers with: runs, pages of runs and history, pollers, worker
deployments, as plain dataclasses; and the small helpers that turn Temporal's own types
into them (status names, event type names, a run's Web UI address)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from estuary.contracts.search_attributes import (
    ENTITY_ID,
    ENTITY_TYPE,
    ESTUARY_DOMAIN,
    TRIGGERED_BY,
)

STATUS_NAMES = {
    WorkflowExecutionStatus.RUNNING: "Running",
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}
CLOSED_FAILED_STATUSES = ("Failed", "TimedOut", "Canceled", "Terminated")


@dataclass(frozen=True)
class StartedRun:
    workflow_id: str
    run_id: str
    workflow_type: str
    # True when a run with this business id was already running and no new one started.
    existing: bool = False


@dataclass(frozen=True)
class RunInfo:
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    start_time: datetime | None
    close_time: datetime | None
    execution_time: datetime | None
    history_length: int
    domain: str | None
    entity_type: str | None
    entity_id: str | None
    triggered_by: str | None
    memo: dict[str, Any] = field(default_factory=dict)
    parent_workflow_id: str | None = None
    # Filled by `describe` only (the same RPC): the run's pending activities as JSON dicts.
    pending_activities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_running(self) -> bool:
        return self.status == "Running"


@dataclass(frozen=True)
class RunPage:
    runs: list[RunInfo]
    next_page_token: bytes | None


@dataclass(frozen=True)
class HistoryPage:
    events: list[dict[str, Any]]
    next_page_token: bytes | None


@dataclass(frozen=True)
class Poller:
    identity: str
    last_access_time: datetime | None
    kind: str  # "workflow" or "activity"


@dataclass(frozen=True)
class DeploymentVersion:
    build_id: str
    status: str  # CURRENT, RAMPING, DRAINING, DRAINED, INACTIVE
    drainage: str  # DRAINING / DRAINED once no longer current ("" before)


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    current_build_id: str | None
    ramping_build_id: str | None
    ramping_percentage: float
    versions: list[DeploymentVersion]


def enum_suffix(enum: Any, value: int, prefix: str) -> str:
    """`WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED` -> `DRAINED`; unspecified -> ``."""
    name = enum.Name(value) if value in enum.values() else ""
    return "" if name.endswith("UNSPECIFIED") else name.removeprefix(prefix)


def run_info(e: Any) -> RunInfo:
    # By name, read once: `TypedSearchAttributes.get` compares keys one by one, and four
    # lookups of it were half of this function (a runs page converts 50-200 runs).
    sa = {pair.key.name: pair.value for pair in e.typed_search_attributes}
    parent = getattr(e, "parent_id", None)
    return RunInfo(
        workflow_id=e.id,
        run_id=e.run_id,
        workflow_type=e.workflow_type,
        status=STATUS_NAMES.get(e.status, "Unknown") if e.status else "Unknown",
        task_queue=e.task_queue,
        start_time=e.start_time,
        close_time=e.close_time,
        execution_time=e.execution_time,
        history_length=e.history_length,
        domain=sa.get(ESTUARY_DOMAIN.name),
        entity_type=sa.get(ENTITY_TYPE.name),
        entity_id=sa.get(ENTITY_ID.name),
        triggered_by=sa.get(TRIGGERED_BY.name),
        parent_workflow_id=parent,
    )


def event_type_name(event: Mapping[str, Any]) -> str:
    """`EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` -> `ActivityTaskScheduled` for display."""
    raw = event.get("eventType", "")
    if isinstance(raw, int):
        raw = EventType.Name(raw)
    return "".join(p.capitalize() for p in raw.removeprefix("EVENT_TYPE_").split("_"))


def run_ui_url(config: Mapping[str, Any], workflow_id: str, run_id: str | None = None) -> str:
    """The same run in the Temporal Web UI."""
    from urllib.parse import quote

    base = str(config.get("TEMPORAL_UI_URL", "")).rstrip("/")
    ns = quote(str(config.get("TEMPORAL_NAMESPACE", "default")), safe="")
    url = f"{base}/namespaces/{ns}/workflows/{quote(workflow_id, safe='')}"
    if run_id:
        url += f"/{quote(run_id, safe='')}/history"
    return url
