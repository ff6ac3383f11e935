"""Practitioners: who they are, their onboarding, documents, checks, training, subscription."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from estuary.db import db
from estuary.models.base import UTCDateTime, utcnow

PRACTITIONER_STATUSES = ("pending", "onboarding", "active", "suspended", "rejected")
TIERS = ("basic", "pro", "premium")


class Practitioner(db.Model):
    __tablename__ = "practitioner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    tier: Mapped[str] = mapped_column(String(20), default="basic")
    profile_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_bookings: Mapped[bool] = mapped_column(Boolean, default=False)
    payout_destination: Mapped[str | None] = mapped_column(String(100))
    suspended_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    documents: Mapped[list[PractitionerDocument]] = relationship(back_populates="practitioner")

    def __repr__(self) -> str:
        return f"<Practitioner {self.id} {self.status}>"


class OnboardingProgress(db.Model):
    """The console's copy of an onboarding run's state, written by its activities."""

    __tablename__ = "onboarding_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(200))
    current_step: Mapped[str] = mapped_column(String(50), default="profile")
    # JSON text: {step: {"state": ..., "deadline": iso, "completed_at": iso}}
    steps_json: Mapped[str] = mapped_column(Text, default="{}")
    stalled: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="in_progress")
    # The run's own counter: a write carrying an older sequence than the stored one is stale
    # (activities of one run can finish out of order) and is dropped.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PractitionerDocument(db.Model):
    __tablename__ = "practitioner_document"
    __table_args__ = (UniqueConstraint("submission_key", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))  # licence, insurance, id
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_on: Mapped[date | None] = mapped_column(Date)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(254))
    review_notes: Mapped[str | None] = mapped_column(String(1000))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The onboarding submission round that brought this document in (idempotency of
    # `documents_submitted`); None for documents entered another way.
    submission_key: Mapped[str | None] = mapped_column(String(200), index=True)

    practitioner: Mapped[Practitioner] = relationship(back_populates="documents")


class BackgroundCheck(db.Model):
    __tablename__ = "background_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending/passed/failed
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrainingModule(db.Model):
    __tablename__ = "training_module"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    certification: Mapped[str] = mapped_column(String(50), index=True)  # "onboarding" or a cert
    required: Mapped[bool] = mapped_column(Boolean, default=True)


class TrainingCompletion(db.Model):
    __tablename__ = "training_completion"
    __table_args__ = (UniqueConstraint("practitioner_id", "module_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    module_code: Mapped[str] = mapped_column(String(50))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Certification(db.Model):
    __tablename__ = "certification"
    __table_args__ = (UniqueConstraint("practitioner_id", "certification", "issued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    certification: Mapped[str] = mapped_column(String(50))
    certificate_number: Mapped[str] = mapped_column(String(100), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="valid")  # valid/expired


class Subscription(db.Model):
    __tablename__ = "subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    tier: Mapped[str] = mapped_column(String(20))
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[str] = mapped_column(String(20), default="active")
    # pending (first period not paid yet) / active / past_due / expired / cancelled
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The request that created it (an onboarding's subscription selection); None otherwise.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class SubscriptionCharge(db.Model):
    """One charge per subscription period; the key makes a second charge impossible."""

    __tablename__ = "subscription_charge"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id"), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # paid/failed/waived
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
