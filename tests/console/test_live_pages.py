"""Live pages (dashboard/presentation/live.py): a page with something waiting or running
polls its own URL for its live region, a poll is answered with the region only (and the
navigation's approvals count out of band), and a page with nothing moving does not poll.
The navigation counts the payouts the signed-in approver may decide, from the database."""

from __future__ import annotations

import html
import re
import uuid

from estuary.db import db
from estuary.models import Payout, StaffUser
from tests.console.write_support import login, seed_practitioner, unreachable_gateway

LIVE = {"HX-Request": "true", "HX-Target": "live-region"}


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _payout(app, pid: int, *, status="pending_approval", amount=60_000, by="req@test.local"):
    with app.app_context():
        key = f"payments-payout-{pid}-{uuid.uuid4().hex[:6]}"
        payout = Payout(
            practitioner_id=pid,
            amount_cents=amount,
            status=status,
            idempotency_key=key,
            workflow_id=key,
            requested_by=by,
            approvals_required=1 if status == "pending_approval" else 0,
        )
        db.session.add(payout)
        db.session.commit()
        return payout.id


def _region(body: str) -> str:
    found = re.search(r'<div id="live-region"([^>]*)>', body)
    assert found, "no live region"
    return found.group(1)


def _nav_count(body: str) -> int | None:
    found = re.search(r'data-testid="nav-approvals-count" data-count="(\d+)"', body)
    return int(found.group(1)) if found else None


def test_approvals_page_polls_and_a_poll_gets_the_region_only(app):
    unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=90_000, name="Lara Live")
    client, _ = login(app, "approver")
    page = _text(client.get("/approvals/"))
    attrs = _region(page)
    assert 'data-live="on"' in attrs and 'hx-get="/approvals/"' in attrs
    assert 'hx-trigger="every 5s, live-resume"' in attrs and 'hx-disinherit="*"' in attrs
    assert "No payout is waiting for approval" in page
    assert _nav_count(page) == 0

    payout_id = _payout(app, pid)
    poll = client.get("/approvals/", headers=LIVE)
    assert poll.status_code == 200
    body = _text(poll)
    assert "<html" not in body and body.lstrip().startswith('<div id="live-region"')
    assert f'data-testid="payout-row-{payout_id}"' in body and "Lara Live" in body
    assert 'hx-swap-oob="true"' in body and _nav_count(body) == 1


def test_the_nav_count_is_what_this_approver_may_decide(app):
    unreachable_gateway(app)
    client, user = login(app, "approver")
    pid = seed_practitioner(app, balance_cents=900_000)
    _payout(app, pid)  # theirs to decide
    _payout(app, pid, by=user.email)  # their own request: not theirs
    _payout(app, pid, amount=700_000)  # above the limit set below
    _payout(app, pid, status="paid")  # not waiting
    with app.app_context():
        db.session.get(StaffUser, user.id).approval_limit_cents = 500_000
        db.session.commit()
    assert _nav_count(_text(client.get("/"))) == 1
    fragment = _text(client.get("/approvals/count"))
    assert _nav_count(fragment) == 1 and 'hx-trigger="every 30s, live-resume"' in fragment
    assert '1<span class="sr-only"> waiting for you</span>' in fragment

    viewer, _ = login(app, "viewer")
    assert _nav_count(_text(viewer.get("/"))) is None  # staff who do not approve: no count
    assert "data-count" not in _text(viewer.get("/approvals/count"))


def test_payout_page_is_live_while_the_payout_moves_and_still_once_paid(app):
    unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=90_000)
    waiting = _payout(app, pid)
    paid = _payout(app, pid, status="paid")
    client, _ = login(app, "viewer")
    attrs = _region(_text(client.get(f"/payouts/{waiting}")))
    assert 'data-live="on"' in attrs and f'hx-get="/payouts/{waiting}"' in attrs
    assert _region(_text(client.get(f"/payouts/{paid}"))) == ' data-live="off"'
    # A poll of a payout that has moved on answers a region without polling: it stops.
    with app.app_context():
        db.session.get(Payout, waiting).status = "paid"
        db.session.commit()
    assert _region(_text(client.get(f"/payouts/{waiting}", headers=LIVE))) == ' data-live="off"'


def test_pages_with_nothing_moving_do_not_poll(app):
    unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=10_000)
    client, _ = login(app, "viewer")
    assert _region(_text(client.get("/"))) == ' data-live="off"'  # Temporal unreachable too
    assert _region(_text(client.get(f"/practitioners/{pid}"))) == ' data-live="off"'
    _payout(app, pid)
    home = _region(_text(client.get("/")))
    assert 'data-live="on"' in home and "every 10s" in home  # a payout waits
    assert 'data-live="on"' in _region(_text(client.get(f"/practitioners/{pid}")))
