"""The notification adapter. The default writes to the outbox table (the console shows
it); a production adapter would hand the row to an email/SMS provider. Sending is
idempotent by key: a second send with the same key returns the first row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import Notification
from estuary.models.base import utcnow
from estuary.services.errors import BusinessRuleError

CHANNELS = ("email", "sms")


@dataclass(frozen=True)
class SentNotification:
    id: int
    key: str
    created: bool  # False when the key had already been sent


def send(
    *,
    key: str,
    channel: str,
    recipient: str,
    template: str,
    payload: dict[str, Any] | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
) -> SentNotification:
    """Record (and so send) one notification unless its key was sent before. Flushes."""
    if channel not in CHANNELS:
        raise BusinessRuleError(f"unknown channel {channel!r}")
    existing = db.session.scalar(select(Notification).where(Notification.key == key))
    if existing is not None:
        return SentNotification(existing.id, key, created=False)
    row = Notification(
        key=key,
        channel=channel,
        recipient=recipient,
        template=template,
        payload_json=json.dumps(payload or {}, sort_keys=True, default=str),
        entity_type=entity_type,
        entity_id=entity_id,
        sent_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        existing = db.session.scalar(select(Notification).where(Notification.key == key))
        if existing is None:
            raise
        return SentNotification(existing.id, key, created=False)
    return SentNotification(row.id, key, created=True)


def was_sent(key: str) -> bool:
    return db.session.scalar(select(Notification.id).where(Notification.key == key)) is not None
