"""Run pages speak the business (issue 14, item 2): on the demo's real runs (a payout
waiting for its second approver, a rejected payout, a package with parts released, an
onboarding in training, booking lifecycles) and two batch payouts (a dry run, and one
whose minimum skips everyone), every run page, the runs list, approvals, home and the
domain pages show business titles and outcomes with no raw JSON, no ISO timestamp and
no amount in cents (`tests.page_text`). With ESTUARY_SCREENSHOTS=<dir> the browser test
saves onboarding-progress.png, batch-dry-run.png, package-progress.png,
booking-lifecycle.png and payout-rejected.png.

Its own Temporal dev server (the demo's fixtures), like tests/demo/test_demo_alive.py.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from estuary.contracts.payments import BatchPayoutInput, RejectPayoutDecision
from estuary.db import db
from estuary.models import Booking, Payout, Practitioner
from estuary.models.base import utcnow
from estuary.services.demo import INES, MAYA, RAFAEL
from tests.console.read_support import login
from tests.demo.test_demo_alive import browser, demo_env, demo_stack, wait_until  # noqa: F401
from tests.e2e.test_browser_write import shot
from tests.page_text import assert_speaks_business, visible_text

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_runs(demo_stack):  # noqa: F811
    """The demo's runs, Maya's payout rejected, and two finished batch payouts."""
    app = demo_stack[0]
    result = app.test_cli_runner().invoke(args=["seed-demo-runs"])
    assert result.exit_code == 0, result.output
    gw = app.extensions["temporal"]
    with app.app_context():
        ids = {
            name: db.session.scalar(select(Practitioner.id).where(Practitioner.name == name))
            for name in (MAYA, RAFAEL, INES)
        }
        all_ids = list(db.session.scalars(select(Practitioner.id)))
        booking_id = db.session.scalar(
            select(Booking.id).where(Booking.start_at > utcnow()).order_by(Booking.start_at)
        )

    def maya_payout() -> Payout | None:
        with app.app_context():
            db.session.expire_all()
            p = db.session.scalar(select(Payout).where(Payout.practitioner_id == ids[MAYA]))
            if p is not None and p.status == "pending_approval":
                db.session.expunge(p)
                return p
            return None

    payout = wait_until(maya_payout, what="Maya's payout to wait for approval")
    gw.update(
        payout.workflow_id,
        "reject",
        RejectPayoutDecision(
            actor="approver2@estuary.local",
            amount_cents=payout.amount_cents,
            practitioner_id=payout.practitioner_id,
            reason_code="duplicate",
        ),
    )
    dry = gw.start(
        "BatchPractitionerPayoutWorkflow",
        BatchPayoutInput(min_amount_cents=1000, dry_run=True),
        triggered_by="ops@estuary.test",
    )
    nobody = gw.start(
        "BatchPractitionerPayoutWorkflow",
        BatchPayoutInput(min_amount_cents=99_999_900, practitioner_ids=all_ids),
        triggered_by="ops@estuary.test",
    )
    for started in (dry, nobody):
        gw.result(started.workflow_id, timeout=60)
    gw.result(payout.workflow_id, timeout=60)

    def in_training() -> bool:
        progress = gw.query(f"practitioners-onboarding-{ids[INES]}", "progress")
        return progress.get("current_step") == "training"

    wait_until(in_training, what="the onboarding to reach training")
    return {
        "ids": ids,
        "booking_id": booking_id,
        "payout": payout.workflow_id,
        "payout_id": payout.id,
        "rafael_payout": f"payments-payout-{ids[RAFAEL]}-",
        "dry": dry.workflow_id,
        "nobody": nobody.workflow_id,
        "onboarding": f"practitioners-onboarding-{ids[INES]}",
        "lifecycle": f"bookings-lifecycle-{booking_id}",
    }


def _run_page(client, workflow_id: str) -> str:
    latest = client.get(f"/runs/{workflow_id}")
    assert latest.status_code == 302, (workflow_id, latest.status_code)
    page = client.get(latest.headers["Location"])
    assert page.status_code == 200, workflow_id
    return page.get_data(as_text=True)


def _title(html: str) -> str:
    return visible_text(
        re.search(r'<h1 [^>]*data-testid="run-title"[^>]*>(.*?)</h1>', html, re.S)[1]
    )


def test_every_main_run_page_speaks_the_business(demo_stack, demo_runs):  # noqa: F811
    app = demo_stack[0]
    client = login(app, "viewer")
    runs = demo_runs

    payout = _run_page(client, runs["payout"])
    assert_speaks_business(payout, "the rejected payout's page")
    assert re.fullmatch(r"Payout to Maya \w+ · [\d,]+\.\d\d USD", _title(payout)), _title(payout)
    assert "PractitionerPayoutWorkflow" in payout  # secondary detail
    outcome = re.search(r'data-testid="run-outcome"[^>]*>([^<]*)<', payout)[1]
    assert outcome == "Rejected by approver2@estuary.local (duplicate)"
    assert "status-completed" not in payout.split('data-testid="run-outcome"')[0][-200:]

    onboarding = _run_page(client, runs["onboarding"])
    assert_speaks_business(onboarding, "the onboarding's page")
    assert _title(onboarding) == f"Onboarding of {INES} (step 4 of 6: training)"
    steps = re.findall(r'<li class="check-(\w+)" data-state="\w+">\s*<b>([^<]+)</b>', onboarding)
    assert [s for s, _label in steps] == ["done", "done", "done", "current", "waiting", "waiting"]
    assert [label for _s, label in steps][3] == "4. Training"
    assert "Settings" in onboarding and "Documents" in onboarding
    # Its child runs are named too: the background check it started.
    assert f"Background check of {INES}" in visible_text(onboarding)
    # The live refresh brings the title along (out of band): it follows the step.
    live = re.search(r'hx-get="([^"]+/live)\?seen=', onboarding)[1]
    fragment = client.get(live).get_data(as_text=True)
    assert f'hx-swap-oob="true">Onboarding of {INES} (step 4 of 6: training)</h1>' in fragment
    assert_speaks_business(fragment, "the onboarding's live refresh")

    dry = _run_page(client, runs["dry"])
    assert_speaks_business(dry, "the dry run's page")
    assert _title(dry).startswith("Dry run of the batch payout of ")
    text = visible_text(dry)
    assert "Dry run: would pay" in text and "nothing was paid" in text
    assert 'data-testid="batch-lines"' in dry and MAYA.split()[0] in text

    nobody = _run_page(client, runs["nobody"])
    assert_speaks_business(nobody, "the batch that skipped everyone")
    outcome = re.search(r'data-testid="run-outcome"[^>]*>([^<]*)<', nobody)[1]
    assert re.fullmatch(r"Nothing paid: \d+ skipped", outcome), outcome
    assert "below the minimum amount" in visible_text(nobody)

    package = _run_page(client, "payments-package-payout-1")
    assert_speaks_business(package, "the package payout's page")
    assert _title(package).startswith("Package payout to Maya")
    assert "2 of " in visible_text(package) and 'data-testid="progress-bar"' in package

    lifecycle = _run_page(client, runs["lifecycle"])
    assert_speaks_business(lifecycle, "the booking lifecycle's page")
    assert _title(lifecycle).startswith(f"Booking #{runs['booking_id']} lifecycle — ")
    assert 'data-testid="lifecycle-timeline"' in lifecycle

    rafael = client.get(f"/runs?q={runs['rafael_payout']}").get_data(as_text=True)
    link = re.search(r'href="(/runs/payments-payout-[^"]+)"', rafael)
    second = client.get(link[1]).get_data(as_text=True)
    assert_speaks_business(second, "the payout waiting for its second approver")
    assert f"Payout to {RAFAEL}" in _title(second)


def test_lists_name_runs_by_what_they_do(demo_stack, demo_runs):  # noqa: F811
    app = demo_stack[0]
    client = login(app, "approver")
    listing = client.get("/runs?page_size=100").get_data(as_text=True)
    assert_speaks_business(listing, "the runs list")
    titles = re.findall(r'data-testid="run-title">([^<]+)<', listing)
    assert f"Onboarding of {INES} (step 4 of 6: training)" in titles
    assert any(t.startswith(f"Payout to {RAFAEL} · ") for t in titles), titles
    assert any(t.startswith("Booking #") and " lifecycle — " in t for t in titles), titles
    # The rejected payout is not a green Completed in the list either.
    assert "Rejected by approver2@estuary.local" in listing
    assert "running for " in listing and "Took: open" not in listing
    # Finished batches say what they paid, read from the payouts they started.
    rows = re.findall(r'<tr id="run-.*?</tr>', listing, re.S)

    def row_of(workflow_id: str) -> str:
        return next(r for r in rows if f'<span class="mono">{workflow_id}</span>' in r)

    for key, said in (("dry", "Dry run: no money moved"), ("nobody", "Nothing paid")):
        outcome = re.search(r'data-testid="run-outcome"[^>]*>([^<]+)<', row_of(demo_runs[key]))
        assert outcome is not None and outcome[1] == said, (key, outcome)

    pages = ("/", "/approvals/", f"/practitioners/{demo_runs['ids'][INES]}", "/notifications")
    pages += ("/payouts", "/bookings", f"/bookings/{demo_runs['booking_id']}", "/practitioners")
    pages += (f"/payouts/{demo_runs['payout_id']}",)
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        assert_speaks_business(page.get_data(as_text=True), url)
    practitioner = client.get(f"/practitioners/{demo_runs['ids'][INES]}").get_data(as_text=True)
    assert f"Onboarding of {INES} (step 4 of 6: training)" in practitioner
    # Its action panel heads the run with its title, the workflow type secondary.
    heads = re.findall(r'data-testid="entity-run-title">([^<]+)<', practitioner)
    assert f"Onboarding of {INES} (step 4 of 6: training)" in heads, heads
    # The training step's progress names the catalogue's modules, not their codes (the
    # module picker shows the code after the title).
    onboarding = _run_page(client, demo_runs["onboarding"])
    card = re.search(
        r'<section class="card" data-testid="progress">(.*?)</section>', onboarding, re.S
    )
    text = visible_text(card[1])
    assert "modules completed: Using the Estuary platform" in text, text
    for code in ("platform-101", "privacy-101", "safety-101", "training_module"):
        assert code not in text, (code, text)
    approvals = client.get("/approvals/").get_data(as_text=True)
    assert f"Payout to {RAFAEL} · " in approvals


def test_screenshots_of_progress_and_a_dry_run(demo_stack, demo_runs, browser):  # noqa: F811
    _app, base_url, passwords = demo_stack
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/auth/login")
        page.fill("input[name=email]", "approver2@estuary.local")
        page.fill("input[name=password]", passwords["approver2@estuary.local"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto(f"/runs/{demo_runs['onboarding']}")
        page.locator("[data-testid=onboarding-steps]").scroll_into_view_if_needed()
        assert page.locator("[data-testid=onboarding-steps] li").count() == 6
        shot(page, "onboarding-progress.png")

        page.goto(f"/runs/{demo_runs['dry']}")
        page.locator("[data-testid=batch-lines]").scroll_into_view_if_needed()
        assert page.locator("[data-testid=progress-bar]").is_visible()
        shot(page, "batch-dry-run.png")

        page.goto("/runs/payments-package-payout-1")
        page.locator("[data-testid=progress-bar]").scroll_into_view_if_needed()
        shot(page, "package-progress.png")

        page.goto(f"/runs/{demo_runs['lifecycle']}")
        page.locator("[data-testid=lifecycle-timeline]").scroll_into_view_if_needed()
        shot(page, "booking-lifecycle.png")

        page.goto(f"/runs/{demo_runs['payout']}")
        assert page.locator("[data-testid=run-outcome]").inner_text().startswith("Rejected by")
        shot(page, "payout-rejected.png")
    finally:
        context.close()
