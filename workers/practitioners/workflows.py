"""Practitioners workflows. Deterministic code only: the sandbox re-imports this module.

- PractitionerOnboardingWorkflow: the guide's six steps, each with reminders and a
  deadline; a step past its deadline is *stalled* (ops flag, visible in `progress` and in
  OnboardingProgress) and keeps waiting for ops to `extend` it or `reject` the onboarding.
- BackgroundCheckProviderWorkflow: the local background-check provider, which answers the
  onboarding by signal after a delay (see estuary/services/background_checks.py).
- SubscriptionRenewalWorkflow: reminders before period end, the renewal charge through
  the payments domain, dunning, expiry; continues as new for each period.
- PractitionerVerificationWorkflow: re-verifies documents, reminds before expiry,
  suspends on a lapsed document; continues as new.
- TrainingCertificationWorkflow: modules, certificate, expiry reminder, re-certification.

Human input arrives as signals (facts) or updates (decisions that can be refused, with
validators). Signals that arrive before their step are kept and used when it starts;
signals that cannot apply are ignored and listed under `ignored_signals` in `progress`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

from estuary.contracts import policies
from estuary.contracts.payments import SubscriptionChargeInput, SubscriptionChargeResult
from estuary.contracts.practitioners import (
    ONBOARDING_STEPS,
    RENEWAL_REMINDER_DAYS,
    TIERS,
    ActivationInput,
    BackgroundCheckOutcomeInput,
    BackgroundCheckProviderInput,
    BackgroundCheckProviderResult,
    BackgroundCheckRequestInput,
    BackgroundCheckResultSignal,
    CancellationRequestInput,
    CancelSubscriptionSignal,
    CertificateIssueInput,
    CertificateNoticeInput,
    CertificationStartInput,
    DocumentCheck,
    DocumentCheckInput,
    DocumentReviewInput,
    DocumentsSubmissionInput,
    DocumentsSubmittedSignal,
    ExpiryReminderInput,
    ExtendStepUpdate,
    FirstChargeOutcomeInput,
    LocalBackgroundCheckInput,
    ModuleCompletionInput,
    OnboardingExtensionInput,
    OnboardingInput,
    OnboardingProgressInput,
    OnboardingRejectionInput,
    OnboardingReminderInput,
    OnboardingResult,
    OnboardingStartInput,
    OnboardingSubscriptionInput,
    PeriodSettlementInput,
    ProfileCompletedSignal,
    ProfileCompletionInput,
    RecheckDocumentsSignal,
    RejectOnboardingUpdate,
    RenewalReminderInput,
    RetryNowUpdate,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    ServiceConfirmationInput,
    StalledOnboardingInput,
    SubscriptionEndInput,
    SubscriptionNoticeInput,
    SubscriptionRefInput,
    SubscriptionRenewalInput,
    SubscriptionRenewalResult,
    SubscriptionSelectedSignal,
    SubscriptionSnapshot,
    TrainingCertificationInput,
    TrainingCertificationResult,
    TrainingModuleCompletedSignal,
    VerificationInput,
    VerificationResult,
    WaiveChargeUpdate,
    background_check_workflow_id,
    onboarding_workflow_id,
    subscription_workflow_id,
    training_workflow_id,
    verification_workflow_id,
)
from workers.temporal.base_workflows import BaseWorkflow
from workers.temporal.decorators import monitored_workflow

with workflow.unsafe.imports_passed_through():
    from workers.practitioners import activities

MAX_IGNORED_SHOWN = 20
# The verification loop continues as new after this many checks (a history stays small).
VERIFICATION_CHECKS_PER_RUN = 24


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _failure_message(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return getattr(exc, "message", None) or str(exc)


# --- onboarding -----------------------------------------------------------------------------


class _Step:
    """One onboarding step's state: its deadline, reminders, stalls and extensions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "pending"  # pending / waiting / stalled / done / rejected
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.deadline: datetime | None = None
        self.waiting_for: str | None = None
        self.waiting_on = "practitioner"  # who owes the next action: practitioner/ops/provider
        # Reminders count from the start of the current phase (a document resubmission
        # starts a new phase with a fresh deadline).
        self.phase_started_at: datetime | None = None
        self.next_reminder = 0
        self.reminders_sent: list[dict] = []
        self.stalls: list[dict] = []
        self.extensions: list[dict] = []
        self.open_flag_key: str | None = None

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "started_at": _iso(self.started_at),
            "deadline": _iso(self.deadline),
            "completed_at": _iso(self.completed_at),
            "stalled": self.state == "stalled",
            "waiting_for": self.waiting_for if self.state in ("waiting", "stalled") else None,
            "waiting_on": self.waiting_on if self.state in ("waiting", "stalled") else None,
            "reminders_sent": list(self.reminders_sent),
            "stalls": list(self.stalls),
            "extensions": list(self.extensions),
        }


ONBOARDING_SIGNALS = (
    ("profile_completed", ProfileCompletedSignal),
    ("documents_submitted", DocumentsSubmittedSignal),
    ("background_check_result", BackgroundCheckResultSignal),
    ("training_module_completed", TrainingModuleCompletedSignal),
    ("subscription_selected", SubscriptionSelectedSignal),
    ("service_configured", ServiceConfiguredSignal),
)
ONBOARDING_UPDATES = (
    ("review_documents", ReviewDocumentsUpdate),
    ("extend", ExtendStepUpdate),
    ("reject", RejectOnboardingUpdate),
)


@workflow.defn
@monitored_workflow(
    domain="practitioners",
    input=OnboardingInput,
    description=(
        "Onboards a practitioner: profile, documents (ops review), background check, "
        "training, subscription (first charge), services; each step with reminders and a "
        "deadline, stalled steps wait for ops to extend or reject. Completion activates."
    ),
    business_id=lambda inp, now: onboarding_workflow_id(inp.practitioner_id),
    entity_type="practitioner",
    entity_id=lambda inp: inp.practitioner_id,
    signals=ONBOARDING_SIGNALS,
    updates=ONBOARDING_UPDATES,
)
class PractitionerOnboardingWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: OnboardingInput) -> None:
        self._inp = inp
        info = workflow.info()
        self._workflow_id = info.workflow_id
        # Keys of this run's side effects (notifications, flags, documents, checks).
        self._run_key = f"{info.workflow_id}:{info.run_id}"
        self._status = "starting"  # starting / in_progress / completed / rejected
        self._profile_complete_at_start = False
        self._steps = {name: _Step(name) for name in ONBOARDING_STEPS}
        self._steps_done: list[str] = []
        self._current: str | None = None
        self._email = ""
        self._sequence = 0
        self._wake = 0  # bumped by handlers that change deadlines, to re-plan timers
        self._flags_to_resolve: list[str] = []
        self._rejection: dict | None = None
        self._finished_at: datetime | None = None
        self._ignored: list[dict] = []
        # profile
        self._profile_signal: str | None = None
        # documents
        self._docs_state = "not_started"  # awaiting_submission / in_review / reviewed / approved
        self._docs_round = 0
        self._docs_submission: DocumentsSubmittedSignal | None = None
        self._docs_submissions: list[dict] = []
        self._review: ReviewDocumentsUpdate | None = None
        self._reviews: list[dict] = []
        # background check
        self._check: dict | None = None
        self._check_result: BackgroundCheckResultSignal | None = None
        # training
        self._modules: list[str] = []
        self._modules_done: list[str] = []
        self._module_queue: list[str] = []
        self._module_log: list[dict] = []
        # subscription
        self._tier_selection: str | None = None
        self._subscription: dict | None = None
        # services
        self._service_queue: list[int] = []
        self._services: list[int] = []

    # -- run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        start = await self.execute_activity(
            activities.start_onboarding,
            OnboardingStartInput(inp.practitioner_id, self._workflow_id),
        )
        self._email = start.email
        self._profile_complete_at_start = start.profile_complete
        self._modules = list(start.modules)
        self._modules_done = [m for m in start.modules if m in start.completed_modules]
        self._status = "in_progress"

        steps: dict[str, Callable[[], Any]] = {
            "profile": self._profile_step,
            "documents": self._documents_step,
            "background_check": self._background_check_step,
            "training": self._training_step,
            "subscription": self._subscription_step,
            "services": self._services_step,
        }
        for name in ONBOARDING_STEPS:
            if self._rejection is not None or not await steps[name]():
                return await self._finish_rejected()
            await self._finish_step(name)
        if self._rejection is not None:
            return await self._finish_rejected()
        return await self._finish_completed()

    # -- the six steps ----------------------------------------------------------------

    async def _profile_step(self) -> bool:
        step = await self._begin_step("profile", "profile_completed signal (the practitioner)")
        if self._profile_complete_at_start:
            return True
        if not await self._wait(step, lambda: self._profile_signal is not None):
            return False
        await self.execute_activity(
            activities.complete_practitioner_profile,
            ProfileCompletionInput(self._inp.practitioner_id),
        )
        return True

    async def _documents_step(self) -> bool:
        step = await self._begin_step("documents", "documents_submitted signal (the practitioner)")
        while True:
            self._docs_round += 1
            self._docs_state = "awaiting_submission"
            if self._docs_round > 1:
                self._restart_phase(step)
                await self._set_waiting(
                    step, "documents_submitted signal (new documents after a rejection)"
                )
            if not await self._wait(step, lambda: self._docs_submission is not None):
                return False
            submission, self._docs_submission = self._docs_submission, None
            assert submission is not None
            key = f"{self._run_key}:documents:{self._docs_round}"
            document_ids = await self.execute_activity(
                activities.record_documents_submitted,
                DocumentsSubmissionInput(
                    practitioner_id=self._inp.practitioner_id,
                    submission_key=key,
                    kinds=list(submission.kinds),
                    licence_expires_on=submission.licence_expires_on or None,
                ),
            )
            self._docs_submissions.append(
                {
                    "round": self._docs_round,
                    "kinds": list(submission.kinds),
                    "document_ids": document_ids,
                    "submitted_by": submission.actor,
                    "at": workflow.now().isoformat(),
                }
            )
            self._docs_state = "in_review"
            await self._set_waiting(step, "review_documents update (ops review)", "ops")
            if not await self._wait(step, lambda: self._review is not None):
                return False
            review, self._review = self._review, None
            assert review is not None
            await self.execute_activity(
                activities.record_document_review,
                DocumentReviewInput(
                    practitioner_id=self._inp.practitioner_id,
                    submission_key=key,
                    approved=review.approved,
                    notes=review.notes,
                    reviewer=review.actor,
                    reviewed_at=workflow.now().isoformat(),
                ),
            )
            self._reviews.append(
                {
                    "round": self._docs_round,
                    "approved": review.approved,
                    "notes": review.notes,
                    "reviewer": review.actor,
                    "at": workflow.now().isoformat(),
                }
            )
            if review.approved:
                self._docs_state = "approved"
                return True

    async def _background_check_step(self) -> bool:
        step = await self._begin_step("background_check", "the background check to start")
        requested = await self.execute_activity(
            activities.request_background_check,
            BackgroundCheckRequestInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                idempotency_key=f"{self._run_key}:background-check",
            ),
            policy=policies.EXTERNAL_PROVIDER,
        )
        reference = requested.reference
        self._check = {
            "reference": reference,
            "provider": requested.provider,
            "requested_at": workflow.now().isoformat(),
            "result": None,
        }
        if requested.provider == "local":
            await self._start_child(
                BackgroundCheckProviderWorkflow.run,
                BackgroundCheckProviderInput(
                    practitioner_id=self._inp.practitioner_id,
                    reference=reference,
                    onboarding_workflow_id=self._workflow_id,
                    delay_seconds=requested.delay_seconds,
                ),
                workflow_id=background_check_workflow_id(reference),
                entity_type="background_check",
                entity_id=reference,
                abandon=False,
            )
            waiting_for = f"background_check_result signal for {reference} (local provider)"
            waiting_on = "provider"
        else:
            waiting_for = f"background_check_result signal for {reference} (recorded by ops)"
            waiting_on = "ops"
        await self._set_waiting(step, waiting_for, waiting_on)
        if not await self._wait(step, lambda: self._check_result is not None):
            return False
        result = self._check_result
        assert result is not None
        await self.execute_activity(
            activities.record_background_check_result,
            BackgroundCheckOutcomeInput(
                reference=reference,
                passed=result.passed,
                recorded_by=result.actor,
                completed_at=workflow.now().isoformat(),
            ),
        )
        self._check["result"] = "passed" if result.passed else "failed"
        self._check["recorded_by"] = result.actor
        if not result.passed:
            self._rejection = {
                "reason": f"background check {reference} failed",
                "by": result.actor,
                "at": workflow.now().isoformat(),
            }
            return False
        return True

    async def _training_step(self) -> bool:
        step = await self._begin_step("training", self._training_waiting_for())
        while True:
            await self._record_queued_modules()
            if all(m in self._modules_done for m in self._modules):
                return True
            await self._set_waiting(step, self._training_waiting_for())
            if not await self._wait(step, lambda: bool(self._module_queue)):
                return False

    async def _subscription_step(self) -> bool:
        step = await self._begin_step(
            "subscription", f"subscription_selected signal (tier: {', '.join(TIERS)})"
        )
        current: SubscriptionSnapshot | None = None
        attempt = 0
        selections = 0
        while True:
            if not await self._wait(step, lambda: self._tier_selection is not None):
                return False
            tier, self._tier_selection = self._tier_selection, None
            assert tier is not None
            if current is None or current.tier != tier:
                selections += 1
                current = await self.execute_activity(
                    activities.create_onboarding_subscription,
                    OnboardingSubscriptionInput(
                        practitioner_id=self._inp.practitioner_id,
                        tier=tier,
                        idempotency_key=f"{self._run_key}:subscription:{selections}",
                        period_start=workflow.now().isoformat(),
                        replaces_subscription_id=current.subscription_id if current else None,
                    ),
                )
                attempt = 0
            attempt += 1
            self._subscription = {
                "subscription_id": current.subscription_id,
                "tier": current.tier,
                "amount_cents": current.price_cents,
                "period_start": current.period_start,
                "period_end": current.period_end,
                "attempt": attempt,
                "charge_status": "charging",
                "failure_reason": None,
            }
            await self._set_waiting(
                step, f"the first charge of subscription {current.subscription_id}", "payments"
            )
            charge: SubscriptionChargeResult = await self.execute_activity(
                "charge_subscription",
                SubscriptionChargeInput(
                    subscription_id=current.subscription_id,
                    period_start=current.period_start,
                    amount_cents=current.price_cents,
                    attempt=attempt,
                ),
                domain="payments",
                policy=policies.PAYMENT_PROVIDER,
                result_type=SubscriptionChargeResult,
                summary=f"first period of subscription {current.subscription_id}",
            )
            paid = charge.status == "paid"
            self._subscription["charge_status"] = charge.status
            self._subscription["charge_id"] = charge.charge_id
            self._subscription["failure_reason"] = charge.failure_reason
            await self.execute_activity(
                activities.settle_first_subscription_charge,
                FirstChargeOutcomeInput(
                    subscription_id=current.subscription_id,
                    paid=paid,
                    failure_reason=charge.failure_reason,
                    notification_key=(
                        f"{self._run_key}:subscription:{current.subscription_id}:charge:{attempt}"
                    ),
                ),
            )
            if paid:
                break
            await self._set_waiting(
                step,
                "subscription_selected signal (the first charge was declined: "
                f"{charge.failure_reason or 'no reason given'}; select a tier to retry)",
            )
        if self._rejection is not None:
            # Rejected while the first charge was in flight: no renewals for this practitioner.
            return False
        await self._start_child(
            SubscriptionRenewalWorkflow.run,
            SubscriptionRenewalInput(subscription_id=current.subscription_id),
            workflow_id=subscription_workflow_id(current.subscription_id),
            entity_type="subscription",
            entity_id=current.subscription_id,
            abandon=True,
            id_reuse_policy=policies.MONEY_ID_REUSE,
        )
        return True

    async def _services_step(self) -> bool:
        step = await self._begin_step(
            "services", "service_configured signal (at least one service)"
        )
        while True:
            while self._service_queue:
                # Dequeued only once checked, so a repeat meanwhile is seen as a duplicate.
                service_id = self._service_queue[0]
                try:
                    await self.execute_activity(
                        activities.confirm_onboarding_service,
                        ServiceConfirmationInput(self._inp.practitioner_id, service_id),
                    )
                except ActivityError as exc:
                    self._ignore("service_configured", _failure_message(exc))
                else:
                    self._services.append(service_id)
                self._service_queue.pop(0)
            if self._services:
                return True
            if not await self._wait(step, lambda: bool(self._service_queue)):
                return False

    # -- step machinery -----------------------------------------------------------------

    def _reminder_offsets(self) -> list[timedelta]:
        return [
            timedelta(days=d)
            for d in self._inp.reminder_days
            if 0 < d < self._inp.step_deadline_days
        ]

    async def _begin_step(
        self, name: str, waiting_for: str, waiting_on: str = "practitioner"
    ) -> _Step:
        step = self._steps[name]
        now = workflow.now()
        self._current = name
        step.state = "waiting"
        step.started_at = now
        self._restart_phase(step)
        step.waiting_for = waiting_for
        step.waiting_on = waiting_on
        await self._sync()
        return step

    def _restart_phase(self, step: _Step) -> None:
        now = workflow.now()
        step.phase_started_at = now
        step.deadline = now + timedelta(days=self._inp.step_deadline_days)
        step.next_reminder = 0
        if step.state == "stalled":
            step.state = "waiting"
        if step.open_flag_key:
            self._flags_to_resolve.append(step.open_flag_key)
            step.open_flag_key = None

    async def _set_waiting(
        self, step: _Step, waiting_for: str, waiting_on: str = "practitioner"
    ) -> None:
        step.waiting_for = waiting_for
        step.waiting_on = waiting_on
        await self._sync()

    async def _wait(self, step: _Step, done: Callable[[], bool]) -> bool:
        """Wait until `done()`; reminders go out and the deadline passes on the way.

        Past the deadline the step is stalled and the wait goes on (without a timer)
        until the step is done, extended (which re-plans) or the onboarding rejected.
        Returns False when the onboarding was rejected.
        """
        offsets = self._reminder_offsets()
        while True:
            if self._rejection is not None:
                return False
            if done():
                return True
            now = workflow.now()
            assert step.phase_started_at is not None and step.deadline is not None
            if step.state != "stalled":
                due = [
                    i
                    for i in range(step.next_reminder, len(offsets))
                    if step.phase_started_at + offsets[i] <= now
                ]
                if due:
                    step.next_reminder = due[-1] + 1
                    await self._send_reminder(
                        step, due[-1] + 1, step.phase_started_at + offsets[due[-1]]
                    )
                    continue
                if step.deadline <= now:
                    await self._stall(step)
                    continue
            wake_at: list[datetime] = []
            if step.state != "stalled":
                if step.next_reminder < len(offsets):
                    wake_at.append(step.phase_started_at + offsets[step.next_reminder])
                wake_at.append(step.deadline)
            wake = self._wake
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda wake=wake: done() or self._rejection is not None or self._wake != wake,
                    timeout=(min(wake_at) - now) if wake_at else None,
                    timeout_summary=f"{step.name}: next reminder or deadline",
                )

    async def _send_reminder(self, step: _Step, number: int, due_at: datetime) -> None:
        sent_at = workflow.now()
        await self.execute_activity(
            activities.send_onboarding_reminder,
            OnboardingReminderInput(
                practitioner_id=self._inp.practitioner_id,
                key=f"{self._run_key}:reminder:{step.name}:{len(step.reminders_sent) + 1}",
                step=step.name,
                number=number,
                waiting_for=step.waiting_for or "",
                waiting_on=step.waiting_on,
                deadline=_iso(step.deadline) or "",
                sent_at=sent_at.isoformat(),
            ),
            policy=policies.NOTIFICATION,
        )
        step.reminders_sent.append(
            {
                "number": number,
                "due_at": due_at.isoformat(),
                "at": sent_at.isoformat(),
                "to": step.waiting_on,
            }
        )
        await self._sync()

    async def _stall(self, step: _Step) -> None:
        step.state = "stalled"
        flag_key = f"{self._run_key}:stalled:{step.name}:{len(step.stalls) + 1}"
        step.open_flag_key = flag_key
        step.stalls.append(
            {
                "at": workflow.now().isoformat(),
                "deadline": _iso(step.deadline),
                "flag_key": flag_key,
            }
        )
        await self.execute_activity(
            activities.flag_stalled_onboarding,
            StalledOnboardingInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                flag_key=flag_key,
                step=step.name,
                waiting_for=step.waiting_for or "",
                deadline=_iso(step.deadline) or "",
            ),
        )
        await self._sync()

    async def _finish_step(self, name: str) -> None:
        step = self._steps[name]
        step.state = "done"
        step.completed_at = workflow.now()
        if step.open_flag_key:
            self._flags_to_resolve.append(step.open_flag_key)
            step.open_flag_key = None
        self._steps_done.append(name)
        await self._sync()

    async def _sync(self) -> None:
        """Write the run's state to OnboardingProgress (the console's copy)."""
        self._sequence += 1
        resolve, self._flags_to_resolve = self._flags_to_resolve, []
        step = self._steps.get(self._current) if self._current else None
        await self.execute_activity(
            activities.record_onboarding_progress,
            OnboardingProgressInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                sequence=self._sequence,
                current_step=self._current or ("done" if self._status == "completed" else ""),
                status="in_progress" if self._status == "starting" else self._status,
                stalled=step is not None and step.state == "stalled",
                steps={name: s.as_dict() for name, s in self._steps.items()},
                resolve_flag_keys=resolve,
            ),
        )

    async def _record_queued_modules(self) -> None:
        # A module leaves the queue only once recorded, so a repeat signal arriving while
        # it is being recorded is still seen as a duplicate.
        while self._module_queue:
            module = self._module_queue[0]
            if module not in self._modules:
                self._module_queue.pop(0)
                self._ignore("training_module_completed", f"{module} is not an assigned module")
                continue
            completed_at = workflow.now()
            await self.execute_activity(
                activities.record_module_completion,
                ModuleCompletionInput(self._inp.practitioner_id, module, completed_at.isoformat()),
            )
            self._modules_done.append(module)
            self._module_log.append({"module": module, "at": completed_at.isoformat()})
            self._module_queue.pop(0)

    def _training_waiting_for(self) -> str:
        missing = [m for m in self._modules if m not in self._modules_done]
        return f"training_module_completed signal for {', '.join(missing) or 'nothing'}"

    async def _start_child(
        self,
        run_fn: Any,
        arg: Any,
        *,
        workflow_id: str,
        entity_type: str,
        entity_id: str | int,
        abandon: bool,
        id_reuse_policy: WorkflowIDReusePolicy = policies.DEFAULT_ID_REUSE,
    ) -> None:
        """Start a related run; one already running under that business id is kept."""
        try:
            await workflow.start_child_workflow(
                run_fn,
                arg,
                id=workflow_id,
                id_reuse_policy=id_reuse_policy,
                search_attributes=self.child_search_attributes(entity_type, entity_id),
                parent_close_policy=(
                    workflow.ParentClosePolicy.ABANDON
                    if abandon
                    else workflow.ParentClosePolicy.TERMINATE
                ),
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("%s is already running; not started again", workflow_id)

    def _ignore(self, signal: str, reason: str) -> None:
        self._ignored.append({"signal": signal, "reason": reason, "at": workflow.now().isoformat()})
        del self._ignored[:-MAX_IGNORED_SHOWN]

    # -- the end ------------------------------------------------------------------------

    async def _finish_completed(self) -> OnboardingResult:
        self._finished_at = workflow.now()
        await self.execute_activity(
            activities.activate_practitioner,
            ActivationInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                activated_at=self._finished_at.isoformat(),
            ),
        )
        self._status = "completed"
        self._current = None
        await self._sync()
        await self._start_child(
            PractitionerVerificationWorkflow.run,
            VerificationInput(practitioner_id=self._inp.practitioner_id),
            workflow_id=verification_workflow_id(self._inp.practitioner_id),
            entity_type="practitioner",
            entity_id=self._inp.practitioner_id,
            abandon=True,
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OnboardingResult(
            practitioner_id=self._inp.practitioner_id,
            outcome="completed",
            steps_done=list(self._steps_done),
            finished_at=self._finished_at.isoformat(),
        )

    async def _finish_rejected(self) -> OnboardingResult:
        rejection = self._rejection or {"reason": "rejected", "by": "workflow"}
        self._finished_at = workflow.now()
        self._status = "rejected"
        open_flags = [s.open_flag_key for s in self._steps.values() if s.open_flag_key]
        for step in self._steps.values():
            step.open_flag_key = None
            if step.state in ("waiting", "stalled"):
                step.state = "rejected"
        await self.execute_activity(
            activities.reject_onboarding,
            OnboardingRejectionInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                reason=rejection["reason"],
                actor=rejection["by"],
                open_flag_keys=open_flags,
            ),
        )
        await self._sync()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OnboardingResult(
            practitioner_id=self._inp.practitioner_id,
            outcome="rejected",
            steps_done=list(self._steps_done),
            reason=rejection["reason"],
            finished_at=self._finished_at.isoformat(),
        )

    # -- signals ------------------------------------------------------------------------

    @workflow.signal(name="profile_completed")
    def profile_completed(self, arg: ProfileCompletedSignal) -> None:
        if "profile" in self._steps_done:
            self._ignore("profile_completed", "the profile step is already done")
            return
        self._profile_signal = arg.actor

    @workflow.signal(name="documents_submitted")
    def documents_submitted(self, arg: DocumentsSubmittedSignal) -> None:
        if self._docs_state not in ("not_started", "awaiting_submission"):
            self._ignore(
                "documents_submitted", f"documents are {self._docs_state.replace('_', ' ')}"
            )
            return
        problems = arg.validate()
        if problems:
            self._ignore("documents_submitted", "; ".join(problems.values()))
            return
        self._docs_submission = arg

    @workflow.signal(name="background_check_result")
    def background_check_result(self, arg: BackgroundCheckResultSignal) -> None:
        reference = self._check["reference"] if self._check else None
        if reference is None or arg.reference != reference:
            self._ignore("background_check_result", f"{arg.reference!r} is not the pending check")
            return
        if self._check_result is not None:
            self._ignore("background_check_result", f"{reference} already has a result")
            return
        self._check_result = arg

    @workflow.signal(name="training_module_completed")
    def training_module_completed(self, arg: TrainingModuleCompletedSignal) -> None:
        module = arg.module
        if self._status != "starting" and module not in self._modules:
            self._ignore("training_module_completed", f"{module} is not an assigned module")
        elif module in self._modules_done or module in self._module_queue:
            self._ignore("training_module_completed", f"{module} was already completed")
        else:
            self._module_queue.append(module)

    @workflow.signal(name="subscription_selected")
    def subscription_selected(self, arg: SubscriptionSelectedSignal) -> None:
        if arg.tier not in TIERS:
            self._ignore("subscription_selected", f"unknown tier {arg.tier!r}")
        elif "subscription" in self._steps_done:
            self._ignore("subscription_selected", "the subscription step is already done")
        else:
            self._tier_selection = arg.tier

    @workflow.signal(name="service_configured")
    def service_configured(self, arg: ServiceConfiguredSignal) -> None:
        if arg.service_id in self._services or arg.service_id in self._service_queue:
            self._ignore("service_configured", f"service {arg.service_id} was already configured")
        else:
            self._service_queue.append(arg.service_id)

    # -- updates ------------------------------------------------------------------------

    def _check_in_progress(self) -> None:
        if self._status == "starting":
            raise ValueError("the onboarding has not started yet; try again in a moment")
        if self._status != "in_progress":
            raise ValueError(f"the onboarding is {self._status}")
        if self._rejection is not None:
            raise ValueError("the onboarding is being rejected")

    @workflow.update(name="review_documents")
    async def review_documents(self, arg: ReviewDocumentsUpdate) -> dict:
        self._review = arg
        self._docs_state = "reviewed"
        return {"round": self._docs_round, "approved": arg.approved}

    @review_documents.validator
    def _validate_review_documents(self, arg: ReviewDocumentsUpdate) -> None:
        self._check_in_progress()
        if self._docs_state != "in_review":
            raise ValueError(
                "documents are not waiting for review (they are "
                f"{self._docs_state.replace('_', ' ')})"
            )
        reviewer = (arg.actor or "").strip().lower()
        if not reviewer:
            raise ValueError("the reviewer (actor) is required")
        if reviewer in (self._email.lower(), f"practitioner:{self._inp.practitioner_id}"):
            raise ValueError("a practitioner cannot review their own documents")
        if not arg.approved and not arg.notes.strip():
            raise ValueError("notes: say what is wrong when asking for new documents")

    @workflow.update(name="extend")
    async def extend(self, arg: ExtendStepUpdate) -> dict:
        step = self._steps[arg.step]
        now = workflow.now()
        assert step.deadline is not None
        step.deadline = max(step.deadline, now) + timedelta(days=arg.days)
        flag_key, step.open_flag_key = step.open_flag_key, None
        if step.state == "stalled":
            step.state = "waiting"
        step.extensions.append(
            {
                "at": now.isoformat(),
                "days": arg.days,
                "reason": arg.reason,
                "by": arg.actor,
                "new_deadline": step.deadline.isoformat(),
            }
        )
        self._wake += 1
        await self.execute_activity(
            activities.record_onboarding_extension,
            OnboardingExtensionInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                flag_key=flag_key,
                step=arg.step,
                days=arg.days,
                new_deadline=step.deadline.isoformat(),
                reason=arg.reason,
                actor=arg.actor,
                notification_key=f"{self._run_key}:extended:{arg.step}:{len(step.extensions)}",
            ),
        )
        await self._sync()
        return {"step": arg.step, "deadline": step.deadline.isoformat()}

    @extend.validator
    def _validate_extend(self, arg: ExtendStepUpdate) -> None:
        self._check_in_progress()
        if arg.step not in ONBOARDING_STEPS:
            raise ValueError(f"unknown step {arg.step!r} (steps: {', '.join(ONBOARDING_STEPS)})")
        if not isinstance(arg.days, int) or not 1 <= arg.days <= 90:
            raise ValueError(f"days must be between 1 and 90 (got {arg.days})")
        if arg.step != self._current or self._steps[arg.step].state not in (
            "waiting",
            "stalled",
        ):
            raise ValueError(
                f"step {arg.step!r} is not the current step (current: {self._current})"
            )
        if not arg.reason.strip():
            raise ValueError("reason is required")
        if not (arg.actor or "").strip():
            raise ValueError("actor is required")

    @workflow.update(name="reject")
    async def reject(self, arg: RejectOnboardingUpdate) -> dict:
        self._rejection = {
            "reason": arg.reason.strip(),
            "by": arg.actor,
            "at": workflow.now().isoformat(),
        }
        return {"status": "rejecting", "reason": arg.reason.strip()}

    @reject.validator
    def _validate_reject(self, arg: RejectOnboardingUpdate) -> None:
        self._check_in_progress()
        if not arg.reason.strip():
            raise ValueError("reason is required")
        if not (arg.actor or "").strip():
            raise ValueError("actor is required")

    # -- query --------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> dict:
        step = self._steps.get(self._current) if self._current else None
        return {
            "stage": self._current or self._status,
            "status": self._status,
            "steps_done": list(self._steps_done),
            "waiting_for": step.waiting_for if step else None,
            "waiting_until": _iso(step.deadline) if step else None,
            "practitioner_id": self._inp.practitioner_id,
            "current_step": self._current,
            "stalled": step is not None and step.state == "stalled",
            "steps": {name: s.as_dict() for name, s in self._steps.items()},
            "documents": {
                "round": self._docs_round,
                "state": self._docs_state,
                "submissions": list(self._docs_submissions),
                "reviews": list(self._reviews),
            },
            "background_check": dict(self._check) if self._check else None,
            "training": {
                "assigned": list(self._modules),
                "completed": list(self._modules_done),
                "completions": list(self._module_log),
            },
            "subscription": dict(self._subscription) if self._subscription else None,
            "services": list(self._services),
            "rejection": dict(self._rejection) if self._rejection else None,
            "finished_at": _iso(self._finished_at),
            "ignored_signals": list(self._ignored),
            "settings": {
                "step_deadline_days": self._inp.step_deadline_days,
                "reminder_days": list(self._inp.reminder_days),
            },
        }


# --- the local background-check provider ---------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="practitioners",
    input=BackgroundCheckProviderInput,
    description=(
        "The local background-check provider: answers an onboarding's check by signal "
        "after BACKGROUND_CHECK_DELAY_SECONDS (started by the onboarding)."
    ),
    business_id=lambda inp, now: background_check_workflow_id(inp.reference),
    entity_type="background_check",
    entity_id=lambda inp: inp.reference,
)
class BackgroundCheckProviderWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: BackgroundCheckProviderInput) -> None:
        self._inp = inp
        self._stage = "checking"
        self._answer_at: datetime | None = None
        self._result: BackgroundCheckProviderResult | None = None

    @workflow.run
    async def run(self, inp: BackgroundCheckProviderInput) -> BackgroundCheckProviderResult:
        self._answer_at = workflow.now() + timedelta(seconds=inp.delay_seconds)
        if inp.delay_seconds > 0:
            await workflow.sleep(timedelta(seconds=inp.delay_seconds))
        result = await self.execute_activity(
            activities.run_local_background_check,
            LocalBackgroundCheckInput(inp.reference),
            policy=policies.EXTERNAL_PROVIDER,
        )
        self._stage = "answering"
        await workflow.get_external_workflow_handle(inp.onboarding_workflow_id).signal(
            "background_check_result",
            BackgroundCheckResultSignal(
                actor="provider:local", passed=result.passed, reference=inp.reference
            ),
        )
        self._result = result
        self._stage = "answered"
        return result

    @workflow.query
    def progress(self) -> dict:
        return {
            "stage": self._stage,
            "steps_done": ["answered"] if self._result else [],
            "waiting_for": None if self._result else "the provider's answer",
            "waiting_until": _iso(self._answer_at) if not self._result else None,
            "reference": self._inp.reference,
            "onboarding_workflow_id": self._inp.onboarding_workflow_id,
            "passed": self._result.passed if self._result else None,
        }


# --- subscription renewal ------------------------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="practitioners",
    input=SubscriptionRenewalInput,
    description=(
        "Renews a subscription each period: reminders 14/7/3/1 days before period end, the "
        "charge through payments (one per period), daily dunning with retry_now/waive, "
        "expiry suspends the practitioner; cancel ends it at period end."
    ),
    business_id=lambda inp, now: subscription_workflow_id(inp.subscription_id),
    entity_type="subscription",
    entity_id=lambda inp: inp.subscription_id,
    money=True,
    signals=(("cancel", CancelSubscriptionSignal),),
    updates=(("retry_now", RetryNowUpdate), ("waive", WaiveChargeUpdate)),
)
class SubscriptionRenewalWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: SubscriptionRenewalInput) -> None:
        self._inp = inp
        self._stage = "loading"
        self._steps_done: list[str] = []
        self._waiting_for: str | None = None
        self._waiting_until: str | None = None
        self._sub: SubscriptionSnapshot | None = None
        self._reminders: list[dict] = []
        self._charges: list[dict] = []
        self._cancel: dict | None = None
        self._retry_now: dict | None = None
        self._waiver: dict | None = None
        self._dunning = False
        self._outcome: str | None = None

    @workflow.run
    async def run(self, inp: SubscriptionRenewalInput) -> SubscriptionRenewalResult:
        sub = await self.execute_activity(
            activities.load_subscription, SubscriptionRefInput(inp.subscription_id)
        )
        self._sub = sub
        if sub.status in ("expired", "cancelled"):
            self._stage = self._outcome = "not_renewable"
            return SubscriptionRenewalResult(
                subscription_id=sub.subscription_id,
                outcome="not_renewable",
                period_start=sub.period_start,
                reason=f"the subscription is {sub.status}",
            )
        if sub.cancel_at_period_end and self._cancel is None:
            self._cancel = {"by": "subscription", "reason": "cancellation recorded", "at": None}
        period_end = datetime.fromisoformat(sub.period_end)
        self._steps_done.append("loaded")

        self._stage = "reminding"
        for days in RENEWAL_REMINDER_DAYS:
            if self._cancel is not None:
                break
            due = period_end - timedelta(days=days)
            # Each timer is computed from the workflow's clock when it is set.
            delay = due - workflow.now()
            if delay <= timedelta(0):
                self._reminders.append(
                    {
                        "days_before": days,
                        "due_at": due.isoformat(),
                        "sent_at": None,
                        "skipped": "its time had passed when this period's run started",
                    }
                )
                continue
            self._waiting_for = f"the renewal reminder {days} days before period end"
            self._waiting_until = due.isoformat()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._cancel is not None,
                    timeout=delay,
                    timeout_summary=f"renewal reminder {days} days before period end",
                )
            if self._cancel is not None:
                break
            sent_at = workflow.now()
            await self.execute_activity(
                activities.send_renewal_reminder,
                RenewalReminderInput(
                    sub.subscription_id, sub.period_end, days, sent_at.isoformat()
                ),
                policy=policies.NOTIFICATION,
            )
            self._reminders.append(
                {"days_before": days, "due_at": due.isoformat(), "sent_at": sent_at.isoformat()}
            )
        self._steps_done.append("reminders")

        self._stage = "waiting_for_period_end"
        delay = period_end - workflow.now()
        if delay > timedelta(0):
            self._waiting_for = "the end of the period"
            self._waiting_until = sub.period_end
            # A cancellation does not shorten the period the practitioner paid for.
            await workflow.sleep(delay)
        if self._cancel is not None:
            return await self._end("cancelled", self._cancel.get("reason") or "cancelled")

        attempt = 0
        while True:
            attempt += 1
            self._stage = "charging"
            charge = await self._charge(sub, attempt)
            if charge.status == "paid":
                how, actor, reason = "paid", None, None
                break
            await self.execute_activity(
                activities.mark_subscription_past_due,
                SubscriptionNoticeInput(
                    sub.subscription_id, sub.period_end, attempt, charge.failure_reason
                ),
            )
            if attempt > inp.dunning_retries:
                return await self._end(
                    "expired",
                    f"unpaid after {attempt} attempts ({charge.failure_reason or 'declined'})",
                )
            self._stage = "dunning"
            self._dunning = True
            retry_at = workflow.now() + timedelta(days=1)
            self._waiting_for = (
                f"dunning retry {attempt} of {inp.dunning_retries} (or ops retry_now / waive)"
            )
            self._waiting_until = retry_at.isoformat()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: (
                        self._retry_now is not None
                        or self._waiver is not None
                        or self._cancel is not None
                    ),
                    timeout=timedelta(days=1),
                    timeout_summary=f"dunning retry {attempt}",
                )
            self._dunning = False
            if self._waiver is not None:
                how, actor, reason = "waived", self._waiver["by"], self._waiver["reason"]
                break
            if self._cancel is not None:
                return await self._end("cancelled", self._cancel.get("reason") or "cancelled")
            self._retry_now = None

        self._stage = "settling"
        self._waiting_for = self._waiting_until = None
        await self.execute_activity(
            activities.settle_subscription_period,
            PeriodSettlementInput(
                subscription_id=sub.subscription_id,
                paid_period_start=sub.period_end,
                how=how,
                actor=actor,
                reason=reason,
            ),
        )
        self._steps_done.append(how)
        self._stage = "continuing_as_new"
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            SubscriptionRenewalInput(
                subscription_id=inp.subscription_id, dunning_retries=inp.dunning_retries
            )
        )

    async def _charge(self, sub: SubscriptionSnapshot, attempt: int) -> SubscriptionChargeResult:
        self._waiting_for = f"charge attempt {attempt} for the period from {sub.period_end}"
        self._waiting_until = None
        result: SubscriptionChargeResult = await self.execute_activity(
            "charge_subscription",
            SubscriptionChargeInput(
                subscription_id=sub.subscription_id,
                period_start=sub.period_end,  # the renewal pays the next period
                amount_cents=sub.price_cents,
                attempt=attempt,
            ),
            domain="payments",
            policy=policies.PAYMENT_PROVIDER,
            result_type=SubscriptionChargeResult,
            summary=f"renewal of subscription {sub.subscription_id}, attempt {attempt}",
        )
        self._charges.append(
            {
                "attempt": attempt,
                "at": workflow.now().isoformat(),
                "status": result.status,
                "charge_id": result.charge_id,
                "failure_reason": result.failure_reason,
            }
        )
        return result

    async def _end(self, outcome: str, reason: str) -> SubscriptionRenewalResult:
        assert self._sub is not None
        self._stage = self._outcome = outcome
        self._waiting_for = self._waiting_until = None
        actor = self._cancel.get("by") if outcome == "cancelled" and self._cancel else None
        await self.execute_activity(
            activities.end_subscription,
            SubscriptionEndInput(self._sub.subscription_id, outcome, reason, actor),
        )
        self._steps_done.append(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SubscriptionRenewalResult(
            subscription_id=self._sub.subscription_id,
            outcome=outcome,
            period_start=self._sub.period_start,
            reason=reason,
        )

    @workflow.signal(name="cancel")
    async def cancel(self, arg: CancelSubscriptionSignal) -> None:
        if self._cancel is not None or self._outcome is not None:
            return
        self._cancel = {
            "by": arg.actor,
            "reason": arg.reason or "cancelled",
            "at": workflow.now().isoformat(),
        }
        await self.execute_activity(
            activities.request_subscription_cancellation,
            CancellationRequestInput(self._inp.subscription_id, arg.actor, arg.reason),
        )

    def _check_dunning(self) -> None:
        if not self._dunning:
            raise ValueError("no failed renewal charge is waiting for a retry")
        if self._retry_now is not None or self._waiver is not None:
            raise ValueError("a retry or a waiver is already under way")

    @workflow.update(name="retry_now")
    async def retry_now(self, arg: RetryNowUpdate) -> dict:
        self._retry_now = {"by": arg.actor, "note": arg.note, "at": workflow.now().isoformat()}
        return {"retrying": True}

    @retry_now.validator
    def _validate_retry_now(self, arg: RetryNowUpdate) -> None:
        self._check_dunning()
        if not (arg.actor or "").strip():
            raise ValueError("actor is required")

    @workflow.update(name="waive")
    async def waive(self, arg: WaiveChargeUpdate) -> dict:
        self._waiver = {"by": arg.actor, "reason": arg.reason, "at": workflow.now().isoformat()}
        return {"waived": True}

    @waive.validator
    def _validate_waive(self, arg: WaiveChargeUpdate) -> None:
        self._check_dunning()
        if not arg.reason.strip():
            raise ValueError("reason is required to waive a charge")
        if not (arg.actor or "").strip():
            raise ValueError("actor is required")

    @workflow.query
    def progress(self) -> dict:
        sub = self._sub
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": self._waiting_for,
            "waiting_until": self._waiting_until,
            "subscription_id": self._inp.subscription_id,
            "tier": sub.tier if sub else None,
            "price_cents": sub.price_cents if sub else None,
            "period_start": sub.period_start if sub else None,
            "period_end": sub.period_end if sub else None,
            "charging_period_start": sub.period_end if sub else None,
            "reminders": list(self._reminders),
            "charges": list(self._charges),
            "dunning": self._dunning,
            "dunning_retries": self._inp.dunning_retries,
            "cancel_requested": dict(self._cancel) if self._cancel else None,
            "waiver": dict(self._waiver) if self._waiver else None,
            "outcome": self._outcome,
        }


# --- document re-verification --------------------------------------------------------------


def _lapses_at(expires_on: str) -> datetime:
    """A document valid through `expires_on` lapses at the next midnight UTC."""
    return datetime.combine(
        date.fromisoformat(expires_on) + timedelta(days=1), time(0, 0), tzinfo=UTC
    )


@workflow.defn
@monitored_workflow(
    domain="practitioners",
    input=VerificationInput,
    description=(
        "Re-verifies a practitioner's documents periodically: reminders before a document "
        "expires, suspension when a required one lapses, reinstatement once valid again."
    ),
    business_id=lambda inp, now: verification_workflow_id(inp.practitioner_id),
    entity_type="practitioner",
    entity_id=lambda inp: inp.practitioner_id,
    signals=(("recheck", RecheckDocumentsSignal),),
)
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


# --- training certification ----------------------------------------------------------------


@workflow.defn
@monitored_workflow(
    domain="practitioners",
    input=TrainingCertificationInput,
    description=(
        "Certifies a practitioner: assigns the certification's modules, tracks completions "
        "(training_module_completed), issues the certificate, reminds before expiry and "
        "opens re-certification (continues as new for each cycle)."
    ),
    business_id=lambda inp, now: training_workflow_id(inp.practitioner_id, inp.certification),
    entity_type="practitioner",
    entity_id=lambda inp: inp.practitioner_id,
    signals=(("training_module_completed", TrainingModuleCompletedSignal),),
)
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
                activities.record_module_completion,
                ModuleCompletionInput(self._inp.practitioner_id, module, completed_at.isoformat()),
            )
            self._done.append(module)
            self._completions.append({"module": module, "at": completed_at.isoformat()})
            self._queue.pop(0)

    def _ignore(self, reason: str) -> None:
        self._ignored.append(
            {
                "signal": "training_module_completed",
                "reason": reason,
                "at": workflow.now().isoformat(),
            }
        )
        del self._ignored[:-MAX_IGNORED_SHOWN]

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
