"""SubscriptionRenewalWorkflow against the time-skipping server, charging through the real
payments worker (`charge_subscription`, one SubscriptionCharge row per period)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from estuary.contracts.practitioners import (
    CancelSubscriptionSignal,
    RetryNowUpdate,
    WaiveChargeUpdate,
)
from estuary.db import db
from estuary.models import LedgerTransaction, Notification, Subscription, SubscriptionCharge
from estuary.services.subscriptions import add_month
from tests.practitioners.conftest import (
    ACTOR,
    assert_close,
    at,
    eventually,
    practitioner_workers,
    start_renewal,
    wait_for,
)


async def _subscription(data, time_env, *, ends_in: timedelta) -> tuple[int, int, object]:
    now = (await time_env.get_current_time()).replace(microsecond=0)
    pid = data.practitioner(status="active", tier="pro")
    end = now + ends_in
    sid = data.subscription(pid, period_start=end - timedelta(days=30), period_end=end)
    return pid, sid, end


def _charges(app, sid: int) -> list[tuple]:
    with app.app_context():
        rows = db.session.scalars(
            select(SubscriptionCharge)
            .where(SubscriptionCharge.subscription_id == sid)
            .order_by(SubscriptionCharge.period_start)
        ).all()
        return [(r.period_start, r.status, r.attempts, r.amount_cents) for r in rows]


def _subscription_row(app, sid: int) -> Subscription:
    with app.app_context():
        sub = db.session.get(Subscription, sid)
        db.session.expunge(sub)
        return sub


async def test_reminders_at_14_7_3_1_days_before_period_end_then_renewal(
    app, time_env, data, cleanup
):
    _, sid, end = await _subscription(data, time_env, ends_in=timedelta(days=20))
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid)
        # Past the last reminder, before the period ends.
        await time_env.sleep(timedelta(days=19, hours=12))
        progress = await wait_for(handle, lambda p: len(p["reminders"]) == 4, what="four reminders")
        assert progress["stage"] == "waiting_for_period_end"
        assert at(progress["waiting_until"]) == end
        for reminder, days in zip(progress["reminders"], (14, 7, 3, 1), strict=True):
            assert reminder["days_before"] == days
            # The target is exact; the timer fires within milliseconds of it.
            assert at(reminder["due_at"]) == end - timedelta(days=days)
            assert_close(at(reminder["sent_at"]), end - timedelta(days=days))
        assert _charges(app, sid) == []

        await time_env.sleep(timedelta(days=1))
        renewed = await wait_for(
            client.get_workflow_handle(handle.id),
            lambda p: p["period_start"] is not None and at(p["period_start"]) == end,
            what="the next period's run",
        )
    assert renewed["stage"] in ("reminding", "waiting_for_period_end")
    assert at(renewed["period_end"]) == add_month(end)
    assert _charges(app, sid) == [(end, "paid", 1, 5_900)]
    sub = _subscription_row(app, sid)
    assert sub.status == "active"
    assert (sub.current_period_start, sub.current_period_end) == (end, add_month(end))
    with app.app_context():
        reminders = db.session.scalars(
            select(Notification)
            .where(Notification.template == "subscription_renewal_reminder")
            .order_by(Notification.id)
        ).all()
        assert len(reminders) == 4
        assert db.session.scalar(
            select(Notification.id).where(Notification.template == "subscription_renewed")
        )


async def test_failed_charge_dunning_then_success(app, time_env, data, cleanup):
    pid, sid, end = await _subscription(data, time_env, ends_in=timedelta(hours=12))
    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = {sid}
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid, dunning_retries=3)
        # Nothing to retry before a charge failed.
        try:
            await handle.execute_update("retry_now", RetryNowUpdate(actor=ACTOR))
            raise AssertionError("retry_now accepted before any failure")
        except WorkflowUpdateFailedError as exc:
            assert "no failed renewal charge" in exc.cause.message
        await time_env.sleep(timedelta(hours=13))
        progress = await wait_for(handle, lambda p: p["dunning"], what="first decline")
        assert [c["status"] for c in progress["charges"]] == ["failed"]
        assert_close(at(progress["charges"][0]["at"]), end)
        assert _subscription_row(app, sid).status == "past_due"
        # The daily retry, still declined.
        await time_env.sleep(timedelta(days=1, hours=1))
        progress = await wait_for(
            handle, lambda p: len(p["charges"]) == 2 and p["dunning"], what="second decline"
        )
        assert_close(at(progress["charges"][1]["at"]), end + timedelta(days=1))
        # The card works again; ops retry now instead of waiting for tomorrow.
        app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = set()
        await handle.execute_update("retry_now", RetryNowUpdate(actor=ACTOR, note="card updated"))
        await wait_for(
            client.get_workflow_handle(handle.id),
            lambda p: p["period_start"] is not None and at(p["period_start"]) == end,
            what="the next period's run",
        )
        history = await client.get_workflow_handle(
            handle.id, run_id=handle.result_run_id
        ).fetch_history()
    # One row for the period, paid on the third attempt.
    assert _charges(app, sid) == [(end, "paid", 3, 5_900)]
    assert _subscription_row(app, sid).status == "active"
    assert data.practitioner_row(pid)["status"] == "active"
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


async def test_dunning_exhausted_expires_and_suspends(app, time_env, data, cleanup):
    pid, sid, end = await _subscription(data, time_env, ends_in=timedelta(hours=1))
    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = {sid}
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid, dunning_retries=3)
        result = await handle.result()
        progress = await handle.query("progress")
    assert result.outcome == "expired"
    assert "unpaid after 4 attempts" in result.reason
    attempts = [at(c["at"]) for c in progress["charges"]]
    assert len(attempts) == 4
    for n, when in enumerate(attempts):
        assert_close(when, end + timedelta(days=n))
    assert _charges(app, sid) == [(end, "failed", 4, 5_900)]
    assert _subscription_row(app, sid).status == "expired"
    row = data.practitioner_row(pid)
    assert row["status"] == "suspended" and row["accepts_bookings"] is False
    assert f"subscription {sid} expired" in row["suspended_reason"]


async def test_waive_grants_the_period(app, time_env, data, cleanup):
    pid, sid, end = await _subscription(data, time_env, ends_in=timedelta(hours=1))
    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = {sid}
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid)
        await time_env.sleep(timedelta(hours=2))
        await wait_for(handle, lambda p: p["dunning"], what="first decline")
        try:
            await handle.execute_update("waive", WaiveChargeUpdate(actor=ACTOR, reason=" "))
            raise AssertionError("waive without a reason accepted")
        except WorkflowUpdateFailedError as exc:
            assert "reason is required" in exc.cause.message
        answer = await handle.execute_update(
            "waive", WaiveChargeUpdate(actor=ACTOR, reason="goodwill after outage")
        )
        assert answer == {"waived": True}
        await wait_for(
            client.get_workflow_handle(handle.id),
            lambda p: p["period_start"] is not None and at(p["period_start"]) == end,
            what="the next period's run",
        )
    assert _charges(app, sid) == [(end, "waived", 1, 5_900)]
    with app.app_context():
        charge = db.session.scalar(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sid)
        )
        assert charge.failure_reason == f"waived by {ACTOR}: goodwill after outage"
    sub = _subscription_row(app, sid)
    assert sub.status == "active" and sub.current_period_end == add_month(end)
    assert data.practitioner_row(pid)["accepts_bookings"] is True


async def test_continue_as_new_charges_each_period_once(app, time_env, data, cleanup):
    _, sid, end = await _subscription(data, time_env, ends_in=timedelta(hours=1))
    client = time_env.client
    second_end = add_month(end)
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid)
        latest = client.get_workflow_handle(handle.id)
        await time_env.sleep(timedelta(hours=2))
        first = await wait_for(
            latest,
            lambda p: p["period_start"] is not None and at(p["period_start"]) == end,
            what="second period's run",
        )
        await time_env.sleep(second_end - end)
        second = await wait_for(
            latest,
            lambda p: p["period_start"] is not None and at(p["period_start"]) == second_end,
            what="third period's run",
        )
        # A fresh run for the same subscription (ops restarted it) starts from the stored
        # period and charges nothing twice.
        await latest.terminate("restarted by ops")
        again = await start_renewal(client, prefix, sid)
        restarted = await wait_for(again, lambda p: p["period_start"] is not None, what="load")
    assert at(restarted["period_start"]) == second_end
    assert first["reminders"] == [] or all(r["sent_at"] is None for r in first["reminders"])
    assert [r["days_before"] for r in second["reminders"]] == []
    assert _charges(app, sid) == [(end, "paid", 1, 5_900), (second_end, "paid", 1, 5_900)]
    with app.app_context():
        keys = db.session.scalars(
            select(LedgerTransaction.key).where(LedgerTransaction.kind == "subscription_charge")
        ).all()
        assert len(keys) == 2 and len(set(keys)) == 2


async def test_cancel_ends_the_subscription_at_period_end(app, time_env, data, cleanup):
    pid, sid, _ = await _subscription(data, time_env, ends_in=timedelta(days=10))
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, sid)
        await wait_for(handle, lambda p: p["stage"] == "reminding", what="started")
        await handle.signal("cancel", CancelSubscriptionSignal(actor=ACTOR, reason="retiring"))
        await wait_for(handle, lambda p: p["stage"] == "waiting_for_period_end", what="cancel")
        await eventually(
            lambda: _subscription_row(app, sid).cancel_at_period_end, what="cancel recorded"
        )
        # Still active until the period the practitioner paid for ends.
        assert data.practitioner_row(pid)["accepts_bookings"] is True
        result = await handle.result()
        progress = await handle.query("progress")
    assert result.outcome == "cancelled" and result.reason == "retiring"
    assert progress["reminders"] == [] or all(r["sent_at"] is None for r in progress["reminders"])
    assert _charges(app, sid) == []
    assert _subscription_row(app, sid).status == "cancelled"
    row = data.practitioner_row(pid)
    assert row["status"] == "suspended" and row["accepts_bookings"] is False


async def test_unknown_subscription_fails_with_a_clear_error(app, time_env, data, cleanup):
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_renewal(client, prefix, 424242)
        try:
            await handle.result()
            raise AssertionError("a renewal of an unknown subscription completed")
        except WorkflowFailureError as exc:
            assert exc.cause.cause.message == "subscription 424242 does not exist"
