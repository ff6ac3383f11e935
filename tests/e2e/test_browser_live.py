"""Browser tests of the live pages and the confirmation pages (issue 14 items 5 and 8):
the approvals page shows a new waiting payout without a reload and the navigation's count
follows; polling pauses while the tab is hidden and resumes when shown; a batch payout's
dry run is a table with names, totals and skip reasons, confirmed in four clicks from
home; a payout that cannot be paid says so and cannot be confirmed.

With ESTUARY_SCREENSHOTS=<dir> set, saves batch-payout-confirm.png (batch-dry-run.png is the
dry run's own run page, taken by scripts/take_screenshots.py), payout-confirm.png and
approvals-live.png.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from estuary.contracts.payments import payout_workflow_id
from estuary.db import db
from estuary.models import Payout
from tests.console.write_support import seed_practitioner, unique_batch_ids
from tests.e2e.conftest import sign_in
from tests.e2e.test_browser_write import shot, wait_until


@pytest.fixture
def fast_polls(live_stack, monkeypatch):
    """Poll every second (5 s in production) so the tests do not wait."""
    monkeypatch.setitem(live_stack.app.config, "LIVE_POLL_SECONDS", 1)
    monkeypatch.setitem(live_stack.app.config, "LIVE_NAV_SECONDS", 1)


def _waiting_payout(app, pid: int, amount: int = 70_000, status: str = "pending_approval") -> int:
    with app.app_context():
        key = f"payments-payout-{pid}-{uuid.uuid4().hex[:8]}"
        if status == "paid":
            key = payout_workflow_id(pid, datetime.now(UTC).date())
        payout = Payout(
            practitioner_id=pid,
            amount_cents=amount,
            status=status,
            idempotency_key=f"payout:{key}:1",
            workflow_id=key,
            requested_by="someone-else@e2e.local",
            approvals_required=1 if status == "pending_approval" else 0,
        )
        db.session.add(payout)
        db.session.commit()
        return payout.id


def _close_waiting(app) -> None:
    """Other tests' waiting payouts would count: take them out of the queue."""
    with app.app_context():
        for payout in db.session.scalars(
            db.select(Payout).where(Payout.status == "pending_approval")
        ):
            payout.status = "expired"
        db.session.commit()


def _nav_count(page) -> int:
    return int(page.get_attribute("[data-testid=nav-approvals-count]", "data-count"))


def test_live_approvals_page_shows_a_new_payout_and_the_nav_count_follows(
    page, live_stack, fast_polls
):
    app = live_stack.app
    _close_waiting(app)
    approver = live_stack.make_staff("approver", name="Lin Live")
    sign_in(page, approver)
    page.goto("/approvals/")
    assert page.locator("[data-testid=approvals-empty]").is_visible()
    assert _nav_count(page) == 0
    page.evaluate("window.__sameDocument = 'yes'")

    pid = seed_practitioner(app, balance_cents=80_000, name="Nia Newcomer")
    payout_id = _waiting_payout(app, pid)
    row = page.locator(f"[data-testid=payout-row-{payout_id}]")
    row.wait_for(timeout=10_000)
    assert "Nia Newcomer" in row.inner_text() and "700.00 USD" in row.inner_text()
    wait_until(lambda: _nav_count(page) == 1, timeout=10, what="the nav count to show 1")
    # With forms on the page (nothing typed), it goes on refreshing.
    other = _waiting_payout(app, pid, amount=60_000)
    page.locator(f"[data-testid=payout-row-{other}]").wait_for(timeout=10_000)
    wait_until(lambda: _nav_count(page) == 2, timeout=10, what="the nav count to show 2")
    assert page.evaluate("window.__sameDocument") == "yes"  # no reload happened
    shot(page, "approvals-live.png")

    # On another page the count polls on its own.
    page.goto("/workflows")
    assert _nav_count(page) == 2
    _close_waiting(app)
    wait_until(lambda: _nav_count(page) == 0, timeout=10, what="the nav count to drop to 0")


def _hide(page, hidden: bool) -> None:
    page.evaluate(
        """(hidden) => {
        Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
        Object.defineProperty(document, 'visibilityState',
            {value: hidden ? 'hidden' : 'visible', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""",
        hidden,
    )


def _wait_for_polls(page, polls: list[str], count: int, timeout: float, what: str) -> None:
    """Wait, letting Playwright deliver its request events (a plain sleep would not)."""
    waited = 0
    while len(polls) < count:
        if waited > timeout * 1000:
            raise AssertionError(f"timed out waiting for {what}: {polls}")
        page.wait_for_timeout(100)
        waited += 100


def test_polling_pauses_while_the_tab_is_hidden_and_resumes_when_shown(
    page, live_stack, fast_polls
):
    approver = live_stack.make_staff("approver")
    sign_in(page, approver)
    page.goto("/approvals/")
    polls: list[str] = []
    page.on(
        "request", lambda r: polls.append(r.url) if r.resource_type in ("xhr", "fetch") else None
    )
    _wait_for_polls(page, polls, 2, 10, "the page to poll")

    _hide(page, True)
    page.wait_for_timeout(300)  # a request already on its way may land
    sent = len(polls)
    page.wait_for_timeout(3_500)  # three intervals of the region, three of the count
    assert len(polls) == sent, polls[sent:]
    assert page.evaluate("window.estuaryLive.paused") >= 2

    _hide(page, False)  # shown again: a refresh at once, then the usual pace
    _wait_for_polls(page, polls, sent + 1, 0.9, "a refresh at once when shown")
    assert any(url.endswith("/approvals/") for url in polls[sent:])
    _wait_for_polls(page, polls, sent + 4, 10, "polling to resume")


def test_batch_dry_run_then_confirm_in_four_clicks(page, live_stack, monkeypatch):
    batch_id = unique_batch_ids(monkeypatch)
    app = live_stack.app
    ana = seed_practitioner(app, balance_cents=184_250, name="Maya Chen")
    ben = seed_practitioner(app, balance_cents=22_050, name="Ben Okoro")
    nodest = seed_practitioner(app, balance_cents=30_000, name="Nadia Nodest", destination=None)
    paid = seed_practitioner(app, balance_cents=40_000, name="Paula Paid")
    _waiting_payout(app, paid, amount=12_000, status="paid")
    operator = live_stack.make_staff("operator", name="Olu Operator")
    sign_in(page, operator)
    page.goto("/")
    clicks = 0

    page.click("nav.sidebar >> text=Workflows")
    clicks += 1
    page.click("#wf-BatchPractitionerPayoutWorkflow >> text=Start")
    clicks += 1
    page.fill("#f-min_amount_cents", "100.00")
    page.fill("#f-practitioner_ids", f"{ana}, {ben}, {nodest}, {paid}")
    page.fill("#start-reason-text", "weekly payouts, by hand this week")
    page.click("button[type=submit].primary")
    clicks += 1

    confirmation = page.locator("[data-testid=confirmation]")
    sentence = page.inner_text("[data-testid=confirm-sentence]")
    assert sentence == (
        "Pays 2 practitioners 2,063.00 USD in total (1 of them waits for an approver first); "
        "skips 2 (reasons below)."
    )
    pay = page.inner_text("[data-testid=dry-run-pay]")
    assert "Maya Chen" in pay and "1,842.50 USD" in pay and "waits for an approver" in pay
    assert "Ben Okoro" in pay and "220.50 USD" in pay and "paid at once" in pay
    assert page.inner_text("[data-testid=dry-run-pay-total]") == "2,063.00 USD"
    skipped = page.inner_text("[data-testid=dry-run-skipped]")
    assert "Nadia Nodest" in skipped and "no payout destination" in skipped
    assert "Paula Paid" in skipped and "was already paid today" in skipped
    text = confirmation.inner_text()
    assert "cents" not in text and "{" not in text and "practitioner_id" not in text
    assert text.count("Dry run") <= 1  # the input's own field, once
    assert page.locator("[data-testid=confirmation] details").count() == 0  # nothing folded
    shot(page, "batch-payout-confirm.png")

    page.click("[data-testid=confirm-start]")
    clicks += 1
    page.wait_for_url(re.compile(rf"/runs/{batch_id}"))
    assert clicks <= 4
    assert "Started" in page.inner_text(".flashes")

    def paid_once() -> bool:
        with app.app_context():
            rows = db.session.scalars(
                db.select(Payout).where(Payout.practitioner_id.in_([ana, ben, nodest, paid]))
            ).all()
            return {(r.practitioner_id, r.status) for r in rows} >= {
                (ben, "paid"),
                (ana, "pending_approval"),
            }

    wait_until(paid_once, timeout=30, what="the batch to pay Ben and hold Maya's payout")
    with app.app_context():
        assert not db.session.scalar(db.select(Payout.id).where(Payout.practitioner_id == nodest))


def test_payout_confirmation_names_what_stops_it_and_cannot_be_confirmed(page, live_stack):
    app = live_stack.app
    nodest = seed_practitioner(app, balance_cents=184_250, name="Maya Nodest", destination=None)
    fine = seed_practitioner(app, balance_cents=184_250, name="Maya Chen")
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)

    page.goto(f"/workflows/PractitionerPayoutWorkflow/start?practitioner_id={fine}")
    page.fill("#start-reason-text", "asked for her balance")
    page.click("button[type=submit].primary")
    assert page.inner_text("[data-testid=confirm-sentence]") == (
        "Pays Maya Chen 1,842.50 USD once approved; needs one approver (not you)."
    )
    assert page.locator("[data-testid=confirm-start]").is_enabled()

    page.goto(f"/workflows/PractitionerPayoutWorkflow/start?practitioner_id={nodest}")
    page.fill("#start-reason-text", "asked for her balance")
    page.click("button[type=submit].primary")
    sentence = page.inner_text("[data-testid=confirm-sentence]")
    assert sentence.startswith("Would pay Maya Nodest 1,842.50 USD, but cannot start")
    assert "has no payout destination" in page.inner_text("[data-testid=confirm-problems]")
    assert page.locator("[data-testid=confirm-start]").is_disabled()
    shot(page, "payout-confirm.png")
    with app.app_context():
        assert not db.session.scalar(db.select(Payout.id).where(Payout.practitioner_id == nodest))


def test_payout_page_follows_its_payout_and_stops_polling_once_paid(page, live_stack, fast_polls):
    app = live_stack.app
    pid = seed_practitioner(app, balance_cents=80_000, name="Pia Page")
    payout_id = _waiting_payout(app, pid)
    viewer = live_stack.make_staff("viewer")
    sign_in(page, viewer)
    page.goto(f"/payouts/{payout_id}")
    assert page.get_attribute("#live-region", "data-live") == "on"
    page.evaluate("window.__sameDocument = 'yes'")
    with app.app_context():
        db.session.get(Payout, payout_id).status = "paid"
        db.session.commit()
    page.locator("#live-region[data-live=off]").wait_for(state="attached", timeout=10_000)
    assert "Paid" in page.inner_text("h1") or "paid" in page.inner_text("h1")
    assert page.evaluate("window.__sameDocument") == "yes"
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/payouts/" in r.url else None)
    page.wait_for_timeout(2_500)
    assert polls == []  # nothing moves any more: the page stopped asking


def test_home_refreshes_its_tiles_and_keeps_its_chart(page, live_stack, fast_polls, monkeypatch):
    app = live_stack.app
    monkeypatch.setitem(app.config, "HOME_COUNTS_CACHE_SECONDS", 1)
    _close_waiting(app)
    pid = seed_practitioner(app, balance_cents=80_000, name="Hana Home")
    _waiting_payout(app, pid)
    viewer = live_stack.make_staff("viewer")
    requests: list[str] = []
    sign_in(page, viewer)
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/")
    page.locator("[data-testid=runs-chart]").wait_for()
    assert page.get_attribute("#live-region", "data-live") == "on"
    assert page.inner_text("[data-testid=tile-approvals] .num") == "1"
    _waiting_payout(app, pid)
    page.locator("[data-testid=tile-approvals] .num", has_text="2").wait_for(timeout=10_000)
    page.wait_for_timeout(1_500)
    assert sum(1 for url in requests if "/charts/runs" in url) == 1  # kept, not reloaded
    assert sum(1 for url in requests if url.rstrip("/") == live_stack.base_url) >= 2


def test_a_live_page_waits_while_someone_types_in_one_of_its_forms(page, live_stack, fast_polls):
    app = live_stack.app
    _close_waiting(app)
    pid = seed_practitioner(app, balance_cents=90_000, name="Tom Typing")
    first = _waiting_payout(app, pid)
    approver = live_stack.make_staff("approver")
    sign_in(page, approver)
    page.goto("/approvals/")
    page.fill(f"#approve-note-{first}", "checked the invoice")
    page.locator("h1").click()  # focus leaves the field; the typed note stays
    second = _waiting_payout(app, pid, amount=80_000)
    page.wait_for_timeout(3_000)  # three intervals: a refresh would take the note away
    assert page.locator(f"[data-testid=payout-row-{second}]").count() == 0
    assert page.input_value(f"#approve-note-{first}") == "checked the invoice"
    page.fill(f"#approve-note-{first}", "")
    page.locator("h1").click()
    page.locator(f"[data-testid=payout-row-{second}]").wait_for(timeout=10_000)
