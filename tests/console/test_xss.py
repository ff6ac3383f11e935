"""Hostile text renders inert: a workflow failure message, memo and trigger from
Temporal, and practitioner names, payout reasons, booking notes, notification payloads and
ops-flag messages from the database, each containing <script>, "><img onerror=...> and
hx-get= attributes, come out as text: no new element, no event handler, no htmx
attribute."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Booking, Client, Notification, OpsFlag, Payout, Practitioner, Service
from estuary.models.base import utcnow
from tests.conftest import gateway_for, unique_prefix
from tests.console.read_support import eventually, get, login, unreachable_gateway
from tests.console.read_workflows import (
    QUEUE,
    ReadSideTestWorkflow,
    ReadTestInput,
    read_test_worker,
)

EVIL = (
    '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
    '\' hx-get="/evil" hx-trigger=load <div hx-get=/evil hx-trigger=load>'
)
HTMX_ATTRS = {"hx-get", "hx-post", "hx-put", "hx-delete", "hx-patch", "hx-trigger", "hx-on"}


class ElementAudit(HTMLParser):
    """Every element and attribute the browser would build from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.problems.append("an <img> element")
        if tag == "script" and not (values.get("src") or "").startswith("/static/"):
            self.problems.append("an inline <script>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}")
            if (name in HTMX_ATTRS or name.startswith("hx-on")) and "evil" in (value or ""):
                self.problems.append(f"{name}={value}")
        if values.get("src") == "x":
            self.problems.append(f"injected src on <{tag}>")


def assert_inert(html: str) -> None:
    audit = ElementAudit()
    audit.feed(html)
    assert audit.problems == [], audit.problems
    assert "&lt;script&gt;" in html  # the text is there, escaped


def test_database_text_renders_inert(app):
    unreachable_gateway(app)
    with app.app_context():
        p = Practitioner(name=EVIL[:200], email="evil@practitioners.test")
        c = Client(name=EVIL[:200], email="evil@clients.test")
        db.session.add_all([p, c])
        db.session.flush()
        s = Service(practitioner_id=p.id, name=EVIL[:200], price_cents=100)
        db.session.add(s)
        db.session.flush()
        start = utcnow() + timedelta(days=2)
        b = Booking(
            client_id=c.id,
            practitioner_id=p.id,
            service_id=s.id,
            start_at=start,
            end_at=start + timedelta(hours=1),
            price_cents=100,
            status="cancelled",
            cancel_reason=EVIL,
            cancelled_by=EVIL[:200],
        )
        db.session.add(b)
        db.session.flush()
        payout = Payout(
            practitioner_id=p.id,
            amount_cents=100,
            idempotency_key="evil-1",
            workflow_id="payments-payout-evil",
            requested_by=EVIL[:200],
            reason=EVIL,
            failure_reason=EVIL,
        )
        db.session.add(payout)
        db.session.add(
            Notification(
                key="evil-key",
                channel="email",
                recipient=EVIL[:200],
                template="evil_template",
                payload_json=json.dumps({"memo": EVIL}),
                entity_type="booking",
                entity_id=b.id,
            )
        )
        db.session.add(
            OpsFlag(
                key="evil-flag",
                kind="unresolved_session",
                entity_type="booking",
                entity_id=b.id,
                message=EVIL,
            )
        )
        db.session.commit()
        ids = (p.id, b.id, payout.id)
    client = login(app)
    for url in (
        "/",
        "/practitioners",
        f"/practitioners/{ids[0]}",
        "/bookings",
        f"/bookings/{ids[1]}",
        "/payouts",
        f"/payouts/{ids[2]}",
        "/notifications",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.get_data(as_text=True))


@pytest.mark.live
async def test_temporal_text_renders_inert(app, local_env):
    prefix = unique_prefix()
    gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        handle = await local_env.client.start_workflow(
            ReadSideTestWorkflow.run,
            ReadTestInput(steps=0, timer_seconds=0, fail_message=EVIL, label=EVIL),
            id=f"readtest-evil-{uuid.uuid4().hex[:8]}",
            task_queue=f"{prefix}{QUEUE}",
            search_attributes=run_attributes("payments", "readtest", "evil", EVIL[:120]),
            memo={"triggered_by": EVIL, "reason": EVIL},
        )
        with pytest.raises(Exception, match="Workflow execution failed"):
            await handle.result()

    detail = await get(client, f"/runs/{handle.id}/{handle.result_run_id}")
    html = detail.get_data(as_text=True)
    assert detail.status_code == 200
    assert 'data-testid="failure-message"' in html
    assert_inert(html)

    def listed() -> str | None:
        body = client.get("/runs?entity_id=evil").get_data(as_text=True)
        return body if handle.id in body else None

    assert_inert(await eventually(listed))
    events = await get(client, f"/runs/{handle.id}/{handle.result_run_id}/events")
    assert_inert(events.get_data(as_text=True))
