"""The onboarding's facts as updates: each step's input (profile done, documents
submitted, background-check result, a training module, the subscription tier, a
service) is checked by a validator that refuses, with its reason, what the workflow
would otherwise ignore: a step's input while the run is at another step, a module that
is not one of the catalogue's required modules (or is done already), a service that
is not the practitioner's, a result for another check. A refused update is not in the
history, so the validators are replay-safe; the signals of the same facts stay in the
workflow for old histories and for senders that cannot wait for an answer.

Workflow code (the sandbox re-imports it): `OnboardingFacts` is a base of
`PractitionerOnboardingWorkflow`, whose `__init__` sets the state these methods use.
"""

from __future__ import annotations

from temporalio import workflow

from estuary.contracts.practitioners import (
    TIERS,
    BackgroundCheckResultSignal,
    DocumentsSubmittedSignal,
    ProfileCompletedSignal,
    ServiceConfiguredSignal,
    SubscriptionSelectedSignal,
    TrainingModuleCompletedSignal,
)
from workers.practitioners.onboarding.steps import OnboardingSteps
from workers.temporal.base_workflows import refusal, require_text


class OnboardingFacts(OnboardingSteps):
    """The six steps' updates and their validators."""

    def _check_in_progress(self) -> None:
        if self._status == "starting":
            raise ValueError("the onboarding has not started yet; try again in a moment")
        if self._status != "in_progress":
            raise ValueError(f"the onboarding is {self._status}")
        if self._rejection is not None:
            raise ValueError("the onboarding is being rejected")

    def _check_at_step(self, step: str, actor: str) -> None:
        self._check_in_progress()
        require_text(actor, "actor is required")
        if self._current != step:
            current = (self._current or "none").replace("_", " ")
            raise ValueError(
                f"the onboarding is at the {current} step, not {step.replace('_', ' ')}"
            )

    # -- profile --------------------------------------------------------------------------

    @workflow.update(name="complete_profile")
    async def complete_profile(self, arg: ProfileCompletedSignal) -> dict:
        self._profile_signal = arg.actor
        return {"step": "profile", "recorded": True}

    @complete_profile.validator
    def _validate_complete_profile(self, arg: ProfileCompletedSignal) -> None:
        self._check_at_step("profile", arg.actor)
        if self._profile_signal is not None:
            raise ValueError("the profile was already marked complete")

    # -- documents ------------------------------------------------------------------------

    @workflow.update(name="submit_documents")
    async def submit_documents(self, arg: DocumentsSubmittedSignal) -> dict:
        self._docs_submission = arg
        return {"step": "documents", "round": self._docs_round, "kinds": ", ".join(arg.kinds)}

    @submit_documents.validator
    def _validate_submit_documents(self, arg: DocumentsSubmittedSignal) -> None:
        self._check_at_step("documents", arg.actor)
        if self._docs_state != "awaiting_submission" or self._docs_submission is not None:
            raise ValueError(
                f"documents are not awaited (they are {self._docs_state.replace('_', ' ')})"
            )
        problems = arg.validate()
        if problems:
            raise ValueError("; ".join(problems.values()))

    # -- background check -----------------------------------------------------------------

    @workflow.update(name="record_background_check")
    async def record_background_check(self, arg: BackgroundCheckResultSignal) -> dict:
        self._check_result = arg
        return {"reference": arg.reference, "passed": arg.passed}

    @record_background_check.validator
    def _validate_record_background_check(self, arg: BackgroundCheckResultSignal) -> None:
        self._check_at_step("background_check", arg.actor)
        reference = self._check["reference"] if self._check else None
        if reference is None:
            raise ValueError("no background check has been requested yet")
        if arg.reference != reference:
            raise ValueError(f"{arg.reference!r} is not the pending check ({reference})")
        if self._check_result is not None:
            raise ValueError(f"{reference} already has a result")

    # -- training -------------------------------------------------------------------------

    @workflow.update(name="complete_training_module")
    async def complete_training_module(self, arg: TrainingModuleCompletedSignal) -> dict:
        self._module_queue.append(arg.module)
        # Answer once it is recorded (or the onboarding stops), so "done" means done.
        await workflow.wait_condition(
            lambda: (
                arg.module in self._modules_done
                or self._rejection is not None
                or self._status != "in_progress"
            )
        )
        remaining = [m for m in self._modules if m not in self._modules_done]
        return {"module": arg.module, "modules_left": len(remaining)}

    @complete_training_module.validator
    def _validate_complete_training_module(self, arg: TrainingModuleCompletedSignal) -> None:
        self._check_at_step("training", arg.actor)
        if arg.module not in self._modules:
            raise ValueError(
                f"{arg.module} is not a required onboarding module "
                f"(required: {', '.join(self._modules) or 'none'})"
            )
        if arg.module in self._modules_done or arg.module in self._module_queue:
            raise ValueError(f"{arg.module} was already completed")

    # -- subscription ---------------------------------------------------------------------

    @workflow.update(name="select_subscription")
    async def select_subscription(self, arg: SubscriptionSelectedSignal) -> dict:
        self._tier_selection = arg.tier
        return {"tier": arg.tier}

    @select_subscription.validator
    def _validate_select_subscription(self, arg: SubscriptionSelectedSignal) -> None:
        self._check_at_step("subscription", arg.actor)
        if arg.tier not in TIERS:
            raise ValueError(f"unknown tier {arg.tier!r} (tiers: {', '.join(TIERS)})")
        if self._tier_selection is not None:
            raise ValueError("a tier was already selected and is being set up")
        if self._subscription and self._subscription.get("charge_status") == "charging":
            raise ValueError("the first charge is in flight; wait for its outcome")

    # -- services -------------------------------------------------------------------------

    @workflow.update(name="configure_service")
    async def configure_service(self, arg: ServiceConfiguredSignal) -> dict:
        """Queued for the step, which checks the service with the app database; the
        answer waits for that check, and a service that is not the practitioner's (or
        not active) fails the update with the check's reason."""
        self._service_queue.append(arg.service_id)
        await workflow.wait_condition(
            lambda: arg.service_id not in self._service_queue or self._status != "in_progress"
        )
        if arg.service_id not in self._services:
            reason = next(
                (
                    i["reason"]
                    for i in reversed(self._ignored)
                    if i["signal"] == "service_configured"
                ),
                f"service {arg.service_id} was not added",
            )
            raise refusal(reason)
        return {"service": arg.service_id, "configured": True}

    @configure_service.validator
    def _validate_configure_service(self, arg: ServiceConfiguredSignal) -> None:
        self._check_at_step("services", arg.actor)
        if arg.service_id in self._services or arg.service_id in self._service_queue:
            raise ValueError(f"service {arg.service_id} was already configured")
