"""Schedules: the Temporal Schedules defined in code (weekly payouts, daily reminders)
with their next and recent runs; pause, resume and trigger now (admin, with a reason).

Only schedules defined in code (the catalogue's `schedules()`) can be acted on; the ids in
URLs are checked against those definitions before anything reaches Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.writes import (
    form_params,
    gateway_status,
    guard,
    parse_reason,
    record,
    record_gateway_error,
    record_invalid,
    run_url,
)
from estuary.contracts.catalogue import ScheduleDefinition
from estuary.contracts.catalogue import schedules as definitions
from temporal_gateway.gateway import GatewayError
from temporal_gateway.schedules import describe_schedules as describe_on_server
from temporal_gateway.schedules import operate_schedule

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
    states = describe_on_server([d.schedule_id for d in defs], recent=RECENT, upcoming=NEXT)
    out = []
    for defn in defs:
        view = ScheduleView(defn)
        state = states.get(defn.schedule_id)
        if state is not None:
            view.exists = True
            view.paused, view.note, view.time_zone = state.paused, state.note, state.time_zone
            view.next_times, view.running = state.next_times, state.running
            view.total_actions = state.total_actions
            view.recent = [
                RecentRun(a.scheduled_at, a.started_at, a.workflow_id, a.run_id)
                for a in state.recent
            ]
        out.append(view)
    return out


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
        record_invalid(target, errors, params=form_params(request.form), reason=str(reason))
        flash(
            f"Nothing was done: {operation} needs a reason (it goes into the audit log).", "error"
        )
        return _page_with_errors(schedule_id, operation, errors, 422)
    note = f"{operation} by {current_user.email}: {reason}"[:1000]

    try:
        operate_schedule(defn.schedule_id, operation, note)
    except GatewayError as exc:
        record_gateway_error(exc, target=target, params=params, reason=str(reason))
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
