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

from sqlalchemy import bindparam, func, insert, select

from estuary.db import db, insert_unless_present
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


# Built once (statements are immutable): every payout reads a balance and posts entries.
_BALANCE = select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
    LedgerEntry.account == bindparam("account")
)
# An insert of many entries with RETURNING: SQLAlchemy runs it as one multi-row INSERT
# ("insertmanyvalues", its compiled form cached), where without RETURNING psycopg would
# run an executemany in pipeline mode, whose entry, sync and exit cost more than the two
# rows they send. The ids returned are not needed.
_INSERT_ENTRIES = insert(LedgerEntry.__table__).returning(LedgerEntry.__table__.c.id)


@dataclass(frozen=True)
class Leg:
    account: str
    amount_cents: int


def post(
    key: str, kind: str, legs: list[Leg], *, description: str = "", currency: str = "USD"
) -> int:
    """Post one balanced transaction, or find the one already posted under `key`: its id.

    Writes in the caller's transaction and does not commit: the caller decides. Two
    statements for a new transaction (the transaction row, unless its key is there, and
    its entries in one INSERT); for a key posted before, the insert that does nothing and
    the read of its id. A concurrent post of the same key finds the winner's transaction:
    the unique key refuses the second row (`insert_unless_present`).
    """
    problem = _problem(key, legs)
    if problem is not None:
        existing = _posted(key)  # a repeat of a posted key returns it, as it always did
        if existing is not None:
            return existing
        raise BusinessRuleError(problem)
    txn_id, created = insert_unless_present(
        LedgerTransaction, {"key": key, "kind": kind, "description": description}, "key"
    )
    if not created:
        return txn_id
    db.session.execute(
        _INSERT_ENTRIES,
        [
            {
                "transaction_id": txn_id,
                "account": leg.account,
                "amount_cents": leg.amount_cents,
                "currency": currency,
            }
            for leg in legs
        ],
    )
    return txn_id


def _problem(key: str, legs: list[Leg]) -> str | None:
    if not legs:
        return f"ledger transaction {key} has no entries"
    if sum(leg.amount_cents for leg in legs) != 0:
        return f"ledger transaction {key} does not balance"
    if any(not isinstance(leg.amount_cents, int) or leg.amount_cents == 0 for leg in legs):
        return f"ledger transaction {key} has a zero or non-integer entry"
    return None


def _posted(key: str) -> int | None:
    return db.session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.key == key))


def balance(account: str) -> int:
    """The balance of one account in cents (sum of its entries)."""
    total = db.session.scalar(_BALANCE, {"account": account})
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
