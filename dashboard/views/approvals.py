"""The approvals queue: payouts waiting for an approver, and the approve/reject decisions.

A decision is the payout workflow's `approve` / `reject` update, whose validator has the
last word (never the requester, never the same approver twice, the exact amount and payee).
The console checks the same rules first, plus the approver's limit, so a refusal is
explained before anything reaches Temporal. The form carries the amount and payee the
approver saw; if the payout differs now, the decision is refused. Decisions on one payout
are serialised (a row lock on PostgreSQL, which production requires; a process lock on
SQLite in development), so two approvers clicking at once, on any console process, produce
one decision and the second is told it was already decided.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dashboard import forms
from dashboard.permissions import can
from dashboard.writes import (
    PENDING_DELIVERY,
    form_params,
    gateway_outcome,
    guard,
    link,
    record,
    record_invalid,
    run_url,
    safe_next,
)
from estuary.contracts import approval_rules, catalogue
from estuary.contracts.inputs import InputError
from estuary.db import db
from estuary.models import Payout, PayoutApproval, Practitioner, StaffUser
from estuary.models.base import utcnow
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, NoWorkerAnswered, UpdateRejected

bp = Blueprint("approvals", __name__, url_prefix="/approvals")

QUEUE_LIMIT = 200
DECISIONS = ("approve", "reject")
# Approver limits by role when the user has none of their own (None: no limit).
# Override with the APPROVAL_LIMITS_CENTS setting, e.g. {"approver": 1_000_000}.
DEFAULT_ROLE_LIMITS: dict[str, int | None] = {"approver": None, "admin": None}
_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def approval_limit(user: StaffUser) -> int | None:
    """The most this user may approve, in cents (None: no limit)."""
    if user.approval_limit_cents is not None:
        return int(user.approval_limit_cents)
    limits = {**DEFAULT_ROLE_LIMITS, **current_app.config.get("APPROVAL_LIMITS_CENTS", {})}
    return limits.get(user.role)


_same_person = approval_rules.same_person


@dataclass
class PayoutDecision:
    """One payout as the signed-in user sees it in the queue."""

    payout: Payout
    practitioner: Practitioner | None
    approvals: list[PayoutApproval]
    why_not: str | None
    limit: int | None
    error: str = ""
    field_errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def age(self) -> str:
        return age_text(utcnow() - self.payout.created_at)

    @property
    def amount_text(self) -> str:
        return forms.cents_text(self.payout.amount_cents)

    @property
    def run_url(self) -> str | None:
        return run_url(self.payout.workflow_id)

    @property
    def payout_url(self) -> str | None:
        return link("payouts.detail", payout_id=self.payout.id)

    @property
    def practitioner_url(self) -> str | None:
        return link("practitioners.detail", practitioner_id=self.payout.practitioner_id)


def age_text(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} days"


def why_not(user: StaffUser, payout: Payout, approvals: list[PayoutApproval]) -> str | None:
    """Why this user may not decide on this payout now, or None."""
    if not can(user, "approve_payout"):
        return f"your role ({user.role}) does not decide payouts"
    if payout.status != "pending_approval":
        return f"already decided: the payout is {payout.status.replace('_', ' ')}"
    # The recorded decisions count before the status catches up (the workflow moves the
    # payout on after the deciding update returns), and a recorded rejection is final
    # even when its run ended before closing the payout.
    rejected = next((a for a in approvals if a.decision == "reject"), None)
    if rejected is not None:
        return f"already rejected by {rejected.approver} ({rejected.reason_code}): final"
    approved = sum(1 for a in approvals if a.decision == "approve")
    if payout.approvals_required and approved >= payout.approvals_required:
        return "already decided: the payout has the approvals it needs"
    if _same_person(user.email, payout.requested_by):
        return "you requested this payout: another approver must decide"
    if any(_same_person(a.approver, user.email) for a in approvals):
        return "you have already approved this payout; the next approval must be someone else's"
    limit = approval_limit(user)
    if limit is not None and payout.amount_cents > limit:
        money = current_app.jinja_env.filters["money"]
        return f"above your approval limit of {money(limit, payout.currency)}"
    return None


def _decision(payout: Payout) -> PayoutDecision:
    approvals = sorted(payout.approvals, key=lambda a: a.created_at)
    return PayoutDecision(
        payout=payout,
        practitioner=db.session.get(Practitioner, payout.practitioner_id),
        approvals=[a for a in approvals if a.decision == "approve"],
        why_not=why_not(current_user, payout, approvals),
        limit=approval_limit(current_user),
    )


@bp.app_template_global("payout_decision")
def payout_decision(payout: Payout) -> PayoutDecision | None:
    """The decision forms for one payout (the payout page's partial), while it waits."""
    if payout is None or payout.status != "pending_approval":
        return None
    return _decision(payout)


def waiting_for(user: StaffUser) -> int:
    """How many waiting payouts `user` may decide now (`why_not` is None): two small
    database reads (the waiting payouts and their decisions), no Temporal call."""
    payouts = db.session.scalars(
        select(Payout)
        .where(Payout.status == "pending_approval")
        .options(selectinload(Payout.approvals))
        .limit(QUEUE_LIMIT)
    ).all()
    return sum(1 for p in payouts if why_not(user, p, list(p.approvals)) is None)


@bp.app_template_global("approvals_waiting_for_me")
def approvals_waiting_for_me() -> int | None:
    """The navigation's count for the signed-in approver; None for staff who do not
    decide payouts (no count is shown)."""
    if not current_user.is_authenticated or not can(current_user, "approve_payout"):
        return None
    return waiting_for(current_user)


@bp.get("/count")
@guard("view")
def nav_count():
    """The navigation's count alone (its own poll)."""
    return render_template("approvals/_nav_count.html", oob=False)


def _queue(focus: PayoutDecision | None = None) -> list[PayoutDecision]:
    payouts = db.session.scalars(
        select(Payout)
        .where(Payout.status == "pending_approval")
        .options(selectinload(Payout.approvals))
        .order_by(Payout.created_at, Payout.id)
        .limit(QUEUE_LIMIT)
    ).all()
    rows = []
    for payout in payouts:
        if focus is not None and focus.payout.id == payout.id:
            rows.append(focus)
        else:
            rows.append(_decision(payout))
    return rows


@bp.get("/")
@guard("view")
def index():
    return _render_queue()


def _render_queue(focus: PayoutDecision | None = None, status: int = 200):
    rows = _queue(focus)
    if focus is not None and all(r.payout.id != focus.payout.id for r in rows):
        rows.insert(0, focus)
    return (
        render_template(
            "approvals/index.html",
            rows=rows,
            rule=_rule_text(),
            limit=approval_limit(current_user),
            can_decide=can(current_user, "approve_payout"),
        ),
        status,
    )


def _rule_text() -> str:
    money = current_app.jinja_env.filters["money"]
    currency = current_app.config.get("CURRENCY", "USD")
    return approval_rules.policy_text(
        int(current_app.config["PAYOUT_APPROVAL_THRESHOLD_CENTS"]),
        int(current_app.config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"]),
        lambda cents: money(cents, currency),
    )


# --- deciding ---------------------------------------------------------------------------------


@contextmanager
def decision_lock(payout_id: int) -> Iterator[None]:
    """Serialise decisions on one payout.

    PostgreSQL (production, any number of console processes): a row lock on the payout,
    held until the request's transaction ends (the audit record commits it). It is
    `FOR NO KEY UPDATE`, not `FOR UPDATE`: while the console holds it and waits for the
    `approve` update, the workflow's `record_payout_decision` activity inserts an approval
    row that references the payout (a key-share lock), which a plain `FOR UPDATE` would
    block until the update timed out. SQLite (development, one console process): a lock
    in this process.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            select(Payout.id).where(Payout.id == payout_id).with_for_update(key_share=True)
        )
        yield
        return
    with _process_locks_guard:
        lock = _process_locks.setdefault(payout_id, threading.Lock())
    with lock:
        yield


def _decision_type(name: str) -> type:
    """The argument dataclass of the payout workflow's `approve` / `reject` update."""
    for wf in catalogue.all_workflows():
        if wf.spec.money and name in dict(wf.spec.updates):
            arg = dict(wf.spec.updates)[name]
            if arg is not None:
                return arg
    abort(404)


def _load_fresh(payout_id: int) -> Payout | None:
    return db.session.scalar(
        select(Payout)
        .where(Payout.id == payout_id)
        .options(selectinload(Payout.approvals))
        .execution_options(populate_existing=True)
    )


def _decide(payout_id: int, name: str):
    """Approve or reject one payout: parse the form, then, under the payout's row lock,
    check who may decide and that the payout is still what the approver saw, send the
    update and record the outcome. Kept in one function on purpose: everything between
    `decision_lock` and the audit record must happen under the same lock, in this order."""
    arg_type = _decision_type(name)
    target = f"payout:{payout_id}"
    seen = forms.submitted_values(arg_type, request.form)
    params = {"decision": name, **seen}
    reason = str(request.form.get("reason_code", "") or "")
    note = str(request.form.get("note", "") or "")
    audit_reason = f"{reason}: {note}".strip(": ") if name == "reject" else note

    payout = db.session.get(Payout, payout_id)
    if payout is None:
        abort(404)
    try:
        arg = forms.parse_form(arg_type, request.form, actor=current_user.email)
        if name == "reject" and arg.reason_code == "other" and not arg.note.strip():
            raise InputError({"note": "say why (required with reason code 'other')"})
    except InputError as exc:
        record_invalid(
            target,
            exc.errors,
            params=form_params(request.form, forms.visible_names(arg_type)),
            reason=audit_reason,
        )
        focus = _decision(payout)
        focus.field_errors = exc.errors
        focus.values = {**seen, "_decision": name}
        focus.error = "Nothing was decided: fix the fields below."
        return _render_queue(focus, 422)

    params = {"decision": name, **dataclasses.asdict(arg)}
    with decision_lock(payout_id):
        payout = _load_fresh(payout_id)
        if payout is None:
            abort(404)
        approvals = list(payout.approvals)
        refusal = why_not(current_user, payout, approvals)
        if refusal is None and (
            arg.amount_cents != payout.amount_cents or arg.practitioner_id != payout.practitioner_id
        ):
            money = current_app.jinja_env.filters["money"]
            refusal = (
                "the payout changed since you saw it: it is now "
                f"{money(payout.amount_cents, payout.currency)} to practitioner "
                f"#{payout.practitioner_id}; you saw {forms.cents_text(arg.amount_cents)} to "
                f"#{arg.practitioner_id}. Look again and decide on what it is now."
            )
        if refusal is not None:
            record("denied", target=target, params=params, reason=audit_reason, detail=refusal)
            focus = _decision(payout)
            focus.error = f"Refused: {refusal}."
            return _render_queue(focus, 409)
        update_id = f"{name}-{payout_id}-{uuid.uuid4().hex}"
        params["update_id"] = update_id
        try:
            result = gateway().update(payout.workflow_id, name, arg, update_id=update_id)
        except GatewayError as exc:
            pending = isinstance(exc, NoWorkerAnswered)
            record(
                gateway_outcome(exc),
                target=target,
                params=params,
                reason=audit_reason,
                detail=f"pending delivery (update {update_id}): {exc.message}"
                if pending
                else exc.message,
            )
            focus = _decision(_load_fresh(payout_id) or payout)
            if pending:
                focus.error = PENDING_DELIVERY
                return _render_queue(focus, 202)
            prefix = "Not sent"
            if isinstance(exc, UpdateRejected):
                prefix = "Refused by the payout workflow"
            focus.error = f"{prefix}: {exc.message}"
            return _render_queue(focus, 409 if isinstance(exc, UpdateRejected) else 503)
        detail = f"{name}: {result}" if result is not None else name
        record("success", target=target, params=params, reason=audit_reason, detail=detail[:1000])
    flash(decided_message(name, payout, arg.amount_cents, result), "success")
    return redirect(safe_next(url_for("approvals.index")), code=303)


def decided_message(name: str, payout: Payout, amount_cents: int, result: object) -> str:
    """What the approver is told after a decision: an approval that is not the last one
    says the payout now waits for another approver, never as if it were done."""
    money = current_app.jinja_env.filters["money"]
    practitioner = db.session.get(Practitioner, payout.practitioner_id)
    payee = practitioner.name if practitioner else f"practitioner #{payout.practitioner_id}"
    what = f"payout #{payout.id}, {money(amount_cents, payout.currency)} to {payee}"
    if name == "reject":
        return f"Rejected {what}: it will not be paid and the held amount is returned."
    answer = result if isinstance(result, dict) else {}
    given = answer.get("approvals")
    needed = answer.get("approvals_required") or payout.approvals_required or 1
    if answer.get("status") == "pending_approval" and isinstance(given, int) and given < needed:
        left = needed - given
        which = "a second approver" if given == 1 and needed == 2 else f"{left} more approver(s)"
        return f"Approved — waiting for {which}: {what} ({given} of {needed} approvals)."
    return f"Approved {what}: it has the approvals it needs and is being paid."


@bp.post("/<int:payout_id>/approve")
@guard("approve_payout")
def approve(payout_id: int):
    return _decide(payout_id, "approve")


@bp.post("/<int:payout_id>/reject")
@guard("approve_payout")
def reject(payout_id: int):
    return _decide(payout_id, "reject")
