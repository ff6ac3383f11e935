"""Every number a person types goes through the one strict parser: ASCII digits only,
no sign, spaces, underscores, exponents or other scripts' digits, values within the
column's range. Parametrised over every money field, id field and integer field of every
workflow's start form, every signal/update argument, the `flask trigger-workflows`
command, every id in a URL and every integer in a query string: each refusal is a 4xx
(or a non-zero exit) with a message naming the field, and nothing is started or written.
"""

from __future__ import annotations

import dataclasses
import html

import pytest

from dashboard import forms
from estuary.models import Payout, StaffUser
from temporal_gateway.access import set_gateway
from tests.console.write_support import (
    audit_events,
    count_rows,
    login,
    seed_booking,
    seed_practitioner,
    unreachable_gateway,
)
from tests.test_cli_audit import RecordingGateway
from workers.temporal import registry

FULL_WIDTH_1 = "\uff11"
ARABIC_INDIC_1 = "\u0661"
SUPERSCRIPT_2 = "\u00b2"
BEYOND_INT = "2147483648"  # one past PostgreSQL's integer
BEYOND_BIGINT = "9223372036854775808"  # 2**63

BAD_IDS = [
    FULL_WIDTH_1,
    ARABIC_INDIC_1,
    SUPERSCRIPT_2,
    "+1",
    " 1 ",
    "1_0",
    "1e3",
    "0",
    "-1",
    "1.0",
    BEYOND_INT,
    BEYOND_BIGINT,
]
BAD_MONEY = [
    FULL_WIDTH_1 + "0",
    ARABIC_INDIC_1 + "0",
    SUPERSCRIPT_2,
    "+10",
    " 10.0 ",
    "1_000",
    "1e3",
    "10.001",
    "-5",
    "99999999999",
    "NaN",
]
BAD_INTS = [
    FULL_WIDTH_1,
    ARABIC_INDIC_1,
    SUPERSCRIPT_2,
    "+1",
    " 1 ",
    "1_0",
    "1e3",
    "1.5",
    BEYOND_BIGINT,
]
# In a list, spaces and commas separate the ids, so " 1 " is not a bad item there.
BAD_ID_ITEMS = [b for b in BAD_IDS if b == b.strip()]
NUMBER_WIDGETS = {"money": BAD_MONEY, "id": BAD_IDS, "ids": BAD_ID_ITEMS, "int": BAD_INTS}


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _shown(wf):
    names = {f.name for f in dataclasses.fields(wf.spec.input_type)}
    return forms.form_fields(wf.spec.input_type, exclude=["reason"] if "reason" in names else [])


def _number_fields() -> list[tuple[str, str, str]]:
    return [
        (wf.name, f.name, f.widget)
        for wf in registry.all_workflows()
        for f in _shown(wf)
        if f.widget in NUMBER_WIDGETS
    ]


def _handler_number_fields() -> list[tuple[str, str, str, str]]:
    out = []
    for wf in registry.all_workflows():
        for kind, handlers in (("signal", wf.spec.signals), ("update", wf.spec.updates)):
            for name, arg_type in dict(handlers).items():
                if arg_type is None:
                    continue
                for f in forms.form_fields(arg_type):
                    if f.widget in NUMBER_WIDGETS:
                        out.append((wf.name, f"{kind}:{name}", f.name, f.widget))
    return out


START_FIELDS = _number_fields()
HANDLER_FIELDS = _handler_number_fields()


def test_the_suite_covers_the_money_and_id_fields():
    """Guard against an empty parametrisation: the payout forms' fields are in it."""
    fields = {(w, f) for w, f, _ in START_FIELDS}
    assert ("PractitionerPayoutWorkflow", "amount_cents") in fields
    assert ("PractitionerPayoutWorkflow", "practitioner_id") in fields
    assert ("BatchPractitionerPayoutWorkflow", "min_amount_cents") in fields
    assert ("PractitionerOnboardingWorkflow", "practitioner_id") in fields
    assert HANDLER_FIELDS, "no signal or update argument has a number field"


@pytest.mark.parametrize(("workflow", "field", "widget"), START_FIELDS)
def test_start_forms_refuse_loose_numbers(app, workflow, field, widget):
    gw = unreachable_gateway(app)
    client, _ = login(app, "admin")
    label = forms.label_for(field)
    for bad in NUMBER_WIDGETS[widget]:
        value = f"1, {bad}" if widget == "ids" else bad
        response = client.post(
            f"/workflows/{workflow}/start", data={field: value, "action_reason": "test"}
        )
        assert response.status_code == 422, (field, bad)
        body = _text(response)
        assert "Nothing was started" in body, (field, bad)
        assert f"{label}: " in body, (field, bad)
    assert gw.calls == 0
    assert count_rows(app, Payout) == 0
    events = audit_events(app, action="catalog.start")
    assert events and all(e.outcome == "invalid" and field in e.detail for e in events)


@pytest.mark.parametrize(("workflow", "handler", "field", "widget"), HANDLER_FIELDS)
def test_signal_and_update_arguments_refuse_loose_numbers(app, workflow, handler, field, widget):
    kind, name = handler.split(":")
    wf = registry.workflow(workflow)
    arg_type = dict(wf.spec.signals if kind == "signal" else wf.spec.updates)[name]
    with app.test_request_context():
        for bad in NUMBER_WIDGETS[widget]:
            with pytest.raises(forms.InputError) as caught:
                forms.parse_form(arg_type, {field: bad}, actor="ops@test.local")
            assert field in caught.value.errors, (field, bad)


@pytest.mark.parametrize(("workflow", "field", "widget"), START_FIELDS)
def test_trigger_workflows_refuses_loose_numbers(app, runner, workflow, field, widget):
    recorder = RecordingGateway()
    set_gateway(app, recorder)  # type: ignore[arg-type]
    domain = registry.workflow(workflow).domain
    for bad in NUMBER_WIDGETS[widget]:
        result = runner.invoke(
            args=[
                "trigger-workflows",
                "--domain",
                domain,
                "--workflow",
                workflow,
                "--kwargs",
                f"{field}={bad}",
            ]
        )
        assert result.exit_code != 0, (field, bad)
        assert f"{field}: " in result.output, (field, bad, result.output)
    assert recorder.calls == []


@pytest.mark.parametrize("bad", [FULL_WIDTH_1, "+1", " 1", "1e2", "-3", "99999999999"])
def test_payout_command_amount_and_id(app, runner, bad):
    recorder = RecordingGateway()
    set_gateway(app, recorder)  # type: ignore[arg-type]
    pid = seed_practitioner(app, balance_cents=80_000)
    result = runner.invoke(args=["trigger-payment-workflows", "payout", str(pid), "--amount", bad])
    assert result.exit_code != 0 and "--amount" in result.output
    result = runner.invoke(args=["trigger-payment-workflows", "payout", bad])
    assert result.exit_code != 0 and "PRACTITIONER_ID" in result.output
    assert recorder.calls == [] and count_rows(app, Payout) == 0


# --- ids in URLs ----------------------------------------------------------------------------

URL_IDS = [BEYOND_INT, BEYOND_BIGINT, "%C2%B2", "%D9%A1", "%EF%BC%91", "1e3", "+1"]


@pytest.mark.parametrize("bad", URL_IDS)
@pytest.mark.parametrize("page", ["/practitioners/{}", "/bookings/{}", "/payouts/{}"])
def test_ids_in_page_urls_are_404(app, page, bad):
    unreachable_gateway(app)
    client, _ = login(app, "viewer")
    assert client.get(page.format(bad)).status_code == 404


POST_ROUTES = [
    ("approver", "/approvals/{}/approve"),
    ("approver", "/approvals/{}/reject"),
    ("admin", "/staff/{}/role"),
    ("admin", "/staff/{}/disable"),
    ("admin", "/staff/{}/enable"),
    ("admin", "/staff/{}/password"),
]


@pytest.mark.parametrize("bad", URL_IDS)
@pytest.mark.parametrize(("role", "route"), POST_ROUTES)
def test_ids_in_post_urls_are_404_and_audited(app, role, route, bad):
    gw = unreachable_gateway(app)
    client, _ = login(app, role)
    path = route.format(bad)
    response = client.post(path, data={"role": "viewer", "amount_cents": "10.00"})
    assert response.status_code == 404, path
    events = [e for e in audit_events(app) if e.action != "auth.login"]
    assert [e.outcome for e in events] == ["invalid"], path
    assert "refused by routing: 404" in events[0].detail
    assert gw.calls == 0
    with app.app_context():
        from estuary.db import db

        assert db.session.query(StaffUser).count() == 1  # only the signed-in user


def test_run_ids_that_are_not_uuids_are_404(app):
    gw = unreachable_gateway(app)
    client, _ = login(app, "admin")
    for path in ("/runs/wf-1/not-a-uuid", "/runs/wf-1/1234/history.json", "/runs/wf-1/x/live"):
        assert client.get(path).status_code == 404, path
    response = client.post("/runs/wf-1/cancel", data={"run_id": "not-a-uuid"})
    assert response.status_code == 404
    assert [e.outcome for e in audit_events(app, action="runs.cancel")] == ["invalid"]
    assert gw.calls == 0


def test_posts_refused_by_routing_are_audited(app):
    client, _ = login(app, "operator")
    assert client.post("/no/such/page", data={"x": "1"}).status_code == 404
    assert client.post("/runs", data={}).status_code == 405  # a GET-only page
    events = [e for e in audit_events(app) if e.action != "auth.login"]
    assert [(e.target, e.outcome) for e in events] == [
        ("/no/such/page", "invalid"),
        ("/runs", "invalid"),
    ]
    assert "405" in events[1].detail


# --- integers in query strings -----------------------------------------------------------------

QUERY_INTS = [
    ("/practitioners", "page", "is not a whole number"),
    ("/bookings", "page", "is not a whole number"),
    ("/bookings", "practitioner_id", "is not an id"),
    ("/bookings", "client_id", "is not an id"),
    ("/payouts", "page", "is not a whole number"),
    ("/payouts", "practitioner_id", "is not an id"),
    ("/notifications", "page", "is not a whole number"),
    ("/notifications", "entity_id", "is not an id"),
    ("/runs", "p", "is not a whole number"),
    ("/runs", "page_size", "must be one of"),
    ("/audit/", "before", "page link is damaged"),
]
QUERY_BAD = ["%C2%B2", "%D9%A1", "%EF%BC%91", "%2B1", "1e3", "1_0", "%201", BEYOND_BIGINT]


@pytest.mark.parametrize(("path", "name", "message"), QUERY_INTS)
def test_query_string_integers_are_4xx_with_a_message(app, path, name, message):
    gw = unreachable_gateway(app)
    client, _ = login(app, "viewer")
    for bad in QUERY_BAD:
        response = client.get(f"{path}?{name}={bad}")
        assert 400 <= response.status_code < 500, (path, name, bad)
        body = _text(response)
        if message in ("page link is damaged", "must be one of"):
            assert message in body, (path, name, bad)
        else:
            range_message = "must be at most" in body or "ids are whole numbers" in body
            assert message in body or range_message, (path, name, bad)
    assert gw.calls == 0


def test_big_numbers_in_query_strings_name_the_range(app):
    unreachable_gateway(app)
    client, _ = login(app, "viewer")
    body = _text(client.get(f"/payouts?practitioner_id={BEYOND_INT}"))
    assert "ids are whole numbers from 1 to 2147483647" in body
    body = _text(client.get("/practitioners?page=100001"))
    assert "must be at most 100000" in body


# --- other typed numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_MONEY)
def test_staff_approval_limit_refuses_loose_amounts(app, bad):
    client, _ = login(app, "admin")
    response = client.post(
        "/staff/create",
        data={"email": "n@test.local", "name": "N", "role": "approver", "password": "x" * 20,
              "approval_limit": bad},
    )  # fmt: skip
    assert response.status_code == 422, bad
    with app.app_context():
        from estuary.db import db

        assert db.session.query(StaffUser).filter_by(email="n@test.local").count() == 0


@pytest.mark.parametrize("bad", [FULL_WIDTH_1, SUPERSCRIPT_2, "+5", "5e1", BEYOND_BIGINT, "0"])
def test_reset_event_id_refuses_loose_numbers(app, bad):
    gw = unreachable_gateway(app)
    client, _ = login(app, "admin")
    response = client.post(
        "/runs/wf-1/reset",
        data={"run_id": "0190aaaa-bbbb-4ccc-8ddd-eeeeffff0000", "point": "event",
              "event_id": bad, "action_reason": "retry from there"},
    )  # fmt: skip
    assert 400 <= response.status_code < 500
    assert "event" in _text(response).lower()
    assert gw.calls == 0


def test_booking_ids_beyond_the_column_in_forms_are_field_errors(app):
    """An id too big for the column is a field message on a form, never a database error."""
    gw = unreachable_gateway(app)
    seed_booking(app)
    client, _ = login(app, "operator")
    response = client.post(
        "/workflows/BookingLifecycleWorkflow/start",
        data={"booking_id": BEYOND_BIGINT, "action_reason": "x"},
    )
    assert response.status_code == 422
    assert "ids are whole numbers from 1 to 2147483647" in _text(response)
    assert gw.calls == 0
