"""Times in a browser whose zone is not UTC (Asia/Kolkata, UTC+05:30): the first page saves
the browser's zone on the staff member's profile, and from then on every page shows times
in it, in one format, with UTC in the tooltip; typed filter times are read in it. With
ESTUARY_SCREENSHOTS=<dir> it saves audit-log-asia-kolkata.png."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from sqlalchemy import select

from estuary.db import db
from estuary.models import StaffUser
from tests.e2e.conftest import sign_in
from tests.e2e.test_browser_write import shot

ONE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} IST$")
KOLKATA = ("Asia/Kolkata", "Asia/Calcutta")
UTC_TITLE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")


def _zone_of(app, user_id: int) -> str | None:
    with app.app_context():
        return db.session.scalar(select(StaffUser.time_zone).where(StaffUser.id == user_id))


def test_times_follow_the_browser_zone_once_saved(browser, live_stack):
    app = live_stack.app
    user = live_stack.make_staff("viewer", name="Priya Zone")
    context = browser.new_context(
        base_url=live_stack.base_url,
        viewport={"width": 1366, "height": 800},
        timezone_id="Asia/Kolkata",
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, user)
        deadline = time.monotonic() + 15
        # Chromium names the zone by its older IANA alias, Asia/Calcutta.
        while _zone_of(app, user.id) not in KOLKATA:
            assert time.monotonic() < deadline, "the browser's zone was not saved"
            time.sleep(0.2)
        # Once saved, the page reloads itself; going elsewhere before that reload has
        # committed would be interrupted by it.
        page.wait_for_selector("body:not([data-time-zone-unset])", state="attached")
        page.wait_for_load_state()
        page.goto("/profile")
        assert page.inner_text("[data-testid=time-zone]") in KOLKATA
        example = page.locator("[data-testid=time-example] time")
        shown, title = example.inner_text(), example.get_attribute("title")
        assert ONE_FORMAT.match(shown), shown
        assert UTC_TITLE.match(title), title
        local = datetime.strptime(shown[:16], "%Y-%m-%d %H:%M")
        utc = datetime.strptime(title[:16], "%Y-%m-%d %H:%M")
        assert local - utc == timedelta(hours=5, minutes=30)

        # The audit log: the same format, the sign-in's own entry included.
        page.goto("/audit/")
        cell = page.locator("[data-testid=audit-row] td.time time").first
        assert ONE_FORMAT.match(cell.inner_text()), cell.inner_text()
        assert UTC_TITLE.match(cell.get_attribute("title"))
        shot(page, "audit-log-asia-kolkata.png")

        # A filter time typed in the runs page is read in IST and shown back the same way.
        page.goto("/runs")
        field = page.locator("[data-testid=filter-started_after]")
        assert field.get_attribute("placeholder") == "2026-12-01 10:00"
        field.fill("2026-12-01 10:00")
        page.locator("[data-testid=run-filters] button[type=submit]").click()
        page.wait_for_url(re.compile(r"started_after="))
        assert page.locator("[data-testid=filter-started_after]").input_value() == (
            "2026-12-01 10:00"
        )
        assert _zone_of(app, user.id) in page.inner_text("[data-testid=run-filters]")
        # 10:00 IST is 04:30 UTC: the link the page builds says so.
        assert "started_after=2026-12-01T04%3A30Z" in page.url or (
            "started_after=2026-12-01+10%3A00" in page.url
        )
        pager_or_counts = page.locator("a[href*='started_after=2026-12-01T04%3A30Z']")
        assert pager_or_counts.count() >= 1
    finally:
        context.close()
