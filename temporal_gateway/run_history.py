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


def summarise_history(
    workflow_id: str, run_id: str | None, input_type: type | None
) -> HistorySummary:
    """One pass over a run's history (paged, capped)."""

    async def call(client: Client) -> HistorySummary:
        out = HistorySummary()
        scheduled: dict[int, tuple[str, int]] = {}
        closing_seen = False
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async for event in handle.fetch_history_events(page_size=1000):
            out.events += 1
            if out.events > MAX_HISTORY_EVENTS:
                out.truncated = True
                break
            et = event.event_type
            if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                attrs = event.workflow_execution_started_event_attributes
                out.workflow_type = attrs.workflow_type.name
                payloads = list(attrs.input.payloads)
                if payloads and input_type is not None:
                    try:
                        out.input = (
                            await client.data_converter.decode(payloads[:1], [input_type])
                        )[0]
                    except Exception as exc:  # an input from an older version of the type
                        out.input_error = f"the run's input could not be read: {exc}"
            elif et == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and not closing_seen:
                if out.first_task_completed is None:
                    out.first_task_completed = event.event_id
                out.last_task_completed = event.event_id
            elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = (
                    attrs.activity_type.name,
                    attrs.workflow_task_completed_event_id,
                )
            elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                sid = event.activity_task_completed_event_attributes.scheduled_event_id
                out.completed_activities.append(scheduled.get(sid, ("?", 0))[0])
            elif et in (
                EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            ):
                attrs = (
                    event.activity_task_failed_event_attributes
                    if et == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                    else event.activity_task_timed_out_event_attributes
                )
                name, task = scheduled.get(attrs.scheduled_event_id, ("?", 0))
                if task:
                    out.failure_task_completed = task
                    out.failed_activity = name
            elif et == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                out.children_started += 1
            elif et == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
                out.children_completed += 1
            elif et in (
                EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
                EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
                EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
                EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
            ):
                out.children_failed += 1
            elif et in (
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            ):
                # Reset points after the run was told to stop would only stop it again.
                closing_seen = True
        return out

    return gateway().run(call, timeout=30)
