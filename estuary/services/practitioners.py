"""The practitioner as every domain service meets it: looked up by id (a clear refusal
when there is none) and written to by email through the notification outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from estuary.db import db
from estuary.models import Practitioner
from estuary.services import notifications
from estuary.services.errors import NotFoundError


def get_practitioner(
    practitioner_id: int, *, field: str | None = "practitioner_id"
) -> Practitioner:
    """The practitioner, or NotFoundError naming `field` (None when the id came from a
    stored row rather than from the caller's input)."""
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist", field=field)
    return practitioner


@dataclass(frozen=True)
class Addressee:
    """Who an email goes to, where the caller read only that (not the whole practitioner)."""

    id: int
    email: str


def email_practitioner(
    practitioner: Practitioner | Addressee,
    *,
    key: str,
    template: str,
    payload: dict[str, Any],
    entity_type: str = "practitioner",
    entity_id: int | None = None,
) -> notifications.SentNotification:
    """Email the practitioner once per `key` (about themselves unless an entity is named)."""
    return notifications.send(
        key=key,
        channel="email",
        recipient=practitioner.email,
        template=template,
        payload=payload,
        entity_type=entity_type,
        entity_id=practitioner.id if entity_id is None else entity_id,
    )
