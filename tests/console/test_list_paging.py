"""Domain lists page by 50: every list answers with 0, 1, 50, 51 and 500 rows, and a list
with more than a page links to the next, which shows the rest (the pager once answered
500 as soon as a list had a second page); following Next to the end shows every row once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from estuary.db import db
from estuary.models import Booking, Client, Notification, Payout, Practitioner, Service
from estuary.models.base import utcnow
from tests.console.read_support import login


def seed_rows(app, count: int) -> None:
    """`count` practitioners, and for each a booking, a notification and a payout."""
    with app.app_context():
        client = Client(name="Paging Client", email="paging@clients.test")
        db.session.add(client)
        db.session.flush()
        for n in range(count):
            p = Practitioner(name=f"Paging {n:03d}", email=f"paging{n}@p.test", status="active")
            db.session.add(p)
            db.session.flush()
            service = Service(practitioner_id=p.id, name="Session", price_cents=5000)
            db.session.add(service)
            db.session.flush()
            start = utcnow() + timedelta(days=1, minutes=n)
            booking = Booking(
                client_id=client.id,
                practitioner_id=p.id,
                service_id=service.id,
                start_at=start,
                end_at=start + timedelta(hours=1),
                price_cents=5000,
            )
            db.session.add(booking)
            db.session.flush()
            db.session.add(
                Notification(
                    key=f"paging-{n}",
                    channel="email",
                    recipient="paging@clients.test",
                    template="booking_confirmation",
                    payload_json="{}",
                    entity_type="booking",
                    entity_id=booking.id,
                    sent_at=utcnow(),
                )
            )
            db.session.add(
                Payout(
                    practitioner_id=p.id,
                    amount_cents=1000 + n,
                    idempotency_key=f"paging-payout-{n}",
                    workflow_id=f"payments-payout-{p.id}-20261201",
                    requested_by="operator@estuary.test",
                    approvals_required=0,
                )
            )
        db.session.commit()


LISTS = ["/practitioners", "/bookings", "/payouts", "/notifications"]


@pytest.mark.parametrize("count", [0, 1, 50, 51, 500])
def test_every_list_answers_whatever_its_length(app, count):
    seed_rows(app, count)
    client = login(app, "viewer")
    for url in LISTS:
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        html = page.get_data(as_text=True)
        next_link = re.search(r'href="([^"]*page=2[^"]*)" data-testid="next-page"', html)
        assert (next_link is not None) == (count > 50), url
        if next_link:
            second = client.get(next_link[1].replace("&amp;", "&"))
            assert second.status_code == 200, url
            assert "Previous" in second.get_data(as_text=True)


def _body_rows(html: str) -> int:
    body = html.split("<tbody", 1)[1].split("</tbody>", 1)[0] if "<tbody" in html else ""
    return body.count("<tr")


def test_next_pages_show_all_500_rows_once(app):
    seed_rows(app, 500)
    client = login(app, "viewer")
    for start in LISTS:
        url, seen, pages = start, 0, 0
        while url:
            page = client.get(url)
            assert page.status_code == 200, (url, page.status_code)
            html = page.get_data(as_text=True)
            rows = _body_rows(html)
            assert rows <= 50, (url, rows)
            seen, pages = seen + rows, pages + 1
            next_link = re.search(r'href="([^"]*page=\d+[^"]*)" data-testid="next-page"', html)
            url = next_link[1].replace("&amp;", "&") if next_link else ""
            assert pages <= 11, "the pager never ends"
        assert (seen, pages) == (500, 10), start
