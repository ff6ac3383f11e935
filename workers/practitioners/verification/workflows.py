"""PractitionerVerificationWorkflow: re-verifies documents, reminds before expiry,
suspends on a lapsed document; continues as new.

Deterministic code only: the sandbox re-imports this module.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.practitioners import (
    DocumentCheck,
    DocumentCheckInput,
    ExpiryReminderInput,
    RecheckDocumentsSignal,
    VerificationInput,
    VerificationResult,
)
from workers.temporal.base_workflows import BaseWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.verification.activities as activities


# The verification loop continues as new after this many checks (a history stays small).
VERIFICATION_CHECKS_PER_RUN = 24


def _lapses_at(expires_on: str) -> datetime:
    """A document valid through `expires_on` lapses at the next midnight UTC."""
    return datetime.combine(
        date.fromisoformat(expires_on) + timedelta(days=1), time(0, 0), tzinfo=UTC
    )


@workflow.defn
class PractitionerVerificationWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: VerificationInput) -> None:
        self._inp = inp
        self._stage = "checking"
        self._checks = 0
        self._last: DocumentCheck | None = None
        self._last_checked_at: str | None = None
        self._reminders: list[dict] = []
        self._events: list[dict] = []
        self._recheck: dict | None = None
        self._waiting_until: str | None = None

    @workflow.run
    async def run(self, inp: VerificationInput) -> VerificationResult:
        thresholds = sorted(set(inp.reminder_days_before_expiry), reverse=True)
        interval = timedelta(days=inp.check_interval_days)
        while True:
            self._stage = "checking"
            now = workflow.now()
            check = await self.execute_activity(
                activities.check_practitioner_documents,
                DocumentCheckInput(inp.practitioner_id, now.isoformat()),
            )
            self._checks += 1
            self._last = check
            self._last_checked_at = now.isoformat()
            if check.suspended or check.reinstated:
                self._events.append(
                    {
                        "at": now.isoformat(),
                        "event": "suspended" if check.suspended else "reinstated",
                        "lapsed": [d.kind for d in check.lapsed],
                    }
                )
            if check.practitioner_status == "rejected":
                self._stage = "ended"
                return VerificationResult(
                    inp.practitioner_id, "practitioner_rejected", self._checks
                )

            wake_at = [now + interval]
            for doc in check.valid:
                lapses = _lapses_at(doc.expires_on)
                wake_at.append(lapses)
                due = [d for d in thresholds if lapses - timedelta(days=d) <= now]
                if due:
                    await self._remind(doc.document_id, doc.kind, doc.expires_on, min(due))
                wake_at += [
                    lapses - timedelta(days=d)
                    for d in thresholds
                    if lapses - timedelta(days=d) > now
                ]
            next_check = min(wake_at)
            self._stage = "waiting"
            self._waiting_until = next_check.isoformat()
            self._recheck = None
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._recheck is not None,
                    timeout=next_check - now,
                    timeout_summary="next re-verification",
                )
            if (
                self._checks >= VERIFICATION_CHECKS_PER_RUN
                or workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp)

    async def _remind(self, document_id: int, kind: str, expires_on: str, days: int) -> None:
        if any(
            r["document_id"] == document_id and r["days_before"] == days for r in self._reminders
        ):
            return
        sent_at = workflow.now()
        created = await self.execute_activity(
            activities.send_document_expiry_reminder,
            ExpiryReminderInput(
                practitioner_id=self._inp.practitioner_id,
                document_id=document_id,
                kind=kind,
                expires_on=expires_on,
                days_before=days,
                sent_at=sent_at.isoformat(),
            ),
            policy=policies.NOTIFICATION,
        )
        self._reminders.append(
            {
                "document_id": document_id,
                "kind": kind,
                "expires_on": expires_on,
                "days_before": days,
                "sent_at": sent_at.isoformat() if created else None,
            }
        )

    @workflow.signal(name="recheck")
    def recheck(self, arg: RecheckDocumentsSignal) -> None:
        self._recheck = {"by": arg.actor, "reason": arg.reason, "at": workflow.now().isoformat()}

    @workflow.query
    def progress(self) -> dict:
        last = self._last
        return {
            "stage": self._stage,
            "steps_done": ["checked"] if self._checks else [],
            "waiting_for": "the next re-verification (or a recheck signal)"
            if self._stage == "waiting"
            else None,
            "waiting_until": self._waiting_until if self._stage == "waiting" else None,
            "practitioner_id": self._inp.practitioner_id,
            "checks_this_run": self._checks,
            "last_checked_at": self._last_checked_at,
            "practitioner_status": last.practitioner_status if last else None,
            "valid_documents": [vars(d) for d in last.valid] if last else [],
            "lapsed_documents": [vars(d) for d in last.lapsed] if last else [],
            "reminders": list(self._reminders),
            "events": list(self._events),
        }
