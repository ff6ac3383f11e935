"""Plumbing shared by the console's write side (start forms, run actions, approvals,
schedules, staff): the guard that authorises and audits, the audit helpers, reasons,
links to pages other blueprints own, and the mapping of gateway errors to messages and
status codes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, request, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound
from werkzeug.routing import BuildError

from dashboard.permissions import require
from dashboard.visibility import RUN_ID_RE
from estuary.contracts import catalogue
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.checks import text_problem
from estuary.services import audit
from estuary.services.staff import staff_ref
from temporal_gateway.access import gateway
from temporal_gateway.gateway import (
    AlreadyStarted,
    GatewayError,
    NoWorkerAnswered,
    RunNotFound,
    StartedRun,
    TemporalUnavailable,
    UpdateRejected,
)

F = TypeVar("F", bound=Callable[..., Any])

WORKFLOW_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
WORKFLOW_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
MAX_REASON_LENGTH = 500
# Form keys of the reason every destructive or money action asks for. They are prefixed
# so they never collide with a workflow input's own `reason` / `reason_code` field.
REASON_CODE_KEY = "action_reason_code"
REASON_TEXT_KEY = "action_reason"


def guard(action: str) -> Callable[[F], F]:
    """`require(action)`, plus an audited denial when nobody is signed in and the request
    would change something (a signed-out GET is just sent to the sign-in page), and an
    audited "invalid" when a change names something that does not exist (404)."""

    def decorate(view: F) -> F:
        required = require(action)(view)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated and request.method != "GET":
                from dashboard.extensions import login_manager

                audit.record(
                    action=str(request.endpoint),
                    target=request.path,
                    outcome="denied",
                    detail=f"not signed in; {action} needs a signed-in user",
                )
                return login_manager.unauthorized()
            try:
                return required(*args, **kwargs)
            except NotFound:
                # A change aimed at something that does not exist is still an attempt.
                if request.method != "GET":
                    audit.record(
                        action=str(request.endpoint),
                        target=request.path,
                        outcome="invalid",
                        detail="not found: no such workflow, run, payout, schedule or user",
                    )
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


def record(
    outcome: str,
    *,
    target: str,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
    detail: str = "",
) -> None:
    """One audit event for this request, named after its endpoint."""
    audit.record(
        action=str(request.endpoint),
        target=target,
        outcome=outcome,
        params=dict(params or {}),
        reason=reason,
        detail=detail,
    )


def errors_text(errors: Mapping[str, str]) -> str:
    """Field messages as one audit detail: `field: message; field: message`."""
    return "; ".join(f"{k}: {v}" for k, v in errors.items())


def record_invalid(
    target: str,
    errors: Mapping[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
) -> None:
    """The audit event of a form refused for its fields (nothing was sent)."""
    record("invalid", target=target, params=params, reason=reason, detail=errors_text(errors))


def record_gateway_error(
    exc: GatewayError,
    *,
    target: str,
    params: Mapping[str, Any] | None = None,
    reason: str = "",
) -> None:
    """The audit event of an action Temporal refused or did not answer."""
    record(gateway_outcome(exc), target=target, params=params, reason=reason, detail=exc.message)


# The fields the console's own action forms declare (run actions, reasons, confirmations).
ACTION_FIELDS = frozenset(
    {
        "run_id",
        "workflow_type",
        "point",
        "event_id",
        "mode",
        "money",
        "confirmed",
        "step",
        "next",
        REASON_CODE_KEY,
        REASON_TEXT_KEY,
    }
)


def start_as_staff(workflow_name: str, payload: Any, reason: str, **options: Any) -> StartedRun:
    """Start a workflow for the signed-in staff member: the gateway's `start` with who
    triggered it (their email in the encrypted memo, `staff:<id>` in the TriggeredBy
    search attribute); `options` are the rest of `start`'s (workflow_id, memo)."""
    return gateway().start(
        workflow_name,
        payload,
        triggered_by=current_user.email,
        triggered_by_ref=staff_ref(current_user),
        reason=reason,
        **options,
    )


def form_params(form: Mapping[str, Any], keep: Iterable[str] = ()) -> dict[str, str]:
    """Submitted fields for the audit trail: only fields a form declares (its own `keep`
    plus ACTION_FIELDS), each cut to audit.MAX_PARAM_LENGTH, so a client posting hundreds
    of extra fields cannot grow the row. Never the CSRF token; secrets are redacted by the
    audit writer."""
    declared = ACTION_FIELDS | set(keep)
    out: dict[str, str] = {}
    for key in form:
        if key == "csrf_token" or key not in declared:
            continue
        out[key] = str(form.get(key, ""))[: audit.MAX_PARAM_LENGTH + 1]
    return out


# --- ids and links --------------------------------------------------------------------------


def checked_workflow_id(workflow_id: str) -> str:
    if not WORKFLOW_ID_RE.fullmatch(workflow_id or ""):
        abort(404)
    return workflow_id


def registered_workflow_or_404(name: str) -> RegisteredWorkflow:
    """The catalogue's workflow of that name; a name that is not one is a 404."""
    if not WORKFLOW_NAME_RE.fullmatch(name or ""):
        abort(404)
    try:
        return catalogue.workflow(name)
    except LookupError:
        abort(404)


def checked_run_id(run_id: str | None) -> str | None:
    if not run_id:
        return None
    if not RUN_ID_RE.fullmatch(run_id):
        abort(404)
    return run_id


def link(endpoint: str, **values: Any) -> str | None:
    """URL of a page another blueprint may or may not provide yet."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def run_url(workflow_id: str, run_id: str | None = None) -> str | None:
    """The run detail page (runs.detail, or runs.latest without a run id), if any."""
    if run_id:
        url = link("runs.detail", workflow_id=workflow_id, run_id=run_id)
        if url:
            return url
    return link("runs.latest", workflow_id=workflow_id)


def safe_next(default: str) -> str:
    """The `next` field if it is a local path; never an open redirect."""
    target = request.form.get("next") or request.args.get("next") or ""
    parts = urlsplit(target)
    if (
        not target
        or parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or len(target) > 2000
    ):
        return default
    return target


# --- reasons --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    code: str
    text: str

    def __str__(self) -> str:
        if self.code and self.text:
            return f"{self.code}: {self.text}"
        return self.code or self.text


def parse_reason(
    form: Mapping[str, Any], *, money: bool, required: bool = True, action: str = ""
) -> tuple[Reason, dict[str, str]]:
    """The reason of an action: money actions need one of the reason codes of their
    `action` (cancel, terminate, retry, reset; and text for 'other'); others need text
    when `required`."""

    errors: dict[str, str] = {}
    code = str(form.get(REASON_CODE_KEY) or "").strip()
    text = str(form.get(REASON_TEXT_KEY) or "").strip()
    problem = text_problem(text, MAX_REASON_LENGTH)
    if problem:
        errors[REASON_TEXT_KEY] = problem
    if money:
        if not code:
            errors[REASON_CODE_KEY] = "a reason code is required for a money workflow"
        elif code not in (codes := reason_codes_for(action)):
            errors[REASON_CODE_KEY] = f"{code[:40]!r} is not one of: {', '.join(codes)}"
        elif code == "other" and not text and REASON_TEXT_KEY not in errors:
            errors[REASON_TEXT_KEY] = "say why (required with reason code 'other')"
    else:
        code = ""
        if required and not text and REASON_TEXT_KEY not in errors:
            errors[REASON_TEXT_KEY] = "a reason is required"
    return Reason(code, text), errors


# --- gateway errors -------------------------------------------------------------------------


class RunStateConflict(GatewayError):
    """The run is not in a state that allows the action (closed, another type...)."""


def gateway_status(exc: GatewayError) -> int:
    if isinstance(exc, TemporalUnavailable):
        return 503
    if isinstance(exc, RunNotFound):
        return 404
    if isinstance(exc, AlreadyStarted | RunStateConflict):
        return 409
    if isinstance(exc, UpdateRejected):
        return 422
    return 502


def gateway_outcome(exc: GatewayError) -> str:
    """A validator's refusal is the workflow saying no ("denied"); an update nobody
    answered in time is "pending" (it may still be applied: never call it failed); the
    rest are errors."""
    if isinstance(exc, UpdateRejected):
        return "denied"
    if isinstance(exc, NoWorkerAnswered):
        return "pending"
    return "error"


PENDING_DELIVERY = (
    "Pending delivery: no worker confirmed it yet. It is kept by Temporal and applied when "
    "the worker returns; the audit log records the real outcome then. Do not send it again."
)
