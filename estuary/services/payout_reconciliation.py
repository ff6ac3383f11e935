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

from estuary.contracts.payout_upkeep import (
    OpenPayoutRow,
)
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


def open_payouts(after_id: int = 0, limit: int = 200) -> list[OpenPayoutRow]:
    """Payouts that still hold money (in id order after the cursor)."""
    rows = db.session.scalars(
        select(Payout)
        .where(Payout.status.in_(payouts.OPEN), Payout.id > after_id)
        .order_by(Payout.id)
        .limit(limit)
    )
    return [OpenPayoutRow(p.id, p.workflow_id, p.run_id, p.status) for p in rows]


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
        ops_flags.flag_payout(
            payout,
            "swept",
            f"{ops_flags.payout_words(payout)}, requested by {payout.requested_by}: its run "
            f"was {run_state}; the provider has no transfer, so the hold was returned. "
            "Start a new payout if it is still wanted.",
        )
        return "released"
    payout.status = "reconciling"
    state = receipt.status if receipt else "no transfer yet"
    ops_flags.flag_payout(
        payout,
        "in_doubt",
        f"{ops_flags.payout_words(payout)}: its run was {run_state} after the transfer was "
        f"sent; provider: {state}. The hold stays until the provider's answer is known; "
        "the reconciliation settles it when the provider has paid.",
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
    statement = _provider_statement()
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
    for t in statement:
        report.transfers += 1
        if t.status == "paid":
            report.provider_paid_cents += t.amount_cents
        else:
            report.provider_processing_cents += t.amount_cents
        payout = by_key.get(t.idempotency_key)
        if payout is not None:
            per_payout[payout.id] += 1
        _check_transfer(report, t, payout, settle=settle, settled_keys=settled_keys)
    for payout_id, n in per_payout.items():
        if n > 1:
            report.findings.append(
                Finding(
                    "duplicate_transfer",
                    f"payout {payout_id} has {n} provider transfers",
                    payout_id,
                )
            )
    _check_paid_without_transfer(report, by_key, {t.idempotency_key for t in statement})
    db.session.flush()
    _check_external_payouts(report)
    if flag:
        _flag_problems(report)
    return report


def _provider_statement() -> list[payment_provider.TransferReceipt]:
    """Every transfer the provider has, read page by page."""
    statement: list[payment_provider.TransferReceipt] = []
    after = 0
    while page := payment_provider.list_transfers(after_id=after, limit=500):
        statement.extend(page)
        after = page[-1].transfer_id
    return statement


def _check_transfer(
    report: Report,
    t: payment_provider.TransferReceipt,
    payout: Payout | None,
    *,
    settle: bool,
    settled_keys: set[str],
) -> None:
    """One provider transfer against its payout: a finding when they disagree; with
    `settle`, an open payout the provider has paid is settled paid.

    The findings are decided in this order: no payout, a different amount, then (for a
    paid transfer only) what the payout's state says of it."""
    if payout is None:
        report.findings.append(_orphan_transfer(t))
        return
    if t.amount_cents != payout.amount_cents:
        report.findings.append(_amount_mismatch(t, payout))
        return
    if t.status != "paid":
        return
    if payout.status in payouts.OPEN and settle:
        _settle_paid(report, payout, t.provider_reference, settled_keys)
        return
    finding = _paid_transfer_finding(t, payout, settled_keys)
    if finding is not None:
        report.findings.append(finding)


def _orphan_transfer(t: payment_provider.TransferReceipt) -> Finding:
    ref = t.provider_reference
    return Finding(
        "orphan_transfer",
        f"provider transfer {ref} ({t.amount_cents} cents, key {t.idempotency_key}) "
        "belongs to no payout",
        None,
        ref,
    )


def _amount_mismatch(t: payment_provider.TransferReceipt, payout: Payout) -> Finding:
    ref = t.provider_reference
    return Finding(
        "amount_mismatch",
        f"provider transfer {ref} is {t.amount_cents} cents; "
        f"payout {payout.id} is {payout.amount_cents} cents",
        payout.id,
        ref,
    )


def _paid_transfer_finding(
    t: payment_provider.TransferReceipt, payout: Payout, settled_keys: set[str]
) -> Finding | None:
    """What is wrong, if anything, with a payout the provider has paid (not settling)."""
    ref = t.provider_reference
    if payout.status in payouts.OPEN:
        return Finding(
            "in_doubt",
            f"payout {payout.id} is {payout.status} but the provider paid "
            f"transfer {ref}: the reconciliation will settle it",
            payout.id,
            ref,
        )
    if payout.status in payouts.CLOSED_WITHOUT_PAYMENT:
        return Finding(
            "paid_but_closed",
            f"payout {payout.id} is {payout.status} (hold returned) but the "
            f"provider paid transfer {ref} for {t.amount_cents} cents",
            payout.id,
            ref,
        )
    if f"payout-settle:{payout.idempotency_key}" not in settled_keys:
        return Finding(
            "unsettled_ledger",
            f"payout {payout.id} is paid but its settlement "
            f"payout-settle:{payout.idempotency_key} is not in the ledger",
            payout.id,
            ref,
        )
    return None


def _settle_paid(report: Report, payout: Payout, ref: str, settled_keys: set[str]) -> None:
    """Settle an open payout the provider has paid (re-read under the practitioner's
    lock: a run may have settled it meanwhile)."""
    payouts._lock_practitioner(payout.practitioner_id)
    db.session.refresh(payout)
    if payout.status not in payouts.OPEN:
        return
    was = payout.status
    payouts._settle(payout)
    settled_keys.add(f"payout-settle:{payout.idempotency_key}")
    report.settled += 1
    finding = Finding(
        "settled",
        f"payout {payout.id} was {was}; the provider paid transfer {ref}: settled paid "
        f"({payout.amount_cents} cents)",
        payout.id,
        ref,
    )
    report.findings.append(finding)
    _record_settlement(payout, finding.message)


def _check_paid_without_transfer(
    report: Report, by_key: dict[str, Payout], seen_keys: set[str]
) -> None:
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


def _flag_problems(report: Report) -> None:
    """An ops flag once per problem (in doubt is the sweep's and the run's to decide)."""
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
    flag = ops_flags.flag_payout(payout, "reconciled", message)
    ops_flags.resolve_flag(flag.key)
