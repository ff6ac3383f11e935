"""TrainingCertificationWorkflow: modules, certificate, expiry reminder, re-certification.

Deterministic code only: the sandbox re-imports this module.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.practitioners import (
    CertificateIssued,
    CertificateIssueInput,
    CertificateNoticeInput,
    CertificationStartInput,
    ModuleCompletionInput,
    TrainingCertificationInput,
    TrainingCertificationResult,
    TrainingModuleCompletedSignal,
)
from workers.temporal.base_workflows import BaseWorkflow, note_ignored

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.activities as shared_activities
    import workers.practitioners.training.activities as activities


@workflow.defn
class TrainingCertificationWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: TrainingCertificationInput) -> None:
        self._inp = inp
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._modules: list[str] = []
        self._done: list[str] = []
        self._queue: list[str] = []
        self._completions: list[dict] = []
        self._ignored: list[dict] = []
        self._certificate: dict | None = None
        self._previous_expired = False
        self._reminder_sent_at: str | None = None
        self._waiting_for: str | None = None
        self._waiting_until: str | None = None

    @workflow.run
    async def run(self, inp: TrainingCertificationInput) -> TrainingCertificationResult:
        cycle_start = workflow.now()
        start = await self.execute_activity(
            activities.start_certification,
            CertificationStartInput(
                practitioner_id=inp.practitioner_id,
                certification=inp.certification,
                # A re-certification counts only modules completed in this cycle.
                completed_since=cycle_start.isoformat() if inp.cycle > 1 else None,
            ),
        )
        self._modules = list(start.modules)
        self._done = [m for m in start.modules if m in start.completed_modules]
        self._stage = "training"
        await self._complete_modules(inp)

        issued, expires_at = await self._issue_certificate(inp)
        self._stage = "certified"
        reminder_at = expires_at - timedelta(days=inp.expiry_reminder_days)
        self._waiting_for = "the expiry reminder (re-certification opens then)"
        self._waiting_until = reminder_at.isoformat()
        await workflow.sleep(reminder_at - workflow.now())
        sent_at = workflow.now()
        await self.execute_activity(
            activities.send_certificate_expiry_reminder,
            CertificateNoticeInput(
                inp.practitioner_id,
                inp.certification,
                issued.certificate_number,
                issued.expires_at,
                sent_at.isoformat(),
            ),
            policy=policies.NOTIFICATION,
        )
        self._reminder_sent_at = sent_at.isoformat()
        self._steps_done.append("expiry_reminder_sent")
        self._stage = "recertifying"
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            TrainingCertificationInput(
                practitioner_id=inp.practitioner_id,
                certification=inp.certification,
                validity_days=inp.validity_days,
                expiry_reminder_days=inp.expiry_reminder_days,
                cycle=inp.cycle + 1,
                previous_certificate=issued.certificate_number,
                previous_expires_at=issued.expires_at,
            )
        )

    async def _complete_modules(self, inp: TrainingCertificationInput) -> None:
        """Wait for every assigned module; the previous certificate expires meanwhile if its
        time comes first."""
        previous_expiry = (
            datetime.fromisoformat(inp.previous_expires_at)
            if inp.previous_certificate and inp.previous_expires_at
            else None
        )
        while True:
            await self._record_queued()
            missing = [m for m in self._modules if m not in self._done]
            if not missing:
                break
            self._waiting_for = f"training_module_completed signal for {', '.join(missing)}"
            timeout = None
            if previous_expiry is not None and not self._previous_expired:
                timeout = max(previous_expiry - workflow.now(), timedelta(0))
                self._waiting_until = previous_expiry.isoformat()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self._queue), timeout=timeout, timeout_summary="previous expiry"
                )
            if (
                previous_expiry is not None
                and not self._previous_expired
                and workflow.now() >= previous_expiry
            ):
                await self.execute_activity(
                    activities.expire_certificate,
                    CertificateNoticeInput(
                        inp.practitioner_id,
                        inp.certification,
                        inp.previous_certificate,
                        inp.previous_expires_at,
                        workflow.now().isoformat(),
                    ),
                )
                self._previous_expired = True
                self._waiting_until = None
        self._steps_done.append("modules_completed")

    async def _issue_certificate(
        self, inp: TrainingCertificationInput
    ) -> tuple[CertificateIssued, datetime]:
        """Issue this cycle's certificate, valid `validity_days` from now: (issued, expires_at)."""
        issued_at = workflow.now()
        expires_at = issued_at + timedelta(days=inp.validity_days)
        issued = await self.execute_activity(
            activities.issue_certificate,
            CertificateIssueInput(
                inp.practitioner_id,
                inp.certification,
                issued_at.isoformat(),
                expires_at.isoformat(),
            ),
        )
        self._certificate = {
            "number": issued.certificate_number,
            "issued_at": issued.issued_at,
            "expires_at": issued.expires_at,
        }
        self._steps_done.append("certificate_issued")
        return issued, expires_at

    async def _record_queued(self) -> None:
        # As in onboarding: dequeued only once recorded, so repeats stay duplicates.
        while self._queue:
            module = self._queue[0]
            if module not in self._modules:
                self._queue.pop(0)
                self._ignore(f"{module} is not a module of {self._inp.certification}")
                continue
            completed_at = workflow.now()
            await self.execute_activity(
                shared_activities.record_module_completion,
                ModuleCompletionInput(self._inp.practitioner_id, module, completed_at.isoformat()),
            )
            self._done.append(module)
            self._completions.append({"module": module, "at": completed_at.isoformat()})
            self._queue.pop(0)

    def _ignore(self, reason: str) -> None:
        note_ignored(self._ignored, "training_module_completed", reason)

    @workflow.signal(name="training_module_completed")
    def training_module_completed(self, arg: TrainingModuleCompletedSignal) -> None:
        if self._stage not in ("starting", "training"):
            self._ignore("no training is open in this cycle (the certificate is issued)")
        elif self._modules and arg.module not in self._modules:
            self._ignore(f"{arg.module} is not a module of {self._inp.certification}")
        elif arg.module in self._done or arg.module in self._queue:
            self._ignore(f"{arg.module} was already completed")
        else:
            self._queue.append(arg.module)

    @workflow.query
    def progress(self) -> dict:
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": self._waiting_for,
            "waiting_until": self._waiting_until,
            "practitioner_id": self._inp.practitioner_id,
            "certification": self._inp.certification,
            "cycle": self._inp.cycle,
            "modules": {"assigned": list(self._modules), "completed": list(self._done)},
            "completions": list(self._completions),
            "certificate": dict(self._certificate) if self._certificate else None,
            "previous_certificate": self._inp.previous_certificate or None,
            "previous_expired": self._previous_expired,
            "expiry_reminder_sent_at": self._reminder_sent_at,
            "ignored_signals": list(self._ignored),
        }
