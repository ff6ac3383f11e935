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
rejected / expired; approved/processing -> failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import REASON_CODES, Payout, PayoutApproval, Practitioner
from dashboard.models.base import utcnow
from dashboard.services import ledger, notifications, payment_provider
from dashboard.services.errors import BusinessRuleError, NotFoundError

UNFINISHED = ("pending_approval", "approved", "processing", "paid")
CLOSED_WITHOUT_PAYMENT = ("failed", "rejected", "expired")
PAYMENT_METHODS = ("bank_transfer", "instant_transfer")


@dataclass(frozen=True)
class PayoutPolicy:
    approval_threshold_cents: int
    dual_approval_threshold_cents: int
    approval_timeout_seconds: int


def policy_from_config(config: Mapping[str, Any]) -> PayoutPolicy:
    return PayoutPolicy(
        approval_threshold_cents=int(config["PAYOUT_APPROVAL_THRESHOLD_CENTS"]),
        dual_approval_threshold_cents=int(config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"]),
        approval_timeout_seconds=int(config["PAYOUT_APPROVAL_TIMEOUT_SECONDS"]),
    )


def check_not_looser(
    config: Mapping[str, Any],
    approval_threshold_cents: int | None,
    dual_approval_threshold_cents: int | None,
    approval_timeout_seconds: int | None = None,
) -> None:
    """Refuse approval settings looser than the configured ones (an input cannot switch
    approvals off); stricter ones (lower thresholds, shorter timeout) are allowed."""
    policy = policy_from_config(config)
    if (
        approval_threshold_cents is not None
        and approval_threshold_cents > policy.approval_threshold_cents
    ):
        raise BusinessRuleError(
            f"approval threshold {approval_threshold_cents} is above the configured "
            f"{policy.approval_threshold_cents} cents",
            field="approval_threshold_cents",
        )
    if (
        dual_approval_threshold_cents is not None
        and dual_approval_threshold_cents > policy.dual_approval_threshold_cents
    ):
        raise BusinessRuleError(
            f"dual approval threshold {dual_approval_threshold_cents} is above the configured "
            f"{policy.dual_approval_threshold_cents} cents",
            field="dual_approval_threshold_cents",
        )
    if (
        approval_timeout_seconds is not None
        and approval_timeout_seconds > policy.approval_timeout_seconds
    ):
        raise BusinessRuleError(
            f"approval timeout {approval_timeout_seconds} s is above the configured "
            f"{policy.approval_timeout_seconds} s",
            field="approval_timeout_seconds",
        )


def approvals_needed(amount_cents: int, threshold_cents: int, dual_threshold_cents: int) -> int:
    """0 below the threshold; 1 at or above it; 2 above the dual-approval threshold."""
    if amount_cents < threshold_cents:
        return 0
    if amount_cents > dual_threshold_cents:
        return 2
    return 1


def _lock_practitioner(practitioner_id: int) -> None:
    # Serialise holds on one practitioner's balance: a no-op UPDATE takes the row lock on
    # PostgreSQL and the database write lock on SQLite before the balance is read.
    db.session.execute(
        update(Practitioner).where(Practitioner.id == practitioner_id).values(id=Practitioner.id)
    )


def get_practitioner(practitioner_id: int) -> Practitioner:
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(
            f"practitioner {practitioner_id} does not exist", field="practitioner_id"
        )
    return practitioner


def get_payout(payout_id: int) -> Payout:
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFoundError(f"payout {payout_id} does not exist")
    return payout


@dataclass
class PayoutView:
    payout_id: int
    idempotency_key: str
    practitioner_id: int
    amount_cents: int
    currency: str
    status: str
    approvals_required: int
    approved_by: list[str] = field(default_factory=list)
    reused: bool = False


def _view(payout: Payout, *, reused: bool) -> PayoutView:
    approved = db.session.scalars(
        select(PayoutApproval.approver)
        .where(PayoutApproval.payout_id == payout.id, PayoutApproval.decision == "approve")
        .order_by(PayoutApproval.id)
    )
    return PayoutView(
        payout_id=payout.id,
        idempotency_key=payout.idempotency_key,
        practitioner_id=payout.practitioner_id,
        amount_cents=payout.amount_cents,
        currency=payout.currency,
        status=payout.status,
        approvals_required=payout.approvals_required,
        approved_by=list(approved),
        reused=reused,
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
) -> PayoutView:
    """Create the payout and hold its amount, or return this workflow id's unfinished one."""
    if payment_method not in PAYMENT_METHODS:
        raise BusinessRuleError(f"unknown payment method {payment_method!r}")
    check_not_looser(
        config, approval_threshold_cents, dual_approval_threshold_cents, approval_timeout_seconds
    )
    _lock_practitioner(practitioner_id)
    practitioner = get_practitioner(practitioner_id)
    unfinished = db.session.scalar(
        select(Payout)
        .where(Payout.workflow_id == workflow_id, Payout.status.in_(UNFINISHED))
        .order_by(Payout.id.desc())
        .limit(1)
    )
    if unfinished is not None:
        if unfinished.practitioner_id != practitioner_id:
            raise BusinessRuleError(f"{workflow_id} belongs to another practitioner's payout")
        return _view(unfinished, reused=True)
    if not practitioner.payout_destination:
        raise BusinessRuleError(
            f"practitioner {practitioner_id} has no payout destination", field="practitioner_id"
        )
    available = ledger.balance(ledger.available_account(practitioner_id))
    amount = available if amount_cents is None else amount_cents
    if not isinstance(amount, int) or amount <= 0:
        raise BusinessRuleError(
            f"practitioner {practitioner_id} has nothing available to pay out", field="amount"
        )
    if amount > available:
        raise BusinessRuleError(
            f"amount {amount} cents is more than practitioner {practitioner_id}'s available "
            f"balance of {available} cents",
            field="amount",
        )
    previous = db.session.scalar(
        select(func.count(Payout.id)).where(Payout.workflow_id == workflow_id)
    )
    key = f"payout:{workflow_id}:{int(previous or 0) + 1}"
    required = approvals_needed(amount, approval_threshold_cents, dual_approval_threshold_cents)
    payout = Payout(
        practitioner_id=practitioner_id,
        amount_cents=amount,
        currency=str(config.get("CURRENCY", "USD")),
        status="pending_approval" if required else "approved",
        idempotency_key=key,
        workflow_id=workflow_id,
        payment_method=payment_method,
        requested_by=requested_by[:254],
        reason=reason[:500],
        approvals_required=required,
    )
    db.session.add(payout)
    db.session.flush()
    ledger.post(
        f"payout-hold:{key}",
        "payout_hold",
        [
            ledger.Leg(ledger.available_account(practitioner_id), -amount),
            ledger.Leg(ledger.held_account(practitioner_id), amount),
        ],
        description=f"Hold for payout {payout.id}",
        currency=payout.currency,
    )
    return _view(payout, reused=False)


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
    """Record an approver's decision once per (payout, approver) (the console's queue and
    the audit of who decided); the workflow's validator has already checked it."""
    if decision not in ("approve", "reject"):
        raise BusinessRuleError(f"unknown decision {decision!r}")
    if decision == "reject" and reason_code not in REASON_CODES:
        raise BusinessRuleError(f"unknown reason code {reason_code!r}")
    payout = get_payout(payout_id)
    existing = db.session.scalar(
        select(PayoutApproval).where(
            PayoutApproval.payout_id == payout_id, PayoutApproval.approver == approver
        )
    )
    if existing is not None:
        return existing
    row = PayoutApproval(
        payout_id=payout.id,
        approver=approver[:254],
        decision=decision,
        amount_cents=amount_cents,
        payee_id=payee_id,
        reason_code=reason_code,
        note=(note or None) and note[:1000],
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        existing = db.session.scalar(
            select(PayoutApproval).where(
                PayoutApproval.payout_id == payout_id, PayoutApproval.approver == approver
            )
        )
        if existing is None:
            raise
        return existing
    return row


_FORWARD = {
    "approved": ("pending_approval", "approved"),
    "processing": ("approved", "processing"),
}


def set_status(payout_id: int, status: str) -> Payout:
    """Move a payout forward to approved or processing (repeats are no-ops)."""
    if status not in _FORWARD:
        raise BusinessRuleError(f"cannot set a payout to {status!r} directly")
    payout = get_payout(payout_id)
    if payout.status == status or payout.status in ("processing", "paid"):
        return payout
    if payout.status not in _FORWARD[status]:
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; cannot be {status}")
    payout.status = status
    if status == "approved" and payout.decided_at is None:
        payout.decided_at = utcnow()
    return payout


@dataclass(frozen=True)
class TransferDone:
    payout_id: int
    transfer_id: int
    provider_reference: str
    amount_cents: int


def transfer(payout_id: int) -> TransferDone:
    """Send the payout through the provider with its idempotency key, then settle it.

    The provider commits on its side first (a separate session); the settlement entries
    and the `paid` status are written in the caller's transaction. Any retry, reset or
    restart after the provider committed finds the same transfer by key and only
    completes the settlement, which is itself keyed.
    """
    payout = get_payout(payout_id)
    if payout.status not in ("approved", "processing", "paid"):
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; it cannot be sent")
    practitioner = get_practitioner(payout.practitioner_id)
    if payout.status == "paid":
        receipt = payment_provider.find_transfer(payout.idempotency_key)
        if receipt is None:
            raise BusinessRuleError(f"payout {payout_id} is paid but has no transfer")
    else:
        request = {
            "idempotency_key": payout.idempotency_key,
            "destination": practitioner.payout_destination,
            "amount_cents": payout.amount_cents,
            "currency": payout.currency,
            "payout_id": payout.id,
            "payee_id": practitioner.id,
        }
        # Nothing of ours is written before the provider call, so its own commit never
        # waits on our transaction (SQLite allows one writer at a time).
        db.session.rollback()
        receipt = payment_provider.transfer(**request)
        payout = get_payout(payout_id)
        _settle(payout)
    return TransferDone(
        payout.id, receipt.transfer_id, receipt.provider_reference, receipt.amount_cents
    )


def _settle(payout: Payout) -> None:
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
    payout.status = "paid"
    payout.failure_reason = None
    if payout.paid_at is None:
        payout.paid_at = utcnow()


@dataclass(frozen=True)
class Closed:
    payout_id: int
    status: str
    released_cents: int
    provider_reference: str | None = None


def close_unpaid(payout_id: int, outcome: str, reason: str = "") -> Closed:
    """End a payout without paying it (failed / rejected / expired): give the hold back.

    For `failed`, the provider is asked first: if it did settle the transfer after all
    (its answer was lost every time), the payout is settled as paid instead, never
    released, so the money cannot leave twice.
    """
    if outcome not in CLOSED_WITHOUT_PAYMENT:
        raise BusinessRuleError(f"{outcome!r} is not a closing outcome")
    payout = get_payout(payout_id)
    if payout.status == outcome:
        return Closed(payout.id, outcome, payout.amount_cents)
    if payout.status == "paid":
        receipt = payment_provider.find_transfer(payout.idempotency_key)
        return Closed(payout.id, "paid", 0, receipt.provider_reference if receipt else None)
    if payout.status in CLOSED_WITHOUT_PAYMENT:
        raise BusinessRuleError(f"payout {payout_id} is already {payout.status}")
    if outcome == "failed":
        receipt = payment_provider.find_transfer(payout.idempotency_key)
        if receipt is not None:
            _settle(payout)
            return Closed(payout.id, "paid", 0, receipt.provider_reference)
    elif payout.status != "pending_approval":
        raise BusinessRuleError(f"payout {payout_id} is {payout.status}; cannot be {outcome}")
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
    return Closed(payout.id, outcome, payout.amount_cents)


def notify(payout_id: int, event: str) -> None:
    """Tell the practitioner what happened to their payout (once per payout and event)."""
    payout = get_payout(payout_id)
    practitioner = get_practitioner(payout.practitioner_id)
    notifications.send(
        key=f"payout-{event}:{payout.idempotency_key}",
        channel="email",
        recipient=practitioner.email,
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


# --- batch selection ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    practitioner_id: int
    available_cents: int


@dataclass(frozen=True)
class Skipped:
    practitioner_id: int
    amount_cents: int
    reason: str


@dataclass
class CandidatePage:
    candidates: list[Candidate]
    skipped: list[Skipped]
    next_cursor: int
    exhausted: bool


def select_candidates(
    *,
    min_amount_cents: int,
    after_practitioner_id: int,
    limit: int,
    practitioner_ids: list[int] | None = None,
    max_scan: int = 2000,
) -> CandidatePage:
    """The next practitioners (by id, after the cursor) whose available balance is at
    least the minimum, at most `limit` of them, looking at no more than `max_scan` ids.

    Practitioners at or above the minimum who cannot be paid (not active, no payout
    destination) come back as skipped; with an explicit id list, unknown ids and those
    below the minimum are reported as skipped too. Reads in windows of `limit` ids, so a
    page costs two small queries when most practitioners qualify.
    """
    if limit < 1 or max_scan < 1:
        raise BusinessRuleError("limit and max_scan must be positive")
    explicit = sorted(set(practitioner_ids)) if practitioner_ids is not None else None
    candidates: list[Candidate] = []
    skipped: list[Skipped] = []
    cursor = after_practitioner_id
    scanned = 0
    while scanned < max_scan:
        window = min(limit, max_scan - scanned)
        if explicit is not None:
            ids = [i for i in explicit if i > cursor][:window]
            rows = {
                p.id: p
                for p in db.session.scalars(select(Practitioner).where(Practitioner.id.in_(ids)))
            }
        else:
            found = list(
                db.session.scalars(
                    select(Practitioner)
                    .where(Practitioner.id > cursor)
                    .order_by(Practitioner.id)
                    .limit(window)
                )
            )
            ids = [p.id for p in found]
            rows = {p.id: p for p in found}
        if not ids:
            return CandidatePage(candidates, skipped, cursor, exhausted=True)
        balances = ledger.balances([ledger.available_account(i) for i in ids])
        for pid in ids:
            if len(candidates) >= limit:
                return CandidatePage(candidates, skipped, cursor, exhausted=False)
            cursor = pid
            scanned += 1
            practitioner = rows.get(pid)
            if practitioner is None:
                skipped.append(Skipped(pid, 0, "unknown practitioner"))
                continue
            available = balances.get(ledger.available_account(pid), 0)
            if available < min_amount_cents:
                if explicit is not None:
                    skipped.append(Skipped(pid, available, "below the minimum amount"))
                continue
            if practitioner.status != "active":
                skipped.append(Skipped(pid, available, f"practitioner is {practitioner.status}"))
                continue
            if not practitioner.payout_destination:
                skipped.append(Skipped(pid, available, "no payout destination"))
                continue
            candidates.append(Candidate(pid, available))
        if len(ids) < window:
            return CandidatePage(candidates, skipped, cursor, exhausted=True)
    return CandidatePage(candidates, skipped, cursor, exhausted=False)
