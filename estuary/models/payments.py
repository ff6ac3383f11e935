"""Money: the double-entry ledger, payouts and their approvals, transfers, commissions.

Every amount is integer cents with a currency code. Balances are never stored: they are
sums of ledger entries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from estuary.contracts.approval_rules import REASON_CODES as REASON_CODES
from estuary.db import db
from estuary.models.base import UTCDateTime, utcnow

# `reconciling`: the transfer's outcome is unknown (timeout, lost answer); the hold stays
# until the provider says what happened. `cancelled`: the run was cancelled while waiting;
# `released`: the sweep closed a payout whose run had gone (provider known not to have
# paid). Closed unpaid: failed, rejected, expired, cancelled, released.
PAYOUT_STATUSES = (
    "pending_approval",
    "approved",
    "processing",
    "reconciling",
    "paid",
    "failed",
    "rejected",
    "expired",
    "cancelled",
    "released",
)


class LedgerTransaction(db.Model):
    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Idempotency: the same business event can post at most one transaction.
    key: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    entries: Mapped[list[LedgerEntry]] = relationship(back_populates="transaction")


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id"), index=True)
    # e.g. "practitioner:12:available", "practitioner:12:held", "platform:commission"
    account: Mapped[str] = mapped_column(String(100), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)  # signed
    currency: Mapped[str] = mapped_column(String(3), default="USD")

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")


class Payout(db.Model):
    __tablename__ = "payout"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[str] = mapped_column(String(20), default="pending_approval", index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(200), index=True)
    payment_method: Mapped[str] = mapped_column(String(30), default="bank_transfer")
    requested_by: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(500), default="")
    approvals_required: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The run that owns the payout now (a rerun that resumes it takes it over); the sweep
    # only settles a payout whose owning run is gone, and re-checks this before it writes.
    run_id: Mapped[str | None] = mapped_column(String(64))
    # When the transfer was first sent: the settle window of an unknown outcome counts
    # from here.
    transfer_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    approvals: Mapped[list[PayoutApproval]] = relationship(back_populates="payout")


class PayoutApproval(db.Model):
    __tablename__ = "payout_approval"
    __table_args__ = (UniqueConstraint("payout_id", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[int] = mapped_column(ForeignKey("payout.id"), index=True)
    approver: Mapped[str] = mapped_column(String(254))
    decision: Mapped[str] = mapped_column(String(10))  # approve / reject
    amount_cents: Mapped[int] = mapped_column(Integer)  # what the approver saw
    payee_id: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    payout: Mapped[Payout] = relationship(back_populates="approvals")


class Transfer(db.Model):
    """A transfer settled by the in-app payment provider; one per idempotency key."""

    __tablename__ = "transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payout.id"), index=True)
    destination: Mapped[str] = mapped_column(String(100))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    provider_reference: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The provider's own state: `processing` (accepted, money not yet out) until
    # `settles_at`, then `paid`. Rows written before this column existed are paid.
    status: Mapped[str] = mapped_column(String(20), default="paid", server_default="paid")
    settles_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Commission(db.Model):
    """Platform commission on one completed booking; written once per booking."""

    __tablename__ = "commission"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), unique=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    tier: Mapped[str] = mapped_column(String(20))
    rate_bps: Mapped[int] = mapped_column(Integer)  # basis points, 1500 = 15 %
    gross_cents: Mapped[int] = mapped_column(Integer)
    commission_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Package sessions: which exact part of the package's commission this booking took
    # (1-based); unique per purchase so two bookings can never take the same part.
    package_purchase_id: Mapped[int | None] = mapped_column(
        ForeignKey("package_purchase.id"), index=True
    )
    package_part: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("package_purchase_id", "package_part", name="uq_commission_package_part"),
    )


class PackageRelease(db.Model):
    """One released part of a package's net earnings (ProgressivePackagePayoutWorkflow).

    `part` is the 1-based release order; parts are exact splits of the purchase's
    `net_cents`, so they sum to it whatever order the sessions complete in. A booking
    releases at most one part, and a part is released at most once.
    """

    __tablename__ = "package_release"
    __table_args__ = (
        UniqueConstraint("package_purchase_id", "booking_id", name="uq_package_release_booking"),
        UniqueConstraint("package_purchase_id", "part", name="uq_package_release_part"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    package_purchase_id: Mapped[int] = mapped_column(ForeignKey("package_purchase.id"), index=True)
    # None for the expiry settlement (the remainder when the package expired).
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    part: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default="session")  # session / expiry
    ledger_key: Mapped[str] = mapped_column(String(250), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
