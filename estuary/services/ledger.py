"""The double-entry ledger: the one place money moves in the app database.

Accounts are strings: `practitioner:{id}:available`, `practitioner:{id}:held`,
`platform:commission`, `platform:clearing` (client money received, not yet earned by
anyone), `external:payouts` (money that left through the payment provider),
`external:client_payments`, `external:subscriptions`.
A transaction's entries always sum to zero; balances are sums of entries, never stored.
Each transaction carries a unique business key, so posting the same event twice returns
the first transaction instead of moving money again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import LedgerEntry, LedgerTransaction
from estuary.services.errors import BusinessRuleError


def available_account(practitioner_id: int) -> str:
    return f"practitioner:{practitioner_id}:available"


def held_account(practitioner_id: int) -> str:
    return f"practitioner:{practitioner_id}:held"


PLATFORM_COMMISSION = "platform:commission"
PLATFORM_CLEARING = "platform:clearing"
EXTERNAL_PAYOUTS = "external:payouts"
EXTERNAL_CLIENT_PAYMENTS = "external:client_payments"
EXTERNAL_SUBSCRIPTIONS = "external:subscriptions"
PLATFORM_SUBSCRIPTION_REVENUE = "platform:subscription_revenue"
# Unreleased package earnings the platform keeps when a package expires (expiry policy
# `retain_by_platform` of the progressive package payout).
PLATFORM_EXPIRED_PACKAGES = "platform:expired_packages"


@dataclass(frozen=True)
class Leg:
    account: str
    amount_cents: int


def post(
    key: str,
    kind: str,
    legs: list[Leg],
    *,
    description: str = "",
    currency: str = "USD",
    new_key: bool = False,
) -> LedgerTransaction:
    """Post one balanced transaction, or return the one already posted under `key`.

    Flushes but does not commit: the caller's transaction decides. A concurrent post of
    the same key loses on the unique constraint and gets the winner's transaction.

    `new_key`: the caller knows no transaction can hold `key` yet, because the key is
    made from a row's unique key that this same transaction inserted (the payout's hold):
    the look-up and the savepoint are left out. A duplicate would still be refused by the
    unique constraint, and the caller's whole transaction rolled back with it.
    """
    if not new_key:
        existing = db.session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == key))
        if existing is not None:
            return existing
    if not legs:
        raise BusinessRuleError(f"ledger transaction {key} has no entries")
    if sum(leg.amount_cents for leg in legs) != 0:
        raise BusinessRuleError(f"ledger transaction {key} does not balance")
    if any(not isinstance(leg.amount_cents, int) or leg.amount_cents == 0 for leg in legs):
        raise BusinessRuleError(f"ledger transaction {key} has a zero or non-integer entry")
    txn = LedgerTransaction(key=key, kind=kind, description=description)
    txn.entries = [
        LedgerEntry(account=leg.account, amount_cents=leg.amount_cents, currency=currency)
        for leg in legs
    ]
    if new_key:
        db.session.add(txn)
        db.session.flush()
        return txn
    try:
        with db.session.begin_nested():
            db.session.add(txn)
    except IntegrityError:
        existing = db.session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == key))
        if existing is None:
            raise
        return existing
    return txn


def balance(account: str) -> int:
    """The balance of one account in cents (sum of its entries)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account == account
        )
    )
    return int(total or 0)


def balances(accounts: list[str]) -> dict[str, int]:
    rows = db.session.execute(
        select(LedgerEntry.account, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.account.in_(accounts))
        .group_by(LedgerEntry.account)
    ).all()
    found = {account: int(total) for account, total in rows}
    return {a: found.get(a, 0) for a in accounts}


@dataclass(frozen=True)
class LedgerCheck:
    transactions: int
    entries: int
    unbalanced_keys: list[str]
    total_cents: int

    @property
    def ok(self) -> bool:
        return not self.unbalanced_keys and self.total_cents == 0


def check() -> LedgerCheck:
    """Verify every transaction sums to zero (and so the whole ledger does)."""
    unbalanced = db.session.execute(
        select(LedgerTransaction.key)
        .join(LedgerEntry)
        .group_by(LedgerTransaction.id, LedgerTransaction.key)
        .having(func.sum(LedgerEntry.amount_cents) != 0)
        .limit(100)
    ).scalars()
    txns = db.session.scalar(select(func.count(LedgerTransaction.id))) or 0
    entries = db.session.scalar(select(func.count(LedgerEntry.id))) or 0
    total = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) or 0
    return LedgerCheck(int(txns), int(entries), list(unbalanced), int(total))
