"""Every read page per role: staff of any role see it, anonymous visitors are sent to
sign-in and see no data; database pages keep working (with a banner) when Temporal is
unreachable; 404/403/500 pages in the console style; bad list filters are field errors."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from estuary.db import db
from estuary.models import (
    Booking,
    Client,
    Notification,
    OnboardingProgress,
    OpsFlag,
    Payout,
    PayoutApproval,
    Practitioner,
    Service,
)
from estuary.models.base import utcnow
from estuary.services import ledger
from tests.console.read_support import login, unreachable_gateway
from workers.temporal import registry

SECRET_NAME = "Zephyrine Quillfeather"


def seed(app) -> dict[str, int]:
    """A practitioner with a stalled onboarding, a balance, a booking with a reminder and
    an unresolved-session flag, and a payout waiting for approval."""
    with app.app_context():
        p = Practitioner(name=SECRET_NAME, email="zq@practitioners.test", status="onboarding")
        c = Client(name="Cleo Client", email="cleo@clients.test")
        db.session.add_all([p, c])
        db.session.flush()
        s = Service(practitioner_id=p.id, name="Massage", price_cents=9000)
        db.session.add(s)
        db.session.flush()
        start = utcnow() + timedelta(days=1)
        b = Booking(
            client_id=c.id,
            practitioner_id=p.id,
            service_id=s.id,
            start_at=start,
            end_at=start + timedelta(hours=1),
            price_cents=9000,
        )
        db.session.add(b)
        db.session.flush()
        db.session.add(
            OnboardingProgress(
                practitioner_id=p.id,
                workflow_id=f"practitioners-onboarding-{p.id}",
                current_step="documents",
                steps_json=json.dumps(
                    {"profile": {"state": "done"}, "documents": {"state": "waiting"}}
                ),
                stalled=True,
            )
        )
        db.session.add(
            Notification(
                key=f"booking-{b.id}-reminder-24h",
                channel="email",
                recipient="cleo@clients.test",
                template="booking_reminder_24h",
                payload_json=json.dumps({"booking_id": b.id}),
                entity_type="booking",
                entity_id=b.id,
                sent_at=utcnow(),
            )
        )
        db.session.add(
            OpsFlag(
                key=f"unresolved-{b.id}",
                kind="unresolved_session",
                entity_type="booking",
                entity_id=b.id,
                message="nobody marked the session",
            )
        )
        payout = Payout(
            practitioner_id=p.id,
            amount_cents=75_000,
            idempotency_key="payout-key-1",
            workflow_id=f"payments-payout-{p.id}-20261127",
            requested_by="operator@estuary.test",
            approvals_required=1,
        )
        db.session.add(payout)
        db.session.flush()
        db.session.add(
            PayoutApproval(
                payout_id=payout.id,
                approver="approver@estuary.test",
                decision="approve",
                amount_cents=75_000,
                payee_id=p.id,
            )
        )
        ledger.post(
            "test:earning",
            "earning",
            [
                ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -123_456),
                ledger.Leg(ledger.available_account(p.id), 123_456),
            ],
        )
        db.session.commit()
        return {"practitioner": p.id, "booking": b.id, "payout": payout.id}


def read_urls(ids: dict[str, int]) -> list[str]:
    return [
        "/",
        "/charts/runs",
        "/workflows",
        "/runs",
        "/workers",
        "/practitioners",
        f"/practitioners/{ids['practitioner']}",
        "/bookings",
        f"/bookings/{ids['booking']}",
        "/payouts",
        f"/payouts/{ids['payout']}",
        "/notifications",
    ]


def test_anonymous_is_sent_to_sign_in_and_sees_no_data(app):
    ids = seed(app)
    unreachable_gateway(app)
    client = app.test_client()
    urls = [
        *read_urls(ids),
        "/runs/some-workflow/0190aaaa-bbbb",
        "/runs/some-workflow/0190aaaa-bbbb/live",
        "/runs/some-workflow/0190aaaa-bbbb/events",
        "/runs/some-workflow/0190aaaa-bbbb/history.json",
        "/runs/live?run=abc",
        "/runs/some-workflow",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/auth/login" in response.headers["Location"], url
        body = response.get_data(as_text=True)
        assert SECRET_NAME not in body and "123,456" not in body and "1,234.56" not in body


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "admin"])
def test_every_role_sees_every_read_page(app, role):
    ids = seed(app)
    unreachable_gateway(app)
    client = login(app, role)
    for url in read_urls(ids):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_database_pages_work_when_temporal_is_unreachable(app):
    ids = seed(app)
    unreachable_gateway(app)
    client = login(app)

    html = client.get(f"/practitioners/{ids['practitioner']}").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    assert 'data-testid="runs-unavailable"' in html
    assert SECRET_NAME in html
    assert "1,234.56 USD" in html  # available balance from the ledger
    assert "stalled" in html and "documents" in html

    html = client.get(f"/bookings/{ids['booking']}").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    assert "booking reminder 24h" in html and "1 reminders" in html

    html = client.get(f"/payouts/{ids['payout']}").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    assert "750.00 USD" in html and "approver@estuary.test" in html

    html = client.get("/").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    assert "runs running (Temporal unreachable)" in html
    for tile, number in (("tile-approvals", 1), ("tile-stalled", 1), ("tile-unresolved", 1)):
        assert f'data-testid="{tile}"><span class="num">{number}<' in html
    # No payout was paid in the last 14 days: the chart says what to do, no empty axis.
    assert 'data-testid="payout-chart-empty"' in html and "Approvals" in html
    assert 'class="chart"' not in html
    assert "Temporal is unreachable" in client.get("/charts/runs").get_data(as_text=True)

    html = client.get("/runs").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    html = client.get("/workers").get_data(as_text=True)
    assert 'data-testid="temporal-down"' in html
    assert client.get("/runs/wf-1/0190aaaa-bbbb-4ccc-8ddd-eeeeffff0000").status_code == 503


def test_list_pages_filter_from_the_database(app):
    ids = seed(app)
    unreachable_gateway(app)
    client = login(app)
    html = client.get("/practitioners?onboarding=stalled").get_data(as_text=True)
    assert SECRET_NAME in html
    html = client.get("/practitioners?status=active").get_data(as_text=True)
    assert SECRET_NAME not in html
    html = client.get("/practitioners?q=quill").get_data(as_text=True)
    assert SECRET_NAME in html
    html = client.get("/practitioners?q=%25").get_data(as_text=True)  # % is literal
    assert SECRET_NAME not in html
    html = client.get("/bookings?attention=1").get_data(as_text=True)
    assert f"#{ids['booking']}" in html
    html = client.get("/payouts?status=pending_approval").get_data(as_text=True)
    assert f"#{ids['payout']}" in html and "1 of 1" in html
    key = f"booking-{ids['booking']}-reminder-24h"
    assert key in client.get("/notifications?channel=email").get_data(as_text=True)
    assert key not in client.get("/notifications?channel=sms").get_data(as_text=True)


@pytest.mark.parametrize(
    "url,field",
    [
        ("/practitioners?status=nope", "status"),
        ("/practitioners?onboarding=x'--", "onboarding"),
        ("/bookings?practitioner_id=1%20OR%201=1", "practitioner_id"),
        ("/bookings?attention=yes", "attention"),
        ("/payouts?status=paid'", "status"),
        ("/payouts?page=-1", "page"),
        ("/notifications?template=a%20b", "template"),
        ("/notifications?entity_id=abc", "entity_id"),
    ],
)
def test_bad_list_filters_are_field_errors(app, url, field):
    unreachable_gateway(app)
    client = login(app)
    response = client.get(url)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-testid="filter-errors"' in html
    assert field.replace("_", " ") in html


def test_error_pages_are_in_console_style(app):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("kaboom")

    unreachable_gateway(app)
    client = login(app)
    for url, code in (("/practitioners/999999", 404), ("/no-such-page", 404)):
        response = client.get(url)
        assert response.status_code == code
        assert 'data-testid="error-page"' in response.get_data(as_text=True)
    response = client.get("/boom-for-test")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert 'data-testid="error-page"' in html and "kaboom" not in html


def test_catalogue_lists_every_registered_workflow(app):
    unreachable_gateway(app)
    client = login(app)
    html = client.get("/workflows").get_data(as_text=True)
    workflows = registry.all_workflows()
    assert workflows
    for wf in workflows:
        assert f'data-testid="workflow-{wf.name}"' in html
        for f in wf.input_fields:
            assert f'<td class="mono">{f.name}</td>' in html
    for name in registry.domains():
        assert f'data-testid="domain-{name}"' in html
    assert "worker status unknown" in html


def test_charts_with_nothing_to_draw_say_what_to_do(app, local_env):
    """No empty axis reading 0 0 0 0 0: an empty chart is an empty state."""
    from tests.conftest import gateway_for, unique_prefix

    gateway_for(app, local_env, unique_prefix())  # a prefix no run has
    client = login(app)
    chart = client.get("/charts/runs").get_data(as_text=True)
    assert 'data-testid="runs-chart-empty"' in chart and "<svg" not in chart
    assert "start one from" in chart
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="payout-chart-empty"' in home


def test_a_small_payout_volume_has_round_axis_labels():
    from dashboard.presentation.charts import Series, bar_chart

    svg = str(
        bar_chart(
            ["a", "b"],
            [Series("paid out", [150, 0], "s-money")],
            title="t",
            axis_format=lambda c: f"{c // 100:,}",
            min_step=100,
        )
    )
    labels = re.findall(r'text-anchor="end">([^<]*)<', svg)
    assert labels == ["0", "1", "2", "3", "4"]
