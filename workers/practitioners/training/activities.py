"""Training certification activities (TrainingCertificationWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/practitioners/activities.py)."""

from __future__ import annotations

from estuary.contracts.practitioners import (
    CertificateIssued,
    CertificateIssueInput,
    CertificateNoticeInput,
    CertificationStart,
    CertificationStartInput,
)
from estuary.services import training
from workers.practitioners.activities import parse_time
from workers.temporal.base_activities import read_activity, write_activity


@read_activity
def start_certification(inp: CertificationStartInput) -> CertificationStart:
    since = parse_time(inp.completed_since) if inp.completed_since else None
    modules, done = training.start_certification(inp.practitioner_id, inp.certification, since)
    return CertificationStart(modules=modules, completed_modules=done)


@write_activity
def issue_certificate(inp: CertificateIssueInput) -> CertificateIssued:
    cert = training.issue_certificate(
        inp.practitioner_id,
        inp.certification,
        parse_time(inp.issued_at),
        parse_time(inp.expires_at),
    )
    return CertificateIssued(
        certificate_number=cert.certificate_number,
        issued_at=inp.issued_at,
        expires_at=inp.expires_at,
    )


@write_activity
def send_certificate_expiry_reminder(inp: CertificateNoticeInput) -> bool:
    return training.send_expiry_reminder(
        inp.practitioner_id,
        inp.certification,
        inp.certificate_number,
        inp.expires_at,
        inp.sent_at,
    )


@write_activity
def expire_certificate(inp: CertificateNoticeInput) -> bool:
    return training.expire_certificate(inp.certificate_number)
