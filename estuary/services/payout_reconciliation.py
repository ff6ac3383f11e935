"""Money that left, checked against what we think left: the payout sweep and the
reconciliation of provider transfers with payouts and the ledger.

The provider is the truth about money that left. The sweep settles payouts whose run is
gone (terminated, timed out, crashed): it returns a hold only when the provider has no
transfer for the payout's key and no transfer was ever attempted; otherwise the payout is
settled paid (the provider paid) or left `reconciling` with an ops flag. The
reconciliation compares every provider transfer with its payout and the ledger, settles
what it can prove (provider paid + payout open -> paid, once) and flags the rest with the
evidence (ops flags of kind `payout_*`, shown on the console's Reconciliation page).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import LedgerEntry, LedgerTransaction, Payout
from estuary.services import ledger, ops_flags, payment_provider, payouts

FLAG_KINDS = (
    "payout_in_doubt",
    "payout_paid_but_closed",
    "payout_orphan_transfer",
    "payout_amount_mismatch",
    "payout_duplicate_transfer",
    "payout_paid_without_transfer",
    "payout_unsettled_ledger",
    "payout_ledger_total",
    "payout_swept",
    "payout_reconciled",
)


# --- the sweep --------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenPayout:
    payout_id: int
    workflow_id: str
    run_id: str | None
    status: str


def open_payouts(after_id: int = 0, limit: int = 200) -> list[OpenPayout]:
    """Payouts that still hold money (in id order after the cursor)."""
    rows = db.session.scalars(
        select(Payout)
        .where(Payout.status.in_(payouts.OPEN), Payout.id > after_id)
        .order_by(Payout.id)
        .limit(limit)
    )
    return [OpenPayout(p.id, p.workflow_id, p.run_id, p.status) for p in rows]


def settle_orphan(payout_id: int, expected_run_id: str | None, run_state: str) -> str:
    """Settle a payout whose run is gone (`run_state` says how it ended).

    Refuses to act when another run took the payout over since the run was described
    (its `run_id` changed). Returns what was done: paid / released / reconciling / skipped.
    """
    payout = payouts.get_payout(payout_id)
    payouts._lock_practitioner(payout.practitioner_id)
    db.session.refresh(payout)
    if payout.status not in payouts.OPEN:
        return "skipped"
    if (payout.run_id or None) != (expected_run_id or None):
        return "skipped"
    receipt = payment_provider.find_transfer(payout.idempotency_key)
    if receipt is not None and receipt.status == "paid":
        payouts._settle(payout)
        return "paid"
    if receipt is None and payout.status in ("pending_approval", "approved"):
        # No transfer was ever attempted (processing is recorded before the first send)
        # and the provider has nothing under the key: the money is known not to have left.
        payouts._release(payout, "released", f"released by the payout sweep: run {run_state}")
        ops_flags.raise_flag(
            key=f"payout-swept:{payout.idempotency_key}",
            kind="payout_swept",
            entity_type="payout",
            entity_id=payout.id,
            message=(
                f"Payout {payout.id} ({payout.amount_cents} cents to practitioner "
                f"{payout.practitioner_id}, requested by {payout.requested_by}): its run "
                f"was {run_state}; the provider has no transfer, so the hold was returned. "
                "Start a new payout if it is still wanted."
            ),
            workflow_id=payout.workflow_id,
        )
        return "released"
    payout.status = "reconciling"
    state = receipt.status if receipt else "no transfer yet"
    ops_flags.raise_flag(
        key=f"payout-in-doubt:{payout.idempotency_key}",
        kind="payout_in_doubt",
        entity_type="payout",
        entity_id=payout.id,
        message=(
            f"Payout {payout.id} ({payout.amount_cents} cents to practitioner "
            f"{payout.practitioner_id}): its run was {run_state} after the transfer was "
            f"sent; provider: {state}. The hold stays until the provider's answer is known; "
            "the reconciliation settles it when the provider has paid."
        ),
        workflow_id=payout.workflow_id,
    )
    return "reconciling"


# --- the reconciliation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str  # one of FLAG_KINDS without the `payout_` prefix, or "settled"
    message: str
    payout_id: int | None = None
    provider_reference: str | None = None


@dataclass
class Report:
    transfers: int = 0
    payouts_checked: int = 0
    provider_paid_cents: int = 0
    provider_processing_cents: int = 0
    ledger_external_payouts_cents: int = 0
    settled: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind != "settled"]

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(*, settle: bool, flag: bool | None = None) -> Report:
    """Compare the provider's transfers with payouts and the `external:payouts` account.

    With `settle`, a payout the provider has paid that is still open (processing /
    reconciling / approved) is settled paid (ledger posted once by key). With `flag`
    (default: same as `settle`) every other difference raises an ops flag once.
    """
    flag = settle if flag is None else flag
    report = Report()
    # Order matters while payouts are in flight: a payout row exists before its transfer,
    # and its settlement commits after it. So the provider's statement is read first,
    # then the payouts, then the settlements: every transfer read has its payout, and
    # every payout read as paid has its settlement.
    statement: list[payment_provider.TransferReceipt] = []
    after = 0
    while page := payment_provider.list_transfers(after_id=after, limit=500):
        statement.extend(page)
        after = page[-1].transfer_id
    by_key: dict[str, Payout] = {
        p.idempotency_key: p for p in db.session.scalars(select(Payout).order_by(Payout.id))
    }
    report.payouts_checked = len(by_key)
    settled_keys = set(
        db.session.scalars(
            select(LedgerTransaction.key).where(LedgerTransaction.key.like("payout-settle:%"))
        )
    )
    per_payout: Counter[int] = Counter()
    seen_keys: set[str] = set()
    for t in statement:
        report.transfers += 1
        seen_keys.add(t.idempotency_key)
        if t.status == "paid":
            report.provider_paid_cents += t.amount_cents
        else:
            report.provider_processing_cents += t.amount_cents
        payout = by_key.get(t.idempotency_key)
        if payout is None:
            report.findings.append(
                Finding(
                    "orphan_transfer",
                    f"provider transfer {t.provider_reference} ({t.amount_cents} cents, "
                    f"key {t.idempotency_key}) belongs to no payout",
                    None,
                    t.provider_reference,
                )
            )
            continue
        per_payout[payout.id] += 1
        if t.amount_cents != payout.amount_cents:
            report.findings.append(
                Finding(
                    "amount_mismatch",
                    f"provider transfer {t.provider_reference} is {t.amount_cents} cents; "
                    f"payout {payout.id} is {payout.amount_cents} cents",
                    payout.id,
                    t.provider_reference,
                )
            )
            continue
        if t.status != "paid":
            continue
        if payout.status in payouts.OPEN:
            if settle:
                payouts._lock_practitioner(payout.practitioner_id)
                db.session.refresh(payout)
                if payout.status in payouts.OPEN:
                    was = payout.status
                    payouts._settle(payout)
                    settled_keys.add(f"payout-settle:{payout.idempotency_key}")
                    report.settled += 1
                    settled_finding = Finding(
                        "settled",
                        f"payout {payout.id} was {was}; the provider paid "
                        f"transfer {t.provider_reference}: settled paid "
                        f"({payout.amount_cents} cents)",
                        payout.id,
                        t.provider_reference,
                    )
                    report.findings.append(settled_finding)
                    _record_settlement(payout, settled_finding.message)
            else:
                report.findings.append(
                    Finding(
                        "in_doubt",
                        f"payout {payout.id} is {payout.status} but the provider paid "
                        f"transfer {t.provider_reference}: the reconciliation will settle it",
                        payout.id,
                        t.provider_reference,
                    )
                )
            continue
        if payout.status in payouts.CLOSED_WITHOUT_PAYMENT:
            report.findings.append(
                Finding(
                    "paid_but_closed",
                    f"payout {payout.id} is {payout.status} (hold returned) but the "
                    f"provider paid transfer {t.provider_reference} for "
                    f"{t.amount_cents} cents",
                    payout.id,
                    t.provider_reference,
                )
            )
            continue
        if f"payout-settle:{payout.idempotency_key}" not in settled_keys:
            report.findings.append(
                Finding(
                    "unsettled_ledger",
                    f"payout {payout.id} is paid but its settlement "
                    f"payout-settle:{payout.idempotency_key} is not in the ledger",
                    payout.id,
                    t.provider_reference,
                )
            )
    for payout_id, n in per_payout.items():
        if n > 1:
            report.findings.append(
                Finding(
                    "duplicate_transfer",
                    f"payout {payout_id} has {n} provider transfers",
                    payout_id,
                )
            )
    for key, payout in by_key.items():
        # Paid after the statement was read: ask the provider again before calling it lost.
        if (
            payout.status == "paid"
            and key not in seen_keys
            and payment_provider.find_transfer(key) is None
        ):
            report.findings.append(
                Finding(
                    "paid_without_transfer",
                    f"payout {payout.id} is paid but the provider has no transfer for {key}",
                    payout.id,
                )
            )
    db.session.flush()
    _check_external_payouts(report)
    if flag:
        for f in report.problems:
            if f.kind == "in_doubt":
                continue
            ops_flags.raise_flag(
                key=f"payout-recon:{f.kind}:{f.provider_reference or f.payout_id or 'total'}"[:200],
                kind=f"payout_{f.kind}",
                entity_type="payout",
                entity_id=f.payout_id or 0,
                message=f.message,
            )
    return report


def _check_external_payouts(report: Report) -> None:
    """Every cent in `external:payouts` must be a settlement of a transfer the provider
    paid, for the same amount. (The other direction, paid transfers not settled, is
    checked per payout: in doubt, paid but closed, unsettled ledger.)

    The ledger is read in one statement and the provider's statement after it: a
    settlement commits after its transfer, so every settled transfer is in that statement
    whatever is being paid meanwhile.
    """
    rows = db.session.execute(
        select(LedgerTransaction.key, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry)
        .where(LedgerEntry.account == ledger.EXTERNAL_PAYOUTS)
        .group_by(LedgerTransaction.key)
    ).all()
    provider = {t.idempotency_key: t for t in payment_provider.list_transfers(limit=10**6)}
    settled: set[str] = set()
    total = 0
    for key, amount in rows:
        total += int(amount)
        transfer_key = key.removeprefix("payout-settle:")
        t = provider.get(transfer_key) if key.startswith("payout-settle:") else None
        if t is None or t.status != "paid" or t.amount_cents != int(amount):
            seen = (
                "no transfer"
                if t is None
                else f"transfer {t.provider_reference}: {t.amount_cents} cents, {t.status}"
            )
            report.findings.append(
                Finding(
                    "ledger_total",
                    f"ledger transaction {key} moved {amount} cents to external:payouts; "
                    f"the provider has {seen}",
                    None,
                    t.provider_reference if t else None,
                )
            )
        settled.add(transfer_key)
    report.ledger_external_payouts_cents = total


def _record_settlement(payout: Payout, message: str) -> None:
    """Leave the evidence for ops: a flag raised already resolved (nothing to do, but the
    Reconciliation page shows what was settled and why)."""
    key = f"payout-reconciled:{payout.idempotency_key}"
    ops_flags.raise_flag(
        key=key,
        kind="payout_reconciled",
        entity_type="payout",
        entity_id=payout.id,
        message=message,
        workflow_id=payout.workflow_id,
    )
    ops_flags.resolve_flag(key)
