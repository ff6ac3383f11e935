"""Practitioner payouts: the payout record, the hold, approvals, the transfer, the outcome.

The payout's idempotency key is `payout:{workflow id}:{n}`: the workflow id is the
business key (`payments-payout-{practitioner}-{yyyymmdd}`), `n` counts payouts made under
that id (a failed payout may be retried under the same id and gets the next n). A run
that is reset, or retried after being terminated, finds the unfinished payout of its id
and carries on with the same key, so the provider sees the same key and pays once.

Ledger legs (amount A, practitioner p, key K):
    hold     `payout-hold:{K}`     practitioner:p:available -A, practitioner:p:held +A
    settle   `payout-settle:{K}`   practitioner:p:held -A, external:payouts +A
    release  `payout-release:{K}`  practitioner:p:held -A, practitioner:p:available +A
             (rejected, expired or failed payouts give the hold back)

Statuses: pending_approval -> approved -> processing -> paid; pending_approval ->
rejected / expired / cancelled; approved/processing -> failed (provider known not to have
paid); processing -> reconciling (outcome unknown: hold kept) -> paid or failed;
pending_approval/approved -> released (the sweep, after the run is gone).

The payout row is the request for its whole life: who asked, for how much, for whom, and
every decision (PayoutApproval rows: approvals and the rejection). A run that finds an
unfinished payout under its workflow id resumes it only for the same requester and amount;
a recorded rejection closes it for good, and the run's request becomes a new payout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Row, Select, bindparam, func, insert, select, update

from estuary.contracts import approval_rules
from estuary.contracts.money import format_money
from estuary.contracts.payments import (
    PAYMENT_METHODS,
    CheckPayoutTransferResult,
    PayoutRecord,
    TransferPayoutResult,
)
from estuary.db import add_once, db, lock_and_read_row, lock_row
from estuary.models import Payout, PayoutApproval, Practitioner
from estuary.models.base import utcnow
from estuary.services import ledger, ops_flags, payment_provider, payout_checks, payout_policy
from estuary.services.errors import BusinessRuleError, ExpectedFailure, NotFoundError
from estuary.services.practitioners import Addressee, email_practitioner, get_practitioner

# Open: the money is held and the request is alive (processing / reconciling: money may
# have left already, so it is never released without asking the provider).
OPEN = ("pending_approval", "approved", "processing", "reconciling")
# A run under the same workflow id finds these and never starts a new payout beside them.
UNFINISHED = (*OPEN, "paid")
CLOSED_WITHOUT_PAYMENT = ("failed", "rejected", "expired", "cancelled", "released")


# One home for the rule (estuary/contracts/approval_rules.py); kept under this name for
# the service's callers.
approvals_needed = approval_rules.approvals_needed


def _lock_practitioner(practitioner_id: int) -> None:
    # Serialise holds on one practitioner's balance: a no-op UPDATE takes the row lock on
    # PostgreSQL and the database write lock on SQLite before the balance is read.
    lock_row(Practitioner, practitioner_id)


# What creating a payout reads of its practitioner (`payout_checks.Payee`).
_PAYEE_COLUMNS = ("id", "name", "payout_destination")


def _lock_and_read_payee(practitioner_id: int) -> payout_checks.Payee:
    """`_lock_practitioner` and the practitioner's payee columns in one statement: the
    same no-op UPDATE, returning them (UPDATE ... RETURNING, PostgreSQL and SQLite
    alike)."""
    payee = lock_and_read_row(Practitioner, practitioner_id, _PAYEE_COLUMNS)
    if payee is None:
        return get_practitioner(practitioner_id)  # raises NotFoundError, as it always did
    return payee


def get_payout(payout_id: int) -> Payout:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFoundError(f"payout {payout_id} does not exist")
    return payout


# Statements of every payout, built once: a statement is immutable, and building one per
# call cost more CPU than running it.
_PAYOUTS = Payout.__table__
_PRACTITIONERS = Practitioner.__table__
_PAYOUTS_UNDER_ID = (
    select(Payout).where(Payout.workflow_id == bindparam("workflow_id")).order_by(Payout.id)
)


# A new payout, returning what `_view` reads of it (Core: no ORM object, no flush).
_INSERT_PAYOUT = insert(_PAYOUTS).returning(
    _PAYOUTS.c.id,
    _PAYOUTS.c.idempotency_key,
    _PAYOUTS.c.practitioner_id,
    _PAYOUTS.c.amount_cents,
    _PAYOUTS.c.currency,
    _PAYOUTS.c.status,
    _PAYOUTS.c.approvals_required,
    _PAYOUTS.c.requested_by,
)


def _payout_row(statement: Select, payout_id: int) -> Row[Any]:
    """The one row `statement` (a payout joined to its practitioner, the payout id its
    parameter `payout_id`) reads, or NotFoundError naming what is missing, as
    `get_payout` and `get_practitioner` raise it."""
    row = db.session.execute(statement, {"payout_id": payout_id}).first()
    if row is None:
        get_practitioner(get_payout(payout_id).practitioner_id)
        raise NotFoundError(f"payout {payout_id} has no practitioner")  # pragma: no cover
    return row


def _decisions(payout_id: int) -> list[PayoutApproval]:
    return list(
        db.session.scalars(
            select(PayoutApproval)
            .where(PayoutApproval.payout_id == payout_id)
            .order_by(PayoutApproval.id)
        )
    )


def _rejection(decisions: list[PayoutApproval]) -> dict | None:
    for d in decisions:
        if d.decision == "reject":
            return {
                "actor": d.approver,
                "reason_code": d.reason_code,
                "note": d.note,
                "at": d.created_at.isoformat() if d.created_at else None,
            }
    return None


def _view(
    payout: Payout | Row[Any],
    *,
    reused: bool,
    closed_rejected: list[int] | None = None,
    decisions: list[PayoutApproval] | None = None,
) -> PayoutRecord:
    """The payout as the workflow sees it (a `Payout`, or a row of its table with the
    columns `_INSERT_PAYOUT` returns); `decisions` are read unless given (a payout this
    transaction just created has none)."""
    if decisions is None:
        decisions = _decisions(payout.id)
    return PayoutRecord(
        payout_id=payout.id,
        idempotency_key=payout.idempotency_key,
        practitioner_id=payout.practitioner_id,
        amount_cents=payout.amount_cents,
        currency=payout.currency,
        status=payout.status,
        approvals_required=payout.approvals_required,
        approved_by=[d.approver for d in decisions if d.decision == "approve"],
        reused=reused,
        requested_by=payout.requested_by,
        rejection=_rejection(decisions),
        closed_rejected=list(closed_rejected or []),
        transfer_marks_processing=True,
    )


def create_payout(
    *,
    workflow_id: str,
    practitioner_id: int,
    amount_cents: int | None,
    requested_by: str,
    reason: str,
    payment_method: str,
    approval_threshold_cents: int,
    dual_approval_threshold_cents: int,
    config: Mapping[str, Any],
    approval_timeout_seconds: int | None = None,
    run_id: str | None = None,
) -> PayoutRecord:
    """Create the payout and hold its amount, or resume this workflow id's unfinished one.

    An unfinished payout under the id is resumed only when this run asks for the same
    thing: same practitioner, same requester, and the same amount (or no amount). Any
    other request is refused with a message naming the open payout. An open payout with a
    recorded rejection is closed as rejected first (its hold returned); this run's request
    is then a new payout with its own key, requester and decisions.

    Long for its keyword arguments; its steps are named helpers.
    """
    if payment_method not in PAYMENT_METHODS:
        raise BusinessRuleError(f"unknown payment method {payment_method!r}")
    problem = approval_rules.requester_problem(requested_by)
    if problem:
        raise BusinessRuleError(problem, field="requested_by")
    payout_policy.check_not_looser(
        config, approval_threshold_cents, dual_approval_threshold_cents, approval_timeout_seconds
    )
    payee = _lock_and_read_payee(practitioner_id)
    closed_rejected: list[int] = []
    # Every payout made under this id (a handful at most): the unfinished one, if any,
    # and the count that numbers the next key, from one read.
    under_id = list(db.session.scalars(_PAYOUTS_UNDER_ID, {"workflow_id": workflow_id}))
    resumed = _resume_unfinished(
        workflow_id, practitioner_id, requested_by, amount_cents, run_id, closed_rejected, under_id
    )
    if resumed is not None:
        return resumed
    currency = str(config.get("CURRENCY", "USD"))
    amount = _amount_to_pay(payee, amount_cents, currency)
    key = f"payout:{workflow_id}:{len(under_id) + 1}"
    required = approvals_needed(amount, approval_threshold_cents, dual_approval_threshold_cents)
    payout = db.session.execute(
        _INSERT_PAYOUT,
        {
            "practitioner_id": practitioner_id,
            "amount_cents": amount,
            "currency": currency,
            "status": "pending_approval" if required else "approved",
            "idempotency_key": key,
            "workflow_id": workflow_id,
            "payment_method": payment_method,
            "requested_by": requested_by.strip()[:254],
            "reason": reason[:500],
            "approvals_required": required,
            "run_id": (run_id or None) and run_id[:64],
        },
    ).one()
    ledger.post(
        f"payout-hold:{key}",
        "payout_hold",
        [
            ledger.Leg(ledger.available_account(practitioner_id), -amount),
            ledger.Leg(ledger.held_account(practitioner_id), amount),
        ],
        description=f"Hold for payout {payout.id}",
        currency=currency,
    )
    return _view(payout, reused=False, closed_rejected=closed_rejected, decisions=[])


def _resume_unfinished(
    workflow_id: str,
    practitioner_id: int,
    requested_by: str,
    amount_cents: int | None,
    run_id: str | None,
    closed_rejected: list[int],
    under_id: list[Payout],
) -> PayoutRecord | None:
    """The unfinished payout under `workflow_id` (the latest of `under_id`, its payouts
    in id order) when this run may carry it on, or None when there is none or it was
    closed now because a rejection is recorded on it (its id is appended to
    `closed_rejected`). Another request under the same id is refused."""
    unfinished = next((p for p in reversed(under_id) if p.status in UNFINISHED), None)
    if unfinished is None:
        return None
    if unfinished.practitioner_id != practitioner_id:
        raise BusinessRuleError(f"{workflow_id} belongs to another practitioner's payout")
    rejection = _rejection(_decisions(unfinished.id))
    if rejection is not None and unfinished.status in ("pending_approval", "approved"):
        # The rejection is final: close that request now; ours is a new one.
        _release(unfinished, "rejected", _rejection_reason(rejection))
        closed_rejected.append(unfinished.id)
        return None
    refusal = _resume_refusal(unfinished, requested_by, amount_cents)
    if refusal:
        raise BusinessRuleError(refusal, field="requested_by")
    if run_id:
        unfinished.run_id = run_id[:64]
    return _view(unfinished, reused=True)


def _amount_to_pay(
    practitioner: payout_checks.Payee, amount_cents: int | None, currency: str
) -> int:
    """The amount asked for (None: the whole available balance), if it can be paid now:
    the same pre-check the console's confirmation page shows (`payout_checks`)."""
    amount, _available, problem = payout_checks.payable_amount(practitioner, amount_cents, currency)
    if problem is not None:
        raise BusinessRuleError(problem.message, field=problem.field)
    return amount


def _resume_refusal(payout: Payout, requested_by: str, amount_cents: int | None) -> str | None:
    """Why this run may not resume `payout` (another request under the same id), or None."""
    same_requester = approval_rules.same_person(payout.requested_by, requested_by)
    same_amount = amount_cents is None or amount_cents == payout.amount_cents
    if same_requester and same_amount:
        return None
    asked = "the whole available balance" if amount_cents is None else f"{amount_cents} cents"
    return (
        f"payout {payout.id} under {payout.workflow_id} is still {payout.status}: requested "
        f"by {payout.requested_by} for {payout.amount_cents} cents. This run ({requested_by}, "
        f"{asked}) is a different request and cannot take it over; wait for that payout to "
        "be closed (the payout sweep returns the hold of a payout whose run is gone) or "
        "decide it first"
    )


def _rejection_reason(rejection: dict) -> str:
    reason = f"rejected by {rejection['actor']}: {rejection['reason_code']}"
    if rejection.get("note"):
        reason += f" ({rejection['note']})"
    return reason


def decision_recorded(payout_id: int, approver: str) -> bool:
    return (
        db.session.scalar(
            select(PayoutApproval.id).where(
                PayoutApproval.payout_id == payout_id, PayoutApproval.approver == approver
            )
        )
        is not None
    )


def record_decision(
    *,
    payout_id: int,
    approver: str,
    decision: str,
    amount_cents: int,
    payee_id: int,
    reason_code: str | None,
    note: str | None,
) -> PayoutApproval:
    """Record an approver's decision once per (payout, approver), before the workflow
    acts on it. The workflow's validator has checked it against the payout it loaded; the
    rules that keep money safe are checked again here against the row itself: never the
    requester, never on a closed payout or after a rejection, the exact amount and payee."""
    if decision not in ("approve", "reject"):
        raise BusinessRuleError(f"unknown decision {decision!r}")
    if decision == "reject" and reason_code not in approval_rules.REASON_CODES:
        raise BusinessRuleError(f"unknown reason code {reason_code!r}")
    payout = get_payout(payout_id)
    existing = db.session.scalar(
        select(PayoutApproval).where(
            PayoutApproval.payout_id == payout_id, PayoutApproval.approver == approver
        )
    )
    if existing is not None:
        return existing
    if approval_rules.same_person(approver, payout.requested_by):
        raise BusinessRuleError(
            f"{approver} requested payout {payout_id} and cannot approve or reject it"
        )
    if payout.status != "pending_approval":
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; no more decisions")
    decisions = _decisions(payout_id)
    if _rejection(decisions) is not None:
        raise BusinessRuleError(f"payout {payout_id} was rejected; no more decisions")
    if any(approval_rules.same_person(d.approver, approver) for d in decisions):
        raise BusinessRuleError(f"{approver} has already decided payout {payout_id}")
    if amount_cents != payout.amount_cents or payee_id != payout.practitioner_id:
        raise BusinessRuleError(
            f"the decision is for {amount_cents} cents to practitioner {payee_id}; payout "
            f"{payout_id} is {payout.amount_cents} cents to practitioner {payout.practitioner_id}"
        )
    row = PayoutApproval(
        payout_id=payout.id,
        approver=approver[:254],
        decision=decision,
        amount_cents=amount_cents,
        payee_id=payee_id,
        reason_code=reason_code,
        note=(note or None) and note[:1000],
    )
    return add_once(
        row,
        lambda: db.session.scalar(
            select(PayoutApproval).where(
                PayoutApproval.payout_id == payout_id, PayoutApproval.approver == approver
            )
        ),
    )[0]


_FORWARD = {
    "approved": ("pending_approval", "approved"),
    "processing": ("approved", "processing"),
}


def set_status(payout_id: int, status: str) -> Payout:
    """Move a payout forward to approved or processing (repeats are no-ops)."""
    if status not in _FORWARD:
        raise BusinessRuleError(f"cannot set a payout to {status!r} directly")
    payout = get_payout(payout_id)
    if payout.status == status or payout.status in ("processing", "reconciling", "paid"):
        return payout
    if payout.status not in _FORWARD[status]:
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; cannot be {status}")
    if status == "approved":
        approvals = [d for d in _decisions(payout_id) if d.decision == "approve"]
        if _rejection(_decisions(payout_id)) is not None:
            raise BusinessRuleError(f"payout {payout_id} was rejected; it cannot be approved")
        if len(approvals) < payout.approvals_required:
            raise BusinessRuleError(
                f"payout {payout_id} has {len(approvals)} of {payout.approvals_required} "
                "recorded approvals; it cannot be approved yet"
            )
    payout.status = status
    if status == "approved" and payout.decided_at is None:
        payout.decided_at = utcnow()
    if status == "processing" and payout.transfer_started_at is None:
        payout.transfer_started_at = utcnow()
    return payout


# The transfer's statements, on the tables (Core): sending a payout needs its keys, its
# status and the destination, and writes two status changes; loading ORM objects and
# flushing them cost more than the statements (every payout of a batch runs them).
_TRANSFER_COLUMNS = (
    _PAYOUTS.c.id,
    _PAYOUTS.c.practitioner_id,
    _PAYOUTS.c.amount_cents,
    _PAYOUTS.c.currency,
    _PAYOUTS.c.idempotency_key,
    _PAYOUTS.c.status,
)
_FOR_TRANSFER = (
    select(*_TRANSFER_COLUMNS, _PRACTITIONERS.c.payout_destination)
    .join_from(_PAYOUTS, _PRACTITIONERS)
    .where(_PAYOUTS.c.id == bindparam("payout_id"))
)
# An approved payout marked `processing`, returning what sending it needs (its
# practitioner's destination by a scalar subquery, which RETURNING allows on PostgreSQL
# and SQLite alike): the read and the mark in one statement. Conditional: a payout that
# is not approved is not marked and returns no row.
_MARK_PROCESSING = (
    update(_PAYOUTS)
    .where(_PAYOUTS.c.id == bindparam("payout_id"), _PAYOUTS.c.status == "approved")
    .values(
        status="processing",
        transfer_started_at=func.coalesce(_PAYOUTS.c.transfer_started_at, bindparam("now")),
    )
    .returning(
        *_TRANSFER_COLUMNS,
        select(_PRACTITIONERS.c.payout_destination)
        .where(_PRACTITIONERS.c.id == _PAYOUTS.c.practitioner_id)
        .scalar_subquery()
        .label("payout_destination"),
    )
)
_MARK_PAID = (
    update(_PAYOUTS)
    .where(_PAYOUTS.c.id == bindparam("payout_id"))
    .values(
        status="paid",
        failure_reason=None,
        paid_at=func.coalesce(_PAYOUTS.c.paid_at, bindparam("now")),
    )
)
_MARK_RECONCILING = (
    update(_PAYOUTS).where(_PAYOUTS.c.id == bindparam("payout_id")).values(status="reconciling")
)


class PayoutChanged(ExpectedFailure):
    """The payout became `approved` between the transfer's mark (which found it not
    approved) and its read (a concurrent writer on PostgreSQL): retrying marks it again
    and acts on what it is now."""


def transfer(payout_id: int) -> TransferPayoutResult:
    """Send the payout through the provider with its idempotency key, then settle it.

    An approved payout is marked `processing` first, in a commit of its own before the
    provider is called (a repeat finds it processing and sends under the same key).
    The provider commits on its side first (a separate connection); the settlement
    entries and the `paid` status are written in the caller's transaction. Any retry,
    reset or restart after the provider committed finds the same transfer by key and only
    completes the settlement, which is itself keyed. A transfer the provider accepted but
    has not paid out yet leaves the payout `reconciling` with its hold in place.
    """
    # Money may leave from here on: a payout found `processing` is never released without
    # asking the provider (the sweep, a rerun).
    payout = db.session.execute(_MARK_PROCESSING, {"payout_id": payout_id, "now": utcnow()}).first()
    if payout is None:
        # Not approved (a repeat, or a payout that cannot be sent): read what it is.
        payout = _payout_row(_FOR_TRANSFER, payout_id)
        if payout.status == "approved":
            raise PayoutChanged(f"payout {payout_id} changed while it was being sent")
        if payout.status not in ("processing", "reconciling", "paid"):
            raise BusinessRuleError(f"payout {payout_id} is {payout.status}; it cannot be sent")
    if payout.status == "paid":
        receipt = payment_provider.find_transfer(payout.idempotency_key)
        if receipt is None:
            raise BusinessRuleError(f"payout {payout_id} is paid but has no transfer")
        status = "paid"
    else:
        # Our transaction ends before the provider call (with the `processing` mark, if
        # it was set), so the provider's own commit never waits on it (SQLite allows one
        # writer at a time).
        db.session.commit()
        receipt = payment_provider.transfer(
            idempotency_key=payout.idempotency_key,
            destination=payout.payout_destination,
            amount_cents=payout.amount_cents,
            currency=payout.currency,
            payout_id=payout.id,
            payee_id=payout.practitioner_id,
        )
        # The keys read above do not change (only the status does): no second read.
        if receipt.status == "paid":
            _settle(payout)
            status = "paid"
        else:
            db.session.execute(_MARK_RECONCILING, {"payout_id": payout_id})
            status = "reconciling"
    return TransferPayoutResult(
        payout.id, receipt.transfer_id, receipt.provider_reference, receipt.amount_cents, status
    )


class _PayoutKeys(Protocol):
    """What settling a payout reads: a `Payout`, or a row of its table with these."""

    id: int
    practitioner_id: int
    amount_cents: int
    currency: str
    idempotency_key: str


def _settle(payout: _PayoutKeys) -> None:
    """Post the settlement (keyed: once per payout) and mark the payout paid."""
    ledger.post(
        f"payout-settle:{payout.idempotency_key}",
        "payout",
        [
            ledger.Leg(ledger.held_account(payout.practitioner_id), -payout.amount_cents),
            ledger.Leg(ledger.EXTERNAL_PAYOUTS, payout.amount_cents),
        ],
        description=f"Payout {payout.id} sent",
        currency=payout.currency,
    )
    loaded = isinstance(payout, Payout)
    if loaded:
        # A loaded payout: its own pending changes go first, and it is read again after.
        db.session.flush()
    db.session.execute(_MARK_PAID, {"payout_id": payout.id, "now": utcnow()})
    if loaded:
        db.session.expire(payout, ["status", "failure_reason", "paid_at"])


def _release(payout: Payout, outcome: str, reason: str) -> None:
    """Give the hold back and close the payout unpaid (keyed: once per payout)."""
    ledger.post(
        f"payout-release:{payout.idempotency_key}",
        "payout_release",
        [
            ledger.Leg(ledger.held_account(payout.practitioner_id), -payout.amount_cents),
            ledger.Leg(ledger.available_account(payout.practitioner_id), payout.amount_cents),
        ],
        description=f"Payout {payout.id} {outcome}: hold returned",
        currency=payout.currency,
    )
    payout.status = outcome
    payout.failure_reason = (reason or outcome)[:500]
    if payout.decided_at is None:
        payout.decided_at = utcnow()


@dataclass(frozen=True)
class Closed:
    payout_id: int
    status: str
    released_cents: int
    provider_reference: str | None = None


def close_unpaid(payout_id: int, outcome: str, reason: str = "") -> Closed:
    """End a payout without paying it (failed / rejected / expired / cancelled / released):
    give the hold back.

    The provider is asked first whenever a transfer may have been sent: if it paid, the
    payout is settled as paid instead; if it is still processing the payout, the payout
    stays `reconciling` with its hold (never released), so the money cannot leave twice.
    """
    if outcome not in CLOSED_WITHOUT_PAYMENT:
        raise BusinessRuleError(f"{outcome!r} is not a closing outcome")
    _lock_practitioner(get_payout(payout_id).practitioner_id)
    payout = get_payout(payout_id)
    if payout.status == outcome:
        return Closed(payout.id, outcome, payout.amount_cents)
    if payout.status == "paid":
        receipt = payment_provider.find_transfer(payout.idempotency_key)
        return Closed(payout.id, "paid", 0, receipt.provider_reference if receipt else None)
    if payout.status in CLOSED_WITHOUT_PAYMENT:
        if outcome in ("cancelled", "released"):
            # Closed by its own decision a moment earlier: nothing more to give back.
            return Closed(payout.id, payout.status, 0)
        raise BusinessRuleError(f"payout {payout_id} is already {payout.status}")
    receipt = payment_provider.find_transfer(payout.idempotency_key)
    if receipt is not None:
        if receipt.status == "paid":
            _settle(payout)
            return Closed(payout.id, "paid", 0, receipt.provider_reference)
        payout.status = "reconciling"
        return Closed(payout.id, "reconciling", 0, receipt.provider_reference)
    if outcome != "failed" and payout.status not in ("pending_approval", "approved"):
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; cannot be {outcome}")
    _release(payout, outcome, reason)
    return Closed(payout.id, outcome, payout.amount_cents)


def mark_reconciling(payout_id: int, reason: str) -> Payout:
    """The transfer's outcome is unknown: keep the hold, wait for the provider's word."""
    payout = get_payout(payout_id)
    if payout.status in ("processing", "approved"):
        payout.status = "reconciling"
        payout.failure_reason = f"outcome unknown: {reason}"[:500]
    elif payout.status not in ("reconciling", "paid"):
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; nothing to reconcile")
    return payout


def check_transfer(payout_id: int, *, give_up: bool) -> CheckPayoutTransferResult:
    """Ask the provider, by the payout's idempotency key, what became of its transfer.

    paid: settled now (or before), exactly once. processing: the provider has it, not paid
    out yet. missing: the provider has nothing yet (a late request may still land).
    With `give_up` (the settle window has passed): nothing at the provider -> not_paid,
    the payout fails and its hold is returned; still processing -> in_doubt, the payout
    stays reconciling with its hold and an ops flag carries the evidence.
    """
    _lock_practitioner(get_payout(payout_id).practitioner_id)
    payout = get_payout(payout_id)
    receipt = payment_provider.find_transfer(payout.idempotency_key)
    if payout.status == "paid":
        return CheckPayoutTransferResult(
            payout.id, "paid", receipt.provider_reference if receipt else None
        )
    if payout.status in CLOSED_WITHOUT_PAYMENT:
        if receipt is not None:
            _flag_paid_but_closed(payout, receipt.provider_reference)
        return CheckPayoutTransferResult(payout.id, "not_paid")
    if receipt is not None and receipt.status == "paid":
        _settle(payout)
        return CheckPayoutTransferResult(payout.id, "paid", receipt.provider_reference)
    if receipt is not None:
        if not give_up:
            return CheckPayoutTransferResult(payout.id, "processing", receipt.provider_reference)
        payout.status = "reconciling"
        ops_flags.flag_payout(
            payout,
            "in_doubt",
            f"{ops_flags.payout_words(payout)}: the provider still reports transfer "
            f"{receipt.provider_reference} as {receipt.status} after the settle window. "
            "The hold stays; the reconciliation settles it once the provider pays.",
        )
        return CheckPayoutTransferResult(payout.id, "in_doubt", receipt.provider_reference)
    if not give_up:
        return CheckPayoutTransferResult(payout.id, "missing")
    _release(
        payout, "failed", "the provider has no transfer for this payout after the settle window"
    )
    return CheckPayoutTransferResult(payout.id, "not_paid", None, payout.amount_cents)


def _flag_paid_but_closed(payout: Payout, reference: str) -> None:
    amount = format_money(payout.amount_cents, payout.currency)
    ops_flags.flag_payout(
        payout,
        "paid_but_closed",
        f"Payout {payout.id} is {payout.status} (hold returned) but the provider paid "
        f"transfer {reference} for it: {amount} left twice-available. "
        "Recover the money or hold the practitioner's balance.",
    )


# What telling the practitioner reads: the payout and where to write (Core, one row).
_FOR_NOTICE = (
    select(
        _PAYOUTS.c.id,
        _PAYOUTS.c.amount_cents,
        _PAYOUTS.c.currency,
        _PAYOUTS.c.status,
        _PAYOUTS.c.idempotency_key,
        _PRACTITIONERS.c.id.label("practitioner_id"),
        _PRACTITIONERS.c.email,
    )
    .join_from(_PAYOUTS, _PRACTITIONERS)
    .where(_PAYOUTS.c.id == bindparam("payout_id"))
)


def notify(payout_id: int, event: str) -> None:
    """Tell the practitioner what happened to their payout (once per payout and event)."""
    payout = _payout_row(_FOR_NOTICE, payout_id)
    email_practitioner(
        Addressee(payout.practitioner_id, payout.email),
        key=f"payout-{event}:{payout.idempotency_key}",
        template=f"payout_{event}",
        payload={
            "payout_id": payout.id,
            "amount_cents": payout.amount_cents,
            "currency": payout.currency,
            "status": payout.status,
        },
        entity_type="payout",
        entity_id=payout.id,
    )
