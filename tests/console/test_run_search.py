"""The runs search box: what staff type is understood (`booking 14`, `practitioner 6`,
`payout 4`, `#14`, a name, an email, a workflow id or its beginning), every run of an
entity is found (a practitioner's subscription, background-check and package runs too),
and text that is not understood gets a message saying how to search, on a 200 page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.run_search import SearchNotUnderstood, parse_search, resolve_search
from dashboard.visibility import build_query, parse_filters
from dashboard.visibility import resolve_search as resolve_filters
from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Booking,
    Client,
    Payout,
    Practitioner,
    Service,
    Subscription,
)
from estuary.models.base import utcnow
from tests.conftest import unique_prefix
from tests.console.read_support import (
    counting_gateway_for,
    eventually,
    get,
    login,
    start_read_test,
)
from tests.console.read_workflows import ReadTestInput, read_test_worker


@pytest.mark.parametrize(
    "text,entities",
    [
        ("booking 14", (("booking", "14"),)),
        ("Booking #14", (("booking", "14"),)),
        ("booking:14", (("booking", "14"),)),
        ("bookings 14", (("booking", "14"),)),
        ("practitioner 6", (("practitioner", "6"),)),
        ("subscription 3", (("subscription", "3"),)),
        ("package 2", (("package_purchase", "2"),)),
        ("background check bc-7f", (("background_check", "bc-7f"),)),
    ],
)
def test_kind_and_number_name_one_entity(text, entities):
    search = parse_search(text)
    assert search.entities == entities
    assert not search.name and not search.workflow_id_prefix


def test_numbers_payouts_emails_names_and_workflow_ids():
    for text in ("#14", "14", "# 14"):
        search = parse_search(text)
        assert search.any_entity_id == "14" and search.payout_id == 14
    payout = parse_search("payout 4")
    assert payout.payout_id == 4 and not payout.has_terms  # the database knows its run
    email = parse_search("  Maya@Practitioners.Example.com ")
    assert email.email == "maya@practitioners.example.com"
    name = parse_search("Maya  Okafor")
    assert name.name == "Maya Okafor" and not name.has_terms
    assert parse_search("O'Brien").name == "O'Brien"
    single = parse_search("maya")  # a name, or the start of a workflow id
    assert single.name == "maya" and single.workflow_id_prefix == "maya"
    wid = parse_search("bookings-lifecycle-14")
    assert wid.workflow_ids == ("bookings-lifecycle-14",)
    assert wid.workflow_id_prefix == "bookings-lifecycle-14"
    assert parse_search("payments-payout-").workflow_id_prefix == "payments-payout-"


@pytest.mark.parametrize(
    "text,says",
    [
        ("booking abc", "A booking is found by its number, e.g. booking 14"),
        ("practitioner 0", "A practitioner is found by its number"),
        ("x' OR '1'='1", "was not understood"),
        ("1 -- comment", "was not understood"),
        ("not@an email", "is not an email address"),
        ("a" * 201, "longer than 200"),
        ("   ", "Type something to search for"),
    ],
)
def test_text_not_understood_says_how_to_search(text, says):
    with pytest.raises(SearchNotUnderstood) as caught:
        parse_search(text)
    assert says in caught.value.message
    filters, errors = parse_filters({"q": text})
    if text.strip():
        assert says in errors["q"] and filters.search is None


def _practitioner_with_everything(name: str, email: str) -> dict:
    now = utcnow()
    p = Practitioner(name=name, email=email, status="active")
    client = Client(name="Sam Rivera", email="sam@example.com")
    db.session.add_all([p, client])
    db.session.flush()
    sub = Subscription(
        practitioner_id=p.id,
        tier="pro",
        price_cents=5_900,
        current_period_start=now,
        current_period_end=now + timedelta(days=30),
    )
    check = BackgroundCheck(
        practitioner_id=p.id, idempotency_key=f"k-{p.id}", reference=f"bc-{p.id}-demo"
    )
    service = Service(practitioner_id=p.id, name="Massage", duration_minutes=60, price_cents=9_000)
    db.session.add_all([sub, check, service])
    db.session.flush()
    booking = Booking(
        client_id=client.id,
        practitioner_id=p.id,
        service_id=service.id,
        start_at=now + timedelta(days=1),
        end_at=now + timedelta(days=1, hours=1),
        price_cents=9_000,
    )
    payout = Payout(
        practitioner_id=p.id,
        amount_cents=1_000,
        idempotency_key=f"payments-payout-{p.id}-20261201",
        workflow_id=f"payments-payout-{p.id}-20261201",
        requested_by="ops@test.local",
    )
    db.session.add_all([booking, payout])
    db.session.commit()
    return {
        "p": p.id,
        "sub": sub.id,
        "check": check.reference,
        "booking": booking.id,
        "payout": payout.id,
    }


def test_a_practitioner_brings_their_subscription_check_and_payout_runs(app):
    with app.app_context():
        ids = _practitioner_with_everything("Kwame Mensah", "kwame@practitioners.test")
        for text in (
            f"practitioner {ids['p']}",
            "Kwame",
            "kwame mensah",
            "KWAME@practitioners.test",
        ):
            search, problem = resolve_search(parse_search(text))
            assert problem is None, text
            assert ("practitioner", str(ids["p"])) in search.entities
            assert ("subscription", str(ids["sub"])) in search.entities
            assert ("background_check", ids["check"]) in search.entities
            assert "Kwame Mensah" in search.summary
        payout, problem = resolve_search(parse_search(f"payout {ids['payout']}"))
        assert problem is None
        assert payout.workflow_ids == (f"payments-payout-{ids['p']}-20261201",)
        # A client's name finds their bookings' runs.
        sam, problem = resolve_search(parse_search("sam rivera"))
        assert problem is None and ("booking", str(ids["booking"])) in sam.entities
        filters, _ = parse_filters({"q": f"practitioner {ids['p']}"})
        query = build_query(resolve_filters(filters)[0])
        assert f"(EntityType = 'subscription' AND EntityId = '{ids['sub']}')" in query
        assert f"(EntityType = 'background_check' AND EntityId = '{ids['check']}')" in query


def test_a_search_that_names_nothing_says_so(app):
    with app.app_context():
        _, problem = resolve_search(parse_search("Nobody Atall"))
        assert "No practitioner or client has a name like 'Nobody Atall'" in problem
        _, problem = resolve_search(parse_search("payout 999"))
        assert problem == "There is no payout 999."
        _, problem = resolve_search(parse_search("nobody@nowhere.test"))
        assert "No practitioner or client has the email" in problem
        # A single word may still be the start of a workflow id.
        search, problem = resolve_search(parse_search("bookings"))
        assert problem is None and search.workflow_id_prefix == "bookings"


def test_names_reach_only_the_database(app):
    """A name with quotes is a bound parameter; it never reaches a visibility query."""
    with app.app_context():
        p = Practitioner(name="Siobhan O'Brien", email="sob@practitioners.test")
        db.session.add(p)
        db.session.commit()
        _search, problem = resolve_search(parse_search("o'brien"))
        assert problem is None
        filters, _ = parse_filters({"q": "o'brien"})
        query = build_query(resolve_filters(filters)[0])
        assert "brien" not in query.lower()
        assert f"(EntityType = 'practitioner' AND EntityId = '{p.id}')" in query


@pytest.mark.live
async def test_runs_page_finds_every_run_of_practitioner_6(app, local_env):
    """Typed as staff would: `practitioner 6` lists the practitioner's own run and the runs
    of their subscription and background check, and nothing of practitioner 60; text
    that is not understood answers 200 with how to search and asks Temporal nothing."""
    prefix = unique_prefix()
    gw = counting_gateway_for(app, local_env, prefix)
    with app.app_context():
        six = Practitioner(id=6, name="Kwame Mensah", email="kwame6@practitioners.test")
        sixty = Practitioner(id=60, name="Other Person", email="other60@practitioners.test")
        db.session.add_all([six, sixty])
        db.session.flush()
        now = utcnow()
        sub = Subscription(
            practitioner_id=6,
            tier="basic",
            price_cents=2_900,
            current_period_start=now,
            current_period_end=now + timedelta(days=30),
        )
        check = BackgroundCheck(practitioner_id=6, idempotency_key="k6", reference="bc-6-aa")
        db.session.add_all([sub, check])
        db.session.commit()
        sub_id = sub.id
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        wanted = []
        for entity_type, entity_id in (
            ("practitioner", "6"),
            ("subscription", str(sub_id)),
            ("background_check", "bc-6-aa"),
        ):
            handle = await start_read_test(
                local_env.client,
                prefix,
                ReadTestInput(steps=0, timer_seconds=0),
                entity_type=entity_type,
                entity_id=entity_id,
            )
            wanted.append(handle.id)
        other = await start_read_test(
            local_env.client,
            prefix,
            ReadTestInput(steps=0, timer_seconds=0),
            entity_type="practitioner",
            entity_id="60",
        )

        def found() -> str | None:
            html = client.get("/runs", query_string={"q": "practitioner 6"}).get_data(as_text=True)
            return html if all(w in html for w in wanted) else None

        html = await eventually(found)
        assert other.id not in html
        assert "Runs of practitioner 6 · Kwame Mensah" in html

    calls = gw.calls
    response = await get(client, "/runs?q=%27%20OR%201%3D1")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "was not understood" in page and "booking 14, practitioner 6" in page
    assert gw.calls == calls
