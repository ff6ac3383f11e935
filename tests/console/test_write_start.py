"""Start forms: generated from the input dataclasses, validated with field messages before
anything reaches Temporal, money workflows confirmed (a batch payout shows its dry run's
count and total), double submits start once, the starting user and reason reach the memo
and the TriggeredBy search attribute."""

from __future__ import annotations

import asyncio
import dataclasses
import html
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dashboard.forms import SERVER_FILLED, form_fields
from estuary.contracts.search_attributes import TRIGGERED_BY
from estuary.db import db
from estuary.models import Payout
from tests.conftest import running_workers
from tests.console.write_support import (
    audit_events,
    count_rows,
    counting_gateway_for,
    login,
    seed_booking,
    seed_practitioner,
    sign_in,
    unreachable_gateway,
    wait_for,
)
from workers.temporal import registry

BATCH = "BatchPractitionerPayoutWorkflow"
PAYOUT = "PractitionerPayoutWorkflow"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def shown_fields(wf):
    """The fields a start form shows: an input's own `reason` is the action's reason box."""
    names = {f.name for f in dataclasses.fields(wf.spec.input_type)}
    return form_fields(wf.spec.input_type, exclude=["reason"] if "reason" in names else [])


def test_every_catalogue_workflow_has_a_generated_form(app):
    unreachable_gateway(app)
    client, _ = login(app, "operator")
    for wf in registry.all_workflows():
        page = client.get(f"/workflows/{wf.name}/start")
        assert page.status_code == 200, wf.name
        body = _text(page)
        assert 'name="action_reason"' in body
        for field in shown_fields(wf):
            assert f'name="{field.name}"' in body, (wf.name, field.name)
            if field.help and field.widget == "datetime":
                # The console reads typed times in the staff member's zone, and says so
                # in place of the command line's "UTC unless an offset is given".
                assert field.help.replace(" (UTC unless an offset is given)", "") in body
                assert "(in your time zone, UTC, unless an offset is given)" in body
            elif field.help:
                assert field.help in body
        # Who acts is never typed: the server fills it from the signed-in user.
        for name in SERVER_FILLED:
            assert f'name="{name}"' not in body
        if wf.spec.money:
            assert 'data-testid="money-note"' in body


def test_unknown_workflow_is_404_and_viewer_may_not_open_a_form(app):
    unreachable_gateway(app)
    client, _ = login(app, "operator")
    assert client.get("/workflows/NoSuchWorkflow/start").status_code == 404
    assert client.get("/workflows/bad%20name/start").status_code == 404
    viewer, _ = login(app, "viewer")
    assert viewer.get(f"/workflows/{BATCH}/start").status_code == 403


BAD_BATCH_INPUT = [
    ({"min_amount_cents": "0"}, "min_amount_cents", "greater than zero"),
    ({"min_amount_cents": "-5"}, "min_amount_cents", "greater than zero"),
    ({"min_amount_cents": "NaN"}, "min_amount_cents", "is not an amount"),
    ({"min_amount_cents": "1e309"}, "min_amount_cents", "is not an amount"),
    ({"min_amount_cents": "10.005"}, "min_amount_cents", "more than two decimal places"),
    ({"min_amount_cents": "ten"}, "min_amount_cents", "is not an amount"),
    ({"min_amount_cents": ""}, "min_amount_cents", "is required"),
    ({"practitioner_ids": "7, x"}, "practitioner_ids", "is not an id"),
    ({"practitioner_ids": "987654"}, "practitioner_ids", "no practitioner with id 987654"),
    ({"payment_method": "cheque"}, "payment_method", "is not one of"),
    ({"chunk_size": "0"}, "chunk_size", "at least 1"),
    ({"dry_run": "maybe"}, "dry_run", "is not yes/no"),
    ({"action_reason": ""}, "action_reason", "a reason is required"),
    ({"action_reason": "x" * 501}, "action_reason", "at most 500"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_BATCH_INPUT)
def test_bad_batch_input_gets_field_messages_and_starts_nothing(app, change, field, message):
    gw = unreachable_gateway(app)
    seed_practitioner(app, balance_cents=80_000)
    client, user = login(app, "operator")
    data = {"min_amount_cents": "100.00", "action_reason": "weekly run", **change}
    response = client.post(f"/workflows/{BATCH}/start", data=data)
    assert response.status_code == 422
    body = _text(response)
    assert "Nothing was started" in body
    assert message in body
    assert 'aria-invalid="true"' in body
    # Nothing reached Temporal, nothing was written but the audit event.
    assert gw.calls == 0
    assert count_rows(app, Payout) == 0
    events = audit_events(app, action="catalog.start")
    assert [e.outcome for e in events] == ["invalid"]
    assert events[0].actor == user.email
    assert field in events[0].detail


BAD_PAYOUT_INPUT = [
    ({"practitioner_id": "abc"}, "is not an id"),
    ({"practitioner_id": "-3"}, "is not an id"),
    ({"practitioner_id": "12.5"}, "is not an id"),
    ({"practitioner_id": "99999999"}, "no practitioner with id 99999999"),
    ({"amount_cents": "0"}, "greater than zero"),
    ({"amount_cents": "NaN"}, "is not an amount"),
    ({"amount_cents": "-1"}, "greater than zero"),
    ({"amount_cents": "1e309"}, "is not an amount"),
    ({"amount_cents": "10.005"}, "more than two decimal places"),
    ({"payment_method": "bitcoin"}, "is not one of"),
    ({"action_reason": "   "}, "a reason is required"),
]


@pytest.mark.parametrize(("change", "message"), BAD_PAYOUT_INPUT)
def test_bad_payout_input_gets_field_messages_and_starts_nothing(app, change, message):
    gw = unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=80_000)
    client, _ = login(app, "operator")
    data = {"practitioner_id": str(pid), "action_reason": "asked by phone", **change}
    response = client.post(f"/workflows/{PAYOUT}/start", data=data)
    assert response.status_code == 422
    assert message in _text(response)
    assert gw.calls == 0
    assert count_rows(app, Payout) == 0
    assert [e.outcome for e in audit_events(app, action="catalog.start")] == ["invalid"]


def test_bad_booking_and_reschedule_input(app):
    gw = unreachable_gateway(app)
    booking = seed_booking(app)
    client, _ = login(app, "operator")
    cases = [
        ("BookingLifecycleWorkflow", {"booking_id": "424242"}, "no booking with id 424242"),
        ("BookingLifecycleWorkflow", {"booking_id": "x1"}, "is not an id"),
        (
            "ReschedulingWorkflow",
            {"booking_id": str(booking), "new_start_at": "next tuesday", "action_reason": "ok"},
            "is not a date and time",
        ),
        (
            "ReschedulingWorkflow",
            {"booking_id": str(booking), "new_start_at": "2001-01-01T10:00", "action_reason": "x"},
            "is not in the future",
        ),
        (
            "ReschedulingWorkflow",
            {
                "booking_id": str(booking),
                "new_start_at": "2099-01-01T10:00",
                "action_reason": "y" * 501,
            },
            "at most 500",
        ),
    ]
    for name, data, message in cases:
        response = client.post(f"/workflows/{name}/start", data=data)
        assert response.status_code == 422, (name, data)
        assert message in _text(response), (name, data)
    assert gw.calls == 0
    assert [e.outcome for e in audit_events(app, action="catalog.start")] == ["invalid"] * 5


def test_every_form_refuses_empty_required_fields_and_over_long_text(app):
    """Each catalogue form, posted empty or with over-long text, names the fields."""
    gw = unreachable_gateway(app)
    client, _ = login(app, "operator")
    for wf in registry.all_workflows():
        fields = shown_fields(wf)
        required = [f for f in fields if f.required]
        texts = [f for f in fields if f.widget in ("text", "textarea") and f.max_length]
        if not required and not texts and not wf.spec.money:
            continue
        data = {f.name: "z" * (f.max_length + 1) for f in texts}
        response = client.post(f"/workflows/{wf.name}/start", data=data)
        assert response.status_code == 422, wf.name
        body = _text(response)
        for f in required:
            if f not in texts:
                assert f"{f.label}: is required" in body, (wf.name, f.name)
        for f in texts:
            assert f"at most {f.max_length}" in body, (wf.name, f.name)
    assert gw.calls == 0


def test_the_form_keeps_typed_values_after_an_error(app):
    unreachable_gateway(app)
    client, _ = login(app, "operator")
    response = client.post(
        f"/workflows/{BATCH}/start",
        data={"min_amount_cents": "12.345", "practitioner_ids": "1,2", "action_reason": "why"},
    )
    body = _text(response)
    assert 'value="12.345"' in body and 'value="1,2"' in body and ">why</textarea>" in body


# --- against a real Temporal server --------------------------------------------------------


async def test_batch_payout_confirmation_shows_the_dry_run_then_starts_once(app, local_env):
    big = seed_practitioner(app, balance_cents=30_000, name="Big Earner")
    seed_practitioner(app, balance_cents=12_550, name="Mid Earner")
    seed_practitioner(app, balance_cents=500, name="Small Earner")
    client, user = login(app, "operator")
    t0 = datetime.now(UTC)
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        form = {
            "min_amount_cents": "100.00",
            "payment_method": "bank_transfer",
            "action_reason": "weekly payouts, run by hand",
            # Mass assignment: not a form field, ignored (server-filled fields are refused:
            # test_server_filled_fields_are_refused).
            "status": "paid",
        }
        first = await asyncio.to_thread(client.post, f"/workflows/{BATCH}/start", data=form)
        assert first.status_code == 200
        body = _text(first)
        assert 'data-testid="confirmation"' in body
        assert 'data-testid="dry-run-count">2<' in body
        assert "425.50 USD" in body  # 300.00 + 125.50, the 5.00 balance is below the minimum
        assert count_rows(app, Payout) == 0  # the dry run moved nothing
        with app.app_context():
            assert not db.session.scalar(select(Payout.id).limit(1))

        confirmed = await asyncio.to_thread(
            client.post, f"/workflows/{BATCH}/start", data={**form, "confirmed": "yes"}
        )
        assert confirmed.status_code in (200, 303)
        events = [e for e in audit_events(app, action="catalog.start") if e.outcome == "success"]
        real = [e for e in events if '"dry_run": false' in e.params_json]
        assert len(real) == 1
        workflow_id = real[0].target.removeprefix("workflow:")
        assert workflow_id.startswith("payments-batch-payout-")
        assert '"requested_by": "' + user.email in real[0].params_json
        assert '"cursor": 0' in real[0].params_json
        assert real[0].reason == "weekly payouts, run by hand"
        # The preview was read, not run: the confirmed batch is the only run started.
        assert not [e for e in events if '"dry_run": true' in e.params_json]
        started = [
            w.id
            async for w in local_env.client.list_workflows(
                f"WorkflowType = '{BATCH}' AND StartTime > '{t0.isoformat()}'"
            )
        ]
        assert started == [workflow_id], started

        handle = local_env.client.get_workflow_handle(workflow_id)
        desc = await handle.describe()
        # The search attribute stays in clear in Temporal: a staff reference, no email.
        assert desc.typed_search_attributes.get(TRIGGERED_BY) == f"staff:{user.id}"
        memo = await desc.memo()
        assert memo["triggered_by"] == user.email
        assert memo["reason"] == "weekly payouts, run by hand"
        await handle.result()
        await wait_for(
            lambda: count_rows(app, Payout) == 2, what="two payouts (the big and the mid)"
        )
        with app.app_context():
            paid_to = set(db.session.scalars(select(Payout.practitioner_id)))
        assert big in paid_to


async def test_double_submit_starts_one_payout_and_shows_the_running_run(app, local_env):
    pid = seed_practitioner(app, balance_cents=90_000)
    client, user = login(app, "operator")
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        data = {
            "practitioner_id": str(pid),
            "amount_cents": "600.00",  # above the approval threshold: it waits
            "action_reason": "practitioner asked for an early payout",
            "confirmed": "yes",
        }
        url = f"/workflows/{PAYOUT}/start"
        other_tab = sign_in(app, user)
        first, second = await asyncio.gather(
            asyncio.to_thread(client.post, url, data=data),
            asyncio.to_thread(other_tab.post, url, data=data),
        )
        assert {first.status_code, second.status_code} <= {200, 303}
        successes = [e for e in audit_events(app, action="catalog.start") if e.outcome == "success"]
        assert len(successes) == 2
        assert len({e.target for e in successes}) == 1
        assert sum("already running" in e.detail for e in successes) == 1
        third = await asyncio.to_thread(client.post, url, data=data, follow_redirects=True)
        assert "already running; nothing new was started" in _text(third)
        await wait_for(lambda: count_rows(app, Payout) == 1, what="the payout row")
        with app.app_context():
            payout = db.session.scalar(select(Payout))
            assert payout.requested_by == user.email
            assert payout.status == "pending_approval"
            assert payout.amount_cents == 60_000
        workflow_id = successes[0].target.removeprefix("workflow:")
        await local_env.client.get_workflow_handle(workflow_id).terminate("test over")


def test_server_filled_fields_are_refused(app):
    """`requested_by`, `actor` and internal state come from the server: a client that sends
    them is refused by field name, and without them the starting user is shown."""
    gw = unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=10_000)
    client, user = login(app, "operator")
    base = {"practitioner_id": str(pid), "action_reason": "because"}
    for field in ("requested_by", "actor"):
        response = client.post(f"/workflows/{PAYOUT}/start", data={**base, field: "boss@x"})
        assert response.status_code == 422
        assert f"{field}: is filled in by the server" in _text(response)
    response = client.post(
        f"/workflows/{BATCH}/start",
        data={"min_amount_cents": "100.00", "action_reason": "x", "cursor": "999"},
    )
    assert response.status_code == 422 and "cursor: is filled in by the server" in _text(response)
    assert gw.calls == 0
    response = client.post(f"/workflows/{PAYOUT}/start", data=base)
    assert response.status_code == 200  # the confirmation page; nothing started yet
    body = _text(response)
    assert f"Started by</dt><dd>{user.email}" in body
    wf = registry.workflow(PAYOUT)
    assert "requested_by" in {f.name for f in dataclasses.fields(wf.spec.input_type)}
