"""Cancel, terminate and reset a run. Each asks for a reason; a money workflow's needs a
reason code, checked again against the run's real type before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from dashboard.writes import (
    REASON_CODE_KEY,
    Reason,
    RunStateConflict,
    checked_run_id,
    checked_workflow_id,
    form_params,
    gateway_status,
    link,
    parse_reason,
    record,
    record_gateway_error,
    record_invalid,
    run_url,
    safe_next,
)
from estuary.contracts import catalogue
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import parse_int
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, RunInfo
from temporal_gateway.run_history import HistorySummary, summarise_history

MONEY_CODE_REQUIRED = {REASON_CODE_KEY: "a reason code is required for a money workflow"}
RESET_POINTS = ("last_failure", "start", "event")
PAST = {"cancel": "cancelled", "terminate": "terminated"}


def workflow_for_run(info: RunInfo) -> RegisteredWorkflow | None:
    """The catalogue entry of a run's workflow type, or None if it is not registered."""
    try:
        return catalogue.workflow(info.workflow_type)
    except LookupError:
        return None


def is_money_run(workflow_id: str, run_id: str | None) -> tuple[RunInfo, bool]:
    """The run as Temporal describes it, and whether its workflow moves money."""
    info = gateway().describe(workflow_id, run_id)
    wf = workflow_for_run(info)
    return info, bool(wf and wf.spec.money)


@dataclass
class _ControlRequest:
    """A checked cancel/terminate/reset form: the run, its reason, where to go back to."""

    kind: str
    workflow_id: str
    run_id: str | None
    target: str
    back: str
    money_hint: bool
    reason: Reason
    errors: dict[str, str]

    def refuse(self, errors: dict[str, str], *, money: bool) -> ResponseReturnValue:
        """Audit a refused form (outcome "invalid") and show it again."""
        record_invalid(
            self.target, errors, params=form_params(request.form), reason=str(self.reason)
        )
        return control_page(self.kind, self.workflow_id, self.run_id, errors, self.back, money, 422)

    def gateway_failed(self, exc: GatewayError, params: dict) -> ResponseReturnValue:
        record_gateway_error(exc, target=self.target, params=params, reason=str(self.reason))
        return control_page(
            self.kind,
            self.workflow_id,
            self.run_id,
            {},
            self.back,
            self.money_hint,
            gateway_status(exc),
            error=exc.message,
        )


def _control_request(kind: str, workflow_id: str) -> _ControlRequest:
    workflow_id = checked_workflow_id(workflow_id)
    run_id = checked_run_id(request.form.get("run_id"))
    money_hint = request.form.get("money") == "yes"
    # The form says whether the run moves money (to ask for a code); the server checks
    # again with the run's real type before acting.
    reason, errors = parse_reason(request.form, money=money_hint, action=kind)
    return _ControlRequest(
        kind,
        workflow_id,
        run_id,
        target=f"workflow:{workflow_id}",
        back=safe_next(run_url(workflow_id, run_id) or link("home.index") or "/"),
        money_hint=money_hint,
        reason=reason,
        errors=errors,
    )


def control(kind: str, workflow_id: str) -> ResponseReturnValue:
    """Cancel or terminate the latest run of `workflow_id` (it must be running)."""
    req = _control_request(kind, workflow_id)
    if req.errors:
        return req.refuse(req.errors, money=req.money_hint)
    gw = gateway()
    try:
        info, money = is_money_run(req.workflow_id, req.run_id)
        if money and not req.reason.code:
            return req.refuse(dict(MONEY_CODE_REQUIRED), money=True)
        if not info.is_running:
            raise RunStateConflict(f"the run has already finished ({info.status})")
        if kind == "cancel":
            gw.cancel(req.workflow_id, info.run_id)
        else:
            gw.terminate(
                req.workflow_id, f"{req.reason} (by {current_user.email})", run_id=info.run_id
            )
    except RunStateConflict as exc:
        # A stale page (the run finished meanwhile): one message, and the run's page
        # again, whose Actions panel no longer offers what cannot apply.
        record_gateway_error(
            exc, target=req.target, params={"run_id": req.run_id or ""}, reason=str(req.reason)
        )
        flash(f"Nothing was {PAST[kind]}: {exc.message}.", "error")
        return redirect(req.back, code=303)
    except GatewayError as exc:
        return req.gateway_failed(exc, {"run_id": req.run_id or ""})
    record(
        "success",
        target=req.target,
        params={"run_id": info.run_id},
        reason=str(req.reason),
        detail=f"{kind} requested for run {info.run_id}",
    )
    verb = "Cancellation requested" if kind == "cancel" else "Terminated"
    flash(f"{verb}: {req.workflow_id}.", "success")
    return redirect(req.back, code=303)


def control_page(
    kind: str,
    workflow_id: str,
    run_id: str | None,
    errors: dict[str, str],
    back: str,
    money: bool,
    status: int,
    error: str = "",
) -> ResponseReturnValue:
    """The cancel/terminate/reset form on a page of its own, with what was wrong."""
    return (
        render_template(
            "actions/control_page.html",
            kind=kind,
            workflow_id=workflow_id,
            run_id=run_id or "",
            errors=errors,
            back=back,
            money=money,
            error=error,
            reason_codes=reason_codes_for(kind),
            values=request.form,
        ),
        status,
    )


def reset_point(history: HistorySummary, point: str, raw_event: str) -> tuple[int | None, str]:
    """The event to reset to (the last failure point, the start, or one typed), or None
    and why not."""
    if point == "last_failure":
        return history.failure_point, "no workflow task to reset to"
    if point == "start":
        return history.first_task_completed, "no workflow task to reset to"
    if point == "event":
        try:
            return parse_int(raw_event or "", lo=1), ""
        except ValueError as exc:
            return None, f"event id: {exc}"
    return None, "choose where to reset to"


def reset(workflow_id: str) -> ResponseReturnValue:
    """Reset a run to its last failure point, its first workflow task, or an event id."""
    req = _control_request("reset", workflow_id)
    point = str(request.form.get("point", "last_failure"))
    if point not in RESET_POINTS:
        req.errors["point"] = "choose last failure point, start, or an event id"
    if point == "event":
        try:
            parse_int(request.form.get("event_id", ""), lo=1)
        except ValueError as exc:
            req.errors["event_id"] = str(exc)
    if req.errors:
        return req.refuse(req.errors, money=req.money_hint)
    try:
        info, money = is_money_run(req.workflow_id, req.run_id)
        if money and not req.reason.code:
            return req.refuse(dict(MONEY_CODE_REQUIRED), money=True)
        history = summarise_history(req.workflow_id, info.run_id, None)
        event_id, problem = reset_point(history, point, request.form.get("event_id", ""))
        if event_id is None:
            raise RunStateConflict(f"cannot reset {req.workflow_id}: {problem}")
        new_run = gateway().reset(
            req.workflow_id, info.run_id, event_id, f"{req.reason} (by {current_user.email})"
        )
    except GatewayError as exc:
        return req.gateway_failed(exc, form_params(request.form))
    record(
        "success",
        target=req.target,
        params={"run_id": info.run_id, "event_id": event_id, "point": point},
        reason=str(req.reason),
        detail=f"reset to event {event_id}; new run {new_run}",
    )
    flash(f"Reset {req.workflow_id} to event {event_id}; new run {new_run}.", "success")
    return redirect(run_url(req.workflow_id, new_run) or req.back, code=303)
