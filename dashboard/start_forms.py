"""Start forms: one per catalogue workflow, generated from its input dataclass (served
at `/workflows/<name>/start` by `dashboard.views.catalog`).

GET shows the form; POST validates every field with the same parser the commands use
and shows field messages (nothing starts). A money workflow needs a reason and
goes through a confirmation page that says what will happen (a batch payout shows its
dry run's count and total) before anything starts. Starting twice starts once: the
workflow id is the business key, so the second start finds the running run and shows it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from flask import current_app, flash, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from dashboard import forms
from dashboard.writes import (
    REASON_CODE_KEY,
    REASON_TEXT_KEY,
    Reason,
    form_params,
    gateway_status,
    link,
    parse_reason,
    record,
    record_gateway_error,
    run_url,
)
from estuary.contracts import approval_rules
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import InputError
from estuary.db import db
from estuary.services.staff import staff_ref
from temporal_gateway.access import gateway
from temporal_gateway.gateway import AlreadyStarted, GatewayError, StartedRun

log = logging.getLogger("estuary.console")


def _input_has(wf: RegisteredWorkflow, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(wf.spec.input_type))


def _fills_reason(wf: RegisteredWorkflow) -> bool:
    """An input with its own `reason` field gets the action's reason text (one box)."""
    return _input_has(wf, "reason")


def _reason_required(wf: RegisteredWorkflow) -> bool:
    if wf.spec.money:
        return True
    for f in dataclasses.fields(wf.spec.input_type):
        if f.name == "reason":
            return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    return False


def render_form(
    wf: RegisteredWorkflow,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    prefill: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """The start form, with the values typed and their messages."""
    exclude = ["reason"] if _fills_reason(wf) else []
    fields = forms.form_fields(wf.spec.input_type, values, errors, exclude=exclude, prefill=prefill)
    errors = errors or {}
    # Errors on fields the form does not show (a cross-field rule on a hidden field).
    shown = {f.name for f in fields} | {REASON_CODE_KEY, REASON_TEXT_KEY}
    if _fills_reason(wf) and "reason" in errors:
        errors.setdefault(REASON_TEXT_KEY, errors["reason"])
    other_errors = {k: v for k, v in errors.items() if k not in shown and k != "reason"}
    return (
        render_template(
            "start/form.html",
            wf=wf,
            fields=fields,
            errors=errors,
            other_errors=other_errors,
            reason_code=(values or {}).get(REASON_CODE_KEY, ""),
            reason_text=(values or {}).get(REASON_TEXT_KEY, ""),
            reason_required=_reason_required(wf),
            catalogue_url=link("catalog.index"),
        ),
        status,
    )


def submit(wf: RegisteredWorkflow) -> ResponseReturnValue:
    """POST of a start form: field messages (nothing starts), the confirmation of a money
    workflow, or the start."""
    values = forms.submitted_values(wf.spec.input_type, request.form)
    values[REASON_CODE_KEY] = str(request.form.get(REASON_CODE_KEY, ""))[:100]
    values[REASON_TEXT_KEY] = str(request.form.get(REASON_TEXT_KEY, ""))[:5000]
    if request.form.get("step") == "edit":
        return render_form(wf, values=values)

    # Starting needs words, not a code (the reason codes are for refusing and stopping money).
    reason, errors = parse_reason(request.form, money=False, required=_reason_required(wf))
    fixed = {"reason": reason.text} if _fills_reason(wf) else None
    payload = None
    try:
        payload = forms.parse_form(
            wf.spec.input_type, request.form, actor=current_user.email, fixed=fixed
        )
    except InputError as exc:
        errors = {**exc.errors, **errors}
    target = f"workflow-type:{wf.name}"
    if errors or payload is None:
        record(
            "invalid",
            target=target,
            params=form_params(request.form, forms.visible_names(wf.spec.input_type)),
            reason=str(reason),
            detail="; ".join(f"{k}: {v}" for k, v in errors.items())[:1000],
        )
        return render_form(wf, values=values, errors=errors, status=422)

    if wf.spec.money and request.form.get("confirmed") != "yes":
        return _render_confirmation(wf, payload, values, reason)
    return _start(wf, payload, reason)


def _start(wf: RegisteredWorkflow, payload: Any, reason: Reason):
    params = {k: _plain(v) for k, v in dataclasses.asdict(payload).items()}
    gw = gateway()
    try:
        workflow_id = gw.business_id(wf.name, payload)
    except Exception:  # a business key needing data the input lacks is a bug: log it
        log.exception("business id of %s failed", wf.name)
        workflow_id = ""
    target = f"workflow:{workflow_id}" if workflow_id else f"workflow-type:{wf.name}"
    try:
        started = gw.start(
            wf.name,
            payload,
            triggered_by=current_user.email,
            triggered_by_ref=staff_ref(current_user),
            reason=str(reason),
        )
    except AlreadyStarted as exc:
        record(
            "error",
            target=f"workflow:{exc.workflow_id}",
            params=params,
            reason=str(reason),
            detail=exc.message,
        )
        return _render_result(wf, None, error=exc.message, existing_run=exc, status=409)
    except GatewayError as exc:
        record_gateway_error(exc, target=target, params=params, reason=str(reason))
        return _render_result(wf, None, error=exc.message, status=gateway_status(exc))
    if started.existing:
        detail = f"already running as run {started.run_id}; nothing new started"
        flash(
            f"{started.workflow_id} is already running; nothing new was started. "
            "This is the running run.",
            "warning",
        )
    else:
        detail = f"started run {started.run_id}"
        flash(f"Started {wf.name} as {started.workflow_id}.", "success")
    record(
        "success",
        target=f"workflow:{started.workflow_id}",
        params=params,
        reason=str(reason),
        detail=detail,
    )
    url = run_url(started.workflow_id, started.run_id)
    if url:
        return redirect(url, code=303)
    return _render_result(wf, started)


def _render_result(
    wf: RegisteredWorkflow,
    started: StartedRun | None,
    *,
    error: str = "",
    existing_run: AlreadyStarted | None = None,
    status: int = 200,
):
    existing_url = None
    if existing_run is not None:
        existing_url = run_url(existing_run.workflow_id, existing_run.run_id)
    return (
        render_template(
            "start/result.html",
            wf=wf,
            started=started,
            error=error,
            existing_run=existing_run,
            existing_url=existing_url,
            form_url=link("catalog.start", name=wf.name),
        ),
        status,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --- confirmation -----------------------------------------------------------------------------


@dataclasses.dataclass
class Preview:
    """What the confirmation page says will happen."""

    lines: list[tuple[str, str]]
    workflow_id: str
    dry_run: dict[str, Any] | None = None
    dry_run_url: str | None = None
    dry_run_error: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)
    names: dict[int, str] = dataclasses.field(default_factory=dict)


def _render_confirmation(wf: RegisteredWorkflow, payload: Any, values: dict, reason: Reason):
    preview = _preview(wf, payload, reason)
    exclude = ["reason"] if _fills_reason(wf) else []
    shown = forms.form_fields(wf.spec.input_type, values, exclude=exclude)
    summary = [
        (f.label, forms.describe_value(wf.spec.input_type, f.name, getattr(payload, f.name)))
        for f in shown
    ]
    return render_template(
        "start/confirm.html",
        wf=wf,
        preview=preview,
        summary=summary,
        hidden=[(f.name, f.value) for f in shown],
        reason=reason,
        reason_code_key=REASON_CODE_KEY,
        reason_text_key=REASON_TEXT_KEY,
    )


def _preview(wf: RegisteredWorkflow, payload: Any, reason: Reason) -> Preview:
    from estuary.models import Practitioner
    from estuary.services import ledger

    gw = gateway()
    preview = Preview(lines=[], workflow_id=gw.business_id(wf.name, payload))
    currency = current_app.config.get("CURRENCY", "USD")
    money = current_app.jinja_env.filters["money"]
    pid = getattr(payload, "practitioner_id", None)
    if isinstance(pid, int):
        practitioner = db.session.get(Practitioner, pid)
        if practitioner is not None:
            available = ledger.balance(ledger.available_account(pid))
            preview.lines.append(("Payee", f"{practitioner.name} (#{pid}, {practitioner.status})"))
            preview.lines.append(("Available balance now", money(available, currency)))
            if _input_has(wf, "amount_cents"):
                amount = getattr(payload, "amount_cents", None)
                pay = amount if amount is not None else available
                what = "the whole available balance" if amount is None else "the amount entered"
                preview.lines.append(("Will pay", f"{money(pay, currency)} ({what})"))
                if amount is not None and amount > available:
                    preview.warnings.append(
                        "The amount is more than the available balance: the payout will fail "
                        "unless the balance grows first."
                    )
                threshold = int(current_app.config["PAYOUT_APPROVAL_THRESHOLD_CENTS"])
                dual = int(current_app.config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"])
                needs = approval_rules.requirement_text(pay, threshold, dual)
                preview.lines.append(("Approval", needs))
    ids = getattr(payload, "practitioner_ids", None)
    if _input_has(wf, "practitioner_ids"):
        preview.lines.append(
            ("Scope", f"only the {len(ids)} practitioners listed" if ids else "every practitioner")
        )
    if _input_has(wf, "dry_run"):
        if payload.dry_run:
            preview.lines.append(("Dry run", "yes: lists what would be paid, moves no money"))
        else:
            _dry_run(wf, payload, preview, reason)
    return preview


def _dry_run(wf: RegisteredWorkflow, payload: Any, preview: Preview, reason: Reason) -> None:
    """What the same input would do, read now without starting a run (the batch's dry
    run reads the same candidate pages): a preview leaves nothing in the runs list."""
    from estuary.contracts.payments import BatchPayoutInput
    from estuary.services import payout_batches

    if not isinstance(payload, BatchPayoutInput):  # the one workflow with a dry run
        return
    try:
        result = payout_batches.dry_run(
            min_amount_cents=payload.min_amount_cents,
            practitioner_ids=payload.practitioner_ids,
            page_size=max(int(getattr(payload, "chunk_size", 0) or 0), 100),
        )
    except Exception as exc:  # a business refusal or a database error: said, not raised
        log.warning("dry run for %s failed: %s", wf.name, exc)
        preview.dry_run_error = f"The dry run could not be read: {exc}"
        return
    preview.dry_run = dataclasses.asdict(result)
    ids = [
        line.get("practitioner_id")
        for line in preview.dry_run.get("lines") or []
        if isinstance(line, dict)
    ][:200]
    if ids:
        from estuary.models import Practitioner

        preview.names = dict(
            db.session.execute(
                select(Practitioner.id, Practitioner.name).where(Practitioner.id.in_(ids))
            ).all()
        )
