"""The read side in a real browser against the live console and a dev Temporal server:
sign in, open the catalogue, list runs, filter, open a run, watch its timeline update
while it runs (htmx polling, no reload), sign out. A second test renders home, runs and
run detail with demo data at 1366x800; with ESTUARY_SCREENSHOTS=<dir> set it saves them
there (docs/screenshots is made that way)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from estuary.contracts.payout_upkeep import (
    LedgerReconciliationInput,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Booking, OnboardingProgress, OpsFlag, Payout, Practitioner, Service
from estuary.models import Client as ClientRow
from estuary.models.base import utcnow
from estuary.services import ledger
from tests.console.read_workflows import (
    QUEUE,
    NoteUpdate,
    ReadSideTestWorkflow,
    ReadTestInput,
    StepSignal,
    read_test_worker,
)
from tests.e2e.conftest import sign_in


class ReadTestWorkers:
    """The read-test workflow's worker and a client, on their own event-loop thread, so
    the sync Playwright test can start, signal and update runs while pages poll."""

    def __init__(self, address: str, prefix: str) -> None:
        self.address, self.prefix = address, prefix
        self.loop = asyncio.new_event_loop()
        self.client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-read-workers", daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.client = await Client.connect(self.address)
        async with read_test_worker(self.client, self.prefix):
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ReadTestWorkers:
        self._thread.start()
        assert self._ready.wait(30), "read-test worker did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)  # type: ignore[union-attr]
        self._thread.join(30)

    def call(self, fn: Callable[[Client], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(self.client), self.loop).result(30)

    def start(self, inp: ReadTestInput, entity_id: str, workflow_id: str | None = None):
        async def go(client: Client):
            return await client.start_workflow(
                ReadSideTestWorkflow.run,
                inp,
                id=workflow_id or f"readtest-e2e-{uuid.uuid4().hex[:8]}",
                task_queue=f"{self.prefix}{QUEUE}",
                search_attributes=run_attributes("payments", "readtest", entity_id, "e2e"),
                memo={"triggered_by": "e2e", "reason": "browser test"},
            )

        return self.call(go)


@pytest.fixture
def read_workers(live_stack) -> Iterator[ReadTestWorkers]:
    with ReadTestWorkers(live_stack.temporal_address, live_stack.prefix) as workers:
        yield workers


def _start_ledger_check(live_stack, who: str) -> str:
    gw = live_stack.app.extensions["temporal"]
    with live_stack.app.app_context():
        started = gw.start(
            "LedgerReconciliationWorkflow", LedgerReconciliationInput(who), triggered_by=who
        )
    return started.workflow_id


def _reload_until(page, selector: str, seconds: float = 20) -> None:
    """Visibility lags writes by up to a second: reload until the element shows."""
    for _ in range(int(seconds * 2)):
        if page.locator(selector).count():
            return
        page.wait_for_timeout(500)
        page.reload()
    page.locator(selector).first.wait_for()


def test_read_journey(page, live_stack, read_workers):
    user = live_stack.make_staff("viewer", name="Rita Reader")
    ledger_id = _start_ledger_check(live_stack, "e2e-read")
    handle = read_workers.start(ReadTestInput(steps=1, label="journey"), entity_id="4242")

    csp_violations: list[str] = []
    page.on(
        "console",
        lambda msg: (
            csp_violations.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    sign_in(page, user)

    # the catalogue, from the registry
    page.click("nav.sidebar >> text=Workflows")
    assert page.locator("h1").inner_text() == "Workflow catalogue"
    assert page.locator("[data-testid=workflow-LedgerReconciliationWorkflow]").is_visible()
    assert page.locator("[data-testid=domain-payments]").is_visible()

    # the runs list, with both runs
    page.click("nav.sidebar >> text=Runs")
    _reload_until(page, f"tr:has-text('{handle.id}')")
    assert page.locator(f"tr:has-text('{ledger_id}')").count() == 1

    # filter by workflow type: the filter lands in the URL and only that type shows
    page.select_option("select[name=workflow_type]", "LedgerReconciliationWorkflow")
    page.click("[data-testid=run-filters] button[type=submit]")
    page.wait_for_url("**workflow_type=LedgerReconciliationWorkflow**")
    rows = page.locator("[data-testid=run-row]")
    assert rows.count() >= 1
    assert all("LedgerReconciliationWorkflow" in t for t in rows.all_inner_texts())
    assert page.locator(f"tr:has-text('{handle.id}')").count() == 0

    # search by business key (the entity id), then open the run
    page.goto("/runs?q=4242")
    _reload_until(page, f"tr:has-text('{handle.id}')")
    # The row names the run (its title); the workflow type is the small print under it.
    row = page.locator(f"tr:has-text('{handle.id}')")
    assert "ReadSideTestWorkflow" in row.locator(".muted").first.inner_text()
    row.locator("[data-testid=run-title]").click()
    page.wait_for_url(f"**/runs/{handle.id}/**")
    live = page.locator("[data-testid=run-live]")
    assert live.get_attribute("data-status") == "Running"
    assert "waiting for step 1" in page.locator("[data-testid=progress]").inner_text()

    # the timeline updates while the page stays open (htmx polls the live fragment)
    read_workers.call(
        lambda c: c.get_workflow_handle(handle.id).signal(
            "step", StepSignal(actor="ops-e2e@estuary.test")
        )
    )
    timeline = page.locator("[data-testid=timeline]")
    timeline.locator("text=Signal step").wait_for()
    assert "ops-e2e@estuary.test" in timeline.inner_text()
    page.locator("[data-testid=run-live][data-status=Completed]").wait_for(timeout=20_000)
    assert "Workflow completed" in page.locator("[data-testid=timeline]").inner_text()
    assert page.locator("[data-testid=run-result]").is_visible()
    ui_link = page.locator("[data-testid=temporal-ui-link]").get_attribute("href")
    assert f"/workflows/{handle.id}/" in ui_link and ui_link.endswith("/history")

    assert csp_violations == []  # no inline script or style anywhere on the way

    page.click("[data-testid=sign-out]")
    page.wait_for_url("**/auth/login")
    page.goto(f"/runs/{handle.id}/{handle.result_run_id}")
    assert "/auth/login" in page.url


# --- demo data and screenshots -----------------------------------------------------------


def _demo_data(app) -> dict[str, int]:
    """A small marketplace: practitioners with balances, bookings, paid payouts over the
    last days (for the volume chart), a payout waiting for approval, flags. Names differ
    from the demo seed's, so other browser tests that look rows up by name are not
    confused by these."""
    now = utcnow().replace(microsecond=0)
    tag = uuid.uuid4().hex[:6]
    with app.app_context():
        people = []
        for i, (name, status, tier, balance) in enumerate(
            [
                ("Noor Haddad", "active", "premium", 184_250),
                ("Felix Brandt", "active", "pro", 62_000),
                ("Lucia Ferraz", "active", "pro", 725_000),
                ("Oren Kaplan", "onboarding", "basic", 0),
            ]
        ):
            p = Practitioner(
                name=name,
                email=f"{tag}-{i}@practitioners.example.com",
                status=status,
                tier=tier,
                payout_destination=f"acct_{tag}_{i}",
            )
            db.session.add(p)
            db.session.flush()
            people.append(p)
            if balance:
                ledger.post(
                    f"e2e:{tag}:earn:{p.id}",
                    "earning",
                    [
                        ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -balance),
                        ledger.Leg(ledger.available_account(p.id), balance),
                    ],
                )
        client = ClientRow(name="Jun Takeda", email=f"{tag}@clients.example.com")
        db.session.add(client)
        db.session.flush()
        service = Service(practitioner_id=people[0].id, name="Massage", price_cents=9_000)
        db.session.add(service)
        db.session.flush()
        booking = Booking(
            client_id=client.id,
            practitioner_id=people[0].id,
            service_id=service.id,
            start_at=now - timedelta(hours=5),
            end_at=now - timedelta(hours=4),
            price_cents=9_000,
            needs_attention=True,
        )
        db.session.add(booking)
        db.session.flush()
        db.session.add(
            OpsFlag(
                key=f"e2e-{tag}-unresolved",
                kind="unresolved_session",
                entity_type="booking",
                entity_id=booking.id,
                message="Session ended 4 hours ago and nobody marked it completed or no-show",
            )
        )
        db.session.add(
            OnboardingProgress(
                practitioner_id=people[3].id,
                workflow_id=f"practitioners-onboarding-{people[3].id}",
                current_step="documents",
                stalled=True,
            )
        )
        for day, amount in enumerate([41_000, 0, 96_500, 12_000, 230_000, 58_250, 0, 77_000]):
            if not amount:
                continue
            paid = now - timedelta(days=day, hours=3)
            db.session.add(
                Payout(
                    practitioner_id=people[day % 3].id,
                    amount_cents=amount,
                    status="paid",
                    idempotency_key=f"e2e-{tag}-paid-{day}",
                    workflow_id=f"payments-payout-{people[day % 3].id}-{paid:%Y%m%d}",
                    requested_by="schedule",
                    created_at=paid - timedelta(hours=1),
                    paid_at=paid,
                )
            )
        db.session.add(
            Payout(
                practitioner_id=people[2].id,
                amount_cents=725_000,
                status="pending_approval",
                idempotency_key=f"e2e-{tag}-pending",
                workflow_id=f"payments-payout-{people[2].id}-{now:%Y%m%d}",
                requested_by="operator@estuary.local",
                approvals_required=2,
            )
        )
        db.session.commit()
        return {"booking": booking.id}


def test_read_pages_at_laptop_size(page, live_stack, read_workers, tmp_path):
    out = Path(os.environ.get("ESTUARY_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    _demo_data(live_stack.app)
    for who in ("schedule", "ops@estuary.local"):
        _start_ledger_check(live_stack, who)
    detailed = read_workers.start(
        ReadTestInput(steps=2, label="package 17", with_child=True), entity_id="17"
    )
    read_workers.start(ReadTestInput(steps=1), entity_id="18")  # stays running
    failing = read_workers.start(
        ReadTestInput(
            steps=0, timer_seconds=0, fail_message="Payment provider declined: card expired"
        ),
        entity_id="19",
    )

    async def drive(client: Client) -> None:
        h = client.get_workflow_handle(detailed.id)
        await h.signal("step", StepSignal(actor="operator@estuary.local"))
        await h.execute_update("note", NoteUpdate(actor="approver@estuary.local", text="ok"))
        await h.signal("step", StepSignal(actor="operator@estuary.local"))
        await h.result()
        await asyncio.sleep(0.5)

    read_workers.call(drive)
    user = live_stack.make_staff("viewer", name="Ada Approver")
    sign_in(page, user)

    page.goto("/")
    page.locator("[data-testid=runs-chart] svg").wait_for()
    assert page.locator("[data-testid=payout-chart] svg rect.s-money").count() >= 5
    assert page.locator("[data-testid=tile-approvals] .num").inner_text() != "0"
    page.screenshot(path=str(out / "home.png"))

    page.goto("/runs")
    _reload_until(page, f"tr:has-text('{failing.id}')")
    assert page.locator("[data-testid=run-row]").count() >= 5
    page.screenshot(path=str(out / "runs.png"))

    page.goto(f"/runs/{detailed.id}/{detailed.result_run_id}")
    assert page.locator("[data-testid=run-live]").get_attribute("data-status") == "Completed"
    assert page.locator("[data-testid=timeline] li[data-kind=activity]").count() == 2
    assert page.locator("[data-testid=timeline] li[data-kind=child]").count() == 1
    page.screenshot(path=str(out / "run-detail.png"), full_page=True)

    for name in ("home.png", "runs.png", "run-detail.png"):
        assert (out / name).stat().st_size > 10_000
