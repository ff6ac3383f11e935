"""CommissionCalculationWorkflow: commission by tier, once per booking however often."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from estuary.contracts.payments import CommissionCalculationInput
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Booking, Commission, Practitioner
from estuary.models.base import utcnow
from estuary.services import ledger
from tests.conftest import running_workers
from workers.payments.workflows import CommissionCalculationWorkflow


async def run_period(client, prefix, inp):
    return await client.execute_workflow(
        CommissionCalculationWorkflow.run,
        inp,
        id=f"payments-commissions-{inp.period_start}-{inp.period_end}-{uuid.uuid4().hex[:6]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "commission_period", "test", "test"),
    )


async def test_period_commissions_are_written_once(app, money, time_env):
    pro = money.practitioner(tier="pro")
    premium = money.practitioner(tier="premium")
    odd = money.practitioner(tier="basic")
    purchase = money.purchase(pro, sessions=2, total=9_000, net=7_500)
    single = money.booking(pro, price=10_000, completed_days_ago=1)
    session = money.booking(pro, price=4_500, purchase_id=purchase, completed_days_ago=1)
    other = money.booking(premium, price=7_000, completed_days_ago=2)
    money.booking(premium, price=7_000, completed_days_ago=40)  # outside the period
    money.booking(premium, price=7_000, status="confirmed")  # not completed
    refused = money.booking(odd, price=1_000, completed_days_ago=1)
    with app.app_context():
        # A tier without a rate: that booking is reported, the others proceed.
        db.session.execute(update(Practitioner).where(Practitioner.id == odd).values(tier="vip"))
        db.session.commit()
    today = utcnow().date()
    inp = CommissionCalculationInput(
        period_start=(today - timedelta(days=7)).isoformat(), period_end=today.isoformat()
    )
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        first = await run_period(time_env.client, prefix, inp)
        second = await run_period(time_env.client, prefix, inp)
    assert first.bookings_examined == 4
    assert (first.commissions_created, first.commission_cents_created) == (3, 1500 + 750 + 700)
    assert first.net_released_cents == 8_500 + 6_300
    assert first.failed == 1 and first.failures == [
        f"booking {refused}: no commission rate for tier 'vip'"
    ]
    assert (second.commissions_created, second.already_recorded, second.failed) == (0, 3, 1)
    with app.app_context():
        rows = {
            c.booking_id: (c.tier, c.rate_bps, c.commission_cents)
            for c in db.session.scalars(select(Commission))
        }
        assert db.session.get(Booking, session).package_purchase_id == purchase
    assert rows == {
        single: ("pro", 1500, 1500),
        session: ("pro", 1667, 750),
        other: ("premium", 1000, 700),
    }
    assert money.balance(ledger.PLATFORM_COMMISSION) == 2_950
    assert money.available(pro) == 8_500  # the package session's net waits for its payout
    assert money.available(premium) == 6_300
    assert money.ledger_ok()
