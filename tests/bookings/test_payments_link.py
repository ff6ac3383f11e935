"""The lifecycle with the REAL payments worker: a completed package session reaches the
purchase's ProgressivePackagePayoutWorkflow, and the commission step records its row."""

from __future__ import annotations

from datetime import timedelta

from estuary.contracts.bookings import MarkSessionArg
from estuary.db import db
from estuary.models import Commission
from estuary.services import ledger
from tests.bookings.conftest import booking_kit, make_booking
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow


async def test_completed_package_session_reaches_the_package_payout_workflow(app, time_env):
    async with booking_kit(time_env, app, real_payments=True) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2), package=True)
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        await handle.signal(
            BookingLifecycleWorkflow.mark_completed, MarkSessionArg(actor="practitioner")
        )
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")
        payout = kit.client.get_workflow_handle(
            f"payments-package-payout-{booked.package_purchase_id}"
        )
        payout_progress = await kit.wait_progress(payout, lambda p: p["sessions_done"] == 1)

    assert progress["payments"]["package_signalled"] is True
    assert progress["problems"] == []
    assert payout_progress["sessions_total"] == 5
    # 34,000 net over 5 sessions: the first part is 6,800, released to the practitioner.
    assert payout_progress["released_cents"] == 6_800
    with app.app_context():
        commission = db.session.query(Commission).filter_by(booking_id=booked.booking_id).one()
        assert progress["payments"]["commission_cents"] == commission.commission_cents
        assert ledger.balance(ledger.available_account(booked.practitioner_id)) == 6_800


async def test_completed_single_session_records_its_commission_once(app, time_env):
    async with booking_kit(time_env, app, real_payments=True) as kit:
        booked = make_booking(app, await kit.now() + timedelta(hours=2), price_cents=10_000)
        handle = await kit.start_lifecycle(booked.booking_id)
        await kit.sleep_until(booked.end_at)
        for _ in range(2):
            await handle.signal(
                BookingLifecycleWorkflow.mark_completed, MarkSessionArg(actor="practitioner")
            )
        progress = await kit.wait_progress(handle, lambda p: p["stage"] == "awaiting_feedback")

    assert progress["payments"]["package_signalled"] is False
    with app.app_context():
        (commission,) = db.session.query(Commission).filter_by(booking_id=booked.booking_id)
        # Tier "pro" takes 15 %; the rest is the practitioner's.
        assert commission.commission_cents == 1_500
        assert progress["payments"]["commission_cents"] == 1_500
        assert ledger.balance(ledger.available_account(booked.practitioner_id)) == 8_500


async def test_package_no_show_follows_the_no_show_policy(app, time_env):
    """A no-show uses the package session up (BOOKING_NO_SHOW_CREDIT_FORFEITED, the
    default): its part is earned like a completed session's. With the policy off, the
    client gets the session back and the package payout releases nothing for it."""
    for forfeited, released in ((True, 6_800), (False, 0)):
        app.config["BOOKING_NO_SHOW_CREDIT_FORFEITED"] = forfeited
        async with booking_kit(time_env, app, real_payments=True) as kit:
            booked = make_booking(app, await kit.now() + timedelta(hours=2), package=True)
            handle = await kit.start_lifecycle(booked.booking_id)
            await kit.sleep_until(booked.end_at)
            await handle.signal(
                BookingLifecycleWorkflow.mark_no_show, MarkSessionArg(actor="practitioner")
            )
            await kit.wait_progress(
                handle, lambda p: p["stage"] == "no_show" and p["payments"]["package_signalled"]
            )
            payout = kit.client.get_workflow_handle(
                f"payments-package-payout-{booked.package_purchase_id}"
            )
            booking_id = booked.booking_id
            # Handled either way: released, or ignored with the reason.
            payout_progress = await kit.wait_progress(
                payout,
                lambda p, b=booking_id: p["sessions_done"] == 1 or b in p["ignored_booking_ids"],
            )
        assert payout_progress["released_cents"] == released
        with app.app_context():
            available = ledger.balance(ledger.available_account(booked.practitioner_id))
            assert available == released
