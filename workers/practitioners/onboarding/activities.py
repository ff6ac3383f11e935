"""Onboarding activities (PractitionerOnboardingWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/practitioners/activities.py)."""

from __future__ import annotations

from estuary.contracts.practitioners import (
    ActivationInput,
    BackgroundCheckOutcomeInput,
    BackgroundCheckRequested,
    BackgroundCheckRequestInput,
    DocumentReviewInput,
    DocumentsSubmissionInput,
    FirstChargeOutcomeInput,
    OnboardingExtensionInput,
    OnboardingProgressInput,
    OnboardingRejectionInput,
    OnboardingReminderInput,
    OnboardingStart,
    OnboardingStartInput,
    OnboardingSubscriptionInput,
    ProfileCompletionInput,
    ServiceConfirmationInput,
    StalledOnboardingInput,
    SubscriptionSnapshot,
)
from estuary.services import background_checks, onboarding, subscriptions
from workers.practitioners.activities import parse_time
from workers.temporal.base_activities import as_kwargs, read_activity, write_activity


@write_activity
def start_onboarding(inp: OnboardingStartInput) -> OnboardingStart:
    return OnboardingStart(**onboarding.start(inp.practitioner_id, inp.workflow_id))


@write_activity
def record_onboarding_progress(inp: OnboardingProgressInput) -> bool:
    return onboarding.record_progress(**as_kwargs(inp))


@write_activity
def send_onboarding_reminder(inp: OnboardingReminderInput) -> bool:
    return onboarding.send_reminder(**as_kwargs(inp))


@write_activity
def flag_stalled_onboarding(inp: StalledOnboardingInput) -> int:
    return onboarding.flag_stalled(**as_kwargs(inp))


@write_activity
def record_onboarding_extension(inp: OnboardingExtensionInput) -> None:
    onboarding.record_extension(**as_kwargs(inp))


@write_activity
def complete_practitioner_profile(inp: ProfileCompletionInput) -> None:
    onboarding.complete_profile(inp.practitioner_id)


@write_activity
def record_documents_submitted(inp: DocumentsSubmissionInput) -> list[int]:
    return onboarding.record_documents_submitted(**as_kwargs(inp))


@write_activity
def record_document_review(inp: DocumentReviewInput) -> int:
    return onboarding.review_documents(**as_kwargs(inp))


@write_activity
def request_background_check(inp: BackgroundCheckRequestInput) -> BackgroundCheckRequested:
    check = background_checks.request_check(
        inp.practitioner_id, inp.workflow_id, inp.idempotency_key
    )
    return BackgroundCheckRequested(
        reference=check.reference,
        provider=background_checks.provider(),
        delay_seconds=background_checks.delay_seconds(),
    )


@write_activity
def record_background_check_result(inp: BackgroundCheckOutcomeInput) -> str:
    check = background_checks.record_result(inp.reference, inp.passed, parse_time(inp.completed_at))
    return check.status


@write_activity
def create_onboarding_subscription(inp: OnboardingSubscriptionInput) -> SubscriptionSnapshot:
    sub = subscriptions.create_for_onboarding(
        practitioner_id=inp.practitioner_id,
        tier=inp.tier,
        idempotency_key=inp.idempotency_key,
        period_start=parse_time(inp.period_start),
        replaces_subscription_id=inp.replaces_subscription_id,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@write_activity
def settle_first_subscription_charge(inp: FirstChargeOutcomeInput) -> SubscriptionSnapshot:
    sub = subscriptions.settle_first_charge(
        inp.subscription_id,
        paid=inp.paid,
        failure_reason=inp.failure_reason,
        notification_key=inp.notification_key,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@read_activity
def confirm_onboarding_service(inp: ServiceConfirmationInput) -> None:
    onboarding.confirm_service(**as_kwargs(inp))


@write_activity
def activate_practitioner(inp: ActivationInput) -> None:
    onboarding.activate(**as_kwargs(inp))


@write_activity
def reject_onboarding(inp: OnboardingRejectionInput) -> None:
    onboarding.reject(**as_kwargs(inp))
