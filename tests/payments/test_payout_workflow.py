"""PractitionerPayoutWorkflow on the time-skipping server: every path."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from estuary.contracts.payments import (
    ApprovePayoutDecision,
    PractitionerPayoutResult,
    RejectPayoutDecision,
)
from estuary.db import db
from estuary.models import Notification, Payout, PayoutApproval, Transfer
from estuary.services import ledger
from tests.conftest import running_workers
from tests.payments.helpers import (
    APPROVER_A,
    APPROVER_B,
    APPROVER_C,
    REQUESTER,
    payout_input,
    start_payout,
    wait_for_stage,
)


def approve(actor: str, amount: int, payee: int) -> ApprovePayoutDecision:
    return ApprovePayoutDecision(actor=actor, amount_cents=amount, practitioner_id=payee)


def payout_row(app) -> Payout:
    with app.app_context():
        row = db.session.scalar(select(Payout).order_by(Payout.id.desc()))
        db.session.expunge(row)
        return row


async def refused(handle, name: str, arg) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(name, arg)
    return str(err.value.cause)


async def test_below_threshold_pays_without_approval(app, money, time_env):
    pid = money.practitioner(balance=12_345)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        result = await handle.result()
        progress = await handle.query("progress")
    assert isinstance(result, PractitionerPayoutResult)
    assert (result.status, result.amount_cents, result.approvals) == ("paid", 12_345, [])
    assert result.idempotency_key == f"payout:{handle.id}:1"
    assert progress["stage"] == "done" and progress["status"] == "paid"
    row = payout_row(app)
    assert (row.status, row.approvals_required) == ("paid", 0)
    assert money.count(Transfer) == 1
    assert (money.available(pid), money.held(pid)) == (0, 0)
    assert money.balance(ledger.EXTERNAL_PAYOUTS) == 12_345
    with app.app_context():
        assert db.session.scalar(select(Notification.template)) == "payout_paid"
    assert money.ledger_ok()


async def test_at_threshold_waits_for_one_approval(app, money, time_env):
    pid = money.practitioner(balance=60_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid, amount_cents=50_000))
        waiting = await wait_for_stage(handle, "waiting for approval")
        assert waiting["waiting_for"] == "approval (0 of 1)"
        assert waiting["waiting_until"] is not None
        assert payout_row(app).status == "pending_approval"
        assert (money.available(pid), money.held(pid)) == (10_000, 50_000)
        answer = await handle.execute_update("approve", approve(APPROVER_A, 50_000, pid))
        result = await handle.result()
    assert answer["status"] == "approved"
    assert result.status == "paid" and result.approvals == [APPROVER_A]
    assert payout_row(app).status == "paid"
    with app.app_context():
        decisions = db.session.execute(
            select(PayoutApproval.approver, PayoutApproval.decision, PayoutApproval.amount_cents)
        ).all()
    assert decisions == [(APPROVER_A, "approve", 50_000)]
    assert money.transfers() == 1 and money.available(pid) == 10_000 and money.ledger_ok()


async def test_dual_approval_needs_two_different_approvers(app, money, time_env):
    pid = money.practitioner(balance=600_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "waiting for approval")
        first = await handle.execute_update("approve", approve(APPROVER_A, 600_000, pid))
        assert first == {
            "decision": "approve",
            "approvals": 1,
            "approvals_required": 2,
            "status": "pending_approval",
        }
        again = await refused(handle, "approve", approve(APPROVER_A.upper(), 600_000, pid))
        assert "already approved" in again
        progress = await handle.query("progress")
        assert progress["waiting_for"] == "approval (1 of 2)"
        assert [a["actor"] for a in progress["approvals"]] == [APPROVER_A]
        # Hold the transfer on transient provider errors so the run is still open when
        # a third approver tries to decide.
        app.config["PROVIDER_FAILURE_PERCENT"] = 100
        await handle.execute_update("approve", approve(APPROVER_B, 600_000, pid))
        await wait_for_stage(handle, "transferring")
        late = await refused(handle, "approve", approve(APPROVER_C, 600_000, pid))
        assert "already approved" in late
        app.config["PROVIDER_FAILURE_PERCENT"] = 0
        result = await handle.result()
    assert result.status == "paid" and result.approvals == [APPROVER_A, APPROVER_B]
    with app.app_context():
        assert db.session.scalar(select(Payout.approvals_required)) == 2
        approvers = set(db.session.scalars(select(PayoutApproval.approver)))
    assert approvers == {APPROVER_A, APPROVER_B}
    assert money.transfers() == 1 and money.ledger_ok()


async def test_self_approval_refused_even_immediately_after_start(app, money, time_env):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        # Sent before the run's first workflow task: @workflow.init gave the validator
        # the input already.
        message = await refused(handle, "approve", approve(REQUESTER, 70_000, pid))
        assert f"{REQUESTER} requested this payout" in message
        # The requester comes from TriggeredBy when the input leaves it empty.
        other = money.practitioner(balance=70_000)
        handle2 = await start_payout(
            time_env.client,
            prefix,
            payout_input(other, requested_by=""),
            triggered_by="cli:carol",
        )
        message2 = await refused(handle2, "approve", approve("cli:carol", 70_000, other))
        assert "cli:carol requested this payout" in message2
        rejection = RejectPayoutDecision(
            actor=REQUESTER, amount_cents=70_000, practitioner_id=pid, reason_code="duplicate"
        )
        assert "requested this payout" in await refused(handle, "reject", rejection)
        await wait_for_stage(handle, "waiting for approval")
        await wait_for_stage(handle2, "waiting for approval")
        assert (await handle.query("progress"))["approvals"] == []
        await handle.execute_update("approve", approve(APPROVER_A, 70_000, pid))
        await handle2.execute_update("approve", approve(APPROVER_A, 70_000, other))
        assert (await handle.result()).status == "paid"
        assert (await handle2.result()).status == "paid"
    assert money.transfers() == 2 and money.ledger_ok()


async def test_mismatched_amount_or_payee_refused(app, money, time_env):
    pid = money.practitioner(balance=80_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "waiting for approval")
        wrong_amount = await refused(handle, "approve", approve(APPROVER_A, 79_999, pid))
        wrong_payee = await refused(handle, "approve", approve(APPROVER_A, 80_000, pid + 1))
        wrong_reject = await refused(
            handle,
            "reject",
            RejectPayoutDecision(APPROVER_B, 8_000_000, pid, "duplicate"),
        )
        assert "79999 cents but the payout is for 80000 cents" in wrong_amount
        assert f"names practitioner {pid + 1}" in wrong_payee
        assert "but the payout is for 80000 cents" in wrong_reject
        assert (await handle.query("progress"))["approvals"] == []
        await handle.execute_update("approve", approve(APPROVER_A, 80_000, pid))
        assert (await handle.result()).status == "paid"
    with app.app_context():
        assert db.session.scalar(select(PayoutApproval.amount_cents)) == 80_000


async def test_approval_timeout_expires_and_releases_the_hold(app, money, time_env):
    pid = money.practitioner(balance=90_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(
            time_env.client, prefix, payout_input(pid, approval_timeout_seconds=3 * 24 * 3600)
        )
        waiting = await wait_for_stage(handle, "waiting for approval")
        result = await handle.result()
        progress = await handle.query("progress")
    assert result.status == "expired"
    deadline = datetime.fromisoformat(progress["approval_deadline"])
    assert deadline - datetime.fromisoformat(waiting["waiting_until"]) == timedelta(0)
    row = payout_row(app)
    assert row.status == "expired"
    assert (money.available(pid), money.held(pid)) == (90_000, 0)
    assert money.transfers() == 0
    with app.app_context():
        assert db.session.scalar(select(Notification.template)) == "payout_expired"
    assert money.ledger_ok()


async def test_reject_with_reason_returns_the_hold(app, money, time_env):
    pid = money.practitioner(balance=55_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "waiting for approval")
        no_note = await refused(
            handle, "reject", RejectPayoutDecision(APPROVER_A, 55_000, pid, "other")
        )
        assert "needs a note" in no_note
        bad_code = await refused(
            handle, "reject", RejectPayoutDecision(APPROVER_A, 55_000, pid, "bored")
        )
        # reason_code is a Literal: an unknown code does not even decode (the console and
        # CLI refuse it earlier, with the choices, through parse_input).
        assert "Failed decoding arguments" in bad_code
        answer = await handle.execute_update(
            "reject",
            RejectPayoutDecision(
                APPROVER_A, 55_000, pid, "suspected_fraud", note="destination changed yesterday"
            ),
        )
        result = await handle.result()
    assert answer["status"] == "rejected"
    assert (result.status, result.reason_code) == ("rejected", "suspected_fraud")
    row = payout_row(app)
    assert row.status == "rejected" and "suspected_fraud" in (row.failure_reason or "")
    with app.app_context():
        decision = db.session.execute(
            select(PayoutApproval.decision, PayoutApproval.reason_code, PayoutApproval.note)
        ).one()
    assert tuple(decision) == ("reject", "suspected_fraud", "destination changed yesterday")
    assert (money.available(pid), money.held(pid), money.transfers()) == (55_000, 0, 0)
    assert money.ledger_ok()


async def test_transfer_failure_marks_failed_returns_hold_and_can_be_retried(app, money, time_env):
    pid = money.practitioner(balance=20_000)
    app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = {pid}
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert "the hold of 20000 cents was returned" in str(failure.value.cause)
        assert payout_row(app).status == "failed"
        assert (money.available(pid), money.held(pid), money.transfers()) == (20_000, 0, 0)
        with app.app_context():
            assert db.session.scalar(select(Notification.template)) == "payout_failed"

        # A failed money workflow may run again under the same id: a new payout key.
        app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = set()
        retry = await start_payout(
            time_env.client, prefix, payout_input(pid), workflow_id=handle.id
        )
        result = await retry.result()
    assert result.status == "paid" and result.idempotency_key == f"payout:{handle.id}:2"
    assert money.transfers() == 1 and money.available(pid) == 0 and money.ledger_ok()


async def test_amount_above_balance_fails_without_writing(app, money, time_env):
    pid = money.practitioner(balance=1_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid, amount_cents=1_001))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "more than practitioner" in str(failure.value.cause.cause)
    assert money.count(Payout) == 0 and money.available(pid) == 1_000
