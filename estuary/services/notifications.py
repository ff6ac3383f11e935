"""The notification adapter. The default writes to the outbox table (the console shows
it); a production adapter would hand the row to an email/SMS provider. Sending is
idempotent by key: a second send with the same key returns the first row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from estuary.db import db, insert_unless_present
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
    """Record (and so send) one notification unless its key was sent before: one INSERT
    that does nothing when the key is there (`insert_unless_present`). Writes in the
    caller's transaction."""
    if channel not in CHANNELS:
        raise BusinessRuleError(f"unknown channel {channel!r}")

    row_id, created = insert_unless_present(
        Notification,
        {
            "key": key,
            "channel": channel,
            "recipient": recipient,
            "template": template,
            "payload_json": json.dumps(payload or {}, sort_keys=True, default=str),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "sent_at": utcnow(),
        },
        "key",
    )
    return SentNotification(row_id, key, created=created)


def was_sent(key: str) -> bool:
    return db.session.scalar(select(Notification.id).where(Notification.key == key)) is not None
