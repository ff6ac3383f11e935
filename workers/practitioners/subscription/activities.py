"""Subscription renewal activities (SubscriptionRenewalWorkflow):
thin calls into estuary.services.

Sync, each in its own app context (see workers/practitioners/activities.py)."""

from __future__ import annotations

from estuary.contracts.practitioners import (
    CancellationRequestInput,
    PeriodSettlementInput,
    RenewalReminderInput,
    SubscriptionEndInput,
    SubscriptionNoticeInput,
    SubscriptionRefInput,
    SubscriptionSnapshot,
)
from estuary.services import subscriptions
from workers.practitioners.activities import parse_time
from workers.temporal.base_activities import read_activity, write_activity


@read_activity
def load_subscription(inp: SubscriptionRefInput) -> SubscriptionSnapshot:
    sub = subscriptions.get_subscription(inp.subscription_id)
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@write_activity
def send_renewal_reminder(inp: RenewalReminderInput) -> bool:
    return subscriptions.send_renewal_reminder(
        inp.subscription_id,
        period_end=inp.period_end,
        days_before=inp.days_before,
        sent_at=inp.sent_at,
    )


@write_activity
def mark_subscription_past_due(inp: SubscriptionNoticeInput) -> None:
    subscriptions.mark_past_due(
        inp.subscription_id,
        period_start=inp.period_start,
        attempt=inp.attempt,
        failure_reason=inp.failure_reason,
    )


@write_activity
def request_subscription_cancellation(inp: CancellationRequestInput) -> None:
    subscriptions.request_cancellation(inp.subscription_id, actor=inp.actor, reason=inp.reason)


@write_activity
def settle_subscription_period(inp: PeriodSettlementInput) -> SubscriptionSnapshot:
    sub = subscriptions.settle_period(
        inp.subscription_id,
        paid_period_start=parse_time(inp.paid_period_start),
        how=inp.how,
        actor=inp.actor,
        reason=inp.reason,
    )
    return SubscriptionSnapshot(**subscriptions.snapshot(sub))


@write_activity
def end_subscription(inp: SubscriptionEndInput) -> None:
    subscriptions.end_subscription(
        inp.subscription_id, outcome=inp.outcome, reason=inp.reason, actor=inp.actor
    )
