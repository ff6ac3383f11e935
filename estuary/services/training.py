"""Training: modules assigned per certification, completions, certificates.

A module's completion is one row per practitioner and module; completing it again (a
re-certification) moves its `completed_at` forward. A certificate is issued once per
(practitioner, certification, issue time), which makes issuing idempotent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from estuary.db import db
from estuary.models import Certification, Practitioner, TrainingCompletion, TrainingModule
from estuary.services import notifications
from estuary.services.errors import NotFoundError

ONBOARDING = "onboarding"


def required_modules(certification: str) -> list[str]:
    """Codes of the required modules of a certification, in a stable order."""
    return list(
        db.session.scalars(
            select(TrainingModule.code)
            .where(TrainingModule.certification == certification, TrainingModule.required)
            .order_by(TrainingModule.code)
        )
    )


def known_certifications() -> list[str]:
    return list(
        db.session.scalars(
            select(TrainingModule.certification).distinct().order_by(TrainingModule.certification)
        )
    )


def get_module(code: str) -> TrainingModule | None:
    return db.session.scalar(select(TrainingModule).where(TrainingModule.code == code))


def completed_modules(
    practitioner_id: int, codes: list[str], since: datetime | None = None
) -> list[str]:
    """Which of `codes` the practitioner completed (at or after `since`, if given)."""
    if not codes:
        return []
    query = select(TrainingCompletion.module_code).where(
        TrainingCompletion.practitioner_id == practitioner_id,
        TrainingCompletion.module_code.in_(codes),
    )
    if since is not None:
        query = query.where(TrainingCompletion.completed_at >= since)
    done = set(db.session.scalars(query))
    return [c for c in codes if c in done]


def record_completion(practitioner_id: int, module: str, completed_at: datetime) -> bool:
    """Record a completed module; True if this changed anything (a repeat does not)."""
    if get_module(module) is None:
        raise NotFoundError(f"training module {module!r} does not exist", field="module")
    row = db.session.scalar(
        select(TrainingCompletion).where(
            TrainingCompletion.practitioner_id == practitioner_id,
            TrainingCompletion.module_code == module,
        )
    )
    if row is None:
        db.session.add(
            TrainingCompletion(
                practitioner_id=practitioner_id, module_code=module, completed_at=completed_at
            )
        )
        db.session.flush()
        return True
    if row.completed_at < completed_at:
        row.completed_at = completed_at
        db.session.flush()
        return True
    return False


def start_certification(
    practitioner_id: int, certification: str, completed_since: datetime | None
) -> tuple[list[str], list[str]]:
    """The modules a certification assigns and those already done (since a cycle start)."""
    if db.session.get(Practitioner, practitioner_id) is None:
        raise NotFoundError(
            f"practitioner {practitioner_id} does not exist", field="practitioner_id"
        )
    modules = required_modules(certification)
    if not modules:
        known = ", ".join(known_certifications()) or "none"
        raise NotFoundError(
            f"certification {certification!r} has no required training modules (known: {known})",
            field="certification",
        )
    return modules, completed_modules(practitioner_id, modules, completed_since)


def certificate_number(practitioner_id: int, certification: str, issued_at: datetime) -> str:
    return f"{certification.upper()}-{practitioner_id}-{issued_at:%Y%m%d%H%M%S}"


def issue_certificate(
    practitioner_id: int, certification: str, issued_at: datetime, expires_at: datetime
) -> Certification:
    """Issue (once) the certificate for one completed cycle and tell the practitioner."""
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist")
    number = certificate_number(practitioner_id, certification, issued_at)
    cert = db.session.scalar(
        select(Certification).where(Certification.certificate_number == number)
    )
    if cert is None:
        cert = Certification(
            practitioner_id=practitioner_id,
            certification=certification,
            certificate_number=number,
            issued_at=issued_at,
            expires_at=expires_at,
            status="valid",
        )
        db.session.add(cert)
        db.session.flush()
    notifications.send(
        key=f"certificate:{number}:issued",
        channel="email",
        recipient=practitioner.email,
        template="certificate_issued",
        payload={
            "certification": certification,
            "certificate_number": number,
            "expires_at": expires_at.isoformat(),
        },
        entity_type="practitioner",
        entity_id=practitioner_id,
    )
    return cert


def send_expiry_reminder(
    practitioner_id: int, certification: str, number: str, expires_at: str, sent_at: str
) -> bool:
    practitioner = db.session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist")
    sent = notifications.send(
        key=f"certificate:{number}:expiry-reminder",
        channel="email",
        recipient=practitioner.email,
        template="certificate_expiry_reminder",
        payload={
            "certification": certification,
            "certificate_number": number,
            "expires_at": expires_at,
            "sent_at": sent_at,
            "recertification": "open",
        },
        entity_type="practitioner",
        entity_id=practitioner_id,
    )
    return sent.created


def expire_certificate(number: str) -> bool:
    """Mark a certificate expired (it was not renewed in time); False if already so."""
    cert = db.session.scalar(
        select(Certification).where(Certification.certificate_number == number)
    )
    if cert is None:
        raise NotFoundError(f"certificate {number} does not exist")
    if cert.status == "expired":
        return False
    cert.status = "expired"
    practitioner = db.session.get(Practitioner, cert.practitioner_id)
    if practitioner is not None:
        notifications.send(
            key=f"certificate:{number}:expired",
            channel="email",
            recipient=practitioner.email,
            template="certificate_expired",
            payload={"certification": cert.certification, "certificate_number": number},
            entity_type="practitioner",
            entity_id=practitioner.id,
        )
    db.session.flush()
    return True
