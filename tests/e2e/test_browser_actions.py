"""Browser tests of actions that fit the moment (issue 14, items 3 and 4): an onboarding
pushed through its six steps from the practitioner page with pickers only (its clicks
counted), a booking with no lifecycle run cancelled from its page, and a run page whose
Actions panel changes without a reload when the run finishes (and a stale cancel that
says so once).

Each click, choice in a picker and navigation the person makes counts as one click; the
page reloads while waiting for the next step stand in for the practitioner page's live
refresh and are not counted.
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from estuary.contracts.practitioners import RejectOnboardingUpdate
from estuary.db import db
from estuary.models import Booking, Practitioner, Service, TrainingModule
from tests.console.write_support import seed_booking, seed_practitioner
from tests.e2e.conftest import settle, sign_in

ONBOARDING_MODULES = (
    ("platform-101", "Using the platform"),
    ("privacy-101", "Client privacy"),
    ("safety-101", "Session safety"),
)
# start link, start button, back to the practitioner; profile; documents; review (pick,
# send); check (pick, send); three modules (pick, send); tier (pick, send); service
# (pick, send).
ONBOARDING_CLICKS = 3 + 1 + 1 + 2 + 2 + 3 * 2 + 2 + 2


def wait_until(predicate, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Clicks:
    """Counts what the person does on the page."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def click(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)

    def pick(self, selector: str, value: str | None = None, label: str | None = None) -> None:
        self.count += 1
        if label is not None:
            self.page.select_option(selector, label=label)
        else:
            self.page.select_option(selector, value=value)

    def goto(self, url: str) -> None:
        self.count += 1
        self.page.goto(url)


def _form_when_ready(page, name: str, timeout: float = 30.0):
    """The action form `name` once the run has moved on to it (reloading meanwhile)."""
    form = page.locator(f"[data-testid=action-{name}]")
    deadline = time.monotonic() + timeout
    while not form.count():
        if time.monotonic() > deadline:
            raise AssertionError(f"the {name} form never appeared")
        time.sleep(0.3)
        page.reload()
    return form


def _send(clicks: Clicks, page, name: str) -> None:
    """Send a form; the answer sends the browser back to the page (a new document)."""
    with page.expect_navigation():
        clicks.click(f"[data-testid=action-{name}] button[type=submit]")
    settle(page)
    assert not page.locator("[data-testid=action-error]").count(), page.inner_text("main")


def _onboarding_data(app) -> tuple[int, str, str]:
    """A pending practitioner with an active service and the catalogue's modules."""
    pid = seed_practitioner(app, status="pending", name=f"Kwame {uuid.uuid4().hex[:4]}")
    with app.app_context():
        known = set(db.session.scalars(select(TrainingModule.code)))
        for code, title in ONBOARDING_MODULES:
            if code not in known:
                db.session.add(TrainingModule(code=code, title=title, certification="onboarding"))
        p = db.session.get(Practitioner, pid)
        p.profile_complete = False
        service = Service(practitioner_id=pid, name="Deep tissue massage", price_cents=9_000)
        db.session.add(service)
        db.session.commit()
        required = list(
            db.session.scalars(
                select(TrainingModule.title).where(
                    TrainingModule.certification == "onboarding", TrainingModule.required
                )
            )
        )
        return pid, service.name, ",".join(required)


def test_onboarding_through_six_steps_with_pickers_only(page, live_stack, monkeypatch):
    app = live_stack.app
    monkeypatch.setitem(app.config, "BACKGROUND_CHECK_PROVIDER", "manual")
    pid, service_name, required = _onboarding_data(app)
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    clicks = Clicks(page)
    page.goto(f"/practitioners/{pid}")

    clicks.click("text=Start onboarding")
    clicks.click("button[type=submit].primary")
    page.wait_for_load_state("networkidle")
    clicks.goto(f"/practitioners/{pid}")

    _form_when_ready(page, "complete_profile")
    _send(clicks, page, "complete_profile")

    _form_when_ready(page, "submit_documents")
    _send(clicks, page, "submit_documents")  # the kinds are filled in: all three

    _form_when_ready(page, "review_documents")
    clicks.pick("[data-testid=action-review_documents] select[name=approved]", "yes")
    _send(clicks, page, "review_documents")

    check = _form_when_ready(page, "record_background_check")
    # The pending check is the one choice, already picked.
    assert check.locator("select[name=reference] option:checked").inner_text().startswith("BC-")
    clicks.pick("[data-testid=action-record_background_check] select[name=passed]", "yes")
    _send(clicks, page, "record_background_check")

    for _ in range(3):
        form = _form_when_ready(page, "complete_training_module")
        options = form.locator("select[name=module] option:not([value=''])").all_inner_texts()
        # Module titles from the training catalogue, never a raw code box.
        assert options and all(" (" in o for o in options), options
        assert not form.locator("input[name=module]").count()
        clicks.pick(
            "[data-testid=action-complete_training_module] select[name=module]",
            label=options[0],
        )
        _send(clicks, page, "complete_training_module")

    _form_when_ready(page, "select_subscription")
    clicks.pick("[data-testid=action-select_subscription] select[name=tier]", "pro")
    _send(clicks, page, "select_subscription")

    services = _form_when_ready(page, "configure_service")
    assert not services.locator("input[name=service_id]").count()  # no numeric id to type
    clicks.pick(
        "[data-testid=action-configure_service] select[name=service_id]", label=service_name
    )
    _send(clicks, page, "configure_service")

    def active() -> bool:
        with app.app_context():
            db.session.expire_all()
            return db.session.get(Practitioner, pid).status == "active"

    wait_until(active, what="the practitioner to be active")
    assert clicks.count == ONBOARDING_CLICKS == 19
    assert required  # the catalogue had modules to offer


def test_cancel_a_booking_that_has_no_lifecycle_run(page, live_stack):
    app = live_stack.app
    booking = seed_booking(app, hours_ahead=72)
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    clicks = Clicks(page)
    page.goto(f"/bookings/{booking}")
    form = page.locator("[data-testid=start-first] [data-testid=action-cancel]")
    assert form.is_visible()
    form.locator("textarea[name=reason], input[name=reason]").fill("client moved away")
    clicks.pick("[data-testid=start-first] [data-testid=action-cancel] select[name=by]", "ops")
    with page.expect_navigation():
        clicks.click("[data-testid=start-first] [data-testid=action-cancel] button[type=submit]")
    settle(page)
    assert not page.locator("[data-testid=action-error]").count(), page.inner_text("main")

    def cancelled() -> bool:
        with app.app_context():
            db.session.expire_all()
            return db.session.get(Booking, booking).status == "cancelled"

    wait_until(cancelled, what="the booking to be cancelled")
    assert clicks.count == 2
    page.reload()
    assert "no workflow runs for it" in page.inner_text("[data-testid=booking-actions]") or (
        not page.locator("[data-testid=start-first]").count()
    )


def _running_onboarding(live_stack) -> tuple[int, str, str]:
    """A pending practitioner's onboarding, started through the console's gateway."""
    app = live_stack.app
    pid = seed_practitioner(app, status="pending")
    from estuary.contracts.practitioners import OnboardingInput
    from temporal_gateway.access import gateway

    with app.app_context():
        started = gateway().start(
            "PractitionerOnboardingWorkflow",
            OnboardingInput(practitioner_id=pid),
            triggered_by="e2e@test.local",
        )
        gw = gateway()
        wait_until(
            lambda: (gw.query(started.workflow_id, "progress") or {}).get("current_step"),
            what="the onboarding to reach its first step",
        )
    return pid, started.workflow_id, started.run_id


def _finish(live_stack, workflow_id: str, run_id: str) -> None:
    """The run ends while the page is open: the test rejects the onboarding."""
    from temporal_gateway.access import gateway

    with live_stack.app.app_context():
        gw = gateway()
        gw.update(
            workflow_id, "reject", RejectOnboardingUpdate(actor="e2e@test.local", reason="over")
        )
        gw.result(workflow_id, run_id, timeout=20)


@pytest.fixture
def accept_dialogs(page):
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def test_actions_change_without_reload_when_the_run_finishes(accept_dialogs, live_stack):
    page = accept_dialogs
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)

    _, workflow_id, run_id = _running_onboarding(live_stack)
    page.goto(f"/runs/{workflow_id}/{run_id}")
    actions = page.locator("[data-testid=run-actions]")
    page.wait_for_selector("[data-testid=run-actions] [data-testid=action-reject]")
    assert actions.locator("[data-testid=cancel-form]").is_visible()
    page.evaluate("window.__sameDocument = true")
    _finish(live_stack, workflow_id, run_id)
    # The live refresh re-renders the panel: no Cancel, no step form, nothing to do.
    page.wait_for_selector("[data-testid=run-actions] [data-testid=cancel-form]", state="detached")
    assert not actions.locator("[data-testid^=action-]").count()
    assert "nothing to do here" in actions.inner_text()
    assert page.evaluate("window.__sameDocument === true")  # no reload happened


def test_a_stale_cancel_says_once_that_the_run_finished(accept_dialogs, live_stack):
    page = accept_dialogs
    operator = live_stack.make_staff("operator")
    sign_in(page, operator)
    _, workflow_id, run_id = _running_onboarding(live_stack)
    page.route("**/live?**", lambda route: route.abort())  # this page goes stale
    page.goto(f"/runs/{workflow_id}/{run_id}")
    page.wait_for_selector("[data-testid=run-actions] [data-testid=action-reject]")
    _finish(live_stack, workflow_id, run_id)

    page.click("[data-testid=cancel-form] summary")
    page.fill("[data-testid=cancel-form] textarea[name=action_reason]", "no longer needed")
    page.click("[data-testid=cancel-form] button[type=submit]")
    page.wait_for_load_state("networkidle")
    text = page.inner_text("main")
    assert text.count("the run has already finished") == 1, text
    assert "Nothing was cancelled" in text
    assert not page.locator("[data-testid=cancel-form]").count()
    assert "nothing to do here" in page.inner_text("[data-testid=run-actions]")
