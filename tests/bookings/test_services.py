"""The booking rules without Temporal: policy arithmetic, idempotent outcomes, reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from estuary.contracts.bookings import reminder_key
from estuary.db import db
from estuary.models import Client
from estuary.services import booking_policies, bookings, ledger, reminders
from estuary.services.errors import BusinessRuleError, NotFoundError
from tests.bookings.conftest import booking_row, make_booking, outbox

START = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("price", "percent", "forfeited", "fee", "credit"),
    [
        (9_000, 50, True, 4_500, 0),
        (9_999, 50, True, 4_999, 0),
        (9_999, 50, False, 4_999, 5_000),  # the rounding cent goes to the client
        (9_000, 0, False, 0, 9_000),
        (9_000, 100, True, 9_000, 0),
    ],
)
def test_no_show_policy_splits_the_price_exactly(price, percent, forfeited, fee, credit):
    s = booking_policies.no_show(
        price, fee_percent=percent, credit_forfeited=forfeited, package_session=False
    )
    assert (s.fee_cents, s.credit_cents) == (fee, credit)
    assert s.fee_cents + s.credit_cents + s.forfeited_cents == price


@pytest.mark.parametrize(
    ("ahead", "by", "credit", "fee"),
    [
        (timedelta(hours=24, seconds=1), "client", 9_001, 0),
        (timedelta(hours=24), "client", 4_501, 4_500),  # exactly 24 h is not "more than"
        (timedelta(hours=2), "client", 4_501, 4_500),
        (timedelta(hours=2), "practitioner", 9_001, 0),
        (timedelta(hours=2), "ops", 9_001, 0),
    ],
)
def test_cancellation_policy_by_notice_and_canceller(ahead, by, credit, fee):
    s = booking_policies.cancellation(
        9_001,
        start_at=START,
        now=START - ahead,
        by=by,
        full_credit_hours=24,
        late_credit_percent=50,
        package_session=False,
    )
    assert (s.credit_cents, s.fee_cents, s.forfeited_cents) == (credit, fee, 0)


def test_package_sessions_move_no_money_and_bad_percentages_are_refused():
    s = booking_policies.no_show(
        9_000, fee_percent=50, credit_forfeited=False, package_session=True
    )
    assert (s.fee_cents, s.credit_cents) == (0, 0)
    with pytest.raises(ValueError, match="between 0 and 100"):
        booking_policies.no_show(
            9_000, fee_percent=101, credit_forfeited=True, package_session=False
        )


def test_defaults_come_from_the_app_config(app):
    app.config["BOOKING_GRACE_PERIOD_MINUTES"] = 15
    with app.app_context():
        policy = booking_policies.defaults()
    assert (policy.grace_period_minutes, policy.no_show_fee_percent) == (15, 50)


def test_no_show_applied_twice_moves_money_once(app):
    booked = make_booking(app, START)
    with app.app_context():
        kwargs = {"actor": "p", "at": START + timedelta(minutes=20)}
        first = bookings.apply_no_show(
            booked.booking_id, fee_percent=30, credit_forfeited=False, **kwargs
        )
        db.session.commit()
        second = bookings.apply_no_show(
            booked.booking_id, fee_percent=90, credit_forfeited=True, **kwargs
        )
        db.session.commit()
        assert (first.changed, second.changed) == (True, False)
        assert (second.fee_cents, second.credit_cents) == (2_700, 6_300)
        assert db.session.get(Client, booked.client_id).credit_cents == 6_300
        assert ledger.check().ok
        with pytest.raises(BusinessRuleError, match="already no_show"):
            bookings.complete(booked.booking_id, actor="p", at=START + timedelta(hours=2))


def test_no_show_before_the_start_and_unknown_bookings_are_refused(app):
    booked = make_booking(app, START)
    with app.app_context():
        with pytest.raises(BusinessRuleError, match="has not started"):
            bookings.apply_no_show(
                booked.booking_id,
                actor="p",
                at=START - timedelta(minutes=1),
                fee_percent=50,
                credit_forfeited=True,
            )
        with pytest.raises(NotFoundError, match="booking 424242 not found"):
            bookings.complete(424_242, actor="p", at=START)
    assert booking_row(app, booked.booking_id)["status"] == "confirmed"


def test_cancelling_a_package_session_returns_it_without_money(app):
    booked = make_booking(app, START, package=True)
    with app.app_context():
        outcome = bookings.apply_cancellation(
            booked.booking_id,
            actor="ops",
            by="client",
            reason="ill",
            at=START - timedelta(hours=2),
            full_credit_hours=24,
            late_credit_percent=50,
        )
        db.session.commit()
        assert (outcome.credit_cents, outcome.fee_cents) == (0, 0)
        assert "returned to the package" in outcome.note
        assert ledger.check().transactions == 0


def test_new_slot_rules(app):
    booked = make_booking(app, START)
    neighbour = make_booking(
        app, START + timedelta(hours=3), practitioner_id=booked.practitioner_id
    )
    now = START - timedelta(days=1)
    with app.app_context():
        booking = bookings.get_booking(booked.booking_id)
        # Back to back with the neighbour is fine; overlapping it by a minute is not.
        end = bookings.check_new_slot(booking, neighbour.start_at - timedelta(hours=1), now)
        assert end == neighbour.start_at
        with pytest.raises(BusinessRuleError, match=f"booking {neighbour.booking_id} runs"):
            bookings.check_new_slot(booking, neighbour.start_at - timedelta(minutes=59), now)
        with pytest.raises(BusinessRuleError, match="not in the future"):
            bookings.check_new_slot(booking, now - timedelta(minutes=1), now)
        with pytest.raises(BusinessRuleError, match="already started"):
            bookings.check_new_slot(booking, START + timedelta(days=1), START)
        with pytest.raises(BusinessRuleError, match="already starts at"):
            bookings.check_new_slot(booking, START, now)


def test_reminder_is_sent_once_per_key_and_skipped_when_it_would_mislead(app):
    booked = make_booking(app, START)
    moved_from = START - timedelta(hours=5)
    now = START - timedelta(hours=24)
    with app.app_context():
        send = reminders.send_reminder
        first = send(booked.booking_id, "24h", start_at=START, now=now, sent_by="lifecycle")
        again = send(booked.booking_id, "24h", start_at=START, now=now, sent_by="batch")
        stale = send(booked.booking_id, "24h", start_at=moved_from, now=now, sent_by="lifecycle")
        late = send(booked.booking_id, "1h", start_at=START, now=START, sent_by="lifecycle")
        db.session.commit()
        with pytest.raises(BusinessRuleError, match="unknown reminder type"):
            send(booked.booking_id, "2h", start_at=START, now=now, sent_by="batch")
    assert (first.state, again.state, stale.state, late.state) == (
        "sent",
        "already_sent",
        "skipped",
        "skipped",
    )
    assert first.key == reminder_key(booked.booking_id, "24h", START)
    assert [r["key"] for r in outbox(app, "booking_reminder")] == [first.key]


def test_feedback_is_kept_once(app):
    booked = make_booking(app, START - timedelta(days=1), status="completed")
    other = make_booking(app, START - timedelta(days=2), status="completed")
    with app.app_context():
        assert bookings.record_feedback(booked.booking_id, rating=4, comment="", at=START) == (
            4,
            True,
        )
        assert bookings.record_feedback(booked.booking_id, rating=1, comment="", at=START) == (
            4,
            False,
        )
        with pytest.raises(BusinessRuleError, match="between 1 and 5"):
            bookings.record_feedback(other.booking_id, rating=6, comment="", at=START)
