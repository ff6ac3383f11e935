"""A world with something on every page, and the walk of every page for each role (the
page list comes from the url_map: tests/console/page_list.py).

The world: an active practitioner with a balance whose payout, approved once, waits for
its second approver; a pending practitioner being onboarded; a booking with its lifecycle
running; and a lifecycle that failed (its booking was already completed). Names are its
own, so other browser tests that look rows up by name are not confused by them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from estuary.contracts import catalogue
from estuary.contracts.bookings import BookingLifecycleInput
from estuary.contracts.payments import ApprovePayoutDecision
from estuary.contracts.practitioners import OnboardingInput
from tests.console.page_list import Page, pages
from tests.console.write_support import seed_booking, seed_practitioner
from tests.e2e.clicks import start_payout, wait_for
from tests.e2e.conftest import PASSWORD, settle

ROLES = ("viewer", "operator", "approver", "admin")


@dataclass
class World:
    samples: list[dict[str, object]]
    pages: list[Page]


def build_world(live_stack) -> World:
    app = live_stack.app
    gw = app.extensions["temporal"]
    tag = uuid.uuid4().hex[:4]
    payee = seed_practitioner(app, balance_cents=900_000, name=f"Noa Lindqvist {tag}")
    pending = seed_practitioner(
        app, name=f"Tomas Okonkwo {tag}", status="pending", destination=None
    )
    booking = seed_booking(app, practitioner_id=payee, hours_ahead=96)
    done_booking = seed_booking(app, practitioner_id=payee, status="completed")
    # Above the dual-approval tier, approved once: the approvals show on its page.
    payout_run, payout_id = start_payout(live_stack, payee, 520_000, "operator@e2e.local")
    with app.app_context():
        first = ApprovePayoutDecision(
            actor="bartholomew.first-approver@operations.estuary.example.com",
            amount_cents=520_000,
            practitioner_id=payee,
            note="first of two",
        )
        gw.update(payout_run.workflow_id, "approve", first, update_id=f"walk-{tag}-first")
        onboarding = gw.start(
            "PractitionerOnboardingWorkflow",
            OnboardingInput(practitioner_id=pending),
            triggered_by="operator@e2e.local",
            reason="every-page walk",
        )
        lifecycle, failed = (
            gw.start(
                "BookingLifecycleWorkflow",
                BookingLifecycleInput(booking_id=b),
                triggered_by="operator@e2e.local",
                reason="every-page walk",
            )
            for b in (booking, done_booking)
        )
        wait_for(
            lambda: gw.describe(failed.workflow_id).status == "Failed",
            "the lifecycle of a completed booking to fail",
        )
        names = [w.name for w in catalogue.all_workflows()]
    runs = (payout_run, onboarding, lifecycle, failed)
    samples: list[dict[str, object]] = [
        {"practitioner_id": payee, "payout_id": payout_id, "booking_id": booking},
        {"practitioner_id": pending},
        *({"workflow_id": r.workflow_id, "run_id": r.run_id} for r in runs),
        *({"name": n} for n in names),
    ]
    return World(samples, pages(app, samples))


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
    # The first page signed in saves the browser's time zone (a fetch, and a reload unless
    # the zone is UTC); wait for that once so that no page of the walk is left mid-way.
    page.wait_for_load_state("networkidle")
    return context, page


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
