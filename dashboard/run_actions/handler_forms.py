"""Signals and updates as forms: one form per handler the workflow's spec names
(`WorkflowSpec.signals`, `.updates` in `estuary/contracts/specs/`), generated from its
argument dataclass; `actor` is filled from the signed-in user. A refusal or field message
is shown in the form (the htmx fragment, or the form on a page of its own); a success goes
back to the page.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user
from htmx_flask import make_response as htmx_response
from htmx_flask import request  # flask's request, typed with `request.htmx`

from dashboard import forms
from dashboard.permissions import can, denial_message
from dashboard.run_actions.pickers import apply_pickers, has_pickers
from dashboard.run_actions.start_first import (
    entity_business_id,
    start_for_entity,
    update_once_loaded,
)
from dashboard.writes import (
    PENDING_DELIVERY,
    RunStateConflict,
    checked_workflow_id,
    form_params,
    gateway_status,
    link,
    record,
    record_gateway_error,
    record_invalid,
    registered_workflow_or_404,
    run_url,
    safe_next,
)
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import InputError, parse_id
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, NoWorkerAnswered, RunNotFound, UpdateRejected

HANDLER_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PAYOUT_DECISIONS = ("approve", "reject")


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
    # The entity whose run this form starts first when it has none (a booking's lifecycle).
    start_entity: int | None = None

    @property
    def title(self) -> str:
        return forms.label_for(self.name)

    @property
    def url(self) -> str:
        endpoint = "runs.signal" if self.kind == "signal" else "runs.update"
        return link(endpoint, workflow_id=self.workflow_id, name=self.name) or ""

    @property
    def dom_id(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", self.workflow_id)
        return f"act-{self.kind}-{self.name}-{safe}"

    @property
    def danger(self) -> bool:
        return self.name in ("cancel", "reject", "reject_onboarding", "waive")


def handler_permission(wf: RegisteredWorkflow, name: str) -> str:
    """The role permission a handler needs: cancelling, payout decisions, or signalling."""
    if name == "cancel" or name.startswith("cancel_"):
        return "cancel"
    if wf.spec.money and name in PAYOUT_DECISIONS:
        return "approve_payout"
    return "signal"


def handlers(wf: RegisteredWorkflow, kind: str) -> dict[str, type | None]:
    """The workflow's signals or updates: name -> argument dataclass (or None)."""
    pairs = wf.spec.signals if kind == "signal" else wf.spec.updates
    return dict(pairs)


def console_handlers(wf: RegisteredWorkflow, kind: str) -> dict[str, type | None]:
    """The handlers the console offers: every update, and the signals the spec does not
    keep for other senders only (`WorkflowSpec.console_signals`)."""
    known = handlers(wf, kind)
    if kind == "signal" and wf.spec.console_signals is not None:
        return {n: t for n, t in known.items() if n in wf.spec.console_signals}
    return known


def handlers_now(wf: RegisteredWorkflow, kind: str, progress: Any) -> dict[str, type | None]:
    """The console's handlers that apply at this moment of the run: those the spec's
    `actions_now` names from its progress (none while the progress is unknown), or all."""
    offered = console_handlers(wf, kind)
    if wf.spec.actions_now is None:
        return offered
    now = set(wf.spec.actions_now(progress)) if progress is not None else set()
    return {n: t for n, t in offered.items() if n in now}


def action_form(
    wf: RegisteredWorkflow,
    kind: str,
    name: str,
    workflow_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    next_url: str = "",
    progress: Any = None,
    start_entity: int | None = None,
) -> ActionForm:
    """The form of one handler; `progress` (the run's answer) fills its pickers."""
    arg_type = handlers(wf, kind).get(name)
    fields = forms.form_fields(arg_type, values, errors) if arg_type else []
    fields = apply_pickers(wf.name, name, fields, progress)
    return ActionForm(
        kind=kind,
        name=name,
        workflow_id=workflow_id,
        workflow_type=wf.name,
        fields=fields,
        permission=handler_permission(wf, name),
        next=next_url,
        field_errors=dict(errors or {}),
        start_entity=start_entity,
    )


def _respond(form: ActionForm, status: int, back: str) -> ResponseReturnValue:
    """A refusal or field message appears in the form (the htmx fragment, or the form on a
    page of its own); a success goes back to the page, which now shows the new state."""
    if status < 400:
        flash(form.message, "success")
        if request.htmx:
            return htmx_response("", 200, redirect=back)
        return redirect(back, code=303)
    if request.htmx:
        return render_template("actions/_action_form.html", form=form), status
    return render_template("actions/form_page.html", form=form, back=back), status


@dataclass
class _Submission:
    """A checked signal/update request: which run, which handler, what it may carry."""

    kind: str
    name: str
    workflow_id: str
    wf: RegisteredWorkflow
    arg_type: type | None
    target: str
    back: str
    values: dict[str, str]
    start_entity: int | None = None

    def form(self, **kwargs: Any) -> ActionForm:
        """The form again (after a refusal), its pickers filled from the run's progress."""
        return action_form(
            self.wf,
            self.kind,
            self.name,
            self.workflow_id,
            next_url=self.back,
            progress=_progress_for_pickers(self.wf, self.name, self.workflow_id),
            start_entity=self.start_entity,
            **kwargs,
        )


def _progress_for_pickers(wf: RegisteredWorkflow, name: str, workflow_id: str) -> Any:
    """The run's progress when this form has pickers (one short query), else None."""
    if not has_pickers(wf.name, name):
        return None
    try:
        return gateway().query(workflow_id, "progress", timeout_seconds=2)
    except GatewayError:
        return None


def _submission(kind: str, workflow_id: str, name: str) -> _Submission:
    """Check the ids and the handler (404), and the role (403, audited)."""
    workflow_id = checked_workflow_id(workflow_id)
    if not HANDLER_NAME_RE.fullmatch(name):
        abort(404)
    wf = registered_workflow_or_404(str(request.form.get("workflow_type", "")))
    known = handlers(wf, kind)
    if name not in known:
        abort(404)
    arg_type = known[name]
    if name not in console_handlers(wf, kind):
        abort(404, f"{forms.label_for(name)} is not sent from the console: use its update.")
    target = f"workflow:{workflow_id}"
    permission = handler_permission(wf, name)
    if not can(current_user, permission):
        record(
            "denied",
            target=target,
            params=form_params(request.form, forms.visible_names(arg_type) if arg_type else ()),
            detail=f"role {current_user.role} may not {permission}",
        )
        abort(403, denial_message(current_user, permission))
    back = safe_next(run_url(workflow_id) or link("home.index") or "/")
    values = forms.submitted_values(arg_type, request.form) if arg_type else {}
    start_entity = _start_entity(wf, workflow_id, target, values)
    return _Submission(kind, name, workflow_id, wf, arg_type, target, back, values, start_entity)


def _start_entity(
    wf: RegisteredWorkflow, workflow_id: str, target: str, values: dict[str, str]
) -> int | None:
    """The entity to start the run for when it has none (`start_entity` in the form):
    its business id must be this workflow id, and the user must be allowed to start."""
    raw = request.form.get("start_entity")
    if not raw:
        return None
    try:
        entity_id = parse_id(str(raw))
    except ValueError:
        abort(404)
    if entity_business_id(wf, wf.spec.entity_type, entity_id) != workflow_id:
        abort(404)
    if not can(current_user, "start_workflow"):
        record("denied", target=target, params=values, detail="may not start workflows")
        abort(403, denial_message(current_user, "start_workflow"))
    return entity_id


def send(kind: str, workflow_id: str, name: str) -> ResponseReturnValue:
    """POST of a signal or update form: check, parse, deliver to the running run."""
    sub = _submission(kind, workflow_id, name)
    if handler_permission(sub.wf, name) == "approve_payout":
        message = "Payout decisions are taken on the approvals page (four-eyes, approver limits)."
        record("denied", target=sub.target, params=sub.values, detail=message)
        form = sub.form(values=sub.values)
        form.error = message
        return _respond(form, 409, sub.back)
    arg = None
    if sub.arg_type is not None:
        try:
            arg = forms.parse_form(sub.arg_type, request.form, actor=current_user.email)
        except InputError as exc:
            record_invalid(sub.target, exc.errors, params={"name": name, **sub.values})
            form = sub.form(values=sub.values, errors=exc.errors)
            # Errors of fields the form does not show (a server-filled field that was sent
            # anyway) are named here, since no field below can carry them.
            shown = {f.name for f in form.fields}
            unshown = "; ".join(f"{k}: {v}" for k, v in exc.errors.items() if k not in shown)
            form.error = f"Nothing was sent: {unshown or 'fix the fields below.'}"
            return _respond(form, 422, sub.back)
    return _deliver(sub, arg)


def _deliver(sub: _Submission, arg: Any) -> ResponseReturnValue:
    params = {
        "name": sub.name,
        **({k: _plain(v) for k, v in dataclasses.asdict(arg).items()} if arg is not None else {}),
    }
    reason = str(getattr(arg, "reason", "") or getattr(arg, "note", "") or "")
    try:
        info = _describe_or_start(sub)
        if info is None:  # started just now for this action
            result = _send(sub, arg, started=True)
        elif info.workflow_type != sub.wf.name:
            raise RunStateConflict(
                f"{sub.workflow_id} is a {info.workflow_type}, not a {sub.wf.name}"
            )
        elif not info.is_running:
            raise RunStateConflict(f"the run has already finished ({info.status})")
        else:
            result = _send(sub, arg, started=False)
    except RunStateConflict as exc:
        # The page was stale (the run closed meanwhile): say so once and show the page
        # again, whose actions now fit the run.
        record_gateway_error(exc, target=sub.target, params=params, reason=reason)
        flash(f"Nothing was sent: {exc.message}.", "error")
        if request.htmx:
            return htmx_response("", 200, redirect=sub.back)
        return redirect(sub.back, code=303)
    except GatewayError as exc:
        record_gateway_error(exc, target=sub.target, params=params, reason=reason)
        form = sub.form(values=sub.values)
        if isinstance(exc, UpdateRejected):
            form.error = f"Refused by the workflow: {exc.message}"
        elif isinstance(exc, NoWorkerAnswered):
            form.error = f"{PENDING_DELIVERY} ({exc.message})"
        else:
            form.error = exc.message
        return _respond(form, gateway_status(exc), sub.back)
    detail = f"{sub.kind} {sub.name} sent"
    if result is not None:
        detail += f"; result: {_json(result)}"
    record("success", target=sub.target, params=params, reason=reason, detail=detail)
    # Only its title and message are shown (on the page it goes back to): no pickers.
    form = action_form(sub.wf, sub.kind, sub.name, sub.workflow_id, next_url=sub.back)
    verb = "Sent" if sub.kind == "signal" else "Done"
    form.message = f"{verb}: {form.title} ({sub.workflow_id})."
    if result is not None:
        form.message += f" {describe_result(result)}"
    return _respond(form, 200, sub.back)


def _describe_or_start(sub: _Submission) -> Any:
    """The run as Temporal describes it; None once a run was started for the entity
    because it had none (only for a form drawn with `start_entity`)."""
    try:
        return gateway().describe(sub.workflow_id)
    except RunNotFound:
        if sub.start_entity is None:
            raise
    why = f"{forms.label_for(sub.name)} from the {sub.wf.spec.entity_type} page"
    start_for_entity(sub.wf, sub.start_entity, why)
    return None


def _send(sub: _Submission, arg: Any, *, started: bool) -> Any:
    """Deliver the signal (None) or the update (its answer); a run started just now is
    given a few seconds to load its entity before its validators can say yes."""
    gw = gateway()
    if sub.kind == "signal":
        gw.signal(sub.workflow_id, sub.name, arg)
        return None
    if started:
        return update_once_loaded(sub.workflow_id, sub.name, arg)
    return gw.update(sub.workflow_id, sub.name, arg)


def _plain(value: Any) -> Any:
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
