"""Ops flags: things a workflow will not decide alone (an unresolved session, a stalled
onboarding) raised for a person to look at in the console. Raising is idempotent by key.
"""

from __future__ import annotations

from sqlalchemy import select

from estuary.contracts.money import format_money
from estuary.db import add_once, db
from estuary.models import OpsFlag, Payout
from estuary.models.base import utcnow


def raise_flag(
    *,
    key: str,
    kind: str,
    entity_type: str,
    entity_id: int,
    message: str,
    workflow_id: str | None = None,
) -> OpsFlag:
    """Raise a flag once per key (a second raise returns the first). Flushes."""

    def find() -> OpsFlag | None:
        return db.session.scalar(select(OpsFlag).where(OpsFlag.key == key))

    existing = find()
    if existing is not None:
        return existing
    flag = OpsFlag(
        key=key,
        kind=kind,
        entity_type=entity_type,
        entity_id=entity_id,
        message=message[:1000],
        workflow_id=workflow_id,
    )
    return add_once(flag, find)[0]


def flag_payout(payout: Payout, event: str, message: str) -> OpsFlag:
    """Raise `payout_{event}` on a payout, once per payout and event (key
    `payout-{event}:{idempotency key}`), linked to the payout's run."""
    return raise_flag(
        key=f"payout-{event.replace('_', '-')}:{payout.idempotency_key}",
        kind=f"payout_{event}",
        entity_type="payout",
        entity_id=payout.id,
        message=message,
        workflow_id=payout.workflow_id,
    )


def payout_words(payout: Payout) -> str:
    """How a flag names a payout: "Payout 4 (1,250.00 USD to practitioner 7)"."""
    amount = format_money(payout.amount_cents, payout.currency)
    return f"Payout {payout.id} ({amount} to practitioner {payout.practitioner_id})"


def resolve_flag(key: str) -> bool:
    """Mark a flag resolved; False if there was none open under that key."""
    flag = db.session.scalar(
        select(OpsFlag).where(OpsFlag.key == key, OpsFlag.resolved_at.is_(None))
    )
    if flag is None:
        return False
    flag.resolved_at = utcnow()
    return True


def open_flags(kind: str | None = None) -> list[OpsFlag]:
    query = select(OpsFlag).where(OpsFlag.resolved_at.is_(None)).order_by(OpsFlag.raised_at)
    if kind:
        query = query.where(OpsFlag.kind == kind)
    return list(db.session.scalars(query))
