"""Small defects a person notices, each checked in the browser: the favicon, the 403
page in staff words, the audit log's parameters and emails, the runs page's note, the
bookings filter's checkboxes beside their words, and running rows that say how long."""

from __future__ import annotations

import re
import uuid

from estuary.db import db
from estuary.services import audit
from tests.console.write_support import seed_booking
from tests.e2e.conftest import sign_in


def test_the_favicon_is_there(page, live_stack):
    user = live_stack.make_staff("viewer")
    sign_in(page, user)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).status == 200
    answer = page.request.get("/favicon.ico")
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg")


def test_a_403_says_which_role_is_needed(page, live_stack):
    viewer = live_stack.make_staff("viewer", name="Vic Viewer")
    sign_in(page, viewer)
    answer = page.goto("/workflows/BatchPractitionerPayoutWorkflow/start")
    assert answer.status == 403
    text = page.inner_text("[data-testid=error-page]")
    assert "Only operators, approvers and admins can start workflows." in text
    assert "You are signed in as a viewer (Vic Viewer)" in text
    assert "give you the operator role on the Staff page" in text
    assert "You don't have the permission" not in text


def test_audit_parameters_are_a_list_and_emails_stay_whole(page, live_stack):
    app = live_stack.app
    email = f"bartholomew.approver-{uuid.uuid4().hex[:6]}@operations.estuary.example.com"
    target = f"payout:{uuid.uuid4().hex[:6]}"
    with app.test_request_context():
        audit.record(
            action="approvals.approve",
            target=target,
            params={"amount": "1,842.50 USD", "decision": {"note": "ok", "tier": 2}},
            actor=email,
            role="approver",
        )
        db.session.remove()
    sign_in(page, live_stack.make_staff("viewer"))
    page.goto(f"/audit/?target={target}")
    row = page.locator("[data-testid=audit-row]").first
    params = row.locator("[data-testid=audit-params]")
    names = params.locator("dt").all_inner_texts()
    assert names == ["amount", "decision · note", "decision · tier"]
    assert params.locator("dd").all_inner_texts() == ["1,842.50 USD", "ok", "2"]
    assert "{" not in row.inner_text()
    # Each piece of the email between its punctuation sits on one line: it wraps after
    # a dot or the @, never inside a word.
    broken = row.locator("td.actor").evaluate(
        """cell => {
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            const split = [];
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const range = document.createRange();
                range.selectNodeContents(n);
                const tops = Array.from(range.getClientRects()).map(r => Math.round(r.top));
                const lines = new Set(tops);
                if (lines.size > 1) split.push(n.textContent);
            }
            return split;
        }"""
    )
    assert broken == []
    assert email in row.locator("td.actor").inner_text()


def test_the_runs_note_speaks_to_staff(page, live_stack):
    sign_in(page, live_stack.make_staff("viewer"))
    page.goto("/runs")
    text = page.inner_text("[data-testid=run-results]")
    assert "visibility lists" not in text
    assert "Running runs come first" in text  # the dev server cannot sort by start time


def test_bookings_filter_checkboxes_sit_by_their_words(page, live_stack):
    sign_in(page, live_stack.make_staff("viewer"))
    page.goto("/bookings")
    for name in ("attention", "upcoming"):
        label = page.locator(f"label.check:has(input[name={name}])")
        box = label.locator("input").bounding_box()
        words = label.evaluate(
            """l => { const r = document.createRange();
                      r.selectNodeContents(l.lastChild); const b = r.getBoundingClientRect();
                      return {x: b.x}; }"""
        )
        gap = words["x"] - (box["x"] + box["width"])
        assert 0 <= gap <= 12, (name, gap)


def test_a_running_row_says_for_how_long(page, live_stack):
    app = live_stack.app
    booking = seed_booking(app, hours_ahead=96)
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    page.goto(f"/workflows/BookingLifecycleWorkflow/start?booking_id={booking}")
    page.fill("#start-reason-text", "new booking")
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(rf"/runs/bookings-lifecycle-{booking}/"))
    page.goto(f"/runs?q=booking {booking}")
    row = page.locator("[data-testid=run-row][data-status=Running]").first
    row.wait_for()
    took = row.locator("[data-testid=running-for]").inner_text()
    assert re.fullmatch(r"running for \d+ (s|min)", took), took
    assert "open" not in row.inner_text()
