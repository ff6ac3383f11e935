"""Re-verification of an active practitioner's documents (PractitionerVerificationWorkflow).

A document is valid through its `expires_on` day (UTC) and lapses at the next midnight.
For each kind the practitioner holds an approved, required document of, the newest one
counts. When a kind has lapsed its documents are marked expired and the practitioner is
suspended from taking bookings; once every kind is valid again (ops approved a new
document), a practitioner suspended for that reason is reinstated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from estuary.db import db
from estuary.models import Practitioner, PractitionerDocument
from estuary.services import notifications
from estuary.services.errors import NotFoundError

LAPSE_REASON_PREFIX = "required document lapsed"


def lapses_at(expires_on: date) -> datetime:
    """The moment a document valid through `expires_on` stops being valid."""
    return datetime.combine(expires_on + timedelta(days=1), time(0, 0), tzinfo=UTC)


@dataclass(frozen=True)
class Watched:
    document_id: int
    kind: str
    expires_on: date


@dataclass(frozen=True)
class CheckOutcome:
    practitioner_status: str
    valid: list[Watched]
    lapsed: list[Watched]
    suspended: bool
    reinstated: bool


def check_documents(practitioner_id: int, as_of: datetime) -> CheckOutcome:
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(
            f"practitioner {practitioner_id} does not exist", field="practitioner_id"
        )
    docs = db.session.scalars(
        select(PractitionerDocument)
        .where(
            PractitionerDocument.practitioner_id == practitioner_id,
            PractitionerDocument.required,
            PractitionerDocument.status.in_(("approved", "expired")),
        )
        .order_by(PractitionerDocument.id)
    )
    by_kind: dict[str, list[PractitionerDocument]] = defaultdict(list)
    for doc in docs:
        by_kind[doc.kind].append(doc)
    valid: list[Watched] = []
    lapsed: list[Watched] = []
    for kind in sorted(by_kind):
        approved = [d for d in by_kind[kind] if d.status == "approved"]
        current = [d for d in approved if d.expires_on is None or lapses_at(d.expires_on) > as_of]
        for doc in approved:
            if doc.expires_on is not None and lapses_at(doc.expires_on) <= as_of:
                doc.status = "expired"
        if current:
            best = max(current, key=lambda d: d.expires_on or date.max)
            if best.expires_on is not None:
                valid.append(Watched(best.id, kind, best.expires_on))
        else:
            newest = max(by_kind[kind], key=lambda d: d.expires_on or date.min)
            lapsed.append(Watched(newest.id, kind, newest.expires_on or as_of.date()))
    suspended = reinstated = False
    if lapsed and practitioner.status == "active":
        kinds = ", ".join(f"{w.kind} (expired {w.expires_on})" for w in lapsed)
        practitioner.status = "suspended"
        practitioner.accepts_bookings = False
        practitioner.suspended_reason = f"{LAPSE_REASON_PREFIX}: {kinds}"[:500]
        suspended = True
        notifications.send(
            key=f"verification:{practitioner_id}:suspended:{lapsed[0].document_id}",
            channel="email",
            recipient=practitioner.email,
            template="practitioner_suspended_document_lapsed",
            payload={"documents": kinds},
            entity_type="practitioner",
            entity_id=practitioner_id,
        )
    elif (
        not lapsed
        and practitioner.status == "suspended"
        and (practitioner.suspended_reason or "").startswith(LAPSE_REASON_PREFIX)
    ):
        practitioner.status = "active"
        practitioner.accepts_bookings = True
        practitioner.suspended_reason = None
        reinstated = True
    db.session.flush()
    return CheckOutcome(practitioner.status, valid, lapsed, suspended, reinstated)


def send_expiry_reminder(
    *,
    practitioner_id: int,
    document_id: int,
    kind: str,
    expires_on: str,
    days_before: int,
    sent_at: str,
) -> bool:
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist")
    sent = notifications.send(
        key=f"document:{document_id}:expiry-reminder:{days_before}d",
        channel="email",
        recipient=practitioner.email,
        template="document_expiry_reminder",
        payload={
            "document_id": document_id,
            "kind": kind,
            "expires_on": expires_on,
            "days_before": days_before,
            "sent_at": sent_at,
        },
        entity_type="practitioner",
        entity_id=practitioner_id,
    )
    return sent.created
