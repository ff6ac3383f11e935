"""Activity inputs and results of the practitioners' upkeep workflows: subscription
renewal (reminders, notices, settling a period, ending or cancelling), periodic document
re-verification, and training certification (start, certificate, notices). No side
effects: the workflow sandbox imports this module. Also importable from
`estuary.contracts.practitioners`.
"""

from __future__ import annotations

from dataclasses import dataclass

from estuary.contracts.field_types import resolve_field_types


@dataclass
class SubscriptionRefInput:
    subscription_id: int


@dataclass
class RenewalReminderInput:
    subscription_id: int
    period_end: str
    days_before: int
    sent_at: str


@dataclass
class SubscriptionNoticeInput:
    subscription_id: int
    period_start: str  # the period being charged
    attempt: int
    failure_reason: str | None = None


@dataclass
class PeriodSettlementInput:
    subscription_id: int
    paid_period_start: str
    how: str  # "paid" | "waived"
    actor: str | None = None
    reason: str | None = None


@dataclass
class SubscriptionEndInput:
    subscription_id: int
    outcome: str  # "expired" | "cancelled"
    reason: str
    actor: str | None = None


@dataclass
class CancellationRequestInput:
    subscription_id: int
    actor: str
    reason: str


@dataclass
class DocumentCheckInput:
    practitioner_id: int
    as_of: str


@dataclass
class WatchedDocument:
    document_id: int
    kind: str
    expires_on: str  # ISO date; the document is valid through this day (UTC)


@dataclass
class DocumentCheck:
    practitioner_id: int
    practitioner_status: str
    valid: list[WatchedDocument]
    lapsed: list[WatchedDocument]
    suspended: bool  # suspended by this check
    reinstated: bool  # reinstated by this check


@dataclass
class ExpiryReminderInput:
    practitioner_id: int
    document_id: int
    kind: str
    expires_on: str
    days_before: int
    sent_at: str


@dataclass
class CertificationStartInput:
    practitioner_id: int
    certification: str
    completed_since: str | None


@dataclass
class CertificationStart:
    modules: list[str]
    completed_modules: list[str]


@dataclass
class CertificateIssueInput:
    practitioner_id: int
    certification: str
    issued_at: str
    expires_at: str


@dataclass
class CertificateIssued:
    certificate_number: str
    issued_at: str
    expires_at: str


@dataclass
class CertificateNoticeInput:
    practitioner_id: int
    certification: str
    certificate_number: str
    expires_at: str
    sent_at: str


resolve_field_types(__name__)
