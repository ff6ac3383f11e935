"""Practitioners activities: thin calls into estuary.services (which hold the rules).

Sync functions (they run on the worker's thread pool), each in its own app context;
writes run in one transaction. Times that matter to the business (when a reminder went
out, when a review happened) come from the workflow (`workflow.now()`), not the wall
clock, so they are the same on replay and under time skipping.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from estuary.contracts.practitioners import (
    ActivationInput,
    BackgroundCheckOutcomeInput,
    BackgroundCheckProviderResult,
    BackgroundCheckRequested,
    BackgroundCheckRequestInput,
    CancellationRequestInput,
    CertificateIssued,
    CertificateIssueInput,
    CertificateNoticeInput,
    CertificationStart,
    CertificationStartInput,
    DocumentCheck,
    DocumentCheckInput,
    DocumentReviewInput,
    DocumentsSubmissionInput,
    ExpiryReminderInput,
    FirstChargeOutcomeInput,
    LocalBackgroundCheckInput,
    ModuleCompletionInput,
    OnboardingExtensionInput,
    OnboardingProgressInput,
    OnboardingRejectionInput,
    OnboardingReminderInput,
    OnboardingStart,
    OnboardingStartInput,
    OnboardingSubscriptionInput,
    PeriodSettlementInput,
    ProfileCompletionInput,
    RenewalReminderInput,
    ServiceConfirmationInput,
    StalledOnboardingInput,
    SubscriptionEndInput,
    SubscriptionNoticeInput,
    SubscriptionRefInput,
    SubscriptionSnapshot,
    WatchedDocument,
)
from estuary.services import background_checks, onboarding, subscriptions, training, verification
from workers.temporal.base_activities import app_activity, transactional_activity
from workers.temporal.decorators import monitored_activity


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- onboarding ---------------------------------------------------------------------------


@activity.defn(name="start_onboarding")
@monitored_activity
@app_activity
@transactional_activity
def start_onboarding(inp: OnboardingStartInput) -> OnboardingStart:
    return OnboardingStart(**onboarding.start(inp.practitioner_id, inp.workflow_id))


@activity.defn(name="record_onboarding_progress")
@monitored_activity
@app_activity
@transactional_activity
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


@activity.defn(name="send_onboarding_reminder")
@monitored_activity
@app_activity
@transactional_activity
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


@activity.defn(name="flag_stalled_onboarding")
@monitored_activity
@app_activity
@transactional_activity
def flag_stalled_onboarding(inp: StalledOnboardingInput) -> int:
    return onboarding.flag_stalled(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        flag_key=inp.flag_key,
        step=inp.step,
        waiting_for=inp.waiting_for,
        deadline=inp.deadline,
    )


@activity.defn(name="record_onboarding_extension")
@monitored_activity
@app_activity
@transactional_activity
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


@activity.defn(name="complete_practitioner_profile")
@monitored_activity
@app_activity
@transactional_activity
def complete_practitioner_profile(inp: ProfileCompletionInput) -> None:
    onboarding.complete_profile(inp.practitioner_id)


@activity.defn(name="record_documents_submitted")
@monitored_activity
@app_activity
@transactional_activity
def record_documents_submitted(inp: DocumentsSubmissionInput) -> list[int]:
    return onboarding.record_documents_submitted(
        practitioner_id=inp.practitioner_id,
        submission_key=inp.submission_key,
        kinds=inp.kinds,
        licence_expires_on=inp.licence_expires_on,
    )


@activity.defn(name="record_document_review")
@monitored_activity
@app_activity
@transactional_activity
def record_document_review(inp: DocumentReviewInput) -> int:
    return onboarding.review_documents(
        practitioner_id=inp.practitioner_id,
        submission_key=inp.submission_key,
        approved=inp.approved,
        notes=inp.notes,
        reviewer=inp.reviewer,
        reviewed_at=inp.reviewed_at,
    )


@activity.defn(name="request_background_check")
@monitored_activity
@app_activity
@transactional_activity
def request_background_check(inp: BackgroundCheckRequestInput) -> BackgroundCheckRequested:
    check = background_checks.request_check(
        inp.practitioner_id, inp.workflow_id, inp.idempotency_key
    )
    return BackgroundCheckRequested(
        reference=check.reference,
        provider=background_checks.provider(),
        delay_seconds=background_checks.delay_seconds(),
    )


@activity.defn(name="record_background_check_result")
@monitored_activity
@app_activity
@transactional_activity
def record_background_check_result(inp: BackgroundCheckOutcomeInput) -> str:
    check = background_checks.record_result(inp.reference, inp.passed, _time(inp.completed_at))
    return check.status


@activity.defn(name="run_local_background_check")
@monitored_activity
@app_activity
def run_local_background_check(inp: LocalBackgroundCheckInput) -> BackgroundCheckProviderResult:
    return BackgroundCheckProviderResult(
        reference=inp.reference, passed=background_checks.local_verdict(inp.reference)
    )


@activity.defn(name="record_module_completion")
@monitored_activity
@app_activity
@transactional_activity
def record_module_completion(inp: ModuleCompletionInput) -> bool:
    return onboarding.record_module_completion(
        practitioner_id=inp.practitioner_id, module=inp.module, completed_at=inp.completed_at
    )


@activity.defn(name="create_onboarding_subscription")
@monitored_activity
@app_activity
@transactional_activity
def create_onboarding_subscription(inp: OnboardingSubscriptionInput) -> SubscriptionSnapshot:
    sub = subscriptions.create_for_onboarding(
        practitioner_id=inp.practitioner_id,
        tier=inp.tier,
        idempotency_key=inp.idempotency_key,
        period_start=_time(inp.period_start),
        replaces_subscription_id=inp.replaces_subscription_id,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@activity.defn(name="settle_first_subscription_charge")
@monitored_activity
@app_activity
@transactional_activity
def settle_first_subscription_charge(inp: FirstChargeOutcomeInput) -> SubscriptionSnapshot:
    sub = subscriptions.settle_first_charge(
        inp.subscription_id,
        paid=inp.paid,
        failure_reason=inp.failure_reason,
        notification_key=inp.notification_key,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@activity.defn(name="confirm_onboarding_service")
@monitored_activity
@app_activity
def confirm_onboarding_service(inp: ServiceConfirmationInput) -> None:
    onboarding.confirm_service(practitioner_id=inp.practitioner_id, service_id=inp.service_id)


@activity.defn(name="activate_practitioner")
@monitored_activity
@app_activity
@transactional_activity
def activate_practitioner(inp: ActivationInput) -> None:
    onboarding.activate(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        activated_at=inp.activated_at,
    )


@activity.defn(name="reject_onboarding")
@monitored_activity
@app_activity
@transactional_activity
def reject_onboarding(inp: OnboardingRejectionInput) -> None:
    onboarding.reject(
        practitioner_id=inp.practitioner_id,
        workflow_id=inp.workflow_id,
        reason=inp.reason,
        actor=inp.actor,
        open_flag_keys=inp.open_flag_keys,
    )


# --- subscription renewal -----------------------------------------------------------------


@activity.defn(name="load_subscription")
@monitored_activity
@app_activity
def load_subscription(inp: SubscriptionRefInput) -> SubscriptionSnapshot:
    sub = subscriptions.get_subscription(inp.subscription_id)
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@activity.defn(name="send_renewal_reminder")
@monitored_activity
@app_activity
@transactional_activity
def send_renewal_reminder(inp: RenewalReminderInput) -> bool:
    return subscriptions.send_renewal_reminder(
        inp.subscription_id,
        period_end=inp.period_end,
        days_before=inp.days_before,
        sent_at=inp.sent_at,
    )


@activity.defn(name="mark_subscription_past_due")
@monitored_activity
@app_activity
@transactional_activity
def mark_subscription_past_due(inp: SubscriptionNoticeInput) -> None:
    subscriptions.mark_past_due(
        inp.subscription_id,
        period_start=inp.period_start,
        attempt=inp.attempt,
        failure_reason=inp.failure_reason,
    )


@activity.defn(name="request_subscription_cancellation")
@monitored_activity
@app_activity
@transactional_activity
def request_subscription_cancellation(inp: CancellationRequestInput) -> None:
    subscriptions.request_cancellation(inp.subscription_id, actor=inp.actor, reason=inp.reason)


@activity.defn(name="settle_subscription_period")
@monitored_activity
@app_activity
@transactional_activity
def settle_subscription_period(inp: PeriodSettlementInput) -> SubscriptionSnapshot:
    sub = subscriptions.settle_period(
        inp.subscription_id,
        paid_period_start=_time(inp.paid_period_start),
        how=inp.how,
        actor=inp.actor,
        reason=inp.reason,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@activity.defn(name="end_subscription")
@monitored_activity
@app_activity
@transactional_activity
def end_subscription(inp: SubscriptionEndInput) -> None:
    subscriptions.end_subscription(
        inp.subscription_id, outcome=inp.outcome, reason=inp.reason, actor=inp.actor
    )


# --- verification -------------------------------------------------------------------------


def _watched(items: list[verification.Watched]) -> list[WatchedDocument]:
    return [WatchedDocument(w.document_id, w.kind, w.expires_on.isoformat()) for w in items]


@activity.defn(name="check_practitioner_documents")
@monitored_activity
@app_activity
@transactional_activity
def check_practitioner_documents(inp: DocumentCheckInput) -> DocumentCheck:
    outcome = verification.check_documents(inp.practitioner_id, _time(inp.as_of))
    return DocumentCheck(
        practitioner_id=inp.practitioner_id,
        practitioner_status=outcome.practitioner_status,
        valid=_watched(outcome.valid),
        lapsed=_watched(outcome.lapsed),
        suspended=outcome.suspended,
        reinstated=outcome.reinstated,
    )


@activity.defn(name="send_document_expiry_reminder")
@monitored_activity
@app_activity
@transactional_activity
def send_document_expiry_reminder(inp: ExpiryReminderInput) -> bool:
    return verification.send_expiry_reminder(
        practitioner_id=inp.practitioner_id,
        document_id=inp.document_id,
        kind=inp.kind,
        expires_on=inp.expires_on,
        days_before=inp.days_before,
        sent_at=inp.sent_at,
    )


# --- training certification ---------------------------------------------------------------


@activity.defn(name="start_certification")
@monitored_activity
@app_activity
def start_certification(inp: CertificationStartInput) -> CertificationStart:
    since = _time(inp.completed_since) if inp.completed_since else None
    modules, done = training.start_certification(inp.practitioner_id, inp.certification, since)
    return CertificationStart(modules=modules, completed_modules=done)


@activity.defn(name="issue_certificate")
@monitored_activity
@app_activity
@transactional_activity
def issue_certificate(inp: CertificateIssueInput) -> CertificateIssued:
    cert = training.issue_certificate(
        inp.practitioner_id, inp.certification, _time(inp.issued_at), _time(inp.expires_at)
    )
    return CertificateIssued(
        certificate_number=cert.certificate_number,
        issued_at=inp.issued_at,
        expires_at=inp.expires_at,
    )


@activity.defn(name="send_certificate_expiry_reminder")
@monitored_activity
@app_activity
@transactional_activity
def send_certificate_expiry_reminder(inp: CertificateNoticeInput) -> bool:
    return training.send_expiry_reminder(
        inp.practitioner_id,
        inp.certification,
        inp.certificate_number,
        inp.expires_at,
        inp.sent_at,
    )


@activity.defn(name="expire_certificate")
@monitored_activity
@app_activity
@transactional_activity
def expire_certificate(inp: CertificateNoticeInput) -> bool:
    return training.expire_certificate(inp.certificate_number)
