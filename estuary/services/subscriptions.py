"""Practitioner subscriptions: tiers and prices, periods, renewal notices, expiry.

Charging is the payments domain's job (`charge_subscription` on the payments queue, one
`SubscriptionCharge` per subscription period); this module keeps the subscription itself:
creating it at onboarding, moving it to the next period once a period is paid or waived,
and ending it (expired unpaid, or cancelled), which stops the practitioner taking new
bookings. Periods are calendar months.
"""

from __future__ import annotations

import calendar
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import TIERS, Practitioner, Subscription, SubscriptionCharge
from estuary.models.base import utcnow
from estuary.services import notifications
from estuary.services.errors import BusinessRuleError, NotFoundError

TIER_PRICES_CENTS = {"basic": 2_900, "pro": 5_900, "premium": 9_900}


def add_month(value: datetime) -> datetime:
    """The same moment one calendar month later (Jan 31 -> Feb 28/29)."""
    year, month = (value.year + 1, 1) if value.month == 12 else (value.year, value.month + 1)
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def price_for(tier: str) -> int:
    if tier not in TIERS:
        raise BusinessRuleError(f"unknown tier {tier!r} (tiers: {', '.join(TIERS)})", field="tier")
    return TIER_PRICES_CENTS[tier]


def get_subscription(subscription_id: int) -> Subscription:
    sub = db.session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFoundError(
            f"subscription {subscription_id} does not exist", field="subscription_id"
        )
    return sub


def snapshot(sub: Subscription) -> dict:
    return {
        "subscription_id": sub.id,
        "practitioner_id": sub.practitioner_id,
        "tier": sub.tier,
        "price_cents": sub.price_cents,
        "currency": sub.currency,
        "status": sub.status,
        "period_start": sub.current_period_start.isoformat(),
        "period_end": sub.current_period_end.isoformat(),
        "cancel_at_period_end": bool(sub.cancel_at_period_end),
    }


def _practitioner(sub: Subscription) -> Practitioner:
    practitioner = db.session.get(Practitioner, sub.practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {sub.practitioner_id} does not exist")
    return practitioner


def _notify(sub: Subscription, key: str, template: str, payload: dict) -> None:
    notifications.send(
        key=key,
        channel="email",
        recipient=_practitioner(sub).email,
        template=template,
        payload={"subscription_id": sub.id, "tier": sub.tier, **payload},
        entity_type="subscription",
        entity_id=sub.id,
    )


# --- onboarding ---------------------------------------------------------------------------


def create_for_onboarding(
    *,
    practitioner_id: int,
    tier: str,
    idempotency_key: str,
    period_start: datetime,
    replaces_subscription_id: int | None = None,
) -> Subscription:
    """The subscription a practitioner selected while onboarding, once per key.

    Its first period is unpaid ("pending") until the payments domain charges it. A new
    selection after a declined charge replaces the earlier pending subscription.
    """
    price = price_for(tier)
    existing = db.session.scalar(
        select(Subscription).where(Subscription.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    if db.session.get(Practitioner, practitioner_id) is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist")
    if replaces_subscription_id is not None:
        old = get_subscription(replaces_subscription_id)
        if old.status == "pending":
            old.status = "cancelled"
    sub = Subscription(
        practitioner_id=practitioner_id,
        tier=tier,
        price_cents=price,
        status="pending",
        current_period_start=period_start,
        current_period_end=add_month(period_start),
        idempotency_key=idempotency_key,
    )
    try:
        with db.session.begin_nested():
            db.session.add(sub)
    except IntegrityError:
        existing = db.session.scalar(
            select(Subscription).where(Subscription.idempotency_key == idempotency_key)
        )
        if existing is None:
            raise
        return existing
    return sub


def settle_first_charge(
    subscription_id: int, *, paid: bool, failure_reason: str | None, notification_key: str
) -> Subscription:
    """After the first period's charge: active (and the practitioner's tier set) or told
    the card was declined."""
    sub = get_subscription(subscription_id)
    if paid:
        if sub.status == "pending":
            sub.status = "active"
        _practitioner(sub).tier = sub.tier
        _notify(
            sub,
            notification_key,
            "subscription_started",
            {"period_end": sub.current_period_end.isoformat(), "price_cents": sub.price_cents},
        )
    else:
        _notify(
            sub,
            notification_key,
            "subscription_payment_declined",
            {"reason": failure_reason or "declined", "price_cents": sub.price_cents},
        )
    db.session.flush()
    return sub


# --- renewal ------------------------------------------------------------------------------


def send_renewal_reminder(
    subscription_id: int, *, period_end: str, days_before: int, sent_at: str
) -> bool:
    sub = get_subscription(subscription_id)
    key = f"subscription:{sub.id}:period-end:{period_end}:reminder:{days_before}d"
    if notifications.was_sent(key):
        return False
    _notify(
        sub,
        key,
        "subscription_renewal_reminder",
        {
            "period_end": period_end,
            "days_before": days_before,
            "price_cents": sub.price_cents,
            "sent_at": sent_at,
        },
    )
    return True


def mark_past_due(
    subscription_id: int, *, period_start: str, attempt: int, failure_reason: str | None
) -> Subscription:
    """A renewal charge was declined: past due, and the practitioner is told."""
    sub = get_subscription(subscription_id)
    if sub.status == "active":
        sub.status = "past_due"
    _notify(
        sub,
        f"subscription:{sub.id}:period:{period_start}:declined:{attempt}",
        "subscription_payment_declined",
        {"period_start": period_start, "attempt": attempt, "reason": failure_reason or ""},
    )
    db.session.flush()
    return sub


def request_cancellation(subscription_id: int, *, actor: str, reason: str) -> Subscription:
    sub = get_subscription(subscription_id)
    if sub.status in ("expired", "cancelled"):
        return sub
    if not sub.cancel_at_period_end:
        sub.cancel_at_period_end = True
        _notify(
            sub,
            f"subscription:{sub.id}:cancel-requested",
            "subscription_cancellation_requested",
            {"ends_at": sub.current_period_end.isoformat(), "by": actor, "reason": reason},
        )
    db.session.flush()
    return sub


def settle_period(
    subscription_id: int,
    *,
    paid_period_start: datetime,
    how: str,
    actor: str | None = None,
    reason: str | None = None,
) -> Subscription:
    """The period starting at `paid_period_start` is paid (or waived by ops): move the
    subscription into it. A repeat (the subscription already moved) changes nothing."""
    if how not in ("paid", "waived"):
        raise BusinessRuleError(f"unknown settlement {how!r}")
    sub = get_subscription(subscription_id)
    if how == "waived":
        charge = db.session.scalar(
            select(SubscriptionCharge).where(
                SubscriptionCharge.subscription_id == sub.id,
                SubscriptionCharge.period_start == paid_period_start,
            )
        )
        if charge is None:
            raise BusinessRuleError(
                f"no charge for subscription {sub.id} period {paid_period_start.isoformat()} "
                "to waive"
            )
        if charge.status != "paid":
            charge.status = "waived"
            charge.failure_reason = f"waived by {actor or 'ops'}: {reason or ''}"[:500]
            charge.settled_at = utcnow()
    if sub.current_period_end == paid_period_start:
        sub.current_period_start = paid_period_start
        sub.current_period_end = add_month(paid_period_start)
        _notify(
            sub,
            f"subscription:{sub.id}:period:{paid_period_start.isoformat()}:renewed",
            "subscription_renewed" if how == "paid" else "subscription_renewal_waived",
            {
                "period_start": sub.current_period_start.isoformat(),
                "period_end": sub.current_period_end.isoformat(),
                "price_cents": sub.price_cents if how == "paid" else 0,
            },
        )
    if sub.status in ("past_due", "pending"):
        sub.status = "active"
    db.session.flush()
    return sub


def end_subscription(
    subscription_id: int, *, outcome: str, reason: str, actor: str | None = None
) -> Subscription:
    """End a subscription (expired unpaid, or cancelled): the practitioner is suspended
    from taking new bookings."""
    if outcome not in ("expired", "cancelled"):
        raise BusinessRuleError(f"unknown subscription outcome {outcome!r}")
    sub = get_subscription(subscription_id)
    if sub.status not in ("expired", "cancelled"):
        sub.status = outcome
    practitioner = _practitioner(sub)
    practitioner.accepts_bookings = False
    if practitioner.status == "active":
        practitioner.status = "suspended"
        practitioner.suspended_reason = f"subscription {sub.id} {outcome}: {reason}"[:500]
    _notify(
        sub,
        f"subscription:{sub.id}:{outcome}",
        f"subscription_{outcome}",
        {"reason": reason, "by": actor or "workflow"},
    )
    db.session.flush()
    return sub
