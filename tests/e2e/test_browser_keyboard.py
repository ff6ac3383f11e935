"""Keyboard only (issue 14, item 11): approve a payout, reject one with a reason, and start
a workflow, with no mouse. Tab moves, Enter or Space acts, arrow keys choose inside a
list, text is typed; every element Tab lands on shows that it has the focus.
"""

from __future__ import annotations

import re
import uuid

from tests.console.write_support import seed_practitioner
from tests.e2e.clicks import payout_status, start_payout, wait_for
from tests.e2e.conftest import sign_in

MAX_TABS = 120

# The focused element's ring, as drawn: an outline or a box shadow that is not nothing.
FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== 'none';
  return {shown: outline || shadow, what: el.outerHTML.slice(0, 120)};
}"""


def tab_to(page, selector: str) -> None:
    """Press Tab until the element `selector` has the focus, checking on the way that each
    focused element shows its focus."""
    target = page.locator(selector)
    target.first.wait_for()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_SHOWN)
        if focus is not None:
            assert focus["shown"], f"no visible focus on {focus['what']}"
        if target.first.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{selector} not reached with {MAX_TABS} presses of Tab")


def test_approve_with_the_keyboard(page, live_stack):
    pid = seed_practitioner(
        live_stack.app, balance_cents=120_000, name=f"Kai Keys {uuid.uuid4().hex[:4]}"
    )
    _, payout_id = start_payout(live_stack, pid, 61_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver"))
    page.goto("/approvals/")

    tab_to(page, f"[data-testid=approve-{payout_id}]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/approvals/"))
    wait_for(lambda: payout_status(live_stack, payout_id) == "paid", "the payout to be paid")


def test_reject_with_a_reason_with_the_keyboard(page, live_stack):
    pid = seed_practitioner(
        live_stack.app, balance_cents=120_000, name=f"Rey Keys {uuid.uuid4().hex[:4]}"
    )
    _, payout_id = start_payout(live_stack, pid, 62_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver"))
    page.goto("/approvals/")

    tab_to(page, f"#decision-{payout_id} details.reject > summary")
    page.keyboard.press("Space")  # opens the reject form
    tab_to(page, f"#reject-code-{payout_id}")
    page.keyboard.press("ArrowDown")  # the first reason code after "— choose —"
    chosen = page.locator(f"#reject-code-{payout_id}").input_value()
    assert chosen, "no reason code chosen from the keyboard"
    tab_to(page, f"#reject-note-{payout_id}")
    page.keyboard.type("rejected from the keyboard")
    tab_to(page, f"[data-testid=reject-{payout_id}]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/approvals/"))
    wait_for(
        lambda: payout_status(live_stack, payout_id) == "rejected", "the payout to be rejected"
    )


def test_start_a_workflow_with_the_keyboard(page, live_stack):
    sign_in(page, live_stack.make_staff("operator"))
    page.goto("/workflows")

    start = "[data-testid=workflow-LedgerReconciliationWorkflow] a[href$='/start']"
    tab_to(page, start)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/workflows/LedgerReconciliationWorkflow/start"))
    tab_to(page, "#start-reason-text")
    page.keyboard.type("checked from the keyboard")
    tab_to(page, "button[type=submit].primary")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    if page.locator("[data-testid=confirm-start]").count():
        tab_to(page, "[data-testid=confirm-start]")
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/runs/payments-ledger-reconciliation|/runs/[^/]+/[^/]+$"))
    page.locator("[data-testid=run-live]").wait_for()
