"""PractitionerOnboardingWorkflow: the guide's six steps, each with reminders and a
deadline; a step past its deadline is *stalled* (ops flag, visible in `progress` and in
OnboardingProgress) and keeps waiting for ops to `extend` it or `reject` the onboarding.

Deterministic code only: the sandbox re-imports this module. The steps are in
`steps.py`, their timers in `timers.py`, the activities in `activities.py`.
Human input arrives as updates, each refused by its validator when it cannot apply
(`facts.py` for the steps' facts; review, extend and reject here). The same facts as
signals stay for old histories and senders that cannot wait (the local background-check
provider, the command line): signals that arrive before their step are kept and used
when it starts; signals that cannot apply are ignored and listed under
`ignored_signals` in `progress`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from estuary.contracts.practitioners import (
    ONBOARDING_STEPS,
    TIERS,
    ActivationInput,
    BackgroundCheckResultSignal,
    DocumentsSubmittedSignal,
    ExtendStepUpdate,
    OnboardingExtensionInput,
    OnboardingInput,
    OnboardingRejectionInput,
    OnboardingResult,
    OnboardingStartInput,
    ProfileCompletedSignal,
    RejectOnboardingUpdate,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    SubscriptionSelectedSignal,
    TrainingModuleCompletedSignal,
    VerificationInput,
    verification_workflow_id,
)
from workers.practitioners.onboarding.facts import OnboardingFacts
from workers.practitioners.onboarding.timers import Step
from workers.practitioners.verification.workflows import PractitionerVerificationWorkflow
from workers.temporal.base_workflows import iso, require_text

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.onboarding.activities as activities


@workflow.defn
class PractitionerOnboardingWorkflow(OnboardingFacts):
    @workflow.init
    def __init__(self, inp: OnboardingInput) -> None:
        self._inp = inp
        info = workflow.info()
        self._workflow_id = info.workflow_id
        # Keys of this run's side effects (notifications, flags, documents, checks).
        self._run_key = f"{info.workflow_id}:{info.run_id}"
        self._status = "starting"  # starting / in_progress / completed / rejected
        self._profile_complete_at_start = False
        self._steps = {name: Step(name) for name in ONBOARDING_STEPS}
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
        require_text(arg.reason, "reason is required")
        require_text(arg.actor, "actor is required")

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
        require_text(arg.reason, "reason is required")
        require_text(arg.actor, "actor is required")

    # -- query --------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> dict:
        step = self._steps.get(self._current) if self._current else None
        return {
            "stage": self._current or self._status,
            "status": self._status,
            "steps_done": list(self._steps_done),
            "waiting_for": step.waiting_for if step else None,
            "waiting_until": iso(step.deadline) if step else None,
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
            "finished_at": iso(self._finished_at),
            "ignored_signals": list(self._ignored),
            "settings": {
                "step_deadline_days": self._inp.step_deadline_days,
                "reminder_days": list(self._inp.reminder_days),
            },
        }


# --- the local background-check provider ---------------------------------------------------
