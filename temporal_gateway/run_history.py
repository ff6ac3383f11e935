"""One pass over a run's history for the console's control actions (retry, reset): the
input, the last workflow task before a failure, which activities completed (did money
move?), children. Read in pages and capped, through the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from temporal_gateway.access import gateway

# A history longer than this is summarised from its first events only (`truncated`).
MAX_HISTORY_EVENTS = 50_000


@dataclass
class HistorySummary:
    workflow_type: str = ""
    input: Any = None
    input_error: str = ""
    events: int = 0
    truncated: bool = False
    first_task_completed: int | None = None
    last_task_completed: int | None = None
    # The task that scheduled the last activity that failed or timed out.
    failure_task_completed: int | None = None
    failed_activity: str = ""
    completed_activities: list[str] = field(default_factory=list)
    children_started: int = 0
    children_completed: int = 0
    children_failed: int = 0

    @property
    def failure_point(self) -> int | None:
        return self.failure_task_completed or self.last_task_completed

    @property
    def transfer_completed(self) -> bool:
        return any("transfer" in name.lower() for name in self.completed_activities)


_CHILD_FAILED = (
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
)
# Reset points after the run was told to stop would only stop it again.
_CLOSING = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
)


class _HistoryWalk:
    """The state of one pass over a history: the summary so far, the scheduled
    activities by event id (name, the workflow task that scheduled them), and whether
    the run has been told to stop."""

    def __init__(self, client: Client, input_type: type | None) -> None:
        self.client = client
        self.input_type = input_type
        self.out = HistorySummary()
        self.scheduled: dict[int, tuple[str, int]] = {}
        self.closing_seen = False

    async def read_start(self, event: Any) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.out.workflow_type = attrs.workflow_type.name
        payloads = list(attrs.input.payloads)
        if payloads and self.input_type is not None:
            try:
                decoded = await self.client.data_converter.decode(payloads[:1], [self.input_type])
                self.out.input = decoded[0]
            except Exception as exc:  # an input from an older version of the type
                self.out.input_error = f"the run's input could not be read: {exc}"

    def read_task_completed(self, event: Any) -> None:
        if self.closing_seen:
            return
        if self.out.first_task_completed is None:
            self.out.first_task_completed = event.event_id
        self.out.last_task_completed = event.event_id

    def read_activity_scheduled(self, event: Any) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        self.scheduled[event.event_id] = (
            attrs.activity_type.name,
            attrs.workflow_task_completed_event_id,
        )

    def read_activity_completed(self, event: Any) -> None:
        sid = event.activity_task_completed_event_attributes.scheduled_event_id
        self.out.completed_activities.append(self.scheduled.get(sid, ("?", 0))[0])

    def read_activity_failed(self, attrs: Any) -> None:
        name, task = self.scheduled.get(attrs.scheduled_event_id, ("?", 0))
        if task:
            self.out.failure_task_completed = task
            self.out.failed_activity = name

    async def read(self, event: Any) -> None:
        et = event.event_type
        if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self.read_start(event)
        elif et == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            self.read_task_completed(event)
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            self.read_activity_scheduled(event)
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            self.read_activity_completed(event)
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            self.read_activity_failed(event.activity_task_failed_event_attributes)
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            self.read_activity_failed(event.activity_task_timed_out_event_attributes)
        elif et == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            self.out.children_started += 1
        elif et == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            self.out.children_completed += 1
        elif et in _CHILD_FAILED:
            self.out.children_failed += 1
        elif et in _CLOSING:
            self.closing_seen = True


def summarise_history(
    workflow_id: str, run_id: str | None, input_type: type | None
) -> HistorySummary:
    """One pass over a run's history (paged, capped)."""

    async def call(client: Client) -> HistorySummary:
        walk = _HistoryWalk(client, input_type)
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async for event in handle.fetch_history_events(page_size=1000):
            walk.out.events += 1
            if walk.out.events > MAX_HISTORY_EVENTS:
                walk.out.truncated = True
                break
            await walk.read(event)
        return walk.out

    return gateway().run(call, timeout=30)
