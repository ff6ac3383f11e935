"""Browser tests of the console's write side against the live stack: start a batch payout
through the form and its confirmation, approve a payout as a second user, retry a failed
run, cancel a booking, and read each one's audit entry.

With ESTUARY_SCREENSHOTS=<dir> set, the tests also save the screenshots the docs use
(approvals.png, start-form-error.png, audit-log.png) at 1366x800.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from estuary.db import db
from estuary.models import Booking, Payout, StaffUser
from tests.console.write_support import seed_booking, seed_practitioner, unique_batch_ids
from tests.e2e.conftest import sign_in

SHOTS = os.environ.get("ESTUARY_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=False)


def wait_until(predicate, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def audit_row(page, action: str, target: str):
    """The newest audit row for an action and target, read from the audit page."""
    page.goto(f"/audit/?action={action}&target={target}")
    row = page.locator("[data-testid=audit-row]").first
    assert row.is_visible(), f"no audit row for {action} {target}"
    return row


@pytest.fixture
def accept_dialogs(page):
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def test_start_batch_payout_via_form_and_confirmation(page, live_stack, monkeypatch):
    batch_id = unique_batch_ids(monkeypatch)
    app = live_stack.app
    a = seed_practitioner(app, balance_cents=15_000, name="Ana Batch")
    b = seed_practitioner(app, balance_cents=22_050, name="Ben Batch")
    operator = live_stack.make_staff("operator", name="Olu Operator")
    sign_in(page, operator)

    page.goto("/workflows/BatchPractitionerPayoutWorkflow/start")
    page.fill("#f-min_amount_cents", "10.005")
    page.fill("#f-practitioner_ids", f"{a}, {b}")
    page.click("button[type=submit].primary")
    assert page.locator("[data-testid=form-errors]").is_visible()
    assert (
        "more than two decimal places" in page.locator("[data-field=min_amount_cents]").inner_text()
    )
    assert "a reason is required" in page.inner_text("main")
    shot(page, "start-form-error.png")

    page.fill("#f-min_amount_cents", "100.00")
    page.fill("#start-reason-text", "weekly payouts, by hand this week")
    page.click("button[type=submit].primary")
    confirmation = page.locator("[data-testid=confirmation]")
    assert confirmation.is_visible()
    assert page.inner_text("[data-testid=dry-run-count]") == "2"
    assert page.inner_text("[data-testid=dry-run-total]") == "370.50 USD"
    page.click("[data-testid=confirm-start]")
    page.wait_for_url(re.compile(rf"/runs/{batch_id}"))
    assert "Started: Batch practitioner payout" in page.inner_text(".flashes")

    workflow_id = page.url.split("/runs/")[1].split("/")[0]
    row = audit_row(page, "catalog.start", f"workflow:{workflow_id}")
    text = row.inner_text()
    assert operator.email in text and "success" in text
    assert "weekly payouts, by hand this week" in text


def test_approve_a_payout_as_a_second_user(browser, page, live_stack):
    app = live_stack.app
    pid = seed_practitioner(app, balance_cents=120_000, name="Maya Okafor")
    requester = live_stack.make_staff("approver", name="Rita Requester")
    approver = live_stack.make_staff("approver", name="Ada Approver")
    sign_in(page, requester)
    page.goto(f"/workflows/PractitionerPayoutWorkflow/start?practitioner_id={pid}")
    page.fill("#f-amount_cents", "650.00")
    page.fill("#start-reason-text", "practitioner asked for an early payout")
    page.click("button[type=submit].primary")
    assert "one approver (not you)" in page.inner_text("[data-testid=confirmation]")
    page.click("[data-testid=confirm-start]")
    page.wait_for_url(re.compile(r"/runs/payments-payout-"))

    def waiting() -> Payout | None:
        with app.app_context():
            return db.session.scalar(
                db.select(Payout).where(
                    Payout.practitioner_id == pid, Payout.status == "pending_approval"
                )
            )

    wait_until(lambda: waiting() is not None, what="the payout to wait for approval")
    payout_id = waiting().id

    # A second, bigger payout needs two approvers and is above this approver's limit.
    big = seed_practitioner(app, balance_cents=600_000, name="Rafael Duarte")
    page.goto(f"/workflows/PractitionerPayoutWorkflow/start?practitioner_id={big}")
    page.fill("#f-amount_cents", "5200.00")
    page.fill("#start-reason-text", "quarterly settlement")
    page.click("button[type=submit].primary")
    assert "two different approvers" in page.inner_text("[data-testid=confirmation]")
    page.click("[data-testid=confirm-start]")
    page.wait_for_url(re.compile(r"/runs/payments-payout-"))
    with app.app_context():
        db.session.get(StaffUser, approver.id).approval_limit_cents = 500_000
        db.session.commit()

    # The requester sees why they cannot decide.
    page.goto("/approvals/")
    assert "You requested this payout" in page.inner_text(f"#payout-{payout_id}")

    context = browser.new_context(
        base_url=live_stack.base_url, viewport={"width": 1366, "height": 800}
    )
    second = context.new_page()
    second.set_default_timeout(15_000)
    try:
        sign_in(second, approver)
        second.goto("/approvals/")
        row = second.locator(f"#payout-{payout_id}")
        assert "Maya Okafor" in row.inner_text() and "650.00 USD" in row.inner_text()
        assert requester.email in row.inner_text()

        def both_listed() -> bool:
            second.goto("/approvals/")
            return second.locator("[data-testid^=payout-row-]").count() >= 2

        wait_until(both_listed, what="the bigger payout in the queue")
        big_row = second.locator("tr", has_text="Rafael Duarte")
        assert "Above your approval limit of 5,000.00 USD" in big_row.inner_text()
        assert "0 of 2" in big_row.inner_text()
        shot(second, "approvals.png")
        second.click(f"[data-testid=approve-{payout_id}]")
        second.wait_for_url(re.compile(r"/approvals/"))
        assert f"Approved payout #{payout_id}" in second.inner_text(".flashes")

        def paid() -> bool:
            with app.app_context():
                return db.session.get(Payout, payout_id).status == "paid"

        wait_until(paid, what="the approved payout to be paid")
        text = audit_row(second, "approvals.approve", f"payout:{payout_id}").inner_text()
        assert approver.email in text and "success" in text
    finally:
        context.close()


def test_retry_a_failed_run(page, live_stack):
    app = live_stack.app
    booking = seed_booking(app, status="completed")  # its lifecycle fails at once
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    page.goto(f"/workflows/BookingLifecycleWorkflow/start?booking_id={booking}")
    page.fill("#start-reason-text", "start the lifecycle")
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(rf"/runs/bookings-lifecycle-{booking}/"))
    run_url = page.url

    def failed() -> bool:
        page.goto(run_url)
        return page.locator("[data-testid=retry-forms]").count() > 0

    wait_until(failed, what="the run to fail")
    with app.app_context():
        db.session.get(Booking, booking).status = "confirmed"  # fix the data
        db.session.commit()
    page.click("[data-testid=retry-rerun]")
    page.wait_for_url(lambda url: url != run_url and "/runs/bookings-lifecycle-" in url)
    assert "Retried" in page.inner_text(".flashes")
    text = audit_row(page, "runs.retry", f"workflow:bookings-lifecycle-{booking}").inner_text()
    assert operator.email in text and "success" in text and "rerun" in text


def test_cancel_a_booking(accept_dialogs, live_stack):
    page = accept_dialogs
    app = live_stack.app
    booking = seed_booking(app, hours_ahead=96)
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    page.goto(f"/workflows/BookingLifecycleWorkflow/start?booking_id={booking}")
    page.fill("#start-reason-text", "new booking")
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(rf"/runs/bookings-lifecycle-{booking}/"))

    def cancel_form_ready() -> bool:
        page.goto(f"/bookings/{booking}")
        return page.locator("[data-testid=action-cancel]").count() > 0

    wait_until(cancel_form_ready, what="the booking's cancel form")
    form = page.locator("[data-testid=action-cancel]")
    form.locator("button[type=submit]").click()  # no reason: refused in the form itself
    page.locator("[data-testid=action-cancel] [data-testid=action-error]").wait_for()
    form = page.locator("[data-testid=action-cancel]")
    assert "Reason: is required" in form.inner_text()
    form.locator("[name=reason]").fill("client moved abroad")
    form.locator("[name=by]").select_option("ops")
    form.locator("button[type=submit]").click()
    page.locator(".flashes", has_text="Done: Cancel").wait_for()
    assert "Full credit: yes" in page.inner_text(".flashes")

    def cancelled() -> bool:
        with app.app_context():
            return db.session.get(Booking, booking).status == "cancelled"

    wait_until(cancelled, what="the booking to be cancelled")
    text = audit_row(page, "runs.update", f"workflow:bookings-lifecycle-{booking}").inner_text()
    assert operator.email in text and "success" in text and "client moved abroad" in text
    page.goto("/audit/")
    shot(page, "audit-log.png")
