"""Start forms: one per catalogue workflow, generated from its input dataclass (served
at `/workflows/<name>/start` by `dashboard.views.catalog`).

GET shows the form; POST validates every field with the same parser the commands use
and shows field messages (nothing starts). A money workflow needs a reason and
goes through a confirmation page that says what will happen in one sentence before
anything starts: a payout runs the workflow's own pre-checks (`payout_checks`: payout
destination, balance, today's payout already used up, approvals needed), and a blocking
problem disables Confirm and is refused again on the confirmed POST; a batch payout shows
its dry run as tables (names, amounts, totals, skips with their reasons). Starting twice
starts once: the workflow id is the business key, so the second start finds the running
run and shows it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from flask import current_app, flash, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from dashboard import forms
from dashboard.presentation.run_titles import type_words
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
    safe_next,
    start_as_staff,
)
from estuary.contracts import approval_rules
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import InputError
from estuary.contracts.money import format_money
from estuary.contracts.payments import BatchPayoutInput, PractitionerPayoutInput
from estuary.db import db
from estuary.services import payout_checks, payout_policy
from temporal_gateway.access import gateway
from temporal_gateway.errors import RunNotFound
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
            back=safe_next(""),
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
    if wf.spec.money:
        blocked = refusal(wf, payload)
        if blocked is not None:
            record(
                "denied",
                target=target,
                params=form_params(request.form, forms.visible_names(wf.spec.input_type)),
                reason=str(reason),
                detail=" ".join(blocked.problems)[:1000],
            )
            return _render_confirmation(wf, payload, values, reason, preview=blocked, status=409)
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
        started = start_as_staff(wf.name, payload, str(reason))
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
        flash(f"Started: {type_words(wf.name)} ({started.workflow_id}).", "success")
    record(
        "success",
        target=f"workflow:{started.workflow_id}",
        params=params,
        reason=str(reason),
        detail=detail,
    )
    # Started from an entity's page (`next`): back to that page, which shows the new run
    # with its actions; otherwise the run's own page.
    url = safe_next("") or run_url(started.workflow_id, started.run_id)
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
class BatchLine:
    """One practitioner of a batch's dry run, as the confirmation table shows it."""

    practitioner_id: int
    name: str
    amount_cents: int
    outcome: str  # "would_pay" or "skipped"
    detail: str
    needs_approval: bool = False


@dataclasses.dataclass
class Preview:
    """What the confirmation page says will happen: one sentence, the problems that stop
    it (the Confirm button is then disabled and the server refuses), notes, and for a
    batch the dry run's lines and totals."""

    lines: list[tuple[str, str]]
    workflow_id: str
    sentence: str = ""
    # A batch's sentence around its bold count and total (the page's figures).
    sentence_before: str = ""
    sentence_middle: str = ""
    sentence_after: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    under_way_url: str | None = None
    dry_run: dict[str, Any] | None = None
    dry_run_url: str | None = None
    dry_run_error: str = ""
    names: dict[int, str] = dataclasses.field(default_factory=dict)
    would_pay: list[BatchLine] = dataclasses.field(default_factory=list)
    skipped: list[BatchLine] = dataclasses.field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.problems)


def _back_field() -> list[tuple[str, str]]:
    """The page the start came from, carried through the confirmation."""
    back = safe_next("")
    return [("next", back)] if back else []


def _render_confirmation(
    wf: RegisteredWorkflow,
    payload: Any,
    values: dict,
    reason: Reason,
    *,
    preview: Preview | None = None,
    status: int = 200,
):
    preview = preview or _preview(wf, payload, reason)
    exclude = ["reason"] if _fills_reason(wf) else []
    shown = forms.form_fields(wf.spec.input_type, values, exclude=exclude)
    summary = [
        (f.label, forms.describe_value(wf.spec.input_type, f.name, getattr(payload, f.name)))
        for f in shown
    ]
    return (
        render_template(
            "start/confirm.html",
            wf=wf,
            preview=preview,
            summary=summary,
            hidden=[(f.name, f.value) for f in shown] + _back_field(),
            reason=reason,
            reason_code_key=REASON_CODE_KEY,
            reason_text_key=REASON_TEXT_KEY,
        ),
        status,
    )


def _money(cents: int) -> str:
    return format_money(cents, current_app.config.get("CURRENCY", "USD"))


def _today_run_status(workflow_id: str) -> tuple[str | None, str]:
    """The status of the run holding `workflow_id` (None: no run), and a note when
    Temporal could not be asked (the database's record then decides alone). One describe
    call, never a visibility query."""
    gw = gateway()
    if gw.unreachable_message():
        return None, "Temporal is unreachable: checked against the app database only."
    try:
        return gw.describe(workflow_id).status, ""
    except RunNotFound:
        return None, ""
    except GatewayError as exc:
        return None, f"Temporal could not be asked about today's run ({exc.message})."


def payout_preview(payload: PractitionerPayoutInput, workflow_id: str) -> Preview:
    """The same pre-checks as the payout workflow's first step (`payout_checks`), and
    what will happen in one sentence."""
    preview = Preview(lines=[], workflow_id=workflow_id)
    run_status, note = _today_run_status(workflow_id)
    if note:
        preview.warnings.append(note)
    check = payout_checks.check_payout(
        payload.practitioner_id,
        payload.amount_cents,
        config=current_app.config,
        day=datetime.now(UTC).date(),
        run_status=run_status,
        policy_input=payload,
    )
    preview.problems = [_sentence_case(p.message) + "." for p in check.problems]
    practitioner = check.practitioner
    if practitioner is None:
        preview.sentence = (
            f"Nothing can be paid: practitioner {payload.practitioner_id} does not exist."
        )
        return preview
    amount = _money(check.amount_cents)
    what = "the whole available balance" if check.whole_balance else "the amount entered"
    preview.lines.append(
        ("Payee", f"{practitioner.name} (#{practitioner.id}, {practitioner.status})")
    )
    preview.lines.append(("Available balance now", _money(check.available_cents)))
    preview.lines.append(("Will pay", f"{amount} ({what})"))
    policy = payout_policy.policy_from_config(current_app.config)
    threshold = payload.approval_threshold_cents or policy.approval_threshold_cents
    dual = payload.dual_approval_threshold_cents or policy.dual_approval_threshold_cents
    needs = approval_rules.requirement_text(check.amount_cents, threshold, dual)
    preview.lines.append(("Approval", needs))
    when = "once approved" if check.approvals_required else "now"
    if check.problems:
        many = len(check.problems) > 1
        preview.sentence = (
            f"Would pay {practitioner.name} {amount}, but cannot start until "
            f"{'the problems below are' if many else 'the problem below is'} fixed."
        )
    elif check.under_way is not None:
        payout = check.under_way
        preview.sentence = (
            f"A payout to {practitioner.name} is already under way today (payout "
            f"#{payout.id}, {_money(payout.amount_cents)}, {payout.status.replace('_', ' ')}): "
            "confirming shows that run and starts nothing new."
        )
        preview.under_way_url = run_url(workflow_id)
    elif check.running_today:
        preview.sentence = (
            f"A payout run for {practitioner.name} is already running today: confirming "
            "shows that run and starts nothing new."
        )
        preview.under_way_url = run_url(workflow_id)
    else:
        preview.sentence = f"Pays {practitioner.name} {amount} {when}; needs {needs}."
    if practitioner.status != "active" and not check.problems:
        preview.warnings.append(f"{practitioner.name} is {practitioner.status}, not active.")
    return preview


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _preview(wf: RegisteredWorkflow, payload: Any, reason: Reason) -> Preview:
    gw = gateway()
    workflow_id = gw.business_id(wf.name, payload)
    if isinstance(payload, PractitionerPayoutInput):
        return payout_preview(payload, workflow_id)
    preview = Preview(lines=[], workflow_id=workflow_id)
    if isinstance(payload, BatchPayoutInput):
        _batch_preview(wf, payload, preview, reason)
        return preview
    pid = getattr(payload, "practitioner_id", None)
    if isinstance(pid, int):
        from estuary.models import Practitioner

        practitioner = db.session.get(Practitioner, pid)
        if practitioner is not None:
            preview.lines.append(("Payee", f"{practitioner.name} (#{pid}, {practitioner.status})"))
    return preview


def _batch_preview(
    wf: RegisteredWorkflow, payload: BatchPayoutInput, preview: Preview, reason: Reason
) -> None:
    """A batch: its scope, and (unless the input is itself a dry run) the dry run of the
    same input in a table, with the one sentence drawn from it."""
    ids = payload.practitioner_ids
    scope = f"the {len(ids)} practitioners listed" if ids else "every practitioner"
    minimum = _money(payload.min_amount_cents)
    if payload.dry_run:
        preview.sentence = (
            f"Lists what a batch payout to {scope} with at least {minimum} available would "
            "pay now; moves no money."
        )
        return
    _dry_run(wf, payload, preview, reason)
    if preview.dry_run is None:
        preview.sentence = (
            f"Pays {scope} with at least {minimum} available; the dry run could not say "
            "who that is."
        )
        return
    _batch_lines(preview)
    total = int(preview.dry_run.get("would_pay_cents") or 0)
    count = int(preview.dry_run.get("would_pay_count") or 0)
    waiting = sum(1 for line in preview.would_pay if line.needs_approval)
    if not count:
        preview.sentence_before = "Pays "
        preview.sentence_middle = " practitioners, "
        preview.sentence_after = f" in total: nobody can be paid at least {minimum} now."
        preview.sentence = f"Pays nobody: nobody can be paid at least {minimum} now."
        preview.warnings.append("The batch would end without paying anyone.")
        return
    people = "practitioner" if count == 1 else "practitioners"
    after = " in total"
    if waiting:
        after += f" ({waiting} of them {'waits' if waiting == 1 else 'wait'} for an approver first)"
    skipped = int(preview.dry_run.get("skipped_count") or 0)
    if skipped:
        after += f"; skips {skipped} (reasons below)"
    # The page shows the count and the total in bold between these parts.
    preview.sentence_before, preview.sentence_middle = "Pays ", f" {people} "
    preview.sentence_after = after + "."
    preview.sentence = f"Pays {count} {people} {_money(total)}{after}."


def _batch_lines(preview: Preview) -> None:
    """The dry run's lines with names and whether each payout will wait for approval."""
    assert preview.dry_run is not None
    policy = payout_policy.policy_from_config(current_app.config)
    for raw in preview.dry_run.get("lines") or []:
        if not isinstance(raw, dict):
            continue
        pid = int(raw.get("practitioner_id") or 0)
        amount = int(raw.get("amount_cents") or 0)
        line = BatchLine(
            practitioner_id=pid,
            name=preview.names.get(pid, f"practitioner {pid}"),
            amount_cents=amount,
            outcome=str(raw.get("outcome") or ""),
            detail=str(raw.get("detail") or ""),
        )
        if line.outcome == "would_pay":
            line.needs_approval = bool(
                approval_rules.approvals_needed(
                    amount, policy.approval_threshold_cents, policy.dual_approval_threshold_cents
                )
            )
            preview.would_pay.append(line)
        else:
            preview.skipped.append(line)


def refusal(wf: RegisteredWorkflow, payload: Any) -> Preview | None:
    """On the confirmed POST: the payout's pre-checks again (the page may be old); the
    preview when something blocks the start, else None."""
    if not isinstance(payload, PractitionerPayoutInput):
        return None
    preview = payout_preview(payload, gateway().business_id(wf.name, payload))
    return preview if preview.blocked else None


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
            payout_date=payload.payout_date or datetime.now(UTC).strftime("%Y%m%d"),
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
