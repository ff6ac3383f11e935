"""Retry of a failed, timed-out, cancelled or terminated run: with the same input under
the same business id ("rerun"), or from its last failure point ("reset"). A money run is
confirmed first, on a page that says whether money could move again (`money_check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from dashboard.run_actions.control import workflow_for_run
from dashboard.writes import (
    Reason,
    checked_run_id,
    checked_workflow_id,
    form_params,
    link,
    parse_reason,
    record,
    record_gateway_error,
    record_invalid,
    run_url,
    safe_next,
    start_as_staff,
)
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.money import format_money
from estuary.db import db
from estuary.models import Payout, Transfer
from temporal_gateway.access import gateway
from temporal_gateway.gateway import (
    CLOSED_FAILED_STATUSES,
    AlreadyStarted,
    GatewayError,
    RunInfo,
)
from temporal_gateway.run_history import HistorySummary, summarise_history

RETRY_MODES = ("rerun", "reset")


@dataclass
class MoneyCheck:
    """Could running this again move money again? Said on the retry confirmation."""

    could_move: bool
    message: str
    evidence: list[str] = field(default_factory=list)


def money_check(workflow_id: str, history: HistorySummary) -> MoneyCheck:
    """What the payouts, transfers and the run's history say about money moving again."""
    payouts = list(db.session.scalars(select(Payout).where(Payout.workflow_id == workflow_id)))
    transfers = []
    if payouts:
        transfers = list(
            db.session.scalars(
                select(Transfer).where(Transfer.payout_id.in_([p.id for p in payouts]))
            )
        )
    evidence = [
        f"transfer {t.provider_reference}: {format_money(t.amount_cents, t.currency)} "
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
        amount = (
            f" ({format_money(p.amount_cents, p.currency)} to practitioner #{p.practitioner_id})"
        )
    return MoneyCheck(
        True,
        f"No transfer has completed for this run: running it again can move money{amount}.",
        evidence,
    )


def rerun(
    wf: RegisteredWorkflow,
    run: RunInfo,
    history: HistorySummary,
    reason: str,
    memo: dict[str, Any],
) -> tuple[str, bool]:
    """Start `wf` again with the run's input under the same workflow id: the new run id,
    and whether a run was already running there (nothing new started)."""
    if history.input is None:
        raise GatewayError(
            history.input_error or "the run's input could not be read from its history"
        )
    started = start_as_staff(wf.name, history.input, reason, workflow_id=run.workflow_id, memo=memo)
    return started.run_id, started.existing


@dataclass
class _RetryRequest:
    workflow_id: str
    target: str
    back: str
    mode: str

    def fail(self, message: str) -> ResponseReturnValue:
        flash(message, "error")
        return redirect(self.back, code=303)


def retry(workflow_id: str) -> ResponseReturnValue:
    """Check the run can be retried, confirm a money run first, then retry it."""
    workflow_id = checked_workflow_id(workflow_id)
    run_id = checked_run_id(request.form.get("run_id"))
    req = _RetryRequest(
        workflow_id,
        target=f"workflow:{workflow_id}",
        back=safe_next(run_url(workflow_id, run_id) or link("home.index") or "/"),
        mode=str(request.form.get("mode", "")),
    )
    if req.mode not in RETRY_MODES:
        record(
            "invalid",
            target=req.target,
            params=form_params(request.form),
            detail="mode must be rerun or reset",
        )
        return req.fail("Choose how to retry: run again with the same input, or reset.")
    try:
        info = gateway().describe(workflow_id, run_id)
    except GatewayError as exc:
        record_gateway_error(exc, target=req.target, params={"mode": req.mode})
        return req.fail(exc.message)
    wf = workflow_for_run(info)
    if wf is None:
        abort(404)
    if info.status not in CLOSED_FAILED_STATUSES:
        message = (
            f"only a failed, timed-out, cancelled or terminated run can be retried ({info.status})"
        )
        record("invalid", target=req.target, params={"mode": req.mode}, detail=message)
        return req.fail(message[:1].upper() + message[1:] + ".")
    reason, errors = parse_reason(request.form, money=wf.spec.money, required=False, action="retry")
    # Money runs are confirmed first: the page says whether money could move again and
    # asks for the reason code; the reason is checked when the confirmation comes back.
    needs_confirmation = wf.spec.money and request.form.get("confirmed") != "yes"
    if needs_confirmation:
        errors = {}
    elif errors:
        record_invalid(req.target, errors, params=form_params(request.form), reason=str(reason))
    try:
        history = summarise_history(workflow_id, info.run_id, wf.spec.input_type)
    except GatewayError as exc:
        record_gateway_error(exc, target=req.target, params={"mode": req.mode})
        return req.fail(exc.message)
    check = money_check(workflow_id, history) if wf.spec.money else None
    if needs_confirmation or errors:
        return _confirmation(req, wf, info, history, check, reason, errors)
    return _retry_now(req, wf, info, history, reason, check)


def _confirmation(
    req: _RetryRequest,
    wf: RegisteredWorkflow,
    info: RunInfo,
    history: HistorySummary,
    check: MoneyCheck | None,
    reason: Reason,
    errors: dict[str, str],
) -> ResponseReturnValue:
    """The retry confirmation: what the run did, whether money could move, the reason."""
    return (
        render_template(
            "actions/retry_confirm.html",
            wf=wf,
            info=info,
            mode=req.mode,
            history=history,
            check=check,
            errors=errors,
            reason=reason,
            reason_codes=reason_codes_for("retry"),
            back=req.back,
        ),
        422 if errors else 200,
    )


def _retry_now(
    req: _RetryRequest,
    wf: RegisteredWorkflow,
    info: RunInfo,
    history: HistorySummary,
    reason: Reason,
    check: MoneyCheck | None,
) -> ResponseReturnValue:
    params: dict[str, Any] = {"mode": req.mode, "run_id": info.run_id, "status": info.status}
    if check is not None:
        params["money_could_move"] = check.could_move
    try:
        if req.mode == "rerun":
            new_run, existing = rerun(
                wf,
                info,
                history,
                str(reason) or f"retry of run {info.run_id}",
                {"retry_of": info.run_id},
            )
            detail = (
                f"already running as {new_run}; nothing new started"
                if existing
                else f"ran again with the same input as run {new_run}"
            )
        else:
            event_id = history.failure_point
            if event_id is None:
                raise GatewayError("the run has no workflow task to reset to")
            new_run = gateway().reset(
                req.workflow_id,
                info.run_id,
                event_id,
                f"retry from the last failure point: {reason or '-'} (by {current_user.email})",
            )
            params["event_id"] = event_id
            detail = f"reset to event {event_id}; new run {new_run}"
    except AlreadyStarted as exc:
        record("error", target=req.target, params=params, reason=str(reason), detail=exc.message)
        return req.fail(exc.message)
    except GatewayError as exc:
        record_gateway_error(exc, target=req.target, params=params, reason=str(reason))
        return req.fail(exc.message)
    record("success", target=req.target, params=params, reason=str(reason), detail=detail)
    flash(f"Retried {req.workflow_id}: {detail}.", "success")
    return redirect(run_url(req.workflow_id, new_run) or req.back, code=303)
