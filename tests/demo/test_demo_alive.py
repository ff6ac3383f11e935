"""`make run`'s demo is alive: after `flask seed-demo` and `flask seed-demo-runs`, real
workers on a real Temporal dev server run booking lifecycles for every upcoming booking,
an onboarding mid-way, a payout waiting for an approver, one waiting for its second
approver, a failed payout to retry (whose retry then pays) and a package with two parts
released; the Runs, Approvals and Payouts pages show them in a browser; a second
`seed-demo-runs` starts nothing twice. With ESTUARY_SCREENSHOTS=<dir> it saves
runs-demo.png (the Runs page of a fresh `make run`).

Its own Temporal dev server and database state, so the demo's natural ids (booking 1,
practitioner 1, ...) never meet other tests' workflow ids.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment
from werkzeug.serving import make_server

from config import TestingConfig
from estuary.contracts.search_attributes import ALL_KEYS
from estuary.db import db
from estuary.models import Booking, Payout, PayoutApproval, Practitioner
from estuary.models.base import utcnow
from estuary.models.payments import PackageRelease
from estuary.services.demo import AIKO, INES, MAYA, RAFAEL, seed_demo
from estuary_ops import create_app
from tests.conftest import _binary, _reset_database, gateway_for
from tests.e2e.conftest import CHROMIUM, _WorkerThread
from tests.e2e.test_browser_write import shot

pytestmark = pytest.mark.e2e


def wait_until(predicate, timeout: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
async def demo_env() -> Iterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
def demo_stack(demo_env, database_url: str):
    prefix = f"demo{uuid.uuid4().hex[:6]}-"
    app = create_app(
        TestingConfig,
        SQLALCHEMY_DATABASE_URI=database_url,
        TEMPORAL_TASK_QUEUE_PREFIX=prefix,
        BACKGROUND_CHECK_DELAY_SECONDS=1,
    )
    with app.app_context():
        _reset_database(database_url)
        passwords = seed_demo()
    address = demo_env.client.service_client.config.target_host
    gateway_for(app, demo_env, prefix)
    workers = _WorkerThread(app, address, demo_env.client.namespace, prefix)
    workers.start()
    workers.ready.wait(30)
    if workers.error:
        raise workers.error
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-console", daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}", passwords
    server.shutdown()
    workers.stop()
    app.extensions["temporal"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _runs(app, query: str) -> int:
    gw = app.extensions["temporal"]
    return gw.count(f"TaskQueue STARTS_WITH '{gw.prefix}' AND {query}")


def test_the_demo_starts_real_workflows_once(demo_stack):
    app = demo_stack[0]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo-runs"])
    assert result.exit_code == 0, result.output
    assert "started lifecycle of booking" in result.output

    with app.app_context():
        now = utcnow()
        upcoming = db.session.scalar(
            select(func.count(Booking.id)).where(
                Booking.status == "confirmed", Booking.start_at > now
            )
        )
        ids = {
            name: db.session.scalar(select(Practitioner.id).where(Practitioner.name == name))
            for name in (MAYA, AIKO, RAFAEL, INES)
        }
    assert upcoming == 12

    # Every upcoming booking has a running lifecycle.
    wait_until(
        lambda: (
            _runs(app, "WorkflowType = 'BookingLifecycleWorkflow' AND ExecutionStatus = 'Running'")
            == upcoming
        ),
        what="12 running booking lifecycles",
    )
    # Rafael's payout: one approval of two; Maya's waits for its first; Aiko's failed
    # and she has a payout destination now.
    with app.app_context():
        rafael = db.session.scalar(select(Payout).where(Payout.practitioner_id == ids[RAFAEL]))
        maya = db.session.scalar(select(Payout).where(Payout.practitioner_id == ids[MAYA]))
        assert rafael.approvals_required == 2 and rafael.status == "pending_approval"
        approvals = db.session.scalars(
            select(PayoutApproval.approver).where(PayoutApproval.payout_id == rafael.id)
        ).all()
        assert approvals == ["approver@estuary.local"]
        assert maya.approvals_required == 1 and maya.status == "pending_approval"
        assert db.session.get(Practitioner, ids[AIKO]).payout_destination
    assert _runs(app, "WorkflowType = 'PractitionerPayoutWorkflow' AND ExecutionStatus = 'Failed'")

    # Two parts of Maya's package are released.
    def released() -> bool:
        with app.app_context():
            db.session.expire_all()
            return db.session.scalar(select(func.count(PackageRelease.id))) == 2

    wait_until(released, what="two package parts released")

    # The onboarding moved past its documents and background check into training.
    gw = app.extensions["temporal"]

    def in_training() -> dict | None:
        progress = gw.query(f"practitioners-onboarding-{ids[INES]}", "progress")
        done = progress.get("training", {}).get("completed", [])
        return progress if progress.get("current_step") == "training" and done else None

    progress = wait_until(in_training, what="the onboarding to reach training")
    assert progress["steps_done"] == ["profile", "documents", "background_check"]
    assert progress["training"]["completed"] == ["safety-101"]

    # A second seed (the next `make run`) starts nothing.
    before = _runs(app, "TriggeredBy = 'demo-seed'")
    again = runner.invoke(args=["seed-demo-runs"])
    assert again.exit_code == 0, again.output
    assert "already started; nothing new" in again.output
    assert "started" not in again.output.replace("already started", "")
    time.sleep(1.5)  # visibility lags writes by up to a second
    assert _runs(app, "TriggeredBy = 'demo-seed'") == before


def test_a_newcomer_sees_runs_approvals_and_payouts(demo_stack, browser):
    app, base_url, passwords = demo_stack
    if _runs(app, "TriggeredBy = 'demo-seed'") == 0:
        assert app.test_cli_runner().invoke(args=["seed-demo-runs"]).exit_code == 0
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/auth/login")
        page.fill("input[name=email]", "approver2@estuary.local")
        page.fill("input[name=password]", passwords["approver2@estuary.local"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/auth/login" not in url)

        page.goto("/runs")
        assert page.locator("[data-testid=run-row]").count() >= 15
        shot(page, "runs-demo.png")
        page.goto("/runs?status=Failed")
        failed = page.locator("[data-testid=run-row]")
        assert failed.count() >= 1 and "payments-payout-" in failed.first.inner_text()

        page.goto("/approvals/")
        table = page.locator("[data-testid=approvals-table]").inner_text()
        assert MAYA in table and RAFAEL in table
        assert "1 of 2" in table and "0 of 1" in table

        page.goto("/payouts")
        payouts = page.locator("[data-testid=payouts-table]").inner_text()
        assert MAYA in payouts and RAFAEL in payouts  # Aiko's failed before its record

        # Nothing was paid yet: the payout chart says what to do instead of an empty axis.
        page.goto("/")
        assert page.locator("[data-testid=payout-chart-empty]").is_visible()
        assert page.locator("[data-testid=tile-approvals] .num").inner_text() == "2"

        # The failed payout offers a retry, and Aiko's payout destination is there now.
        page.goto("/runs?status=Failed")
        page.locator("[data-testid=run-row] a").first.click()
        page.wait_for_url(re.compile(r"/runs/payments-payout-"))
        assert page.locator("[data-testid=retry-forms]").count() == 1
        # She has given her payout details since: a retry pays her.
        page.click("[data-testid=retry-rerun]")
        page.locator("[data-testid=retry-confirmation]").wait_for()
        page.select_option("select[name=action_reason_code]", "other")
        page.fill("textarea[name=action_reason]", "payout details added since")
        page.click("[data-testid=confirm-retry]")

        def aiko_paid() -> bool:
            with app.app_context():
                db.session.expire_all()
                aiko = db.session.scalar(select(Practitioner.id).where(Practitioner.name == AIKO))
                status = db.session.scalar(
                    select(Payout.status).where(Payout.practitioner_id == aiko)
                )
                return status == "paid"

        wait_until(aiko_paid, what="Aiko's retried payout to be paid")
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()
