"""Ops flags: things a workflow will not decide alone (an unresolved session, a stalled
onboarding) raised for a person to look at in the console. Raising is idempotent by key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import OpsFlag
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
    existing = db.session.scalar(select(OpsFlag).where(OpsFlag.key == key))
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
    try:
        with db.session.begin_nested():
            db.session.add(flag)
    except IntegrityError:
        existing = db.session.scalar(select(OpsFlag).where(OpsFlag.key == key))
        if existing is None:
            raise
        return existing
    return flag


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
