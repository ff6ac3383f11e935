"""Business figures the console exports as Prometheus gauges, read from the app database
at scrape time (so every console process reports the same value)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import OpsFlag, Payout

# Ops-flag kinds raised by ledger/provider reconciliation when the two sides disagree.
# Reconciliation (issue 10) owns the names: keep this tuple in step with what it raises.
RECONCILIATION_FLAG_KINDS: tuple[str, ...] = ("reconciliation_mismatch",)


@dataclass(frozen=True)
class AwaitingApproval:
    count: int
    cents: int


def payouts_awaiting_approval() -> AwaitingApproval:
    """Payouts held for an approver decision: how many and how much."""
    count, cents = db.session.execute(
        select(func.count(Payout.id), func.coalesce(func.sum(Payout.amount_cents), 0)).where(
            Payout.status == "pending_approval"
        )
    ).one()
    return AwaitingApproval(int(count or 0), int(cents or 0))


def reconciliation_mismatches() -> int:
    """Open (unresolved) ops flags raised by reconciliation."""
    return int(
        db.session.scalar(
            select(func.count(OpsFlag.id)).where(
                OpsFlag.kind.in_(RECONCILIATION_FLAG_KINDS), OpsFlag.resolved_at.is_(None)
            )
        )
        or 0
    )
