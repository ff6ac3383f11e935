"""ProgressivePackagePayoutWorkflow: exact splits in any order, duplicates, expiry."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from estuary.contracts.payments import (
    PackagePayoutInput,
    PackagePayoutResult,
    SessionCompletedSignal,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import OpsFlag, PackagePurchase
from estuary.models.payments import PackageRelease
from estuary.services import ledger, package_payouts
from tests.conftest import running_workers
from tests.payments.helpers import OPEN_HANDLES, wait_for_stage
from workers.payments.workflows import ProgressivePackagePayoutWorkflow


async def start_package(client, prefix, purchase_id, first_booking, policy="release_remaining"):
    handle = await client.start_workflow(
        ProgressivePackagePayoutWorkflow.run,
        PackagePayoutInput(purchase_id, expiry_policy=policy),
        id=f"payments-package-payout-{purchase_id}",
        task_queue=f"{prefix}payments",
        start_signal="session_completed",
        start_signal_args=[SessionCompletedSignal(first_booking)],
        search_attributes=run_attributes("payments", "package_purchase", purchase_id, "test"),
    )
    OPEN_HANDLES.append(handle)
    return handle


def session(booking_id: int) -> SessionCompletedSignal:
    return SessionCompletedSignal(booking_id=booking_id, actor="bookings")


def released_parts(app, purchase_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(PackageRelease.amount_cents)
                .where(
                    PackageRelease.package_purchase_id == purchase_id,
                    PackageRelease.kind == "session",
                )
                .order_by(PackageRelease.part)
            )
        )


# --- the split ----------------------------------------------------------------------------


def test_split_examples():
    assert package_payouts.split_exact(10_000, 3) == [3333, 3333, 3334]
    assert package_payouts.split_exact(1, 3) == [0, 0, 1]
    assert package_payouts.split_exact(0, 2) == [0, 0]
    assert package_payouts.split_exact(34_000, 5) == [6800] * 5


@given(total=st.integers(0, 10**12), parts=st.integers(1, 1000))
@settings(max_examples=500, deadline=None)
def test_split_parts_sum_exactly(total, parts):
    split = package_payouts.split_exact(total, parts)
    assert sum(split) == total
    assert len(split) == parts
    assert all(isinstance(p, int) and p >= 0 for p in split)
    assert split[:-1] == [total // parts] * (parts - 1)
    assert 0 <= split[-1] - total // parts < parts


@given(
    sessions=st.integers(1, 8),
    net=st.integers(0, 10**8),
    seed=st.integers(0, 2**32),
)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_releases_in_any_order_sum_exactly_to_net(app, money, sessions, net, seed):
    pid = money.practitioner()
    purchase = money.purchase(pid, sessions=sessions, total=net + 500, net=net)
    bookings = [money.booking(pid, purchase_id=purchase) for _ in range(sessions)]
    rng = random.Random(seed)
    order = bookings + rng.choices(bookings, k=3)  # with repeats
    rng.shuffle(order)
    with app.app_context():
        for booking in order:
            package_payouts.release_session(purchase, booking)
            db.session.commit()
        extra = package_payouts.release_session(purchase, bookings[0])
        assert extra.created is False
    parts = released_parts(app, purchase)
    assert sum(parts) == net and len(parts) == sessions
    assert parts == package_payouts.split_exact(net, sessions)
    assert money.available(pid) == net
    assert money.ledger_ok()


# --- the workflow -----------------------------------------------------------------------


async def test_sessions_in_any_order_with_duplicates_release_exact_parts(app, money, time_env):
    pid = money.practitioner()
    purchase = money.purchase(
        pid, sessions=3, total=12_000, net=10_000, now=await time_env.get_current_time()
    )
    b1, b2, b3 = (money.booking(pid, purchase_id=purchase) for _ in range(3))
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_package(time_env.client, prefix, purchase, b3)
        await handle.signal(ProgressivePackagePayoutWorkflow.session_completed, session(b3))
        progress = await wait_for_stage(handle, "waiting for sessions")
        assert progress["sessions_done"] == 1 and progress["sessions_total"] == 3
        assert (progress["released_cents"], progress["remaining_cents"]) == (3_333, 6_667)
        assert progress["waiting_for"] == "session_completed (1 of 3 done)"
        assert progress["waiting_until"] is not None
        for booking in (b1, b3, b1, b2):
            await handle.signal(
                ProgressivePackagePayoutWorkflow.session_completed, session(booking)
            )
        result = await handle.result()
        final = await handle.query("progress")
    assert isinstance(result, PackagePayoutResult)
    assert (result.outcome, result.sessions_released, result.released_cents) == (
        "completed",
        3,
        10_000,
    )
    assert result.remaining_cents == 0
    assert final["duplicates_ignored"] == 3
    assert released_parts(app, purchase) == [3333, 3333, 3334]
    assert money.available(pid) == 10_000
    assert money.balance(ledger.PLATFORM_CLEARING) == 2_000  # the package's commission
    with app.app_context():
        assert db.session.get(PackagePurchase, purchase).status == "completed"
    assert money.ledger_ok()


@given(sessions=st.integers(1, 5), net=st.integers(0, 10**7), seed=st.integers(0, 2**32))
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
async def test_workflow_property_parts_sum_exactly(app, money, time_env, sessions, net, seed):
    pid = money.practitioner()
    purchase = money.purchase(
        pid, sessions=sessions, total=net + 100, net=net, now=await time_env.get_current_time()
    )
    bookings = [money.booking(pid, purchase_id=purchase) for _ in range(sessions)]
    rng = random.Random(seed)
    order = bookings + rng.choices(bookings, k=2)
    rng.shuffle(order)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_package(time_env.client, prefix, purchase, order[0])
        for booking in order[1:]:
            await handle.signal(
                ProgressivePackagePayoutWorkflow.session_completed, session(booking)
            )
        result = await handle.result()
    assert result.released_cents == net and result.sessions_released == sessions
    assert sum(released_parts(app, purchase)) == net
    assert money.available(pid) == net


@pytest.mark.parametrize(
    ("policy", "practitioner_gets", "platform_keeps", "flagged"),
    [
        ("release_remaining", 10_000, 0, False),
        ("retain_by_platform", 3_333, 6_667, False),
        ("refer_to_ops", 3_333, 0, True),
    ],
)
async def test_expiry_policy_settles_the_rest(
    app, money, time_env, policy, practitioner_gets, platform_keeps, flagged
):
    pid = money.practitioner()
    purchase = money.purchase(
        pid,
        sessions=3,
        total=12_000,
        net=10_000,
        expires_in=timedelta(days=30),
        now=await time_env.get_current_time(),
    )
    b1, b2, _b3 = (money.booking(pid, purchase_id=purchase) for _ in range(3))
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_package(time_env.client, prefix, purchase, b1, policy=policy)
        result = await handle.result()  # time skips to the expiry
        late = await time_env.client.start_workflow(
            ProgressivePackagePayoutWorkflow.run,
            PackagePayoutInput(purchase, expiry_policy=policy),
            id=f"payments-package-payout-{purchase}-late",
            task_queue=f"{prefix}payments",
            start_signal="session_completed",
            start_signal_args=[session(b2)],
            search_attributes=run_attributes("payments", "package_purchase", purchase, "test"),
        )
        late_result = await late.result()
    assert result.outcome == "expired" and result.sessions_released == 1
    assert result.expiry_settlement_cents == 6_667
    assert late_result.outcome == "already_settled" and late_result.sessions_released == 1
    assert money.available(pid) == practitioner_gets
    assert money.balance(ledger.PLATFORM_EXPIRED_PACKAGES) == platform_keeps
    with app.app_context():
        flags = list(db.session.scalars(select(OpsFlag.kind)))
        assert db.session.get(PackagePurchase, purchase).status == "expired"
    assert flags == (["package_expired"] if flagged else [])
    assert money.ledger_ok()


async def test_foreign_and_cancelled_bookings_are_ignored(app, money, time_env):
    pid = money.practitioner()
    purchase = money.purchase(
        pid, sessions=2, total=2_000, net=1_000, now=await time_env.get_current_time()
    )
    other = money.purchase(
        pid, sessions=2, total=2_000, net=1_000, now=await time_env.get_current_time()
    )
    mine = [money.booking(pid, purchase_id=purchase) for _ in range(2)]
    cancelled = money.booking(pid, purchase_id=purchase, status="cancelled")
    foreign = money.booking(pid, purchase_id=other)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_package(time_env.client, prefix, purchase, foreign)
        for booking in (cancelled, 987_654, *mine):
            await handle.signal(
                ProgressivePackagePayoutWorkflow.session_completed, session(booking)
            )
        result = await handle.result()
    assert result.outcome == "completed" and result.released_cents == 1_000
    assert result.ignored_booking_ids == [foreign, cancelled, 987_654]
    assert money.available(pid) == 1_000


# --- only sessions that happened release a part (issue 10) -------------------------------


@pytest.mark.parametrize(
    ("status", "days_ago", "forfeits", "released"),
    [
        ("completed", 1, True, True),
        ("confirmed", -2, True, False),  # a future session, only confirmed
        ("confirmed", 1, True, False),  # past, never marked completed
        ("completed", -2, True, False),  # "completed" before it started
        ("no_show", 1, True, True),  # the no-show policy uses the session up
        ("no_show", 1, False, False),  # ... or gives it back to the client
        ("cancelled", 1, True, False),
        ("rescheduled", 1, True, False),
    ],
)
def test_only_a_session_that_happened_releases_a_part(
    app, money, status, days_ago, forfeits, released
):
    app.config["BOOKING_NO_SHOW_CREDIT_FORFEITED"] = forfeits
    pid = money.practitioner()
    purchase = money.purchase(pid, sessions=2, total=2_000, net=1_000)
    booking = money.booking(pid, purchase_id=purchase, status=status, completed_days_ago=days_ago)
    with app.app_context():
        outcome = package_payouts.release_session(purchase, booking)
        db.session.commit()
    assert outcome.released is released
    assert money.available(pid) == (500 if released else 0)
    if not released:
        assert outcome.ignored_reason
    assert money.ledger_ok()


async def test_a_confirmed_future_session_signalled_to_the_workflow_releases_nothing(
    app, money, time_env
):
    pid = money.practitioner()
    purchase = money.purchase(
        pid, sessions=2, total=2_000, net=1_000, now=await time_env.get_current_time()
    )
    future = money.booking(pid, purchase_id=purchase, status="confirmed", completed_days_ago=-3)
    done = [money.booking(pid, purchase_id=purchase) for _ in range(2)]
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_package(time_env.client, prefix, purchase, future)
        for booking in done:
            await handle.signal(
                ProgressivePackagePayoutWorkflow.session_completed, session(booking)
            )
        result = await handle.result()
    assert result.ignored_booking_ids == [future]
    assert result.released_cents == 1_000 and money.available(pid) == 1_000
