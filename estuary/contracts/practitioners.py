"""Inputs, results, and signal/update arguments of the practitioners workflows and
activities (no side effects: the workflow sandbox imports this module).

Every signal/update argument carries `actor` (who sent it, filled in by the console or the
CLI) plus its data fields with `help` metadata, so the console can build its forms.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from estuary.contracts.checks import ACTOR_HELP
from estuary.contracts.field_types import resolve_field_types
from estuary.contracts.practitioner_upkeep import (
    CancellationRequestInput as CancellationRequestInput,
)
from estuary.contracts.practitioner_upkeep import CertificateIssued as CertificateIssued
from estuary.contracts.practitioner_upkeep import CertificateIssueInput as CertificateIssueInput
from estuary.contracts.practitioner_upkeep import CertificateNoticeInput as CertificateNoticeInput
from estuary.contracts.practitioner_upkeep import CertificationStart as CertificationStart
from estuary.contracts.practitioner_upkeep import CertificationStartInput as CertificationStartInput
from estuary.contracts.practitioner_upkeep import DocumentCheck as DocumentCheck
from estuary.contracts.practitioner_upkeep import DocumentCheckInput as DocumentCheckInput
from estuary.contracts.practitioner_upkeep import ExpiryReminderInput as ExpiryReminderInput
from estuary.contracts.practitioner_upkeep import PeriodSettlementInput as PeriodSettlementInput
from estuary.contracts.practitioner_upkeep import RenewalReminderInput as RenewalReminderInput
from estuary.contracts.practitioner_upkeep import SubscriptionEndInput as SubscriptionEndInput
from estuary.contracts.practitioner_upkeep import SubscriptionNoticeInput as SubscriptionNoticeInput

# The activity inputs of renewal, re-verification and training live in their own
# module; importable from here as before.
from estuary.contracts.practitioner_upkeep import SubscriptionRefInput as SubscriptionRefInput
from estuary.contracts.practitioner_upkeep import WatchedDocument as WatchedDocument

TASK_QUEUE = "practitioners"

# The guide's six onboarding steps, in order.
ONBOARDING_STEPS = (
    "profile",
    "documents",
    "background_check",
    "training",
    "subscription",
    "services",
)
OnboardingStep = Literal[
    "profile", "documents", "background_check", "training", "subscription", "services"
]
# Same values as estuary.models.TIERS (a test keeps them equal; this module may not
# import the models).
TIERS = ("basic", "pro", "premium")
Tier = Literal["basic", "pro", "premium"]
# The documents a practitioner submits (the one home of the kinds: the documents step's
# checkboxes, the parser, the workflow and the services read these).
DocumentKind = Literal["licence", "insurance", "id"]
DOCUMENT_KINDS: tuple[str, ...] = typing.get_args(DocumentKind)
DOCUMENT_KIND_LABELS = {
    "licence": "Practice licence",
    "insurance": "Insurance certificate",
    "id": "Identity document",
}
ONBOARDING_CERTIFICATION = "onboarding"
# Renewal reminders go out this many days before the period ends.
RENEWAL_REMINDER_DAYS = (14, 7, 3, 1)

ISO_DATE = r"\d{4}-\d{2}-\d{2}"
CODE_PATTERN = r"[a-z0-9][a-z0-9_-]{0,49}"


def _actor() -> str:
    return field(metadata={"help": ACTOR_HELP, "max_length": 254})  # type: ignore[return-value]


def onboarding_workflow_id(practitioner_id: int) -> str:
    return f"practitioners-onboarding-{practitioner_id}"


def verification_workflow_id(practitioner_id: int) -> str:
    return f"practitioners-verification-{practitioner_id}"


def subscription_workflow_id(subscription_id: int) -> str:
    return f"practitioners-subscription-{subscription_id}"


def training_workflow_id(practitioner_id: int, certification: str) -> str:
    return f"practitioners-training-{practitioner_id}-{certification}"


def background_check_workflow_id(reference: str) -> str:
    return f"practitioners-background-check-{reference}"


# --- workflow inputs and results ---------------------------------------------------------


@dataclass
class OnboardingInput:
    practitioner_id: int = field(metadata={"help": "The practitioner to onboard"})
    step_deadline_days: int = field(
        default=7,
        metadata={
            "help": "Days each step may take before the onboarding is marked stalled",
            "min": 1,
            "max": 90,
        },
    )
    reminder_days: list[int] = field(
        default_factory=lambda: [2, 5],
        metadata={
            "help": "Days after a step starts when the practitioner is reminded",
            "max_items": 5,
        },
    )

    def validate(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not 1 <= self.step_deadline_days <= 90:
            problems["step_deadline_days"] = "must be between 1 and 90"
        if any(d < 1 or d >= self.step_deadline_days for d in self.reminder_days):
            problems["reminder_days"] = (
                f"each must be at least 1 and before the deadline ({self.step_deadline_days} days)"
            )
        elif sorted(set(self.reminder_days)) != list(self.reminder_days):
            problems["reminder_days"] = "must be increasing, without repeats"
        return problems


@dataclass
class OnboardingResult:
    practitioner_id: int
    outcome: str  # "completed" | "rejected"
    steps_done: list[str]
    reason: str | None = None
    finished_at: str | None = None


@dataclass
class VerificationInput:
    practitioner_id: int = field(metadata={"help": "The practitioner whose documents to watch"})
    check_interval_days: int = field(
        default=30,
        metadata={"help": "Days between two re-verifications", "min": 1, "max": 365},
    )
    reminder_days_before_expiry: list[int] = field(
        default_factory=lambda: [30, 7, 1],
        metadata={"help": "Days before a document expires when reminders go out", "max_items": 5},
    )

    def validate(self) -> dict[str, str]:
        if any(not 1 <= d <= 365 for d in self.reminder_days_before_expiry):
            return {"reminder_days_before_expiry": "each must be between 1 and 365"}
        return {}


@dataclass
class VerificationResult:
    practitioner_id: int
    outcome: str  # "practitioner_rejected"
    checks: int


@dataclass
class SubscriptionRenewalInput:
    subscription_id: int = field(metadata={"help": "The subscription to renew"})
    dunning_retries: int = field(
        default=3,
        metadata={
            "help": "Daily retries after a failed charge before it expires",
            "min": 0,
            "max": 10,
        },
    )


@dataclass
class SubscriptionRenewalResult:
    subscription_id: int
    outcome: str  # "expired" | "cancelled" | "not_renewable"
    period_start: str | None = None
    reason: str | None = None


@dataclass
class TrainingCertificationInput:
    practitioner_id: int = field(metadata={"help": "The practitioner being certified"})
    certification: str = field(
        metadata={
            "help": "Certification code (its training modules are assigned)",
            "pattern": CODE_PATTERN,
            "max_length": 50,
        }
    )
    validity_days: int = field(
        default=365, metadata={"help": "Days a certificate stays valid", "min": 1, "max": 3650}
    )
    expiry_reminder_days: int = field(
        default=30,
        metadata={
            "help": "Days before expiry when the reminder goes out and re-certification opens",
            "min": 1,
            "max": 365,
        },
    )
    # Set by re-certification (continue-as-new); leave empty when starting by hand.
    cycle: int = field(
        default=1,
        metadata={"help": "Certification cycle (set by re-certification)", "min": 1, "max": 1000},
    )
    previous_certificate: str = field(
        default="",
        metadata={"help": "Certificate being renewed (set by re-certification)", "max_length": 100},
    )
    previous_expires_at: str = field(
        default="", metadata={"help": "When it expires (set by re-certification)", "max_length": 40}
    )

    def validate(self) -> dict[str, str]:
        if self.expiry_reminder_days >= self.validity_days:
            return {"expiry_reminder_days": "must be shorter than validity_days"}
        return {}


@dataclass
class TrainingCertificationResult:
    practitioner_id: int
    certification: str
    outcome: str
    certificate_number: str | None = None


@dataclass
class BackgroundCheckProviderInput:
    """The local background-check provider: answers the onboarding after a delay."""

    practitioner_id: int = field(metadata={"help": "The practitioner checked"})
    reference: str = field(
        metadata={"help": "The check's reference", "pattern": r"BC-[0-9A-Z-]{1,60}"}
    )
    onboarding_workflow_id: str = field(
        metadata={
            "help": "The onboarding run to answer",
            "pattern": r"practitioners-onboarding-\d+",
        }
    )
    delay_seconds: int = field(
        default=30,
        metadata={"help": "Seconds before the provider answers", "min": 0, "max": 30 * 24 * 3600},
    )


@dataclass
class BackgroundCheckProviderResult:
    reference: str
    passed: bool


# --- signal and update arguments --------------------------------------------------------


@dataclass
class ProfileCompletedSignal:
    actor: str = _actor()


@dataclass
class DocumentsSubmittedSignal:
    actor: str = _actor()
    kinds: list[DocumentKind] = field(
        default_factory=lambda: list(DOCUMENT_KINDS),
        metadata={
            "help": "The documents submitted (tick each one)",
            "max_items": 3,
            "choice_labels": DOCUMENT_KIND_LABELS,
        },
    )
    licence_expires_on: str = field(
        default="",
        metadata={"help": "Licence expiry date (YYYY-MM-DD)", "pattern": f"({ISO_DATE})?"},
    )

    def validate(self) -> dict[str, str]:
        unknown = [k for k in self.kinds if k not in DOCUMENT_KINDS]
        if unknown or not self.kinds:
            return {"kinds": f"each must be one of: {', '.join(DOCUMENT_KINDS)}"}
        return {}


@dataclass
class ReviewDocumentsUpdate:
    actor: str = _actor()
    approved: bool = field(metadata={"help": "Approve the documents (no: ask for new ones)"})
    notes: str = field(
        default="",
        metadata={"help": "What is wrong (required when not approved)", "max_length": 1000},
    )

    def validate(self) -> dict[str, str]:
        if not self.approved and not self.notes.strip():
            return {"notes": "say what is wrong when asking for new documents"}
        return {}


@dataclass
class BackgroundCheckResultSignal:
    actor: str = _actor()
    passed: bool = field(metadata={"help": "Did the check pass?"})
    reference: str = field(
        metadata={"help": "The check's reference (shown in progress)", "max_length": 100}
    )


@dataclass
class TrainingModuleCompletedSignal:
    actor: str = _actor()
    module: str = field(
        metadata={"help": "Training module code, e.g. safety-101", "pattern": CODE_PATTERN}
    )


@dataclass
class SubscriptionSelectedSignal:
    actor: str = _actor()
    tier: Tier = field(metadata={"help": "Subscription tier"})


@dataclass
class ServiceConfiguredSignal:
    actor: str = _actor()
    service_id: int = field(metadata={"help": "The practitioner's service that is ready"})


@dataclass
class ExtendStepUpdate:
    actor: str = _actor()
    step: OnboardingStep = field(metadata={"help": "The current (stalled) step"})
    days: int = field(metadata={"help": "Days to add to its deadline", "min": 1, "max": 90})
    reason: str = field(metadata={"help": "Why the extension", "max_length": 500})


@dataclass
class RejectOnboardingUpdate:
    actor: str = _actor()
    reason: str = field(metadata={"help": "Why the practitioner is rejected", "max_length": 500})


@dataclass
class RetryNowUpdate:
    actor: str = _actor()
    note: str = field(default="", metadata={"help": "Why retry now", "max_length": 500})


@dataclass
class WaiveChargeUpdate:
    actor: str = _actor()
    reason: str = field(
        metadata={"help": "Why this period is granted without payment", "max_length": 500}
    )


@dataclass
class CancelSubscriptionSignal:
    actor: str = _actor()
    reason: str = field(default="", metadata={"help": "Why it is cancelled", "max_length": 500})


@dataclass
class RecheckDocumentsSignal:
    actor: str = _actor()
    reason: str = field(default="", metadata={"help": "Why re-check now", "max_length": 500})


# --- activity inputs and results ---------------------------------------------------------


@dataclass
class OnboardingStartInput:
    practitioner_id: int
    workflow_id: str


@dataclass
class OnboardingStart:
    practitioner_id: int
    email: str
    name: str
    profile_complete: bool
    modules: list[str]
    completed_modules: list[str]


@dataclass
class OnboardingProgressInput:
    practitioner_id: int
    workflow_id: str
    sequence: int
    current_step: str
    status: str  # in_progress / completed / rejected
    stalled: bool
    steps: dict
    # Stalled-onboarding flags to close (their step moved on); closed even if this write
    # is stale.
    resolve_flag_keys: list[str] = field(default_factory=list)


@dataclass
class OnboardingReminderInput:
    practitioner_id: int
    key: str
    step: str
    number: int
    waiting_for: str
    waiting_on: str  # "practitioner" | "ops" | "provider"
    deadline: str
    sent_at: str


@dataclass
class StalledOnboardingInput:
    practitioner_id: int
    workflow_id: str
    flag_key: str
    step: str
    waiting_for: str
    deadline: str


@dataclass
class OnboardingExtensionInput:
    practitioner_id: int
    workflow_id: str
    flag_key: str | None
    step: str
    days: int
    new_deadline: str
    reason: str
    actor: str
    notification_key: str


@dataclass
class ProfileCompletionInput:
    practitioner_id: int


@dataclass
class DocumentsSubmissionInput:
    practitioner_id: int
    submission_key: str
    kinds: list[str]
    licence_expires_on: str | None


@dataclass
class DocumentReviewInput:
    practitioner_id: int
    submission_key: str
    approved: bool
    notes: str
    reviewer: str
    reviewed_at: str


@dataclass
class BackgroundCheckRequestInput:
    practitioner_id: int
    workflow_id: str
    idempotency_key: str


@dataclass
class BackgroundCheckRequested:
    reference: str
    provider: str  # "local" (answers by itself after a delay) | "manual" (ops records it)
    delay_seconds: int


@dataclass
class BackgroundCheckOutcomeInput:
    reference: str
    passed: bool
    recorded_by: str
    completed_at: str


@dataclass
class LocalBackgroundCheckInput:
    reference: str


@dataclass
class ModuleCompletionInput:
    practitioner_id: int
    module: str
    completed_at: str


@dataclass
class OnboardingSubscriptionInput:
    practitioner_id: int
    tier: str
    idempotency_key: str
    period_start: str
    replaces_subscription_id: int | None = None


@dataclass
class SubscriptionSnapshot:
    subscription_id: int
    practitioner_id: int
    tier: str
    price_cents: int
    currency: str
    status: str
    period_start: str
    period_end: str
    cancel_at_period_end: bool


@dataclass
class FirstChargeOutcomeInput:
    subscription_id: int
    paid: bool
    failure_reason: str | None
    notification_key: str


@dataclass
class ServiceConfirmationInput:
    practitioner_id: int
    service_id: int


@dataclass
class ActivationInput:
    practitioner_id: int
    workflow_id: str
    activated_at: str


@dataclass
class OnboardingRejectionInput:
    practitioner_id: int
    workflow_id: str
    reason: str
    actor: str
    open_flag_keys: list[str]


resolve_field_types(__name__)
