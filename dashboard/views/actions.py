"""Acting on runs: signals and updates as forms, cancel, terminate, reset, retry, and
bulk retry of the failed runs matching a runs filter.

Every POST here is authorised by role (`guard`), validated before anything reaches
Temporal (bad input gets field messages, nothing is sent) and audited whatever the
outcome. Signal and update forms are generated from the argument dataclasses the
workflow's `@monitored_workflow(signals=..., updates=...)` names; `actor` is filled from
the signed-in user. Payout decisions are not taken here: they go through the approvals
queue, which applies the four-eyes rule and approver limits.

The partials `runs/_actions.html` and `domains/_*_actions.html` get their forms from
the template globals at the end of this module.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
)
from flask_login import current_user
from sqlalchemy import select

from dashboard import forms, visibility
from dashboard.permissions import can, denial_message
from dashboard.views._write import (
    PENDING_DELIVERY,
    REASON_CODE_KEY,
    REASON_TEXT_KEY,
    Reason,
    RunStateConflict,
    checked_run_id,
    checked_workflow_id,
    form_params,
    gateway_outcome,
    gateway_status,
    guard,
    link,
    parse_reason,
    record,
    run_url,
    safe_next,
    wants_fragment,
)
from estuary.contracts import catalogue
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import InputError, parse_int
from estuary.db import db
from estuary.models import REASON_CODES, Payout, Transfer
from estuary.services.staff import staff_ref
from temporal_gateway.access import gateway
from temporal_gateway.gateway import (
    CLOSED_FAILED_STATUSES,
    AlreadyStarted,
    GatewayError,
    NoWorkerAnswered,
    RunInfo,
    RunNotFound,
    TemporalUnavailable,
    UpdateRejected,
)
from temporal_gateway.run_history import HistorySummary, summarise_history

log = logging.getLogger("estuary.console")

bp = Blueprint("actions", __name__, url_prefix="/runs")

HANDLER_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# History read for a retry/reset decision, at most (a longer history continues as new).
# What the bulk-retry form declares: the runs filters and the ticked runs.
BULK_FIELDS = (*visibility.FILTER_FIELDS, "run")
# Bulk retry: at most this many runs per confirmation.
BULK_RETRY_CAP = 25
PAYOUT_DECISIONS = ("approve", "reject")


# --- forms for signals and updates ----------------------------------------------------------


@dataclass
class ActionForm:
    """One signal or update form for one run."""

    kind: str  # "signal" or "update"
    name: str
    workflow_id: str
    workflow_type: str
    fields: list[forms.FormField]
    permission: str
    next: str = ""
    error: str = ""  # the workflow's refusal, or what went wrong
    message: str = ""  # what happened, after a success
    field_errors: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return forms.label_for(self.name)

    @property
    def url(self) -> str:
        endpoint = "actions.signal" if self.kind == "signal" else "actions.update"
        return link(endpoint, workflow_id=self.workflow_id, name=self.name) or ""

    @property
    def dom_id(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", self.workflow_id)
        return f"act-{self.kind}-{self.name}-{safe}"

    @property
    def danger(self) -> bool:
        return self.name in ("cancel", "reject", "reject_onboarding", "waive")


def _handler_permission(wf: RegisteredWorkflow, name: str) -> str:
    if name == "cancel" or name.startswith("cancel_"):
        return "cancel"
    if wf.spec.money and name in PAYOUT_DECISIONS:
        return "approve_payout"
    return "signal"


def _handlers(wf: RegisteredWorkflow, kind: str) -> dict[str, type | None]:
    pairs = wf.spec.signals if kind == "signal" else wf.spec.updates
    return dict(pairs)


def action_form(
    wf: RegisteredWorkflow,
    kind: str,
    name: str,
    workflow_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    next_url: str = "",
) -> ActionForm:
    arg_type = _handlers(wf, kind).get(name)
    fields = forms.form_fields(arg_type, values, errors) if arg_type else []
    return ActionForm(
        kind=kind,
        name=name,
        workflow_id=workflow_id,
        workflow_type=wf.name,
        fields=fields,
        permission=_handler_permission(wf, name),
        next=next_url,
        field_errors=dict(errors or {}),
    )


def _registered_or_404(name: str) -> RegisteredWorkflow:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,99}", name or ""):
        abort(404)
    try:
        return catalogue.workflow(name)
    except LookupError:
        abort(404)


def _deny(permission: str, target: str, arg_type: type | None = None) -> None:
    record(
        "denied",
        target=target,
        params=form_params(request.form, forms.visible_names(arg_type) if arg_type else ()),
        detail=f"role {current_user.role} may not {permission}",
    )
    abort(403, denial_message(current_user, permission))


def _respond(form: ActionForm, status: int, back: str):
    """A refusal or field message appears in the form (the htmx fragment, or the form on a
    page of its own); a success goes back to the page, which now shows the new state."""
    if status < 400:
        flash(form.message, "success")
        if wants_fragment():
            response = make_response("", 200)
            response.headers["HX-Redirect"] = back
            return response
        return redirect(back, code=303)
    if wants_fragment():
        return render_template("actions/_action_form.html", form=form), status
    return render_template("actions/form_page.html", form=form, back=back), status


def _send(kind: str, workflow_id: str, name: str):
    workflow_id = checked_workflow_id(workflow_id)
    if not HANDLER_NAME_RE.fullmatch(name):
        abort(404)
    wf = _registered_or_404(str(request.form.get("workflow_type", "")))
    handlers = _handlers(wf, kind)
    if name not in handlers:
        abort(404)
    target = f"workflow:{workflow_id}"
    permission = _handler_permission(wf, name)
    if not can(current_user, permission):
        _deny(permission, target, handlers[name])
    back = safe_next(run_url(workflow_id) or link("home.index") or "/")
    arg_type = handlers[name]
    values = forms.submitted_values(arg_type, request.form) if arg_type else {}
    if permission == "approve_payout":
        message = "Payout decisions are taken on the approvals page (four-eyes, approver limits)."
        record("denied", target=target, params=values, detail=message)
        form = action_form(wf, kind, name, workflow_id, values=values, next_url=back)
        form.error = message
        return _respond(form, 409, back)

    arg = None
    if arg_type is not None:
        try:
            arg = forms.parse_form(arg_type, request.form, actor=current_user.email)
        except InputError as exc:
            record(
                "invalid",
                target=target,
                params={"name": name, **values},
                detail="; ".join(f"{k}: {v}" for k, v in exc.errors.items())[:1000],
            )
            form = action_form(
                wf, kind, name, workflow_id, values=values, errors=exc.errors, next_url=back
            )
            # Errors of fields the form does not show (a server-filled field that was sent
            # anyway) are named here, since no field below can carry them.
            shown = {f.name for f in form.fields}
            unshown = "; ".join(f"{k}: {v}" for k, v in exc.errors.items() if k not in shown)
            form.error = f"Nothing was sent: {unshown or 'fix the fields below.'}"
            return _respond(form, 422, back)

    params = {
        "name": name,
        **({k: _plain(v) for k, v in dataclasses.asdict(arg).items()} if arg is not None else {}),
    }
    reason = str(getattr(arg, "reason", "") or getattr(arg, "note", "") or "")
    form = action_form(wf, kind, name, workflow_id, values=values, next_url=back)
    gw = gateway()
    try:
        info = gw.describe(workflow_id)
        if info.workflow_type != wf.name:
            raise RunStateConflict(f"{workflow_id} is a {info.workflow_type}, not a {wf.name}")
        if not info.is_running:
            raise RunStateConflict(f"{workflow_id} is not running ({info.status})")
        if kind == "signal":
            gw.signal(workflow_id, name, arg)
            result = None
        else:
            result = gw.update(workflow_id, name, arg)
    except GatewayError as exc:
        record(
            gateway_outcome(exc), target=target, params=params, reason=reason, detail=exc.message
        )
        form.error = (
            f"Refused by the workflow: {exc.message}"
            if isinstance(exc, UpdateRejected)
            else f"{PENDING_DELIVERY} ({exc.message})"
            if isinstance(exc, NoWorkerAnswered)
            else exc.message
        )
        return _respond(
            form, gateway_status(exc) if not isinstance(exc, UpdateRejected) else 422, back
        )
    detail = f"{kind} {name} sent"
    if result is not None:
        detail += f"; result: {_json(result)}"
    record("success", target=target, params=params, reason=reason, detail=detail)
    form = action_form(wf, kind, name, workflow_id, next_url=back)
    verb = "Sent" if kind == "signal" else "Done"
    form.message = f"{verb}: {form.title} ({workflow_id})."
    if result is not None:
        form.message += f" {describe_result(result)}"
    return _respond(form, 200, back)


def _plain(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain_result(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _json(value: Any) -> str:
    text = json.dumps(_plain_result(value), default=str, sort_keys=True)
    return text if len(text) <= 600 else text[:600] + "…"


def describe_result(value: Any) -> str:
    """An update's answer as a person reads it: labels, amounts, yes/no."""
    value = _plain_result(value)
    if not isinstance(value, dict):
        return str(value)[:300]
    money = current_app.jinja_env.filters["money"]
    parts = []
    for key, item in value.items():
        if item is None or key.endswith("_id") or isinstance(item, dict | list):
            continue
        if key.endswith("_cents") and isinstance(item, int):
            text = money(item, current_app.config.get("CURRENCY", "USD"))
        elif isinstance(item, bool):
            text = "yes" if item else "no"
        else:
            text = str(item)
        parts.append(f"{forms.label_for(key)}: {text}")
    return "; ".join(parts)[:400]


@bp.post("/<workflow_id>/signal/<name>")
@guard("signal")
def signal(workflow_id: str, name: str):
    return _send("signal", workflow_id, name)


@bp.post("/<workflow_id>/update/<name>")
@guard("signal")
def update(workflow_id: str, name: str):
    return _send("update", workflow_id, name)


# --- cancel, terminate ------------------------------------------------------------------------


def _workflow_for_run(info: RunInfo) -> RegisteredWorkflow | None:
    try:
        return catalogue.workflow(info.workflow_type)
    except LookupError:
        return None


def _describe_or_error(workflow_id: str, run_id: str | None) -> RunInfo:
    return gateway().describe(workflow_id, run_id)


def _is_money_run(workflow_id: str, run_id: str | None) -> tuple[RunInfo, bool]:
    info = _describe_or_error(workflow_id, run_id)
    wf = _workflow_for_run(info)
    return info, bool(wf and wf.spec.money)


def _refuse_control(
    kind: str,
    workflow_id: str,
    run_id: str | None,
    *,
    target: str,
    reason: Reason,
    errors: dict[str, str],
    back: str,
    money: bool,
):
    """Audit a refused cancel/terminate/reset form (outcome "invalid") and show it again."""
    record(
        "invalid",
        target=target,
        params=form_params(request.form),
        reason=str(reason),
        detail="; ".join(f"{k}: {v}" for k, v in errors.items()),
    )
    return _control_page(kind, workflow_id, run_id, errors, back, money, 422)


MONEY_CODE_REQUIRED = {REASON_CODE_KEY: "a reason code is required for a money workflow"}


def _control(kind: str, workflow_id: str):
    """Cancel or terminate the latest run of `workflow_id` (it must be running)."""
    workflow_id = checked_workflow_id(workflow_id)
    run_id = checked_run_id(request.form.get("run_id"))
    target = f"workflow:{workflow_id}"
    back = safe_next(run_url(workflow_id, run_id) or link("home.index") or "/")
    money_hint = request.form.get("money") == "yes"
    # The form says whether the run moves money (to ask for a code); the server checks
    # again below with the run's real type before acting.
    reason, errors = parse_reason(request.form, money=money_hint)
    refuse = functools.partial(
        _refuse_control, kind, workflow_id, run_id, target=target, reason=reason, back=back
    )
    if errors:
        return refuse(errors=errors, money=money_hint)
    gw = gateway()
    try:
        info, money = _is_money_run(workflow_id, run_id)
        if money and not reason.code:
            return refuse(errors=dict(MONEY_CODE_REQUIRED), money=True)
        if not info.is_running:
            raise RunStateConflict(f"{workflow_id} is not running ({info.status})")
        if kind == "cancel":
            gw.cancel(workflow_id, info.run_id)
        else:
            gw.terminate(workflow_id, f"{reason} (by {current_user.email})", run_id=info.run_id)
    except GatewayError as exc:
        record(
            gateway_outcome(exc),
            target=target,
            params={"run_id": run_id or ""},
            reason=str(reason),
            detail=exc.message,
        )
        flash(exc.message, "error")
        return _control_page(
            kind, workflow_id, run_id, {}, back, money_hint, gateway_status(exc), error=exc.message
        )
    record(
        "success",
        target=target,
        params={"run_id": info.run_id},
        reason=str(reason),
        detail=f"{kind} requested for run {info.run_id}",
    )
    verb = "Cancellation requested" if kind == "cancel" else "Terminated"
    flash(f"{verb}: {workflow_id}.", "success")
    return redirect(back, code=303)


def _control_page(kind, workflow_id, run_id, errors, back, money, status, error=""):
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
            reason_codes=REASON_CODES,
            values=request.form,
        ),
        status,
    )


@bp.post("/<workflow_id>/cancel")
@guard("cancel")
def cancel(workflow_id: str):
    return _control("cancel", workflow_id)


@bp.post("/<workflow_id>/terminate")
@guard("terminate")
def terminate(workflow_id: str):
    return _control("terminate", workflow_id)


# --- history: the last failure point, the input, money that moved ----------------------------


@dataclass
class MoneyCheck:
    """Could running this again move money again? Said on the retry confirmation."""

    could_move: bool
    message: str
    evidence: list[str] = field(default_factory=list)


def money_check(workflow_id: str, history: HistorySummary) -> MoneyCheck:
    payouts = list(db.session.scalars(select(Payout).where(Payout.workflow_id == workflow_id)))
    transfers = []
    if payouts:
        transfers = list(
            db.session.scalars(
                select(Transfer).where(Transfer.payout_id.in_([p.id for p in payouts]))
            )
        )
    evidence = [
        f"transfer {t.provider_reference}: {t.amount_cents / 100:.2f} {t.currency} "
        f"(key {t.idempotency_key})"
        for t in transfers
    ]
    if history.transfer_completed:
        evidence.append("the run's history has a completed transfer activity")
    if transfers or history.transfer_completed:
        return MoneyCheck(
            False,
            "The transfer step already completed: running this again cannot move money "
            "again. The transfer's idempotency key returns the first result.",
            evidence,
        )
    if history.children_started:
        return MoneyCheck(
            True,
            f"This batch started {history.children_started} payouts "
            f"({history.children_completed} completed, {history.children_failed} did not). "
            "Completed payouts cannot pay again (their ids are business keys and a "
            "completed money run never runs twice); practitioners not paid yet can be paid.",
            evidence,
        )
    amount = ""
    if payouts:
        p = payouts[-1]
        amount = f" ({p.amount_cents / 100:.2f} {p.currency} to practitioner #{p.practitioner_id})"
    return MoneyCheck(
        True,
        f"No transfer has completed for this run: running it again can move money{amount}.",
        evidence,
    )


# --- reset --------------------------------------------------------------------------------------


def _reset_point(history: HistorySummary, point: str, raw_event: str) -> tuple[int | None, str]:
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


@bp.post("/<workflow_id>/reset")
@guard("reset")
def reset(workflow_id: str):
    workflow_id = checked_workflow_id(workflow_id)
    run_id = checked_run_id(request.form.get("run_id"))
    target = f"workflow:{workflow_id}"
    back = safe_next(run_url(workflow_id, run_id) or link("home.index") or "/")
    point = str(request.form.get("point", "last_failure"))
    money_hint = request.form.get("money") == "yes"
    reason, errors = parse_reason(request.form, money=money_hint)
    if point not in ("last_failure", "start", "event"):
        errors["point"] = "choose last failure point, start, or an event id"
    if point == "event":
        try:
            parse_int(request.form.get("event_id", ""), lo=1)
        except ValueError as exc:
            errors["event_id"] = str(exc)
    refuse = functools.partial(
        _refuse_control, "reset", workflow_id, run_id, target=target, reason=reason, back=back
    )
    if errors:
        return refuse(errors=errors, money=money_hint)
    gw = gateway()
    try:
        info, money = _is_money_run(workflow_id, run_id)
        if money and not reason.code:
            return refuse(errors=dict(MONEY_CODE_REQUIRED), money=True)
        history = summarise_history(workflow_id, info.run_id, None)
        event_id, problem = _reset_point(history, point, request.form.get("event_id", ""))
        if event_id is None:
            raise RunStateConflict(f"cannot reset {workflow_id}: {problem}")
        new_run = gw.reset(
            workflow_id, info.run_id, event_id, f"{reason} (by {current_user.email})"
        )
    except GatewayError as exc:
        record(
            gateway_outcome(exc),
            target=target,
            params=form_params(request.form),
            reason=str(reason),
            detail=exc.message,
        )
        return _control_page(
            "reset",
            workflow_id,
            run_id,
            {},
            back,
            money_hint,
            gateway_status(exc),
            error=exc.message,
        )
    record(
        "success",
        target=target,
        params={"run_id": info.run_id, "event_id": event_id, "point": point},
        reason=str(reason),
        detail=f"reset to event {event_id}; new run {new_run}",
    )
    flash(f"Reset {workflow_id} to event {event_id}; new run {new_run}.", "success")
    return redirect(run_url(workflow_id, new_run) or back, code=303)


# --- retry --------------------------------------------------------------------------------------


@bp.post("/<workflow_id>/retry")
@guard("retry")
def retry(workflow_id: str):
    """Run a failed/timed-out/cancelled/terminated run again: with the same input under
    the same business id ("rerun"), or from its last failure point ("reset")."""
    workflow_id = checked_workflow_id(workflow_id)
    run_id = checked_run_id(request.form.get("run_id"))
    target = f"workflow:{workflow_id}"
    back = safe_next(run_url(workflow_id, run_id) or link("home.index") or "/")
    mode = str(request.form.get("mode", ""))
    if mode not in ("rerun", "reset"):
        record(
            "invalid",
            target=target,
            params=form_params(request.form),
            detail="mode must be rerun or reset",
        )
        flash("Choose how to retry: run again with the same input, or reset.", "error")
        return redirect(back, code=303)
    gw = gateway()
    try:
        info = gw.describe(workflow_id, run_id)
    except GatewayError as exc:
        record(gateway_outcome(exc), target=target, params={"mode": mode}, detail=exc.message)
        flash(exc.message, "error")
        return redirect(back, code=303)
    wf = _workflow_for_run(info)
    if wf is None:
        abort(404)
    if info.status not in CLOSED_FAILED_STATUSES:
        message = (
            f"only a failed, timed-out, cancelled or terminated run can be retried ({info.status})"
        )
        record("invalid", target=target, params={"mode": mode}, detail=message)
        flash(message[:1].upper() + message[1:] + ".", "error")
        return redirect(back, code=303)
    reason, errors = parse_reason(request.form, money=wf.spec.money, required=False)
    # Money runs are confirmed first: the page says whether money could move again and
    # asks for the reason code; the reason is checked when the confirmation comes back.
    needs_confirmation = wf.spec.money and request.form.get("confirmed") != "yes"
    if needs_confirmation:
        errors = {}
    elif errors:
        record(
            "invalid",
            target=target,
            params=form_params(request.form),
            reason=str(reason),
            detail="; ".join(f"{k}: {v}" for k, v in errors.items()),
        )
    try:
        history = summarise_history(workflow_id, info.run_id, wf.spec.input_type)
    except GatewayError as exc:
        record(gateway_outcome(exc), target=target, params={"mode": mode}, detail=exc.message)
        flash(exc.message, "error")
        return redirect(back, code=303)
    check = money_check(workflow_id, history) if wf.spec.money else None
    if needs_confirmation or errors:
        return (
            render_template(
                "actions/retry_confirm.html",
                wf=wf,
                info=info,
                mode=mode,
                history=history,
                check=check,
                errors=errors,
                reason=reason,
                reason_codes=REASON_CODES,
                back=back,
            ),
            422 if errors else 200,
        )
    params = {"mode": mode, "run_id": info.run_id, "status": info.status}
    if check is not None:
        params["money_could_move"] = check.could_move
    try:
        if mode == "rerun":
            if history.input is None:
                raise GatewayError(
                    history.input_error or "the run's input could not be read from its history"
                )
            started = gw.start(
                wf.name,
                history.input,
                triggered_by=current_user.email,
                triggered_by_ref=staff_ref(current_user),
                reason=str(reason) or f"retry of run {info.run_id}",
                workflow_id=workflow_id,
                memo={"retry_of": info.run_id},
            )
            new_run = started.run_id
            detail = (
                f"already running as {new_run}; nothing new started"
                if started.existing
                else f"ran again with the same input as run {new_run}"
            )
        else:
            event_id = history.failure_point
            if event_id is None:
                raise GatewayError("the run has no workflow task to reset to")
            new_run = gw.reset(
                workflow_id,
                info.run_id,
                event_id,
                f"retry from the last failure point: {reason or '-'} (by {current_user.email})",
            )
            params["event_id"] = event_id
            detail = f"reset to event {event_id}; new run {new_run}"
    except AlreadyStarted as exc:
        record("error", target=target, params=params, reason=str(reason), detail=exc.message)
        flash(exc.message, "error")
        return redirect(back, code=303)
    except GatewayError as exc:
        record(
            gateway_outcome(exc),
            target=target,
            params=params,
            reason=str(reason),
            detail=exc.message,
        )
        flash(exc.message, "error")
        return redirect(back, code=303)
    record("success", target=target, params=params, reason=str(reason), detail=detail)
    flash(f"Retried {workflow_id}: {detail}.", "success")
    return redirect(run_url(workflow_id, new_run) or back, code=303)


# --- bulk retry ---------------------------------------------------------------------------------


def _bulk_filters(source) -> tuple[Any, dict[str, str], str]:
    from dashboard import visibility

    filters, errors = visibility.parse_filters(source)
    if not errors:
        filters, search_problem = visibility.resolve_search(filters)
        if search_problem:
            errors["q"] = search_problem
    status = filters.status if filters.status in CLOSED_FAILED_STATUSES else "Failed"
    filters = dataclasses.replace(filters, status=status)
    scope = visibility.console_scope(gateway().prefix)
    # No ORDER BY: the dev server's visibility store refuses it; Temporal lists newest first.
    query = visibility.build_query(filters, scope=scope) if not errors else ""
    return filters, errors, query


@dataclass
class BulkRow:
    run: RunInfo
    money: bool
    could_move: bool | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How many pages of failed runs the preview reads, at most, looking for runs not yet retried.
BULK_PREVIEW_PAGES = 20


def _bulk_preview(query: str) -> tuple[int, list[BulkRow]]:
    """Failed runs matching the filter that are still their workflow's latest run.

    A retried run stays Failed in Temporal's lists, under a workflow id that now has a
    newer run: it is left out, so each pass offers the next failed runs instead of the
    ones already retried. `total` counts the runs not yet retried among those read; the
    count of all failed runs (`gw.count`) less the retried ones seen is the best estimate
    when the read stopped at the cap.
    """
    from dashboard import visibility

    gw = gateway()
    scope = visibility.console_scope(gw.prefix)
    offered: list[RunInfo] = []
    superseded = 0
    token: bytes | None = None
    for _ in range(BULK_PREVIEW_PAGES):
        page = gw.list_runs(query, page_size=100, next_page_token=token)
        latest = _latest_run_ids(gw, scope, [r.workflow_id for r in page.runs])
        for run in page.runs:
            if latest.get(run.workflow_id) == run.run_id:
                offered.append(run)
            else:
                superseded += 1
        token = page.next_page_token
        if not token or len(offered) >= BULK_RETRY_CAP:
            break
    total = len(offered) if not token else max(len(offered), gw.count(query) - superseded)
    rows = []
    workflow_ids = []
    for run in offered[:BULK_RETRY_CAP]:
        wf = _workflow_for_run(run)
        rows.append(BulkRow(run, bool(wf and wf.spec.money)))
        workflow_ids.append(run.workflow_id)
    # Money: one query for every previewed run (no call per row).
    paid = (
        set(
            db.session.scalars(
                select(Payout.workflow_id)
                .join(Transfer, Transfer.payout_id == Payout.id)
                .where(Payout.workflow_id.in_(workflow_ids))
            )
        )
        if workflow_ids
        else set()
    )
    for row in rows:
        if row.money:
            row.could_move = row.run.workflow_id not in paid
    return total, rows


def _latest_run_ids(gw: Any, scope: str, workflow_ids: list[str]) -> dict[str, str]:
    """The newest run of each workflow id (one list call for them all)."""
    from dashboard import visibility

    if not workflow_ids:
        return {}
    query = visibility.runs_of_workflows_query(workflow_ids, scope=scope)
    latest: dict[str, RunInfo] = {}
    token: bytes | None = None
    while True:
        page = gw.list_runs(query, page_size=1000, next_page_token=token)
        for run in page.runs:
            known = latest.get(run.workflow_id)
            if known is None or (run.start_time or _EPOCH) > (known.start_time or _EPOCH):
                latest[run.workflow_id] = run
        token = page.next_page_token
        if not token:
            return {wid: run.run_id for wid, run in latest.items()}


@bp.route("/bulk-retry", methods=["GET", "POST"])
@guard("retry")
def bulk_retry():
    """GET: which failed runs match the filter (capped) — changes nothing. POST: confirm."""
    source = request.args if request.method == "GET" else request.form
    filters, errors, query = _bulk_filters(source)
    target = f"runs:{filters.query_string()}"[:300]
    if errors:
        if request.method == "POST":
            record(
                "invalid",
                target=target,
                params=form_params(request.form, BULK_FIELDS),
                detail="; ".join(f"{k}: {v}" for k, v in errors.items()),
            )
        return _bulk_page(filters, errors, 0, [], Reason("", ""), {}, 422)
    try:
        total, rows = _bulk_preview(query)
    except GatewayError as exc:
        if request.method == "POST":
            record(gateway_outcome(exc), target=target, detail=exc.message)
        return _bulk_page(
            filters, {}, 0, [], Reason("", ""), {}, gateway_status(exc), error=exc.message
        )
    money = any(r.money for r in rows)
    if request.method == "GET":
        return _bulk_page(filters, {}, total, rows, Reason("", ""), {}, 200)

    reason, reason_errors = parse_reason(request.form, money=money, required=True)
    chosen = set(request.form.getlist("run"))
    if not chosen:
        reason_errors["run"] = "tick at least one run"
    if len(chosen) > BULK_RETRY_CAP:
        reason_errors["run"] = f"at most {BULK_RETRY_CAP} runs at once"
    if reason_errors:
        record(
            "invalid",
            target=target,
            params=form_params(request.form, BULK_FIELDS),
            reason=str(reason),
            detail="; ".join(f"{k}: {v}" for k, v in reason_errors.items()),
        )
        return _bulk_page(filters, {}, total, rows, reason, reason_errors, 422)
    # Only runs that were shown and still match: a run retried meanwhile has left the
    # filter (its id now has a newer run) and is skipped.
    todo = [r for r in rows if f"{r.run.workflow_id}|{r.run.run_id}" in chosen]
    results = [_retry_one(row, reason) for row in todo]
    skipped = len(chosen) - len(todo)
    done = sum(1 for ok, _ in results if ok)
    summary = f"Bulk retry: {done} of {len(todo)} runs started again"
    if skipped:
        summary += f"; {skipped} no longer matched the filter and were left alone"
    flash(summary + ".", "success" if done == len(todo) and not skipped else "warning")
    return (
        render_template(
            "actions/bulk_result.html",
            results=list(zip(todo, results, strict=True)),
            summary=summary,
            filters=filters,
            runs_url=_runs_url(filters),
        ),
        200,
    )


def _retry_one(row: BulkRow, reason: Reason) -> tuple[bool, str]:
    run = row.run
    wf = _workflow_for_run(run)
    target = f"workflow:{run.workflow_id}"
    params = {"mode": "rerun", "run_id": run.run_id, "bulk": True}
    if wf is None:
        record("error", target=target, params=params, detail="not a registered workflow")
        return False, "not a registered workflow"
    try:
        history = summarise_history(run.workflow_id, run.run_id, wf.spec.input_type)
        if history.input is None:
            raise GatewayError(history.input_error or "the run's input could not be read")
        started = gateway().start(
            wf.name,
            history.input,
            triggered_by=current_user.email,
            triggered_by_ref=staff_ref(current_user),
            reason=str(reason),
            workflow_id=run.workflow_id,
            memo={"retry_of": run.run_id, "bulk_retry": True},
        )
    except GatewayError as exc:
        record(
            gateway_outcome(exc),
            target=target,
            params=params,
            reason=str(reason),
            detail=exc.message,
        )
        return False, exc.message
    detail = (
        f"already running as {started.run_id}"
        if started.existing
        else f"started again as run {started.run_id}"
    )
    record("success", target=target, params=params, reason=str(reason), detail=detail)
    return True, detail


def _runs_url(filters) -> str | None:
    base = link("runs.index")
    if not base:
        return None
    qs = filters.query_string()
    return f"{base}?{qs}" if qs else base


def _bulk_page(filters, errors, total, rows, reason, reason_errors, status, error=""):
    from dashboard import visibility

    return (
        render_template(
            "actions/bulk_retry.html",
            domains=list(catalogue.domains()),
            workflow_types=visibility.workflow_types(),
            entity_types=visibility.entity_types(),
            retry_statuses=CLOSED_FAILED_STATUSES,
            filters=filters,
            filter_errors=errors,
            total=total,
            rows=rows,
            cap=BULK_RETRY_CAP,
            money=any(r.money for r in rows),
            reason=reason,
            errors=reason_errors,
            reason_codes=REASON_CODES,
            error=error,
            runs_url=_runs_url(filters),
            hidden=filters.as_params(),
        ),
        status,
    )


# --- what the partials show ---------------------------------------------------------------------


@dataclass
class RunActions:
    run: RunInfo
    registered: RegisteredWorkflow | None
    forms: list[ActionForm]
    money: bool
    next: str
    payout_id: int | None = None
    can_cancel: bool = False
    can_terminate: bool = False
    can_reset: bool = False
    can_retry: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.forms
            or self.can_cancel
            or self.can_terminate
            or self.can_reset
            or self.can_retry
            or self.payout_id
        )


def _current_path() -> str:
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


@bp.app_template_global("run_actions")
def run_actions(run: RunInfo, registered: RegisteredWorkflow | None = None) -> RunActions:
    """The forms the signed-in user may use on this run (for runs/_actions.html)."""
    wf = registered or _workflow_for_run(run)
    money = bool(wf and wf.spec.money)
    next_url = _current_path()
    action_forms: list[ActionForm] = []
    payout_id = None
    if wf is not None and run.is_running:
        for kind in ("signal", "update"):
            for name in _handlers(wf, kind):
                if wf.spec.money and name in PAYOUT_DECISIONS:
                    continue
                form = action_form(wf, kind, name, run.workflow_id, next_url=next_url)
                if can(current_user, form.permission):
                    action_forms.append(form)
    if money and run.is_running:
        payout_id = db.session.scalar(
            select(Payout.id).where(
                Payout.workflow_id == run.workflow_id, Payout.status == "pending_approval"
            )
        )
    closed_failed = run.status in CLOSED_FAILED_STATUSES
    return RunActions(
        run=run,
        registered=wf,
        forms=action_forms,
        money=money,
        next=next_url,
        payout_id=payout_id,
        can_cancel=run.is_running and can(current_user, "cancel"),
        can_terminate=run.is_running and can(current_user, "terminate"),
        can_reset=can(current_user, "reset") and run.status not in ("ContinuedAsNew",),
        can_retry=closed_failed and wf is not None and can(current_user, "retry"),
    )


@dataclass
class EntityActions:
    entity_type: str
    entity_id: int
    runs: list[RunActions]
    starts: list[tuple[str, str]]  # (label, url) of start forms prefilled for the entity
    error: str = ""


def _stable_business_id(wf: RegisteredWorkflow, entity_type: str, entity_id: int) -> str | None:
    """The workflow id of this entity's run of `wf`, when it depends on the entity only."""
    from datetime import UTC, datetime

    from estuary.contracts.inputs import parse_input

    key = f"{entity_type}_id"
    names = {f.name for f in dataclasses.fields(wf.spec.input_type)}
    if key not in names:
        return None
    try:
        payload = parse_input(wf.spec.input_type, {key: str(entity_id)})
        first = wf.spec.business_id(payload, datetime(2001, 1, 1, tzinfo=UTC))
        second = wf.spec.business_id(payload, datetime(2002, 6, 7, 8, 9, 10, tzinfo=UTC))
    except Exception:  # the input or its business key needs more than the entity id
        return None
    return first if first == second else None


@bp.app_template_global("entity_actions")
def entity_actions(entity_type: str, entity_id: int, max_runs: int = 6) -> EntityActions:
    """Forms for the runs of one entity (booking, practitioner, subscription, payout)."""
    out = EntityActions(entity_type, int(entity_id), [], [])
    candidates: list[tuple[RegisteredWorkflow, str]] = []
    for wf in catalogue.all_workflows():
        if wf.spec.entity_type != entity_type:
            continue
        wid = _stable_business_id(wf, entity_type, int(entity_id))
        if wid and (wf.spec.signals or wf.spec.updates):
            candidates.append((wf, wid))
        elif can(current_user, "start_workflow"):
            url = link("start.form", name=wf.name, **{f"{entity_type}_id": entity_id})
            if url:
                out.starts.append((f"Start {wf.name}", url))
    for wf, wid in candidates[:max_runs]:
        if g.get("temporal_unreachable"):
            # Found unreachable earlier in this request: wait for the timeout once only.
            out.error = str(g.temporal_unreachable)
            break
        try:
            info = gateway().describe(wid)
        except RunNotFound:
            continue
        except TemporalUnavailable as exc:
            g.temporal_unreachable = exc.message
            out.error = exc.message
            break
        except GatewayError as exc:
            out.error = exc.message
            continue
        if info.is_running or info.status in CLOSED_FAILED_STATUSES:
            out.runs.append(run_actions(info, wf))
    return out


@bp.app_template_global("payout_run_actions")
def payout_run_actions(payout: Any) -> RunActions | None:
    """The actions on a payout's workflow run (cancel, retry...), or None."""
    if not getattr(payout, "workflow_id", None) or g.get("temporal_unreachable"):
        return None
    try:
        info = gateway().describe(payout.workflow_id)
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        return None
    except GatewayError:
        return None
    return run_actions(info)


@bp.app_template_global("reason_codes")
def reason_codes() -> tuple[str, ...]:
    return REASON_CODES


@bp.app_template_global("reason_label_keys")
def reason_label_keys() -> tuple[str, str]:
    return REASON_CODE_KEY, REASON_TEXT_KEY


@bp.app_template_global("run_link")
def run_link(workflow_id: str, run_id: str | None = None) -> str | None:
    return run_url(workflow_id, run_id)


@bp.app_template_global("practitioner_actions")
def practitioner_actions(practitioner: Any) -> list[EntityActions]:
    """The practitioner's own runs plus the renewal runs of their latest subscriptions."""
    from estuary.models import Subscription

    out = [entity_actions("practitioner", practitioner.id)]
    subscription_ids = db.session.scalars(
        select(Subscription.id)
        .where(Subscription.practitioner_id == practitioner.id)
        .order_by(Subscription.id.desc())
        .limit(3)
    )
    for sid in subscription_ids:
        out.append(entity_actions("subscription", sid))
    return out
