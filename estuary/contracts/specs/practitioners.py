"""The practitioners domain's workflows: onboarding, the local background-check
provider, subscription renewal, re-verification and training certification (the classes
are in `workers/practitioners/<feature>/workflows.py`)."""

from __future__ import annotations

from estuary.contracts.onboarding_actions import CONSOLE_SIGNALS, onboarding_actions
from estuary.contracts.practitioners import (
    BackgroundCheckProviderInput,
    BackgroundCheckResultSignal,
    CancelSubscriptionSignal,
    DocumentsSubmittedSignal,
    ExtendStepUpdate,
    OnboardingInput,
    ProfileCompletedSignal,
    RecheckDocumentsSignal,
    RejectOnboardingUpdate,
    RetryNowUpdate,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    SubscriptionRenewalInput,
    SubscriptionSelectedSignal,
    TrainingCertificationInput,
    TrainingModuleCompletedSignal,
    VerificationInput,
    WaiveChargeUpdate,
    background_check_workflow_id,
    onboarding_workflow_id,
    subscription_workflow_id,
    training_workflow_id,
    verification_workflow_id,
)
from estuary.contracts.spec import ScheduleDefinition, WorkflowSpec

DOMAIN = "practitioners"

ONBOARDING_SIGNALS = (
    ("profile_completed", ProfileCompletedSignal),
    ("documents_submitted", DocumentsSubmittedSignal),
    ("background_check_result", BackgroundCheckResultSignal),
    ("training_module_completed", TrainingModuleCompletedSignal),
    ("subscription_selected", SubscriptionSelectedSignal),
    ("service_configured", ServiceConfiguredSignal),
)
ONBOARDING_UPDATES = (
    ("complete_profile", ProfileCompletedSignal),
    ("submit_documents", DocumentsSubmittedSignal),
    ("review_documents", ReviewDocumentsUpdate),
    ("record_background_check", BackgroundCheckResultSignal),
    ("complete_training_module", TrainingModuleCompletedSignal),
    ("select_subscription", SubscriptionSelectedSignal),
    ("configure_service", ServiceConfiguredSignal),
    ("extend", ExtendStepUpdate),
    ("reject", RejectOnboardingUpdate),
)


def _practitioner(inp: OnboardingInput | VerificationInput | TrainingCertificationInput) -> int:
    return inp.practitioner_id


WORKFLOWS = (
    WorkflowSpec(
        name="BackgroundCheckProviderWorkflow",
        domain=DOMAIN,
        input_type=BackgroundCheckProviderInput,
        description=(
            "The local background-check provider: answers an onboarding's check by signal "
            "after BACKGROUND_CHECK_DELAY_SECONDS (started by the onboarding)."
        ),
        business_id=lambda inp, now: background_check_workflow_id(inp.reference),
        entity_type="background_check",
        entity_id=lambda inp: inp.reference,
    ),
    WorkflowSpec(
        name="PractitionerVerificationWorkflow",
        domain=DOMAIN,
        input_type=VerificationInput,
        description=(
            "Re-verifies a practitioner's documents periodically: reminders before a "
            "document expires, suspension when a required one lapses, reinstatement once "
            "valid again."
        ),
        business_id=lambda inp, now: verification_workflow_id(inp.practitioner_id),
        entity_type="practitioner",
        entity_id=_practitioner,
        signals=(("recheck", RecheckDocumentsSignal),),
    ),
    WorkflowSpec(
        name="PractitionerOnboardingWorkflow",
        domain=DOMAIN,
        input_type=OnboardingInput,
        description=(
            "Onboards a practitioner: profile, documents (ops review), background check, "
            "training, subscription (first charge), services; each step with reminders and "
            "a deadline, stalled steps wait for ops to extend or reject. Completion "
            "activates."
        ),
        business_id=lambda inp, now: onboarding_workflow_id(inp.practitioner_id),
        entity_type="practitioner",
        entity_id=_practitioner,
        signals=ONBOARDING_SIGNALS,
        updates=ONBOARDING_UPDATES,
        actions_now=onboarding_actions,
        console_signals=CONSOLE_SIGNALS,
    ),
    WorkflowSpec(
        name="SubscriptionRenewalWorkflow",
        domain=DOMAIN,
        input_type=SubscriptionRenewalInput,
        description=(
            "Renews a subscription each period: reminders 14/7/3/1 days before period end, "
            "the charge through payments (one per period), daily dunning with "
            "retry_now/waive, expiry suspends the practitioner; cancel ends it at period end."
        ),
        business_id=lambda inp, now: subscription_workflow_id(inp.subscription_id),
        entity_type="subscription",
        entity_id=lambda inp: inp.subscription_id,
        money=True,
        signals=(("cancel", CancelSubscriptionSignal),),
        updates=(("retry_now", RetryNowUpdate), ("waive", WaiveChargeUpdate)),
    ),
    WorkflowSpec(
        name="TrainingCertificationWorkflow",
        domain=DOMAIN,
        input_type=TrainingCertificationInput,
        description=(
            "Certifies a practitioner: assigns the certification's modules, tracks "
            "completions (training_module_completed), issues the certificate, reminds "
            "before expiry and opens re-certification (continues as new for each cycle)."
        ),
        business_id=lambda inp, now: training_workflow_id(inp.practitioner_id, inp.certification),
        entity_type="practitioner",
        entity_id=_practitioner,
        signals=(("training_module_completed", TrainingModuleCompletedSignal),),
    ),
)

SCHEDULES: list[ScheduleDefinition] = []
