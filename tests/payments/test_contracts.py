"""The activities other domains call by name: record_booking_commission,
charge_subscription and notify_package_session_completed."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from estuary.contracts.payments import (
    BookingCommissionInput,
    PackagePayoutResult,
    PackageSessionCompletedInput,
    SubscriptionChargeInput,
)
from estuary.db import db
from estuary.models import Commission, SubscriptionCharge
from estuary.services import ledger
from tests.conftest import running_workers
from workers.payments import activities
from workers.temporal.base_activities import bind_client


def run_activity(fn, arg):
    return ActivityEnvironment().run(fn, arg)


def test_single_booking_commission_releases_net_once(app, money):
    pid = money.practitioner(tier="pro")
    bid = money.booking(pid, price=10_000)

    first = run_activity(activities.record_booking_commission, BookingCommissionInput(bid))
    again = run_activity(activities.record_booking_commission, BookingCommissionInput(bid))

    assert (first.commission_cents, first.created, first.net_released_cents) == (1500, True, 8500)
    assert (again.commission_cents, again.created) == (1500, False)
    assert money.available(pid) == 8_500
    assert money.balance(ledger.PLATFORM_COMMISSION) == 1_500
    assert money.balance(ledger.PLATFORM_CLEARING) == 0
    assert money.count(Commission) == 1
    assert money.ledger_ok()


@pytest.mark.parametrize(("tier", "price", "expected"), [("basic", 999, 200), ("premium", 5, 1)])
def test_commission_rounds_half_up_by_tier(app, money, tier, price, expected):
    pid = money.practitioner(tier=tier)
    bid = money.booking(pid, price=price)
    result = run_activity(activities.record_booking_commission, BookingCommissionInput(bid))
    assert result.commission_cents == expected
    assert money.available(pid) == price - expected


def test_package_sessions_take_exact_commission_parts_and_release_nothing(app, money):
    pid = money.practitioner(tier="pro")
    purchase = money.purchase(pid, sessions=3, total=12_000, net=10_000)
    bookings = [money.booking(pid, price=4_000, purchase_id=purchase) for _ in range(3)]

    parts = [
        run_activity(activities.record_booking_commission, BookingCommissionInput(b))
        for b in reversed(bookings)
    ]

    assert [p.commission_cents for p in parts] == [666, 666, 668]
    assert all(p.net_released_cents == 0 and p.package_purchase_id == purchase for p in parts)
    assert money.available(pid) == 0  # the progressive package payout releases the net
    assert money.balance(ledger.PLATFORM_COMMISSION) == 2_000
    assert money.balance(ledger.PLATFORM_CLEARING) == 10_000
    assert money.ledger_ok()


def test_commission_refuses_unknown_and_uncompleted_bookings(app, money):
    pid = money.practitioner()
    confirmed = money.booking(pid, status="confirmed")
    with pytest.raises(ApplicationError) as unknown:
        run_activity(activities.record_booking_commission, BookingCommissionInput(999_999))
    assert unknown.value.non_retryable and "booking 999999 does not exist" in unknown.value.message
    with pytest.raises(ApplicationError) as not_done:
        run_activity(activities.record_booking_commission, BookingCommissionInput(confirmed))
    assert "completed bookings only" in not_done.value.message
    assert money.count(Commission) == 0


def test_declined_charge_is_a_result_then_a_later_attempt_pays_once(app, money):
    pid = money.practitioner()
    sub = money.subscription(pid, price=5_900)
    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = {sub}
    period = "2026-12-01T00:00:00+00:00"

    declined = run_activity(
        activities.charge_subscription, SubscriptionChargeInput(sub, period, 5_900, 1)
    )
    repeat = run_activity(
        activities.charge_subscription, SubscriptionChargeInput(sub, period, 5_900, 1)
    )
    assert declined.status == "failed" and declined.failure_reason
    assert repeat == declined
    assert money.balance(ledger.PLATFORM_SUBSCRIPTION_REVENUE) == 0

    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = set()
    paid = run_activity(
        activities.charge_subscription,
        SubscriptionChargeInput(sub, "2026-12-01T00:00:00Z", 5_900, 2),
    )
    again = run_activity(
        activities.charge_subscription, SubscriptionChargeInput(sub, period, 5_900, 3)
    )
    assert paid.status == "paid" and paid.charge_id == declined.charge_id
    assert again.status == "paid" and again.charge_id == paid.charge_id
    assert money.balance(ledger.PLATFORM_SUBSCRIPTION_REVENUE) == 5_900
    assert money.count(SubscriptionCharge) == 1
    with app.app_context():
        row = db.session.scalar(select(SubscriptionCharge))
        assert row.attempts == 2 and row.status == "paid"
    assert money.ledger_ok()


def test_transient_provider_failure_raises_and_writes_nothing(app, money):
    sub = money.subscription(money.practitioner())
    app.config["PROVIDER_FAILURE_PERCENT"] = 100
    with pytest.raises(Exception, match="unavailable"):
        run_activity(
            activities.charge_subscription,
            SubscriptionChargeInput(sub, "2026-12-01T00:00:00Z", 5_900),
        )
    assert money.count(SubscriptionCharge) == 0


@pytest.mark.parametrize(
    ("inp", "message"),
    [
        (SubscriptionChargeInput(1, "yesterday", 100), "not an ISO 8601"),
        (SubscriptionChargeInput(1, "2026-12-01", 0), "positive"),
        (SubscriptionChargeInput(424242, "2026-12-01", 100), "does not exist"),
    ],
)
def test_charge_refuses_bad_input(app, money, inp, message):
    with pytest.raises(ApplicationError, match=message):
        run_activity(activities.charge_subscription, inp)
    assert money.count(SubscriptionCharge) == 0


async def test_notify_package_session_completed_starts_and_signals(app, money, time_env):
    pid = money.practitioner()
    purchase = money.purchase(
        pid, sessions=3, total=12_000, net=10_000, now=await time_env.get_current_time()
    )
    b1, b2, b3 = (money.booking(pid, purchase_id=purchase) for _ in range(3))
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        bind_client(time_env.client)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, task_queue=f"{prefix}payments", workflow_id="bookings-lifecycle-x"
        )
        for booking in (b2, b2, b3, b1):
            await env.run(
                activities.notify_package_session_completed,
                PackageSessionCompletedInput(purchase, booking),
            )
        handle = time_env.client.get_workflow_handle(
            f"payments-package-payout-{purchase}", result_type=PackagePayoutResult
        )
        result = await handle.result()
        # A late repeat after the run finished starts nothing and does not fail.
        await env.run(
            activities.notify_package_session_completed,
            PackageSessionCompletedInput(purchase, b1),
        )
    assert result.outcome == "completed"
    assert (result.sessions_released, result.released_cents) == (3, 10_000)
    assert money.available(pid) == 10_000
    assert money.ledger_ok()
