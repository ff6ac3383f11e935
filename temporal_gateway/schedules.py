"""The gateway's calls on Temporal Schedules for the console: read the state of the
schedules defined in code in one call, and pause, resume or trigger one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from temporal_gateway.access import gateway

ScheduleOperation = Literal["pause", "resume", "trigger"]


@dataclass(frozen=True)
class ScheduleAction:
    """One recent firing: when it was due, when it started, the run it started."""

    scheduled_at: datetime | None
    started_at: datetime | None
    workflow_id: str
    run_id: str


@dataclass
class ScheduleState:
    """A schedule as the server has it."""

    paused: bool = False
    note: str = ""
    time_zone: str = ""  # the zone the server reads the cron in
    next_times: list[datetime] = field(default_factory=list)
    recent: list[ScheduleAction] = field(default_factory=list)  # newest first
    running: int = 0
    total_actions: int = 0


def describe_schedules(
    schedule_ids: list[str], *, recent: int, upcoming: int
) -> dict[str, ScheduleState | None]:
    """Each schedule's state on the server (None: not created there), in one gateway call."""

    async def call(client: Client) -> dict[str, ScheduleState | None]:
        out: dict[str, ScheduleState | None] = {}
        for schedule_id in schedule_ids:
            try:
                desc = await client.get_schedule_handle(schedule_id).describe(
                    rpc_timeout=gateway().rpc_timeout()
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                out[schedule_id] = None
                continue
            state = ScheduleState(
                paused=bool(desc.schedule.state.paused),
                note=desc.schedule.state.note or "",
                time_zone=desc.schedule.spec.time_zone_name or "UTC",
                next_times=list(desc.info.next_action_times[:upcoming]),
                running=len(desc.info.running_actions),
                total_actions=desc.info.num_actions,
            )
            for result in reversed(desc.info.recent_actions[-recent:]):
                action = result.action
                wid = rid = ""
                if isinstance(action, ScheduleActionExecutionStartWorkflow):
                    wid, rid = action.workflow_id, action.first_execution_run_id
                state.recent.append(
                    ScheduleAction(result.scheduled_at, result.started_at, wid, rid)
                )
            out[schedule_id] = state
        return out

    return gateway().run(call, timeout=30)


def operate_schedule(schedule_id: str, operation: ScheduleOperation, note: str) -> None:
    """Pause or resume (with `note` kept on the schedule) or trigger one schedule now."""

    async def call(client: Client) -> None:
        handle = client.get_schedule_handle(schedule_id)
        timeout = gateway().rpc_timeout()
        if operation == "pause":
            await handle.pause(note=note, rpc_timeout=timeout)
        elif operation == "resume":
            await handle.unpause(note=note, rpc_timeout=timeout)
        else:
            await handle.trigger(rpc_timeout=timeout)

    gateway().run(call)
