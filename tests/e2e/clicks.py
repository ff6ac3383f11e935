"""What the click-count and keyboard browser tests share: a page wrapper that counts each
click staff make, and a payout started the way the console starts one, waiting for its
approvers.

Typing is not counted (a reason, a search); choosing from a list counts as one click.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from estuary.contracts.payments import PractitionerPayoutInput
from estuary.db import db
from estuary.models import Payout
from estuary.services import payout_policy


class Clicks:
    """`page.click` and `locator.click`, counted: `clicks.click(selector)` or
    `clicks.on(locator)`; `clicks.choose(select, value)` is one click too."""

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0

    def click(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)

    def on(self, locator) -> None:
        self.count += 1
        locator.click()

    def choose(self, selector: str, value: str) -> None:
        self.count += 1
        self.page.select_option(selector, value)


def wait_for(predicate: Callable[[], object], what: str, seconds: float = 30.0) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def start_payout(live_stack, practitioner_id: int, amount_cents: int, requested_by: str):
    """A PractitionerPayoutWorkflow under the configured approval policy; returns the
    started run and the id of its payout once it waits for approval."""
    app = live_stack.app
    gw = app.extensions["temporal"]
    with app.app_context():
        policy = payout_policy.policy_from_config(app.config)
        run = gw.start(
            "PractitionerPayoutWorkflow",
            PractitionerPayoutInput(
                practitioner_id=practitioner_id,
                amount_cents=amount_cents,
                requested_by=requested_by,
                reason="browser test",
                approval_threshold_cents=policy.approval_threshold_cents,
                dual_approval_threshold_cents=policy.dual_approval_threshold_cents,
                approval_timeout_seconds=policy.approval_timeout_seconds,
            ),
            triggered_by=requested_by,
            reason="browser test",
        )

    def waiting() -> int | None:
        with app.app_context():
            return db.session.scalar(
                db.select(Payout.id).where(
                    Payout.workflow_id == run.workflow_id, Payout.status == "pending_approval"
                )
            )

    payout_id = int(wait_for(waiting, f"{run.workflow_id} to wait for approval"))  # type: ignore[arg-type]
    return run, payout_id


def payout_status(live_stack, payout_id: int) -> str:
    with live_stack.app.app_context():
        return db.session.get(Payout, payout_id).status
