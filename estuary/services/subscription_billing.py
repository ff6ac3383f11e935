"""Charging practitioners' subscriptions: one SubscriptionCharge row per period.

The idempotency key is `subscription:{id}:{period_start as UTC ISO}`; the row's unique
constraint makes a second charge for the same period impossible. A repeated call for an
attempt already made returns that attempt's result; a higher attempt number after a
decline charges again on the same row (dunning).

Ledger legs of a paid charge (key `subscription-charge:{idempotency key}`):
    external:subscriptions          -amount
    platform:subscription_revenue   +amount
A declined charge posts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from estuary.db import db, lock_row
from estuary.models import Subscription, SubscriptionCharge
from estuary.models.base import utcnow
from estuary.services import ledger, payment_provider
from estuary.services.errors import BusinessRuleError, NotFoundError

SETTLED = ("paid", "waived")


@dataclass(frozen=True)
class ChargeResult:
    subscription_id: int
    charge_id: int
    status: str  # paid / failed / waived
    failure_reason: str | None = None


def parse_period_start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise BusinessRuleError(
            f"period_start {text!r} is not an ISO 8601 date-time", field="period_start"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def charge_key(subscription_id: int, period_start: datetime) -> str:
    return f"subscription:{subscription_id}:{period_start.astimezone(UTC).isoformat()}"


def charge_subscription(
    subscription_id: int, period_start_text: str, amount_cents: int, attempt: int = 1
) -> ChargeResult:
    """Charge one period once; a decline is a result, transient trouble raises.

    Long on purpose: the charge row, the provider call and the outcome are one idempotent
    sequence."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise BusinessRuleError("amount_cents must be a positive whole number of cents")
    if not isinstance(attempt, int) or attempt < 1:
        raise BusinessRuleError("attempt must be 1 or more")
    period_start = parse_period_start(period_start_text)
    # Serialise charges of one subscription (row lock on PostgreSQL, write lock on SQLite).
    lock_row(Subscription, subscription_id)
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFoundError(f"subscription {subscription_id} does not exist")
    key = charge_key(subscription_id, period_start)
    row = db.session.scalar(
        select(SubscriptionCharge).where(SubscriptionCharge.idempotency_key == key)
    )
    if row is not None:
        if row.amount_cents != amount_cents:
            raise BusinessRuleError(
                f"the charge for this period was for {row.amount_cents} cents, not {amount_cents}"
            )
        if row.status in SETTLED or (row.status == "failed" and attempt <= row.attempts):
            return _result(row)
    else:
        row = SubscriptionCharge(
            subscription_id=subscription_id,
            period_start=period_start,
            amount_cents=amount_cents,
            currency=subscription.currency,
            idempotency_key=key,
            status="pending",
            attempts=0,
        )
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            raise payment_provider.ProviderUnavailable(
                f"a concurrent charge for {key} is being written; retry"
            ) from None
    outcome = payment_provider.charge(
        idempotency_key=f"{key}:attempt:{attempt}",
        subscription_id=subscription_id,
        amount_cents=amount_cents,
    )
    row.attempts = max(row.attempts or 0, attempt)
    if outcome.approved:
        row.status = "paid"
        row.failure_reason = None
        row.settled_at = utcnow()
        ledger.post(
            f"subscription-charge:{key}",
            "subscription_charge",
            [
                ledger.Leg(ledger.EXTERNAL_SUBSCRIPTIONS, -amount_cents),
                ledger.Leg(ledger.PLATFORM_SUBSCRIPTION_REVENUE, amount_cents),
            ],
            description=f"Subscription {subscription_id}, period from {period_start:%Y-%m-%d}",
            currency=subscription.currency,
        )
    else:
        row.status = "failed"
        row.failure_reason = outcome.failure_reason
    db.session.flush()
    return _result(row)


def _result(row: SubscriptionCharge) -> ChargeResult:
    return ChargeResult(row.subscription_id, row.id, row.status, row.failure_reason)
