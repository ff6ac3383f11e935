"""A world with something on every page, and the walk of every page for each role (the
page list comes from the url_map: tests/console/page_list.py).

The world: an active practitioner with a balance whose payout waits for an approver, a
pending practitioner being onboarded, a booking with its lifecycle running, and a
lifecycle that failed (its booking was already completed). Names are its own, so other
browser tests that look rows up by name are not confused by them.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from estuary.contracts import catalogue
from estuary.contracts.bookings import BookingLifecycleInput
from estuary.contracts.payments import PractitionerPayoutInput
from estuary.contracts.practitioners import OnboardingInput
from estuary.db import db
from estuary.models import Payout
from estuary.services import payout_policy
from tests.console.page_list import Page, pages
from tests.console.write_support import seed_booking, seed_practitioner
from tests.e2e.conftest import PASSWORD

ROLES = ("viewer", "operator", "approver", "admin")


@dataclass
class World:
    samples: list[dict[str, object]]
    pages: list[Page]
    payout_id: int
    payout_workflow_id: str
    failed_workflow_id: str


def _wait(predicate: Callable[[], object], what: str, seconds: float = 30.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def build_world(live_stack) -> World:
    app = live_stack.app
    gw = app.extensions["temporal"]
    tag = uuid.uuid4().hex[:4]
    payee = seed_practitioner(app, balance_cents=184_250, name=f"Noa Lindqvist {tag}")
    pending = seed_practitioner(
        app, name=f"Tomas Okonkwo {tag}", status="pending", destination=None
    )
    booking = seed_booking(app, practitioner_id=payee, hours_ahead=96)
    done_booking = seed_booking(app, practitioner_id=payee, status="completed")
    with app.app_context():
        policy = payout_policy.policy_from_config(app.config)
        payout_run = gw.start(
            "PractitionerPayoutWorkflow",
            PractitionerPayoutInput(
                practitioner_id=payee,
                amount_cents=64_000,
                requested_by="operator@e2e.local",
                reason="every-page walk",
                approval_threshold_cents=policy.approval_threshold_cents,
                dual_approval_threshold_cents=policy.dual_approval_threshold_cents,
                approval_timeout_seconds=policy.approval_timeout_seconds,
            ),
            triggered_by="operator@e2e.local",
            reason="every-page walk",
        )
        onboarding = gw.start(
            "PractitionerOnboardingWorkflow",
            OnboardingInput(practitioner_id=pending),
            triggered_by="operator@e2e.local",
            reason="every-page walk",
        )
        lifecycle = gw.start(
            "BookingLifecycleWorkflow",
            BookingLifecycleInput(booking_id=booking),
            triggered_by="operator@e2e.local",
            reason="every-page walk",
        )
        failed = gw.start(
            "BookingLifecycleWorkflow",
            BookingLifecycleInput(booking_id=done_booking),
            triggered_by="operator@e2e.local",
            reason="every-page walk",
        )

    def payout_waiting() -> int | None:
        with app.app_context():
            return db.session.scalar(
                db.select(Payout.id).where(
                    Payout.workflow_id == payout_run.workflow_id,
                    Payout.status == "pending_approval",
                )
            )

    payout_id = int(_wait(payout_waiting, "the payout to wait for an approver"))  # type: ignore[arg-type]
    with app.app_context():
        _wait(
            lambda: gw.describe(failed.workflow_id).status == "Failed",
            "the lifecycle of a completed booking to fail",
        )
        names = [w.name for w in catalogue.all_workflows()]
    samples: list[dict[str, object]] = [
        {"practitioner_id": payee, "payout_id": payout_id, "booking_id": booking},
        {"practitioner_id": pending},
        *({"workflow_id": r.workflow_id, "run_id": r.run_id} for r in (payout_run, onboarding)),
        *({"workflow_id": r.workflow_id, "run_id": r.run_id} for r in (lifecycle, failed)),
        *({"name": n} for n in names),
    ]
    return World(
        samples, pages(app, samples), payout_id, payout_run.workflow_id, failed.workflow_id
    )


def signed_in_context(browser, live_stack, role: str, viewport: dict[str, int]):
    """A browser context signed in as a new staff member of `role`."""
    context = browser.new_context(base_url=live_stack.base_url, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    user = live_stack.make_staff(role, name=f"Walk {role.title()}")
    page.goto("/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return context, page


def settle(page) -> None:
    """Let htmx load what a page loads after itself (charts, live parts)."""
    # A page that polls may never be idle for long; what is there by then is enough.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=3_000)


def walk(page, world: World) -> Iterator[tuple[Page, int]]:
    """Open each page once (a 403 page once per endpoint: it is the same page), yielding
    it and its status once it has settled."""
    denied: set[str] = set()
    for item in world.pages:
        if item.endpoint in denied:
            continue
        response = page.goto(item.path)
        status = response.status if response else 0
        assert status in (200, 403), f"{item} answered {status}"
        if status == 403:
            denied.add(item.endpoint)
        settle(page)
        yield item, status
