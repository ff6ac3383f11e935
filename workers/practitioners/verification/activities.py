"""Document re-verification activities (PractitionerVerificationWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/practitioners/activities.py)."""

from __future__ import annotations

from estuary.contracts.practitioners import (
    DocumentCheck,
    DocumentCheckInput,
    ExpiryReminderInput,
    WatchedDocument,
)
from estuary.services import verification
from workers.practitioners.activities import parse_time
from workers.temporal.base_activities import as_kwargs, write_activity


def _watched(items: list[verification.Watched]) -> list[WatchedDocument]:
    return [WatchedDocument(w.document_id, w.kind, w.expires_on.isoformat()) for w in items]


@write_activity
def check_practitioner_documents(inp: DocumentCheckInput) -> DocumentCheck:
    outcome = verification.check_documents(inp.practitioner_id, parse_time(inp.as_of))
    return DocumentCheck(
        practitioner_id=inp.practitioner_id,
        practitioner_status=outcome.practitioner_status,
        valid=_watched(outcome.valid),
        lapsed=_watched(outcome.lapsed),
        suspended=outcome.suspended,
        reinstated=outcome.reinstated,
    )


@write_activity
def send_document_expiry_reminder(inp: ExpiryReminderInput) -> bool:
    return verification.send_expiry_reminder(**as_kwargs(inp))
