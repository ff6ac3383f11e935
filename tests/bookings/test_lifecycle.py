"""BookingLifecycleWorkflow against the time-skipping server with the real bookings worker
(payments contract activities are a recording double here; see test_payments_link.py for
the real payments worker). Times are asserted from values captured inside the workflow
(`sent_log`, `reminders[..].sent_at`), never from the server clock afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from estuary.contracts.bookings import (
    CancelArg,
    FeedbackArg,
    MarkSessionArg,
    RescheduleArg,
    reminder_key,
    utc_iso,
)
from estuary.db import db
from estuary.models import Client, Feedback, OpsFlag
from estuary.services import bookings as booking_service
from estuary.services import ledger
from tests.bookings.conftest import booking_kit, booking_row, make_booking, outbox
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow

PRACTITIONER = MarkSessionArg(actor="practitioner@test.local")


def log_of(progress: dict, kind: str) -> list[dict]:
    return [e for e in progress["sent_log"] if e["kind"] == kind]


def assert_at(actual_iso: str, expected: datetime, slack: timedelta = timedelta(minutes=1)):
    actual = datetime.fromisoformat(actual_iso)
    assert expected <= actual < expected + slack, f"{actual_iso} is not at {utc_iso(expected)}"


def balances(app, *accounts: str) -> dict[str, int]:
    with app.app_context():
        return ledger.balances(list(accounts))


def client_credit(app, client_id: int) -> int:
    with app.app_context():
        return db.session.get(Client, client_id).credit_cents


async def test_booking_three_days_ahead_gets_both_reminders_at_the_right_moments(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=3))
        handle = await kit.start_lifecycle(booked.booking_id)
        first = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        assert first["next_timer"] == {
            "kind": "reminder_24h",
            "at": utc_iso(booked.start_at - timedelta(hours=24)),
        }
        assert first["waiting_until"] == utc_iso(booked.start_at - timedelta(hours=24))

        await kit.sleep_until(booked.start_at + timedelta(minutes=5))
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_outcome")

    assert [e["kind"] for e in progress["sent_log"]] == [
        "confirmation",
        "confirmation",
        "reminder_24h",
        "reminder_1h",
    ]
    (r24,) = log_of(progress, "reminder_24h")
    (r1,) = log_of(progress, "reminder_1h")
    assert_at(r24["at"], booked.start_at - timedelta(hours=24))
    assert_at(r1["at"], booked.start_at - timedelta(hours=1))
    assert r24["key"] == reminder_key(booked.booking_id, "24h", booked.start_at)
    assert progress["reminders"]["24h"]["state"] == "sent"
    assert progress["next_timer"]["kind"] == "grace_period_end"
    # The outbox holds one row per reminder, stamped with the workflow time of sending.
    rows = outbox(app, "booking_reminder")
    assert [r["key"] for r in rows] == [r24["key"], r1["key"]]
    assert rows[0]["payload"]["workflow_time"] == r24["at"]
    confirmations = outbox(app, "booking_confirmation")
    assert {r["payload"]["audience"] for r in confirmations} == {"client", "practitioner"}


async def test_booking_two_hours_ahead_gets_only_the_1h_reminder(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.start_at + timedelta(minutes=1))
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_outcome")

    assert progress["reminders"]["24h"]["state"] == "skipped"
    assert not log_of(progress, "reminder_24h")
    (r1,) = log_of(progress, "reminder_1h")
    assert_at(r1["at"], booked.start_at - timedelta(hours=1))
    assert [r["key"] for r in outbox(app, "booking_reminder")] == [
        reminder_key(booked.booking_id, "1h", booked.start_at)
    ]


async def test_completion_then_feedback_ends_without_a_feedback_reminder(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")
        assert progress["waiting_for"] == "feedback_received"
        (follow_up,) = log_of(progress, "follow_up")
        assert progress["next_timer"]["kind"] == "feedback_reminder"
        assert_at(
            progress["next_timer"]["at"],
            datetime.fromisoformat(follow_up["at"]) + timedelta(hours=72),
        )

        await kit.env.sleep(timedelta(days=1))
        await handle.signal(
            BookingLifecycleWorkflow.feedback_received,
            FeedbackArg(actor="client@test.local", rating=5, comment="Lovely"),
        )
        result = await handle.result()
        assert kit.payments.commission_calls == [booked.booking_id]
        assert kit.payments.package_calls == []

    assert result.outcome == "completed"
    assert result.feedback_rating == 5
    assert result.feedback_reminder_sent is False
    assert outbox(app, "booking_feedback_reminder") == []
    assert len(outbox(app, "booking_follow_up")) == 1
    row = booking_row(app, booked.booking_id)
    assert row["status"] == "completed" and row["outcome_by"] == PRACTITIONER.actor
    with app.app_context():
        feedback = db.session.query(Feedback).filter_by(booking_id=booked.booking_id).one()
        assert (feedback.rating, feedback.comment) == (5, "Lovely")


async def test_completion_without_feedback_sends_exactly_one_feedback_reminder(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        result = await handle.result()  # skips the 3-day wait, the reminder, the next 3 days
        progress = await handle.query(BookingLifecycleWorkflow.progress)

    assert result.outcome == "completed"
    assert result.feedback_rating is None and result.feedback_reminder_sent is True
    (follow_up,) = log_of(progress, "follow_up")
    (reminder,) = log_of(progress, "feedback_reminder")
    assert_at(reminder["at"], datetime.fromisoformat(follow_up["at"]) + timedelta(hours=72))
    assert len(outbox(app, "booking_feedback_reminder")) == 1
    assert progress["steps_done"][-1] == "feedback window closed without feedback"


@pytest.mark.parametrize(
    ("policy", "fee", "credit"),
    [
        ({}, 4_500, 0),  # configured default: 50 % fee to the practitioner, rest forfeited
        ({"no_show_fee_percent": 20, "no_show_credit_forfeited": False}, 1_800, 7_200),
    ],
)
async def test_no_show_applies_the_policy_and_notifies(app, time_env, policy, fee, credit):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2), price_cents=9_000)
        handle = await kit.start_lifecycle(booked.booking_id, **policy)
        await kit.sleep_until(booked.start_at + timedelta(minutes=20))
        await handle.signal(BookingLifecycleWorkflow.mark_no_show, PRACTITIONER)
        result = await handle.result()
        assert kit.payments.commission_calls == []

    assert (result.outcome, result.fee_cents, result.credit_cents) == ("no_show", fee, credit)
    row = booking_row(app, booked.booking_id)
    assert (row["status"], row["practitioner_fee_cents"], row["credit_issued_cents"]) == (
        "no_show",
        fee,
        credit,
    )
    assert client_credit(app, booked.client_id) == credit
    money = balances(
        app,
        ledger.available_account(booked.practitioner_id),
        booking_service.client_credit_account(booked.client_id),
        booking_service.PLATFORM_FORFEITED,
        ledger.PLATFORM_CLEARING,
    )
    assert list(money.values()) == [fee, credit, 9_000 - fee - credit, -9_000]
    assert {r["payload"]["audience"] for r in outbox(app, "booking_no_show")} == {
        "client",
        "practitioner",
    }


async def test_cancellation_more_than_24h_ahead_gives_full_credit_and_stops_reminders(
    app, time_env
):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=3))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        answer = await handle.execute_update(
            BookingLifecycleWorkflow.cancel,
            CancelArg(actor="ops@test.local", reason="client is ill", by="client"),
        )
        result = await handle.result()

    assert (answer.credit_cents, answer.fee_cents, answer.full_credit) == (9_000, 0, True)
    assert (result.outcome, result.credit_cents, result.reminders_sent) == ("cancelled", 9_000, [])
    assert outbox(app, "booking_reminder") == []
    assert len(outbox(app, "booking_cancelled")) == 2
    assert client_credit(app, booked.client_id) == 9_000
    row = booking_row(app, booked.booking_id)
    assert (row["status"], row["cancel_reason"]) == ("cancelled", "client is ill")
    assert balances(app, booking_service.client_credit_account(booked.client_id)) == {
        booking_service.client_credit_account(booked.client_id): 9_000
    }


@pytest.mark.parametrize(
    ("by", "policy", "credit", "fee"),
    [
        ("client", {}, 4_500, 4_500),
        ("client", {"late_cancel_credit_percent": 25}, 2_250, 6_750),
        ("practitioner", {}, 9_000, 0),
    ],
)
async def test_late_cancellation_applies_the_configured_policy(
    app, time_env, by, policy, credit, fee
):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=10), price_cents=9_000)
        handle = await kit.start_lifecycle(booked.booking_id, **policy)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        answer = await handle.execute_update(
            BookingLifecycleWorkflow.cancel, CancelArg(actor="ops@test.local", reason="late", by=by)
        )
        result = await handle.result()

    assert (answer.credit_cents, answer.fee_cents) == (credit, fee)
    assert (result.credit_cents, result.fee_cents) == (credit, fee)
    assert client_credit(app, booked.client_id) == credit
    assert balances(app, ledger.available_account(booked.practitioner_id)) == {
        ledger.available_account(booked.practitioner_id): fee
    }


async def test_client_cannot_cancel_after_the_start_but_ops_can(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.start_at + timedelta(minutes=10))
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_outcome")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                BookingLifecycleWorkflow.cancel,
                CancelArg(actor="ops@test.local", reason="changed mind", by="client"),
            )
        assert "the client can no longer cancel it" in str(refused.value.cause)
        assert booking_row(app, booked.booking_id)["status"] == "confirmed"
        answer = await handle.execute_update(
            BookingLifecycleWorkflow.cancel,
            CancelArg(actor="ops@test.local", reason="practitioner ill", by="ops"),
        )
        assert answer.credit_cents == 9_000
        assert (await handle.result()).outcome == "cancelled"


async def test_reschedule_moves_the_reminders_and_old_times_are_never_sent(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(days=3))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        new_start = booked.start_at + timedelta(days=2, hours=3)
        answer = await handle.execute_update(
            BookingLifecycleWorkflow.reschedule,
            RescheduleArg(actor="ops@test.local", new_start_at=new_start, reason="client asked"),
        )
        assert answer.start_at == utc_iso(new_start)
        assert answer.reminders["24h"] == f"pending at {utc_iso(new_start - timedelta(hours=24))}"
        await kit.sleep_until(new_start + timedelta(minutes=5))
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_outcome")

    assert progress["start_at"] == utc_iso(new_start)
    (r24,) = log_of(progress, "reminder_24h")
    (r1,) = log_of(progress, "reminder_1h")
    assert_at(r24["at"], new_start - timedelta(hours=24))
    assert_at(r1["at"], new_start - timedelta(hours=1))
    keys = [r["key"] for r in outbox(app, "booking_reminder")]
    assert keys == [
        reminder_key(booked.booking_id, "24h", new_start),
        reminder_key(booked.booking_id, "1h", new_start),
    ]
    assert not any(utc_iso(booked.start_at) in key for key in keys)
    assert booking_row(app, booked.booking_id)["start_at"] == new_start
    assert len(outbox(app, "booking_moved")) == 2
    assert progress["moves"][0]["from"] == utc_iso(booked.start_at)


async def test_unresolved_session_raises_a_flag_keeps_waiting_and_a_late_mark_resolves_it(
    app, time_env
):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(minutes=30))
        handle = await kit.start_lifecycle(booked.booking_id, grace_period_minutes=90)
        await kit.sleep_until(booked.end_at + timedelta(minutes=100))
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "unresolved")
        assert progress["flagged"] is True
        assert progress["next_timer"] is None
        assert progress["waiting_for"] == "mark_completed or mark_no_show"
        with app.app_context():
            flag = db.session.query(OpsFlag).one()
            assert (flag.kind, flag.entity_id, flag.resolved_at) == (
                "unresolved_session",
                booked.booking_id,
                None,
            )
            assert flag.workflow_id == handle.id
        assert booking_row(app, booked.booking_id)["needs_attention"] is True

        await kit.env.sleep(timedelta(days=2))  # nothing is guessed meanwhile
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert booking_row(app, booked.booking_id)["status"] == "confirmed"

        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")

    assert progress["flag_resolved"] is True
    row = booking_row(app, booked.booking_id)
    assert (row["status"], row["needs_attention"]) == ("completed", False)
    with app.app_context():
        assert db.session.query(OpsFlag).one().resolved_at is not None


async def test_package_session_signals_the_package_payout_and_the_commission_step(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2), package=True)
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")
        assert kit.payments.package_calls == [(booked.package_purchase_id, booked.booking_id)]
        assert kit.payments.commission_calls == [booked.booking_id]
    assert progress["payments"] == {"package_signalled": True, "commission_cents": 1_350}


async def test_duplicate_and_early_signals_are_ignored_and_recorded(app, time_env):
    async with booking_kit(time_env, app) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2))
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_session")
        await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)  # too early
        await kit.wait_progress(handle, lambda p: len(p["ignored_signals"]) == 1)
        await kit.sleep_until(booked.end_at)
        for _ in range(2):
            await handle.signal(BookingLifecycleWorkflow.mark_completed, PRACTITIONER)
        await handle.signal(BookingLifecycleWorkflow.mark_no_show, PRACTITIONER)
        progress = await kit.wait_progress(handle, lambda p: len(p["ignored_signals"]) == 3)
        for _ in range(2):
            await handle.signal(
                BookingLifecycleWorkflow.feedback_received, FeedbackArg(actor="c", rating=4)
            )
        result = await handle.result()
        assert kit.payments.commission_calls == [booked.booking_id]

    reasons = [i["reason"] for i in progress["ignored_signals"]]
    assert reasons[0].startswith("session has not started")
    assert reasons[1:] == ["booking is already completed"] * 2
    assert [i["name"] for i in progress["ignored_signals"]] == [
        "mark_completed",
        "mark_completed",
        "mark_no_show",
    ]
    assert (result.outcome, result.feedback_rating) == ("completed", 4)
    assert len(outbox(app, "booking_follow_up")) == 1
    assert booking_row(app, booked.booking_id)["status"] == "completed"
