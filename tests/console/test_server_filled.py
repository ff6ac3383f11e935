"""Who asked is never typed: a console request that sends a field only the server fills
(`requested_by`, `actor`, `triggered_by`, the approval thresholds) is refused with a
message naming it, and nothing is started or sent."""

from __future__ import annotations

import html

import pytest

from estuary.models import Payout
from tests.console.write_support import (
    audit_events,
    count_rows,
    login,
    make_world,
    seed_practitioner,
    unreachable_gateway,
)


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requested_by", "someone@else"),
        ("triggered_by", "cli:root"),
        ("approval_threshold_cents", "0.01"),
        ("dual_approval_threshold_cents", "10000000.00"),
        ("approval_timeout_seconds", "60"),
    ],
)
def test_start_form_refuses_server_filled_fields(app, field, value):
    gw = unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=80_000)
    client, _ = login(app, "operator")
    response = client.post(
        "/workflows/PractitionerPayoutWorkflow/start",
        data={"practitioner_id": str(pid), "action_reason": "asked", field: value},
    )
    assert response.status_code == 422
    assert "is filled in by the server" in _text(response)
    assert gw.calls == 0 and count_rows(app, Payout) == 0
    (event,) = audit_events(app, action="catalog.start")
    assert event.outcome == "invalid" and f"{field}: is filled in by the server" in event.detail


def test_a_signal_form_refuses_a_typed_actor(app):
    gw = unreachable_gateway(app)
    client, _ = login(app, "operator")
    response = client.post(
        "/runs/bookings-lifecycle-1/signal/feedback_received",
        data={"workflow_type": "BookingLifecycleWorkflow", "rating": "5", "actor": "x@y"},
    )
    assert response.status_code == 422
    assert "is filled in by the server" in _text(response)
    assert gw.calls == 0


def test_an_approval_refuses_a_typed_actor(app):
    gw = unreachable_gateway(app)
    world = make_world(app)
    client, _ = login(app, "approver")
    response = client.post(
        f"/approvals/{world.payout_id}/approve",
        data={
            "amount_cents": "600.00",
            "practitioner_id": str(world.practitioner_id),
            "actor": "requester@test.local",
        },
    )
    assert response.status_code == 422
    assert gw.calls == 0
    events = audit_events(app, action="approvals.approve")
    assert [e.outcome for e in events] == ["invalid"]
    assert "actor: is filled in by the server" in events[0].detail
