"""Daily jobs, counted in clicks (issue 14): approve a payout (≤ 2 from the home page),
reject one with a reason (≤ 3 from the approvals page), the second approval of a payout
that needs two approvers (≤ 2 each), retry a failed run (≤ 3 from the runs page). Every
click goes through `Clicks`; typing is free, choosing from a list is one click. Finding
the runs of practitioner 6 by typing is counted in test_browser_search.py.
"""

from __future__ import annotations

import re
import uuid

from estuary.contracts.bookings import BookingLifecycleInput
from estuary.db import db
from estuary.models import Booking
from tests.console.write_support import seed_booking, seed_practitioner
from tests.e2e.clicks import Clicks, payout_status, start_payout, wait_for
from tests.e2e.conftest import sign_in
from tests.e2e.test_browser_write import shot

APPROVALS_NAV = "nav.sidebar a[href$='/approvals/']"


def _tag() -> str:
    return uuid.uuid4().hex[:4]


def test_approve_a_payout_in_two_clicks(page, live_stack):
    pid = seed_practitioner(live_stack.app, balance_cents=120_000, name=f"Clara Approve {_tag()}")
    _, payout_id = start_payout(live_stack, pid, 65_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver"))

    clicks = Clicks(page)
    clicks.click(APPROVALS_NAV)
    clicks.click(f"[data-testid=approve-{payout_id}]")
    page.wait_for_url(re.compile(r"/approvals/"))
    wait_for(lambda: payout_status(live_stack, payout_id) == "paid", "the payout to be paid")
    assert clicks.count <= 2, clicks.count
    page.goto(f"/payouts/{payout_id}")
    shot(page, "payout.png")


def test_reject_a_payout_with_a_reason_in_three_clicks(page, live_stack):
    pid = seed_practitioner(live_stack.app, balance_cents=120_000, name=f"Rui Reject {_tag()}")
    _, payout_id = start_payout(live_stack, pid, 70_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver"))
    page.goto("/approvals/")

    clicks = Clicks(page)
    clicks.on(page.locator(f"#decision-{payout_id} details.reject > summary"))
    clicks.choose(f"#reject-code-{payout_id}", "duplicate")
    page.fill(f"#reject-note-{payout_id}", "the same session was paid last week")
    clicks.click(f"[data-testid=reject-{payout_id}]")
    page.wait_for_url(re.compile(r"/approvals/"))
    wait_for(
        lambda: payout_status(live_stack, payout_id) == "rejected", "the payout to be rejected"
    )
    assert clicks.count <= 3, clicks.count


def test_second_approval_pays_in_two_clicks_each(browser, page, live_stack):
    pid = seed_practitioner(live_stack.app, balance_cents=900_000, name=f"Dara Dual {_tag()}")
    _, payout_id = start_payout(live_stack, pid, 520_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver", name="First Approver"))

    first = Clicks(page)
    first.click(APPROVALS_NAV)
    first.click(f"[data-testid=approve-{payout_id}]")
    page.wait_for_url(re.compile(r"/approvals/"))
    row = page.locator(f"#payout-{payout_id}")
    row.wait_for()
    assert "1 of 2" in row.inner_text()
    assert payout_status(live_stack, payout_id) == "pending_approval"
    assert first.count <= 2, first.count

    context = browser.new_context(
        base_url=live_stack.base_url, viewport={"width": 1366, "height": 800}
    )
    try:
        other = context.new_page()
        other.set_default_timeout(15_000)
        sign_in(other, live_stack.make_staff("approver", name="Second Approver"))
        second = Clicks(other)
        second.click(APPROVALS_NAV)
        second.click(f"[data-testid=approve-{payout_id}]")
        other.wait_for_url(re.compile(r"/approvals/"))
        wait_for(lambda: payout_status(live_stack, payout_id) == "paid", "the payout to be paid")
        assert second.count <= 2, second.count
    finally:
        context.close()


def test_retry_a_failed_run_in_three_clicks(page, live_stack):
    app = live_stack.app
    booking = seed_booking(app, status="completed")  # its lifecycle fails at once
    gw = app.extensions["temporal"]
    with app.app_context():
        run = gw.start(
            "BookingLifecycleWorkflow",
            BookingLifecycleInput(booking_id=booking),
            triggered_by="operator@e2e.local",
            reason="browser test",
        )
        wait_for(lambda: gw.describe(run.workflow_id).status == "Failed", "the run to fail")
        db.session.get(Booking, booking).status = "confirmed"  # fix the data
        db.session.commit()
    sign_in(page, live_stack.make_staff("operator"))
    page.goto("/runs")
    failed_filter = "[data-testid=status-counts] a:has([data-testid=count-Failed])"
    for _ in range(40):  # visibility lags the failure by up to a second
        if page.locator(failed_filter).count():
            break
        page.wait_for_timeout(500)
        page.reload()

    clicks = Clicks(page)
    clicks.click(failed_filter)
    page.wait_for_url(lambda url: "status=Failed" in url)
    clicks.on(page.locator(f"tr:has-text('{run.workflow_id}') a").first)
    page.wait_for_url(re.compile(rf"/runs/{run.workflow_id}/{run.run_id}"))
    clicks.click("[data-testid=retry-rerun]")
    page.wait_for_url(lambda url: f"/runs/{run.workflow_id}/" in url and run.run_id not in url)
    with app.app_context():
        again = gw.describe(run.workflow_id)
    assert again.run_id != run.run_id and again.status in ("Running", "Completed")
    assert clicks.count <= 3, clicks.count
