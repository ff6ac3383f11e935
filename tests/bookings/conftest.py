"""Bookings test helpers: booking factories, a test double of the payments activities,
and a kit that runs the bookings worker and starts lifecycles against a Temporal env.

Booking and package purchase ids are offset per test (a fresh block each time): workflow
ids are business keys (`bookings-lifecycle-{id}`) and the time-skipping server lives for
the whole session, so ids restarting at 1 in every test would collide with earlier runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from estuary.contracts.bookings import BookingLifecycleInput, lifecycle_workflow_id
from estuary.contracts.payments import (
    BookingCommissionInput,
    BookingCommissionResult,
    PackageSessionCompletedInput,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import (
    Booking,
    Notification,
    Package,
    PackagePurchase,
    Practitioner,
    Service,
)
from estuary.models import (
    Client as ClientModel,
)
from tests.conftest import running_workers
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow

_seq = count(1)
_id_blocks = count(random.randint(1_000, 900_000) * 1_000, 1_000)


@dataclass(frozen=True)
class Booked:
    booking_id: int
    client_id: int
    practitioner_id: int
    service_id: int
    package_purchase_id: int | None
    start_at: datetime
    end_at: datetime


def _offset_ids(base: int) -> None:
    """Make the next booking and package purchase ids `base + 1` (SQLite and PostgreSQL):
    workflow ids are built from them (`bookings-lifecycle-{id}`,
    `payments-package-payout-{purchase}`)."""
    if db.engine.dialect.name == "postgresql":
        for table in ("booking", "package_purchase"):
            db.session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :v)"), {"v": base}
            )
        return
    # SQLite (no AUTOINCREMENT): the next rowid is max(id) + 1; keep finished placeholders.
    n = next(_seq)
    p = Practitioner(name="Placeholder", email=f"placeholder{n}@test.local")
    c = ClientModel(name="Placeholder", email=f"placeholder{n}@client.test.local")
    db.session.add_all([p, c])
    db.session.flush()
    s = Service(practitioner_id=p.id, name="Placeholder", price_cents=1)
    db.session.add(s)
    db.session.flush()
    pkg = Package(service_id=s.id, name="Placeholder", session_count=1, price_cents=1)
    db.session.add(pkg)
    db.session.flush()
    past = datetime(2000, 1, 1, tzinfo=UTC)
    db.session.add(
        PackagePurchase(
            id=base,
            package_id=pkg.id,
            client_id=c.id,
            practitioner_id=p.id,
            sessions_total=1,
            total_cents=1,
            net_cents=1,
            expires_at=past,
            status="expired",
        )
    )
    db.session.add(
        Booking(
            id=base,
            client_id=c.id,
            practitioner_id=p.id,
            service_id=s.id,
            start_at=past,
            end_at=past + timedelta(hours=1),
            status="cancelled",
            price_cents=1,
        )
    )


@pytest.fixture(autouse=True)
def _fresh_booking_ids(app: Flask) -> None:
    with app.app_context():
        _offset_ids(next(_id_blocks))
        db.session.commit()


def make_practitioner(app: Flask, *, tier: str = "pro") -> int:
    n = next(_seq)
    with app.app_context():
        p = Practitioner(
            name=f"Practitioner {n}",
            email=f"prac{n}@practitioners.test.local",
            status="active",
            tier=tier,
            accepts_bookings=True,
            payout_destination=f"acct_test_{n}",
        )
        db.session.add(p)
        db.session.commit()
        return p.id


def make_booking(
    app: Flask,
    start_at: datetime,
    *,
    minutes: int = 60,
    price_cents: int = 9_000,
    package: bool = False,
    practitioner_id: int | None = None,
    status: str = "confirmed",
) -> Booked:
    """A committed booking (with its client, service and optionally a package purchase)."""
    start_at = start_at.replace(microsecond=0)
    practitioner_id = practitioner_id or make_practitioner(app)
    n = next(_seq)
    with app.app_context():
        client = ClientModel(name=f"Client {n}", email=f"client{n}@test.local")
        service = Service(
            practitioner_id=practitioner_id,
            name="Therapeutic massage",
            duration_minutes=minutes,
            price_cents=price_cents,
        )
        db.session.add_all([client, service])
        db.session.flush()
        purchase_id = None
        if package:
            pkg = Package(
                service_id=service.id, name="Five-pack", session_count=5, price_cents=40_000
            )
            db.session.add(pkg)
            db.session.flush()
            purchase = PackagePurchase(
                package_id=pkg.id,
                client_id=client.id,
                practitioner_id=practitioner_id,
                sessions_total=5,
                total_cents=40_000,
                net_cents=34_000,
                purchased_at=start_at - timedelta(days=10),
                expires_at=start_at + timedelta(days=170),
            )
            db.session.add(purchase)
            db.session.flush()
            purchase_id = purchase.id
        booking = Booking(
            client_id=client.id,
            practitioner_id=practitioner_id,
            service_id=service.id,
            package_purchase_id=purchase_id,
            start_at=start_at,
            end_at=start_at + timedelta(minutes=minutes),
            status=status,
            price_cents=price_cents,
            completed_at=start_at + timedelta(minutes=minutes) if status == "completed" else None,
        )
        db.session.add(booking)
        db.session.commit()
        return Booked(
            booking.id,
            client.id,
            practitioner_id,
            service.id,
            purchase_id,
            booking.start_at,
            booking.end_at,
        )


def outbox(app: Flask, template: str | None = None, booking_id: int | None = None) -> list[dict]:
    """Outbox rows as dicts (payload decoded), oldest first."""
    with app.app_context():
        query = select(Notification).order_by(Notification.id)
        if template:
            query = query.where(Notification.template == template)
        if booking_id is not None:
            query = query.where(Notification.entity_id == booking_id)
        return [
            {
                "key": n.key,
                "template": n.template,
                "recipient": n.recipient,
                "payload": json.loads(n.payload_json),
            }
            for n in db.session.scalars(query)
        ]


def booking_row(app: Flask, booking_id: int) -> dict[str, Any]:
    with app.app_context():
        b = db.session.get(Booking, booking_id)
        return {c.name: getattr(b, c.name) for c in Booking.__table__.columns}


# --- the payments double ---------------------------------------------------------------------


@dataclass
class FakePayments:
    """Records calls to the payments contract activities (same names, same shapes)."""

    package_calls: list[tuple[int, int]] = field(default_factory=list)
    commission_calls: list[int] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="notify_package_session_completed")
        async def notify_package_session_completed(inp: PackageSessionCompletedInput) -> None:
            self.package_calls.append((inp.package_purchase_id, inp.booking_id))

        @activity.defn(name="record_booking_commission")
        async def record_booking_commission(
            inp: BookingCommissionInput,
        ) -> BookingCommissionResult:
            created = inp.booking_id not in self.commission_calls
            self.commission_calls.append(inp.booking_id)
            return BookingCommissionResult(inp.booking_id, 1_350, created)

        return [notify_package_session_completed, record_booking_commission]


# --- the kit -------------------------------------------------------------------------------------


@dataclass
class Kit:
    app: Flask
    env: WorkflowEnvironment
    prefix: str
    payments: FakePayments | None

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def queue(self) -> str:
        return f"{self.prefix}bookings"

    async def now(self) -> datetime:
        """The environment's clock (the time-skipping server's, far ahead of the wall)."""
        return (await self.env.get_current_time()).replace(microsecond=0)

    async def start_lifecycle(self, booking_id: int, **policy: Any) -> WorkflowHandle:
        return await self.client.start_workflow(
            BookingLifecycleWorkflow.run,
            BookingLifecycleInput(booking_id=booking_id, **policy),
            id=lifecycle_workflow_id(booking_id),
            task_queue=self.queue,
            search_attributes=run_attributes("bookings", "booking", booking_id, "test"),
        )

    async def wait_progress(
        self, handle: WorkflowHandle, predicate: Callable[[dict], bool], timeout: float = 15
    ) -> dict:
        """Poll `progress` (real time, clock locked) until `predicate` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            progress = await handle.query("progress")
            if predicate(progress):
                return progress
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"progress never matched; last: {progress}")
            await asyncio.sleep(0.05)

    async def sleep_until(self, moment: datetime) -> None:
        """Skip the environment's clock forward to `moment`."""
        delta = moment - await self.env.get_current_time()
        if delta > timedelta(0):
            await self.env.sleep(delta)


async def _terminate_leftovers(app: Flask, client: Client) -> None:
    """Terminate the lifecycles and package payouts a test left running."""
    with app.app_context():
        ids = [lifecycle_workflow_id(i) for i in db.session.scalars(select(Booking.id))]
        ids += [
            f"payments-package-payout-{i}" for i in db.session.scalars(select(PackagePurchase.id))
        ]
    for workflow_id in ids:
        with contextlib.suppress(RPCError):  # not started, or already closed
            await client.get_workflow_handle(workflow_id).terminate("test finished")


@asynccontextmanager
async def booking_kit(
    env: WorkflowEnvironment, app: Flask, *, real_payments: bool = False
) -> AsyncIterator[Kit]:
    """Run the bookings worker (and the real payments worker, or the double) for a test;
    at the end terminate whatever lifecycles the test left running."""
    domains = ["bookings", "payments"] if real_payments else ["bookings"]
    async with running_workers(env.client, app, domains) as prefix:
        fake = None if real_payments else FakePayments()
        try:
            if fake is None:
                yield Kit(app, env, prefix, None)
            else:
                async with Worker(
                    env.client, task_queue=f"{prefix}payments", activities=fake.activities()
                ):
                    yield Kit(app, env, prefix, fake)
        finally:
            await _terminate_leftovers(app, env.client)
