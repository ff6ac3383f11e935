"""Payments test helpers: factories for practitioners, bookings, packages and money."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import pytest
from flask import Flask
from sqlalchemy import func, select

from estuary.db import db
from estuary.models import (
    Booking,
    Client,
    LedgerTransaction,
    Package,
    PackagePurchase,
    Practitioner,
    Service,
    Subscription,
    Transfer,
)
from estuary.models.base import utcnow
from estuary.services import ledger

_seq = count(1)
# Practitioners and package purchases get ids unique across the test session: workflow
# ids are business keys (`payments-payout-{practitioner}-...`,
# `payments-package-payout-{purchase}`) and the Temporal test servers outlive each test's
# database, so reused ids would find another test's runs.
_entity_ids = count(100_001)


class Money:
    """Factories that write committed rows and return plain ids (no detached objects)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def practitioner(
        self,
        *,
        balance: int = 0,
        tier: str = "pro",
        status: str = "active",
        destination: str | None = "acct_test",
    ) -> int:
        n = next(_seq)
        with self.app.app_context():
            p = Practitioner(
                id=next(_entity_ids),
                name=f"Practitioner {n}",
                email=f"p{n}-{id(self)}@test.local",
                status=status,
                tier=tier,
                payout_destination=destination,
            )
            db.session.add(p)
            db.session.flush()
            if balance:
                ledger.post(
                    f"test:earnings:{p.id}",
                    "earning",
                    [
                        ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -balance),
                        ledger.Leg(ledger.available_account(p.id), balance),
                    ],
                )
            db.session.commit()
            return p.id

    def _client_and_service(self, practitioner_id: int, price: int) -> tuple[int, int]:
        n = next(_seq)
        c = Client(name=f"Client {n}", email=f"c{n}-{id(self)}@test.local")
        s = Service(practitioner_id=practitioner_id, name="Massage", price_cents=price)
        db.session.add_all([c, s])
        db.session.flush()
        return c.id, s.id

    def booking(
        self,
        practitioner_id: int,
        *,
        price: int = 10_000,
        status: str = "completed",
        purchase_id: int | None = None,
        completed_days_ago: int = 1,
        pay_into_clearing: bool = True,
    ) -> int:
        with self.app.app_context():
            client_id, service_id = self._client_and_service(practitioner_id, price)
            start = utcnow() - timedelta(days=completed_days_ago, hours=1)
            b = Booking(
                client_id=client_id,
                practitioner_id=practitioner_id,
                service_id=service_id,
                package_purchase_id=purchase_id,
                start_at=start,
                end_at=start + timedelta(hours=1),
                price_cents=price,
                status=status,
                completed_at=start + timedelta(hours=1) if status == "completed" else None,
            )
            db.session.add(b)
            db.session.flush()
            if pay_into_clearing and purchase_id is None and price:
                ledger.post(
                    f"test:payment:booking:{b.id}",
                    "client_payment",
                    [
                        ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -price),
                        ledger.Leg(ledger.PLATFORM_CLEARING, price),
                    ],
                )
            db.session.commit()
            return b.id

    def purchase(
        self,
        practitioner_id: int,
        *,
        sessions: int = 3,
        total: int = 12_000,
        net: int = 10_000,
        expires_in: timedelta = timedelta(days=180),
        now: datetime | None = None,
    ) -> int:
        """A paid package purchase; `now` should be the Temporal server's clock when a
        workflow will time its expiry (the time-skipping clock runs ahead of ours)."""
        with self.app.app_context():
            client_id, service_id = self._client_and_service(practitioner_id, total)
            pkg = Package(
                service_id=service_id, name="Pack", session_count=sessions, price_cents=total
            )
            db.session.add(pkg)
            db.session.flush()
            pp = PackagePurchase(
                id=next(_entity_ids),
                package_id=pkg.id,
                client_id=client_id,
                practitioner_id=practitioner_id,
                sessions_total=sessions,
                total_cents=total,
                net_cents=net,
                expires_at=(now or utcnow()) + expires_in,
            )
            db.session.add(pp)
            db.session.flush()
            ledger.post(
                f"test:payment:package:{pp.id}",
                "client_payment",
                [
                    ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -total),
                    ledger.Leg(ledger.PLATFORM_CLEARING, total),
                ],
            )
            db.session.commit()
            return pp.id

    def subscription(self, practitioner_id: int, *, price: int = 5_900) -> int:
        with self.app.app_context():
            now = utcnow()
            s = Subscription(
                practitioner_id=practitioner_id,
                tier="pro",
                price_cents=price,
                current_period_start=now,
                current_period_end=now + timedelta(days=30),
            )
            db.session.add(s)
            db.session.commit()
            return s.id

    # reading --------------------------------------------------------------------------

    def balance(self, account: str) -> int:
        with self.app.app_context():
            return ledger.balance(account)

    def available(self, practitioner_id: int) -> int:
        return self.balance(ledger.available_account(practitioner_id))

    def held(self, practitioner_id: int) -> int:
        return self.balance(ledger.held_account(practitioner_id))

    def ledger_ok(self) -> bool:
        with self.app.app_context():
            return ledger.check().ok

    def count(self, model: type) -> int:
        with self.app.app_context():
            return int(db.session.scalar(select(func.count()).select_from(model)) or 0)

    def transfers(self) -> int:
        return self.count(Transfer)

    def ledger_transactions(self) -> int:
        return self.count(LedgerTransaction)


@pytest.fixture
def money(app: Flask) -> Money:
    return Money(app)


@pytest.fixture(autouse=True)
async def _close_open_runs():
    yield
    from tests.payments.helpers import close_open_runs

    await close_open_runs()
