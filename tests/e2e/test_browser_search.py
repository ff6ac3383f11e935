"""Finding runs by typing what staff know: `practitioner 6` in the runs search box lists the
practitioner's own run and the runs of their subscription and background check (each run
carries only its own EntityType + EntityId); a name finds the same; text the box does not
understand is answered on the page with how to search. From the home page it takes two
clicks (Runs, the search box) and the typing. With ESTUARY_SCREENSHOTS=<dir> it saves
runs-search.png."""

from __future__ import annotations

import uuid
from datetime import timedelta

from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import BackgroundCheck, Practitioner, Subscription
from estuary.models.base import utcnow
from tests.console.read_workflows import QUEUE, ReadSideTestWorkflow, ReadTestInput
from tests.e2e.clicks import Clicks
from tests.e2e.conftest import sign_in
from tests.e2e.test_browser_read import ReadTestWorkers, _reload_until
from tests.e2e.test_browser_write import shot


def _seed_practitioner_6(app) -> dict[str, str]:
    with app.app_context():
        p = db.session.get(Practitioner, 6)
        if p is None:
            p = Practitioner(id=6, name="Kwame Mensah", email="kwame6@practitioners.e2e")
            db.session.add(p)
            db.session.flush()
        now = utcnow()
        sub = Subscription(
            practitioner_id=6,
            tier="basic",
            price_cents=2_900,
            current_period_start=now,
            current_period_end=now + timedelta(days=30),
        )
        reference = f"BC-6-{uuid.uuid4().hex[:8].upper()}"
        check = BackgroundCheck(
            practitioner_id=6, idempotency_key=f"e2e-{reference}", reference=reference
        )
        db.session.add_all([sub, check])
        db.session.commit()
        return {"name": p.name, "subscription": str(sub.id), "check": reference}


def test_practitioner_6_finds_all_its_runs(page, live_stack):
    ids = _seed_practitioner_6(live_stack.app)
    with ReadTestWorkers(live_stack.temporal_address, live_stack.prefix) as workers:

        def start(entity_type: str, entity_id: str) -> str:
            async def go(client):
                handle = await client.start_workflow(
                    ReadSideTestWorkflow.run,
                    ReadTestInput(steps=0, timer_seconds=0),
                    id=f"search-e2e-{entity_type}-{uuid.uuid4().hex[:8]}",
                    task_queue=f"{live_stack.prefix}{QUEUE}",
                    search_attributes=run_attributes(
                        "practitioners", entity_type, entity_id, "e2e"
                    ),
                    memo={"triggered_by": "e2e", "reason": "search test"},
                )
                await handle.result()
                return handle.id

            return workers.call(go)

        wanted = [
            start("practitioner", "6"),
            start("subscription", ids["subscription"]),
            start("background_check", ids["check"]),
        ]
        other = start("practitioner", "66")

    sign_in(page, live_stack.make_staff("viewer"))
    # From the home page: Runs in the navigation, into the search box, type, Enter.
    clicks = Clicks(page)
    clicks.click("nav.sidebar a[href$='/runs']")
    clicks.click("input[name=q]")
    page.keyboard.type("practitioner 6")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "q=practitioner" in url)
    assert clicks.count <= 2
    for workflow_id in wanted:
        _reload_until(page, f"tr:has-text('{workflow_id}')")
    table = page.inner_text("[data-testid=runs-table]")
    assert all(w in table for w in wanted) and other not in table
    understood = page.inner_text("[data-testid=search-understood]")
    assert understood.startswith("Runs of practitioner 6 · Kwame Mensah")
    shot(page, "runs-search.png")

    # Her name finds the same runs.
    page.fill("input[name=q]", "kwame mensah")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(lambda url: "q=kwame" in url)
    table = page.inner_text("[data-testid=runs-table]")
    assert all(w in table for w in wanted)

    # Text that is no search: the page says how to write one (200, not a 400 page).
    answer = page.goto("/runs?q=%27%20OR%201%3D1")
    assert answer.status == 200
    help_text = page.inner_text("[data-testid=error-q]")
    assert "booking 14, practitioner 6, payout 4" in help_text
    assert page.locator("[data-testid=filter-errors]").count() == 0
