"""Inputs and results of the payments workflows and activities (no side effects)."""

from __future__ import annotations

from dataclasses import dataclass, field

TASK_QUEUE = "payments"


@dataclass
class LedgerReconciliationInput:
    requested_by: str = field(
        default="schedule", metadata={"help": "Who asked for the check", "max_length": 254}
    )


@dataclass
class LedgerReconciliationResult:
    transactions: int
    entries: int
    unbalanced_keys: list[str]
    total_cents: int
    balanced: bool


# --- Contracts other domains call on the `payments` queue (by activity name) ------------
# These names and shapes are fixed: bookings and practitioners depend on them.


@dataclass
class PackageSessionCompletedInput:
    """`notify_package_session_completed`: signal-with-start of the purchase's
    ProgressivePackagePayoutWorkflow (`payments-package-payout-{purchase_id}`) with
    `session_completed(booking_id)`. Repeats are harmless (the workflow ignores them)."""

    package_purchase_id: int
    booking_id: int


@dataclass
class BookingCommissionInput:
    """`record_booking_commission`: commission row + ledger entries, once per booking."""

    booking_id: int


@dataclass
class BookingCommissionResult:
    booking_id: int
    commission_cents: int
    created: bool  # False when it had been recorded before


@dataclass
class SubscriptionChargeInput:
    """`charge_subscription`: charge one subscription period, once per idempotency key.

    A declined charge is a result (status "failed"), not an exception, so the caller's
    dunning logic decides what happens next.
    """

    subscription_id: int
    period_start: str  # ISO 8601 UTC; with subscription_id it makes the idempotency key
    amount_cents: int
    attempt: int = 1


@dataclass
class SubscriptionChargeResult:
    subscription_id: int
    charge_id: int
    status: str  # "paid" | "failed"
    failure_reason: str | None = None
