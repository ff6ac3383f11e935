"""One home for the approval rules (issue 10): the boundary is decided once in
estuary/contracts/approval_rules.py and the workflow, the payouts service, the start
confirmation, the approvals page and the operations guide all say the same."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from estuary.contracts import approval_rules
from estuary.services import payouts
from tests.conftest import running_workers
from tests.console.write_support import login, seed_practitioner, unreachable_gateway
from tests.payments.helpers import payout_input, start_payout, wait_for_stage

THRESHOLD, DUAL = 50_000, 500_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("amount", "needed"),
    [(49_999, 0), (50_000, 1), (50_001, 1), (499_999, 1), (500_000, 1), (500_001, 2)],
)
def test_the_exact_boundaries(amount, needed):
    assert approval_rules.approvals_needed(amount, THRESHOLD, DUAL) == needed
    assert payouts.approvals_needed(amount, THRESHOLD, DUAL) == needed
    words = approval_rules.requirement_text(amount, THRESHOLD, DUAL)
    assert words.startswith(("no approval", "one approver", "two different")[needed])


async def test_the_workflow_asks_for_one_approver_at_exactly_the_dual_threshold(
    app, money, time_env
):
    pid = money.practitioner(balance=DUAL)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        waiting = await wait_for_stage(handle, "waiting for approval")
        await handle.terminate("test")
    assert waiting["approvals_required"] == 1 and waiting["waiting_for"] == "approval (0 of 1)"


@pytest.mark.parametrize(("amount", "needed"), [("5000.00", "one"), ("5000.01", "two")])
def test_the_start_confirmation_says_the_same_at_the_boundary(app, amount, needed):
    unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=600_000)
    client, _ = login(app, "operator")
    response = client.post(
        "/workflows/PractitionerPayoutWorkflow/start",
        data={
            "practitioner_id": str(pid),
            "amount_cents": amount,
            "action_reason_code": "other",
            "action_reason": "boundary",
        },
    )
    body = html.unescape(response.get_data(as_text=True))
    expected = approval_rules.requirement_text(int(amount.replace(".", "")), THRESHOLD, DUAL)
    assert response.status_code == 200 and expected in body
    assert expected.startswith(needed)


def test_the_approvals_page_reads_the_rule(app):
    client, _ = login(app, "approver")
    body = html.unescape(client.get("/approvals/").get_data(as_text=True))
    assert (
        "Payouts of 500.00 USD or more need an approver; payouts above 5,000.00 USD need "
        "two different approvers. Nobody approves their own request."
    ) in body


def test_the_operations_guide_states_the_same_rule():
    guide = (ROOT / "docs" / "operations.md").read_text()
    sentence = approval_rules.policy_text(
        THRESHOLD, DUAL, lambda c: f"{c // 100:,}.{c % 100:02d} USD"
    )
    assert sentence in " ".join(guide.split())
