"""Helpers for the write-side console tests (plain functions and one live-server helper,
so they never clash with fixtures other console tests define)."""

from __future__ import annotations

import asyncio
import dataclasses
import http.cookiejar
import itertools
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import make_server

from estuary.db import db
from estuary.models import (
    AuditEvent,
    Booking,
    Client,
    Practitioner,
    Service,
    StaffUser,
)
from estuary.models.base import utcnow
from estuary.services import ledger
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway
from tests.conftest import make_user

PASSWORD = "correct horse battery"
# Row ids for practitioners and bookings: unique across tests, because the business keys
# (`payments-payout-{practitioner}-{day}`, `bookings-lifecycle-{booking}`) live on in the
# session's Temporal server while the database starts empty for every test.
_ids = itertools.count(random.randrange(10_000_000, 2_000_000_000, 1_000_000))
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _fresh_id(model: Any) -> int:
    """The next row id from `_ids`, moved past any id the table already holds: SQLite gives
    a row inserted without an id max(id)+1, so rows seeded that way (by another test of the
    same live stack) may sit on the counter's next values."""
    global _ids
    value = next(_ids)
    taken = db.session.scalar(select(func.max(model.id))) or 0
    if value <= taken:
        value = taken + 1
        _ids = itertools.count(value + 1)
    return value


def login(
    app: Flask, role: str = "operator", email: str | None = None, *, csrf: bool = False
) -> tuple[FlaskClient, StaffUser]:
    """A test client signed in as a new staff user with `role` (CSRF off unless asked)."""
    app.config["WTF_CSRF_ENABLED"] = csrf
    user = make_user(app, role, email=email or f"{role}-{uuid.uuid4().hex[:6]}@test.local")
    client = app.test_client()
    data = {"email": user.email, "password": PASSWORD}
    if csrf:
        data["csrf_token"] = csrf_token(client, "/auth/login")
    response = client.post("/auth/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client, user


def sign_in(app: Flask, user: StaffUser) -> FlaskClient:
    """Another signed-in session (its own client) for an existing user."""
    client = app.test_client()
    data = {"email": user.email, "password": PASSWORD}
    if app.config.get("WTF_CSRF_ENABLED"):
        data["csrf_token"] = csrf_token(client, "/auth/login")
    response = client.post("/auth/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    found = CSRF_RE.search(page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


class CountingGateway(TemporalGateway):
    """A real gateway that counts every call that would reach Temporal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def run(self, fn: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        return super().run(fn, timeout)


def unreachable_gateway(app: Flask) -> CountingGateway:
    """A gateway pointed at a closed port: any call fails, and is counted."""
    gw = CountingGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": "127.0.0.1:9",
            "TEMPORAL_CONNECT_TIMEOUT": 1,
            "TEMPORAL_RPC_TIMEOUT": 1,
        }
    )
    set_gateway(app, gw)
    return gw


def counting_gateway_for(app: Flask, env: Any, prefix: str) -> CountingGateway:
    gw = CountingGateway(
        {
            **app.config,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": env.client.namespace,
            "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        }
    )
    set_gateway(app, gw)
    return gw


# --- data -----------------------------------------------------------------------------------


def seed_practitioner(
    app: Flask,
    *,
    balance_cents: int = 0,
    name: str | None = None,
    destination: str | None = "acct_test",
    status: str = "active",
) -> int:
    with app.app_context():
        tag = uuid.uuid4().hex[:8]
        p = Practitioner(
            id=_fresh_id(Practitioner),
            name=name or f"Practitioner {tag}",
            email=f"p-{tag}@practitioners.test",
            status=status,
            tier="pro",
            profile_complete=True,
            accepts_bookings=True,
            payout_destination=f"{destination}_{tag}" if destination else None,
        )
        db.session.add(p)
        db.session.flush()
        if balance_cents:
            ledger.post(
                f"test:earnings:{p.id}:{tag}",
                "earning",
                [
                    ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -balance_cents),
                    ledger.Leg(ledger.available_account(p.id), balance_cents),
                ],
            )
        db.session.commit()
        return p.id


def seed_booking(
    app: Flask,
    *,
    practitioner_id: int | None = None,
    hours_ahead: float = 72,
    status: str = "confirmed",
) -> int:
    with app.app_context():
        pid = practitioner_id or seed_practitioner(app)
        tag = uuid.uuid4().hex[:8]
        client = Client(name=f"Client {tag}", email=f"c-{tag}@clients.test")
        service = Service(
            practitioner_id=pid, name="Massage", duration_minutes=60, price_cents=9_000
        )
        db.session.add_all([client, service])
        db.session.flush()
        start = utcnow().replace(microsecond=0) + timedelta(hours=hours_ahead)
        booking = Booking(
            id=_fresh_id(Booking),
            client_id=client.id,
            practitioner_id=pid,
            service_id=service.id,
            start_at=start,
            end_at=start + timedelta(minutes=60),
            price_cents=9_000,
            status=status,
        )
        db.session.add(booking)
        db.session.commit()
        return booking.id


def audit_events(app: Flask, **where: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        events = list(db.session.scalars(query))
        for e in events:
            db.session.expunge(e)
        return events


def count_rows(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


async def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll a sync predicate (off the event loop) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(interval)


# --- a live console for tests that need real concurrent HTTP requests -------------------------


@contextmanager
def live_console(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port in a thread (threaded: one thread per request)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-console", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        return None


class HttpSession:
    """A browser-like session over real HTTP (cookies, CSRF token from the pages)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def token(self, path: str) -> str:
        status, page = self.request(path)
        found = CSRF_RE.search(page)
        assert found, f"no CSRF token on {path} ({status})"
        return found.group(1)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        token = self.token("/auth/login")
        status, _ = self.request(
            "/auth/login", {"email": email, "password": password, "csrf_token": token}
        )
        assert status == 302, f"sign-in failed for {email}: {status}"


# --- every state-changing endpoint, for the authorisation matrix and CSRF tests -------------


@dataclass
class World:
    """Rows the state-changing requests point at."""

    practitioner_id: int
    payout_id: int
    staff_id: int
    schedule_id: str = "bookings-daily-reminders"
    workflow_id: str = "bookings-lifecycle-1"


@dataclass(frozen=True)
class Endpoint:
    endpoint: str
    permission: str
    path: Callable[[World], str]
    data: Callable[[World], dict[str, str]]


def make_world(app: Flask) -> World:
    from estuary.models import Payout

    pid = seed_practitioner(app, balance_cents=90_000)
    with app.app_context():
        payout = Payout(
            practitioner_id=pid,
            amount_cents=60_000,
            status="pending_approval",
            idempotency_key=f"payments-payout-{pid}-test",
            workflow_id=f"payments-payout-{pid}-test",
            requested_by="requester@test.local",
            approvals_required=1,
        )
        db.session.add(payout)
        db.session.commit()
        payout_id = payout.id
    target = make_user(app, "viewer", email=f"target-{uuid.uuid4().hex[:6]}@test.local")
    return World(pid, payout_id, target.id)


def _approval(w: World) -> dict[str, str]:
    return {"amount_cents": "600.00", "practitioner_id": str(w.practitioner_id)}


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "catalog.start",
        "start_workflow",
        lambda w: "/workflows/LedgerReconciliationWorkflow/start",
        lambda w: {"action_reason": "matrix"},
    ),
    Endpoint(
        "runs.signal",
        "signal",
        lambda w: f"/runs/{w.workflow_id}/signal/feedback_received",
        lambda w: {"workflow_type": "BookingLifecycleWorkflow", "rating": "5"},
    ),
    Endpoint(
        "runs.update",
        "signal",
        lambda w: f"/runs/{w.workflow_id}/update/reschedule",
        lambda w: {"workflow_type": "BookingLifecycleWorkflow", "new_start_at": "2099-01-01T10:00"},
    ),
    Endpoint(
        "runs.cancel",
        "cancel",
        lambda w: f"/runs/{w.workflow_id}/cancel",
        lambda w: {"action_reason": "matrix"},
    ),
    Endpoint(
        "runs.terminate",
        "terminate",
        lambda w: f"/runs/{w.workflow_id}/terminate",
        lambda w: {"action_reason": "matrix"},
    ),
    Endpoint(
        "runs.reset",
        "reset",
        lambda w: f"/runs/{w.workflow_id}/reset",
        lambda w: {"action_reason": "matrix", "point": "last_failure"},
    ),
    Endpoint(
        "runs.retry",
        "retry",
        lambda w: f"/runs/{w.workflow_id}/retry",
        lambda w: {"mode": "rerun"},
    ),
    Endpoint(
        "runs.bulk_retry",
        "retry",
        lambda w: "/runs/bulk-retry",
        lambda w: {"action_reason": "matrix", "run": f"{w.workflow_id}|abc"},
    ),
    Endpoint(
        "approvals.approve",
        "approve_payout",
        lambda w: f"/approvals/{w.payout_id}/approve",
        _approval,
    ),
    Endpoint(
        "approvals.reject",
        "approve_payout",
        lambda w: f"/approvals/{w.payout_id}/reject",
        lambda w: {**_approval(w), "reason_code": "duplicate"},
    ),
    Endpoint(
        "schedules.act",
        "manage_schedules",
        lambda w: f"/schedules/{w.schedule_id}/pause",
        lambda w: {"action_reason": "matrix"},
    ),
    Endpoint(
        "staff.create",
        "manage_staff",
        lambda w: "/staff/create",
        lambda w: {
            "email": f"made-{uuid.uuid4().hex[:6]}@test.local",
            "name": "Made",
            "role": "viewer",
            "password": "long enough password",
        },
    ),
    Endpoint(
        "staff.set_role",
        "manage_staff",
        lambda w: f"/staff/{w.staff_id}/role",
        lambda w: {"role": "operator"},
    ),
    Endpoint(
        "staff.disable", "manage_staff", lambda w: f"/staff/{w.staff_id}/disable", lambda w: {}
    ),
    Endpoint("staff.enable", "manage_staff", lambda w: f"/staff/{w.staff_id}/enable", lambda w: {}),
    Endpoint(
        "profile.set_time_zone",
        "view",
        lambda w: "/profile/time-zone",
        lambda w: {"time_zone": "Europe/Paris"},
    ),
    Endpoint(
        "staff.reset_password",
        "manage_staff",
        lambda w: f"/staff/{w.staff_id}/password",
        lambda w: {"password": "another long password"},
    ),
)


def snapshot(app: Flask) -> tuple:
    """What a refused request must leave exactly as it was."""
    from estuary.models import Payout, PayoutApproval, StaffSession

    with app.app_context():
        users = tuple(
            db.session.execute(
                select(
                    StaffUser.id,
                    StaffUser.role,
                    StaffUser.disabled,
                    StaffUser.password_hash,
                    StaffUser.approval_limit_cents,
                ).order_by(StaffUser.id)
            ).all()
        )
        payouts = tuple(db.session.execute(select(Payout.id, Payout.status)).all())
        approvals = db.session.scalar(select(func.count(PayoutApproval.id)))
        ended = db.session.scalar(
            select(func.count(StaffSession.id)).where(StaffSession.ended_at.is_not(None))
        )
        return users, payouts, approvals, ended


def unique_batch_ids(monkeypatch: Any) -> str:
    """Give the batch payout a business id of its own for this test.

    The real one is one per day (`payments-batch-payout-{date}`) and a completed money run
    never runs again under its id, so on the session's shared Temporal server a second
    test starting "today's" batch would find the first one's. Returns the id prefix.
    """
    from estuary.contracts import catalogue

    name = "BatchPractitionerPayoutWorkflow"
    wf = catalogue.workflow(name)
    tag = f"payments-batch-payout-test{uuid.uuid4().hex[:8]}"
    original = wf.spec.business_id

    def business_id(inp: Any, now: Any) -> str:
        return original(inp, now).replace("payments-batch-payout", tag, 1)

    patched = dataclasses.replace(wf, spec=dataclasses.replace(wf.spec, business_id=business_id))
    monkeypatch.setitem(catalogue.domain(wf.domain).workflows, name, patched)
    return tag
