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
from workers.temporal.base_activities import read_activity, write_activity


@write_activity
def start_onboarding(inp: OnboardingStartInput) -> OnboardingStart:
    return OnboardingStart(**onboarding.start(inp.practitioner_id, inp.workflow_id))


@write_activity
def record_onboarding_progress(inp: OnboardingProgressInput) -> bool:
    return onboarding.record_progress(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        sequence=inp.sequence,
        current_step=inp.current_step,
        status=inp.status,
        stalled=inp.stalled,
        steps=inp.steps,
        resolve_flag_keys=inp.resolve_flag_keys,
    )


@write_activity
def send_onboarding_reminder(inp: OnboardingReminderInput) -> bool:
    return onboarding.send_reminder(
        practitioner_id=inp.practitioner_id,
        key=inp.key,
        step=inp.step,
        number=inp.number,
        waiting_for=inp.waiting_for,
        waiting_on=inp.waiting_on,
        deadline=inp.deadline,
        sent_at=inp.sent_at,
    )


@write_activity
def flag_stalled_onboarding(inp: StalledOnboardingInput) -> int:
    return onboarding.flag_stalled(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        flag_key=inp.flag_key,
        step=inp.step,
        waiting_for=inp.waiting_for,
        deadline=inp.deadline,
    )


@write_activity
def record_onboarding_extension(inp: OnboardingExtensionInput) -> None:
    onboarding.record_extension(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        flag_key=inp.flag_key,
        step=inp.step,
        days=inp.days,
        new_deadline=inp.new_deadline,
        reason=inp.reason,
        actor=inp.actor,
        notification_key=inp.notification_key,
    )


@write_activity
def complete_practitioner_profile(inp: ProfileCompletionInput) -> None:
    onboarding.complete_profile(inp.practitioner_id)


@write_activity
def record_documents_submitted(inp: DocumentsSubmissionInput) -> list[int]:
    return onboarding.record_documents_submitted(
        practitioner_id=inp.practitioner_id,
        submission_key=inp.submission_key,
        kinds=inp.kinds,
        licence_expires_on=inp.licence_expires_on,
    )


@write_activity
def record_document_review(inp: DocumentReviewInput) -> int:
    return onboarding.review_documents(
        practitioner_id=inp.practitioner_id,
        submission_key=inp.submission_key,
        approved=inp.approved,
        notes=inp.notes,
        reviewer=inp.reviewer,
        reviewed_at=inp.reviewed_at,
    )


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
    onboarding.confirm_service(practitioner_id=inp.practitioner_id, service_id=inp.service_id)


@write_activity
def activate_practitioner(inp: ActivationInput) -> None:
    onboarding.activate(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        activated_at=inp.activated_at,
    )


@write_activity
def reject_onboarding(inp: OnboardingRejectionInput) -> None:
    onboarding.reject(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        reason=inp.reason,
        actor=inp.actor,
        open_flag_keys=inp.open_flag_keys,
    )
