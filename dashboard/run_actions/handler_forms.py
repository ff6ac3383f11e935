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
from estuary.contracts.inputs import InputError
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, NoWorkerAnswered, UpdateRejected

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
    arg_type = handlers(wf, kind).get(name)
    fields = forms.form_fields(arg_type, values, errors) if arg_type else []
    return ActionForm(
        kind=kind,
        name=name,
        workflow_id=workflow_id,
        workflow_type=wf.name,
        fields=fields,
        permission=handler_permission(wf, name),
        next=next_url,
        field_errors=dict(errors or {}),
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

    def form(self, **kwargs: Any) -> ActionForm:
        return action_form(
            self.wf, self.kind, self.name, self.workflow_id, next_url=self.back, **kwargs
        )


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
    return _Submission(kind, name, workflow_id, wf, arg_type, target, back, values)


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
    gw = gateway()
    try:
        info = gw.describe(sub.workflow_id)
        if info.workflow_type != sub.wf.name:
            raise RunStateConflict(
                f"{sub.workflow_id} is a {info.workflow_type}, not a {sub.wf.name}"
            )
        if not info.is_running:
            raise RunStateConflict(f"{sub.workflow_id} is not running ({info.status})")
        if sub.kind == "signal":
            gw.signal(sub.workflow_id, sub.name, arg)
            result = None
        else:
            result = gw.update(sub.workflow_id, sub.name, arg)
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
    form = sub.form()
    verb = "Sent" if sub.kind == "signal" else "Done"
    form.message = f"{verb}: {form.title} ({sub.workflow_id})."
    if result is not None:
        form.message += f" {describe_result(result)}"
    return _respond(form, 200, sub.back)


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
