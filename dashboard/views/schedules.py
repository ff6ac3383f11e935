"""Schedules: the Temporal Schedules defined in code (weekly payouts, daily reminders)
with their next and recent runs; pause, resume and trigger now (admin, with a reason).

Only schedules defined in `workers/<domain>/schedules.py` can be acted on; the ids in
URLs are checked against those definitions before anything reaches Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from dashboard.gateway import gateway
from dashboard.temporal import GatewayError
from dashboard.views._write import (
    form_params,
    gateway_outcome,
    gateway_status,
    guard,
    parse_reason,
    record,
    run_url,
)
from workers.temporal.schedules import ScheduleDefinition, definitions

bp = Blueprint("schedules", __name__, url_prefix="/schedules")

RECENT = 5
NEXT = 3
OPERATIONS = ("pause", "resume", "trigger")


@dataclass
class RecentRun:
    scheduled_at: datetime | None
    started_at: datetime | None
    workflow_id: str
    run_id: str

    @property
    def url(self) -> str | None:
        return run_url(self.workflow_id, self.run_id) if self.workflow_id else None


@dataclass
class ScheduleView:
    definition: ScheduleDefinition
    exists: bool = False
    paused: bool = False
    note: str = ""
    time_zone: str = ""  # the zone the server reads the cron in
    next_times: list[datetime] = field(default_factory=list)
    recent: list[RecentRun] = field(default_factory=list)
    running: int = 0
    total_actions: int = 0


def describe_schedules(defs: list[ScheduleDefinition]) -> list[ScheduleView]:
    """Every defined schedule's state on the server, in one gateway call."""

    async def call(client: Client) -> list[ScheduleView]:
        out = []
        for defn in defs:
            view = ScheduleView(defn)
            try:
                desc = await client.get_schedule_handle(defn.schedule_id).describe(
                    rpc_timeout=gateway().rpc_timeout()
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                out.append(view)
                continue
            view.exists = True
            view.paused = bool(desc.schedule.state.paused)
            view.note = desc.schedule.state.note or ""
            view.time_zone = desc.schedule.spec.time_zone_name or "UTC"
            view.next_times = list(desc.info.next_action_times[:NEXT])
            view.running = len(desc.info.running_actions)
            view.total_actions = desc.info.num_actions
            for result in reversed(desc.info.recent_actions[-RECENT:]):
                action = result.action
                wid = rid = ""
                if isinstance(action, ScheduleActionExecutionStartWorkflow):
                    wid, rid = action.workflow_id, action.first_execution_run_id
                view.recent.append(RecentRun(result.scheduled_at, result.started_at, wid, rid))
            out.append(view)
        return out

    return gateway().run(call, timeout=30)


@bp.get("/")
@guard("view")
def index():
    defs = definitions()
    error = ""
    try:
        views = describe_schedules(defs)
    except GatewayError as exc:
        error = exc.message
        views = [ScheduleView(d) for d in defs]
    return render_template("schedules/index.html", views=views, error=error), (
        503 if error else 200
    )


def _definition(schedule_id: str) -> ScheduleDefinition:
    for defn in definitions():
        if defn.schedule_id == schedule_id:
            return defn
    abort(404)


@bp.post("/<schedule_id>/<operation>")
@guard("manage_schedules")
def act(schedule_id: str, operation: str):
    if operation not in OPERATIONS:
        abort(404)
    defn = _definition(schedule_id)
    target = f"schedule:{defn.schedule_id}"
    reason, errors = parse_reason(request.form, money=False, required=True)
    params = {"operation": operation}
    if errors:
        record(
            "invalid",
            target=target,
            params=form_params(request.form),
            reason=str(reason),
            detail="; ".join(f"{k}: {v}" for k, v in errors.items()),
        )
        flash(
            f"Nothing was done: {operation} needs a reason (it goes into the audit log).", "error"
        )
        return _page_with_errors(schedule_id, operation, errors, 422)
    note = f"{operation} by {current_user.email}: {reason}"[:1000]

    async def call(client: Client) -> None:
        handle = client.get_schedule_handle(defn.schedule_id)
        timeout = gateway().rpc_timeout()
        if operation == "pause":
            await handle.pause(note=note, rpc_timeout=timeout)
        elif operation == "resume":
            await handle.unpause(note=note, rpc_timeout=timeout)
        else:
            await handle.trigger(rpc_timeout=timeout)

    try:
        gateway().run(call)
    except GatewayError as exc:
        record(
            gateway_outcome(exc),
            target=target,
            params=params,
            reason=str(reason),
            detail=exc.message,
        )
        flash(f"{operation.capitalize()} failed: {exc.message}", "error")
        return _page_with_errors(schedule_id, operation, {}, gateway_status(exc))
    record("success", target=target, params=params, reason=str(reason), detail=note)
    done = {"pause": "Paused", "resume": "Resumed", "trigger": "Triggered"}[operation]
    flash(f"{done} {defn.schedule_id}.", "success")
    return redirect(url_for("schedules.index"), code=303)


def _page_with_errors(schedule_id: str, operation: str, errors: dict, status: int):
    defs = definitions()
    try:
        views = describe_schedules(defs)
        error = ""
    except GatewayError as exc:
        views, error = [ScheduleView(d) for d in defs], exc.message
    return (
        render_template(
            "schedules/index.html",
            views=views,
            error=error,
            form_errors={"schedule_id": schedule_id, "operation": operation, **errors},
        ),
        status,
    )
