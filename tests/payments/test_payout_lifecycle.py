"""Money stays right across a payout's whole life (issue 10): reruns, terminations,
cancellations, late provider answers, the sweep and the reconciliation. Each test is one
case of the issue that went wrong before; all run on the time-skipping server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)

from estuary.contracts.payments import (
    ApprovePayoutDecision,
    PayoutReconciliationInput,
    PayoutSweepInput,
    RejectPayoutDecision,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import LedgerTransaction, OpsFlag, Payout, PayoutApproval, Transfer
from estuary.models.base import utcnow
from estuary.services import ledger, payment_provider, payout_reconciliation, payouts
from tests.conftest import running_workers
from tests.payments.helpers import (
    APPROVER_A,
    APPROVER_B,
    REQUESTER,
    payout_input,
    start_payout,
    wait_for_stage,
)
from workers.payments.workflows import PayoutReconciliationWorkflow, PayoutSweepWorkflow


def payouts_of(app, practitioner_id: int) -> list[tuple[int, str, int, str, str]]:
    with app.app_context():
        rows = db.session.scalars(
            select(Payout).where(Payout.practitioner_id == practitioner_id).order_by(Payout.id)
        )
        return [(p.id, p.status, p.amount_cents, p.requested_by, p.idempotency_key) for p in rows]


async def terminate_when_idle(handle, stage: str) -> None:
    """Terminate a run once it waits (nothing in flight: no leaked time-skipping lock)."""
    await wait_for_stage(handle, stage)
    await handle.terminate("test: the run is terminated")


async def sweep(client, prefix: str):
    return await client.execute_workflow(
        PayoutSweepWorkflow.run,
        PayoutSweepInput(requested_by="test", min_closed_seconds=0),
        id=f"payments-payout-sweep-{uuid.uuid4().hex[:8]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "payout_sweep", "all", "test"),
    )


async def reconcile(client, prefix: str, settle: bool = True):
    return await client.execute_workflow(
        PayoutReconciliationWorkflow.run,
        PayoutReconciliationInput(requested_by="test", settle=settle),
        id=f"payments-payout-reconciliation-{uuid.uuid4().hex[:8]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "payout_reconciliation", "all", "test"),
    )


async def refused(handle, name: str, arg) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(name, arg)
    return str(err.value.cause)


def flags(app, kind: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(OpsFlag.message).where(OpsFlag.kind == kind)))


# --- 1. a payout is one request ----------------------------------------------------------


async def test_rerun_by_someone_else_cannot_take_over_an_open_payout(app, money, time_env):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        first = await start_payout(time_env.client, prefix, payout_input(pid, amount_cents=70_000))
        await terminate_when_idle(first, "waiting for approval")
        # Same business id, same day, another person asking for 100.00.
        second = await start_payout(
            time_env.client,
            prefix,
            payout_input(pid, amount_cents=10_000, requested_by=APPROVER_B),
            workflow_id=first.id,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await second.result()
    message = str(failure.value.cause.cause)
    assert "is still pending_approval: requested by ops-requester@test.local" in message
    assert "cannot take it over" in message
    [(_, status, amount, requester, _)] = payouts_of(app, pid)
    assert (status, amount, requester) == ("pending_approval", 70_000, REQUESTER)
    assert (money.available(pid), money.held(pid), money.transfers()) == (0, 70_000, 0)


async def test_rerun_by_the_requester_resumes_and_four_eyes_uses_the_payouts_requester(
    app, money, time_env
):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        first = await start_payout(time_env.client, prefix, payout_input(pid))
        await terminate_when_idle(first, "waiting for approval")
        # The rerun names its requester only through TriggeredBy (no requested_by): the
        # payout's requester is what four-eyes checks.
        second = await start_payout(
            time_env.client,
            prefix,
            payout_input(pid, requested_by=""),
            workflow_id=first.id,
            triggered_by=REQUESTER,
        )
        progress = await wait_for_stage(second, "waiting for approval")
        assert progress["requested_by"] == REQUESTER
        own = ApprovePayoutDecision(REQUESTER.upper(), 70_000, pid)
        assert "requested this payout" in await refused(second, "approve", own)
        await second.execute_update("approve", ApprovePayoutDecision(APPROVER_A, 70_000, pid))
        result = await second.result()
    assert result.status == "paid" and result.idempotency_key == f"payout:{first.id}:1"
    assert [p[1] for p in payouts_of(app, pid)] == ["paid"]
    assert money.transfers() == 1 and money.ledger_ok()


async def test_approvals_recorded_before_a_rerun_still_count_against_the_same_approver(
    app, money, time_env
):
    pid = money.practitioner(balance=600_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        first = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(first, "waiting for approval")
        await first.execute_update("approve", ApprovePayoutDecision(APPROVER_A, 600_000, pid))
        await first.terminate("test")
        second = await start_payout(
            time_env.client, prefix, payout_input(pid), workflow_id=first.id
        )
        waiting = await wait_for_stage(second, "waiting for approval")
        assert waiting["waiting_for"] == "approval (1 of 2)"
        again = ApprovePayoutDecision(APPROVER_A, 600_000, pid)
        assert "already approved" in await refused(second, "approve", again)
        await second.execute_update("approve", ApprovePayoutDecision(APPROVER_B, 600_000, pid))
        assert (await second.result()).status == "paid"
    assert money.transfers() == 1 and money.ledger_ok()


async def test_a_recorded_rejection_is_final_across_a_rerun(app, money, time_env):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        first = await start_payout(time_env.client, prefix, payout_input(pid))
        progress = await wait_for_stage(first, "waiting for approval")
        payout_id = progress["payout_id"]
        # The rejection was recorded, then closing failed and the run was terminated.
        with app.app_context():
            payouts.record_decision(
                payout_id=payout_id,
                approver=APPROVER_A,
                decision="reject",
                amount_cents=70_000,
                payee_id=pid,
                reason_code="suspected_fraud",
                note="destination changed",
            )
            db.session.commit()
        await first.terminate("test: closing failed")
        second = await start_payout(
            time_env.client, prefix, payout_input(pid), workflow_id=first.id
        )
        waiting = await wait_for_stage(second, "waiting for approval")
        # A new request: its own payout, key and (no) decisions.
        assert waiting["payout_id"] != payout_id and waiting["approvals"] == []
        assert any("recorded rejection" in s for s in waiting["steps_done"])
        await second.execute_update("approve", ApprovePayoutDecision(APPROVER_B, 70_000, pid))
        result = await second.result()
    rows = payouts_of(app, pid)
    assert [(r[1], r[4]) for r in rows] == [
        ("rejected", f"payout:{first.id}:1"),
        ("paid", f"payout:{first.id}:2"),
    ]
    assert result.payout_id == rows[1][0]
    with app.app_context():
        decisions = db.session.execute(
            select(PayoutApproval.payout_id, PayoutApproval.decision).order_by(PayoutApproval.id)
        ).all()
    assert [tuple(d) for d in decisions] == [(payout_id, "reject"), (rows[1][0], "approve")]
    # The rejected request never paid: one transfer, for the new request's key.
    with app.app_context():
        keys = list(db.session.scalars(select(Transfer.idempotency_key)))
    assert keys == [f"payout:{first.id}:2"] and money.ledger_ok()


async def test_approve_after_reject_in_the_same_run_is_refused(app, money, time_env):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "waiting for approval")
        await handle.execute_update(
            "reject", RejectPayoutDecision(APPROVER_A, 70_000, pid, "suspected_fraud")
        )
        result = await handle.result()
    assert result.status == "rejected"
    with app.app_context(), pytest.raises(Exception, match="no more decisions"):
        payouts.record_decision(
            payout_id=result.payout_id,
            approver=APPROVER_B,
            decision="approve",
            amount_cents=70_000,
            payee_id=pid,
            reason_code=None,
            note=None,
        )
    assert (money.available(pid), money.transfers()) == (70_000, 0)


@pytest.mark.parametrize("requested_by", ["", "unknown", "  "])
async def test_a_payout_with_no_known_requester_cannot_start(app, money, time_env, requested_by):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(
            time_env.client,
            prefix,
            payout_input(pid, requested_by=requested_by),
            triggered_by="",
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "names no requester" in str(failure.value.cause)
    assert payouts_of(app, pid) == [] and money.available(pid) == 70_000


def test_the_service_refuses_an_anonymous_requester(app, money):
    pid = money.practitioner(balance=1_000)
    with app.app_context(), pytest.raises(Exception, match="names no requester"):
        payouts.create_payout(
            workflow_id="payments-payout-x",
            practitioner_id=pid,
            amount_cents=None,
            requested_by="unknown",
            reason="",
            payment_method="bank_transfer",
            approval_threshold_cents=50_000,
            dual_approval_threshold_cents=500_000,
            config=app.config,
        )
    assert money.count(Payout) == 0


# --- 3. nothing is left half-done --------------------------------------------------------


async def test_cancelling_a_waiting_payout_returns_its_hold(app, money, time_env):
    pid = money.practitioner(balance=70_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "waiting for approval")
        assert money.held(pid) == 70_000
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.CANCELED
    assert [p[1] for p in payouts_of(app, pid)] == ["cancelled"]
    assert (money.available(pid), money.held(pid), money.transfers()) == (70_000, 0, 0)
    assert money.ledger_ok()


async def test_the_sweep_returns_the_hold_of_a_terminated_run_and_leaves_running_ones(
    app, money, time_env
):
    gone = money.practitioner(balance=70_000)
    alive = money.practitioner(balance=80_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        dead = await start_payout(time_env.client, prefix, payout_input(gone))
        await terminate_when_idle(dead, "waiting for approval")
        running = await start_payout(time_env.client, prefix, payout_input(alive))
        await wait_for_stage(running, "waiting for approval")
        # Awaiting a result skips time: keep the waiting payout's approval deadline away.
        with time_env.auto_time_skipping_disabled():
            result = await sweep(time_env.client, prefix)
        assert (result.examined, result.running, result.released) == (2, 1, 1)
        await running.execute_update("approve", ApprovePayoutDecision(APPROVER_A, 80_000, alive))
        assert (await running.result()).status == "paid"
        # The practitioner can be paid again: a new request under the same id.
        again = await start_payout(
            time_env.client, prefix, payout_input(gone, amount_cents=1_000), workflow_id=dead.id
        )
        assert (await again.result()).status == "paid"
    assert [p[1] for p in payouts_of(app, gone)] == ["released", "paid"]
    assert (money.available(gone), money.held(gone)) == (69_000, 0)
    assert (money.available(alive), money.held(alive)) == (0, 0)
    assert any("the hold was returned" in m for m in flags(app, "payout_swept"))
    assert money.ledger_ok()


async def test_the_sweep_settles_paid_when_the_provider_paid_and_flags_what_is_in_doubt(
    app, money, time_env
):
    paid = money.practitioner(balance=20_000)
    doubt = money.practitioner(balance=30_000)
    with app.app_context():
        # Two payouts whose runs crashed mid-transfer (no run exists under their ids).
        ids = []
        for pid in (paid, doubt):
            view = payouts.create_payout(
                workflow_id=f"payments-payout-{pid}-gone{uuid.uuid4().hex[:6]}",
                practitioner_id=pid,
                amount_cents=None,
                requested_by=REQUESTER,
                reason="",
                payment_method="bank_transfer",
                approval_threshold_cents=50_000,
                dual_approval_threshold_cents=500_000,
                config=app.config,
            )
            payouts.set_status(view.payout_id, "processing")
            ids.append(view)
        db.session.commit()
        payment_provider.transfer(
            idempotency_key=ids[0].idempotency_key,
            destination="acct_test",
            amount_cents=20_000,
            currency="USD",
            payout_id=ids[0].payout_id,
            payee_id=paid,
        )
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        result = await sweep(time_env.client, prefix)
    assert (result.paid, result.reconciling, result.released) == (1, 1, 0)
    assert [p[1] for p in payouts_of(app, paid)] == ["paid"]
    assert [p[1] for p in payouts_of(app, doubt)] == ["reconciling"]
    # In doubt: never released; the hold stays and ops are told why.
    assert (money.available(doubt), money.held(doubt)) == (0, 30_000)
    assert any("hold stays" in m for m in flags(app, "payout_in_doubt"))
    assert money.balance(ledger.EXTERNAL_PAYOUTS) == 20_000 and money.ledger_ok()


# --- 4. the provider is the truth about money that left ----------------------------------


async def test_unknown_transfer_outcome_keeps_the_hold_and_a_late_transfer_pays_once(
    app, money, time_env
):
    pid = money.practitioner(balance=10_000)
    app.config["PROVIDER_FAILURE_PERCENT"] = 100  # every send is lost: outcome unknown
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        progress = await wait_for_stage(handle, "reconciling with the provider", tries=400)
        assert progress["status"] == "reconciling"
        assert [p[1] for p in payouts_of(app, pid)] == ["reconciling"]
        assert (money.available(pid), money.held(pid)) == (0, 10_000)
        # The provider's late answer: the transfer lands under the payout's key.
        app.config["PROVIDER_FAILURE_PERCENT"] = 0
        with app.app_context():
            payment_provider.transfer(
                idempotency_key=f"payout:{handle.id}:1",
                destination="acct_test",
                amount_cents=10_000,
                currency="USD",
                payout_id=progress["payout_id"],
                payee_id=pid,
            )
        result = await handle.result()
        # Later earnings are paid by the next payout, and only those.
        with app.app_context():
            ledger.post(
                f"test:earnings:{pid}:2",
                "earning",
                [
                    ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -2_500),
                    ledger.Leg(ledger.available_account(pid), 2_500),
                ],
            )
            db.session.commit()
        nxt = await start_payout(time_env.client, prefix, payout_input(pid))
        assert (await nxt.result()).amount_cents == 2_500
    assert result.status == "paid"
    assert [p[1] for p in payouts_of(app, pid)] == ["paid", "paid"]
    assert money.transfers() == 2
    assert money.balance(ledger.EXTERNAL_PAYOUTS) == 12_500  # earned 12,500, sent 12,500
    assert (money.available(pid), money.held(pid)) == (0, 0) and money.ledger_ok()


async def test_nothing_at_the_provider_after_the_settle_window_fails_and_returns_the_hold(
    app, money, time_env
):
    pid = money.practitioner(balance=10_000)
    app.config["PROVIDER_FAILURE_PERCENT"] = 100
    app.config["PAYOUT_SETTLE_WINDOW_SECONDS"] = 6 * 3600
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(
            time_env.client, prefix, payout_input(pid, requested_by=REQUESTER)
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    app.config["PROVIDER_FAILURE_PERCENT"] = 0
    assert "no transfer for it after the settle window" in str(failure.value.cause)
    assert [p[1] for p in payouts_of(app, pid)] == ["failed"]
    assert (money.available(pid), money.held(pid), money.transfers()) == (10_000, 0, 0)


async def test_processing_at_the_provider_is_reconciled_paid_exactly_once(app, money, time_env):
    pid = money.practitioner(balance=15_000)
    app.config["PROVIDER_PROCESSING_SECONDS"] = 3600
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await wait_for_stage(handle, "reconciling with the provider", tries=400)
        assert [p[1] for p in payouts_of(app, pid)] == ["reconciling"]
        # Awaiting a result skips time; keep the workflow's own next look away, so it is
        # the reconciliation that settles.
        with time_env.auto_time_skipping_disabled():
            report = await reconcile(time_env.client, prefix)
            assert report.settled == 0 and report.provider_processing_cents == 15_000
            # The provider pays it out (its processing time is over).
            with app.app_context():
                db.session.execute(
                    update(Transfer).values(settles_at=utcnow() - timedelta(seconds=1))
                )
                db.session.commit()
            report = await reconcile(time_env.client, prefix)
        assert report.settled == 1 and report.ok, report.findings
        assert [p[1] for p in payouts_of(app, pid)] == ["paid"]
        result = await handle.result()
        again = await reconcile(time_env.client, prefix)
    app.config["PROVIDER_PROCESSING_SECONDS"] = 0
    assert result.status == "paid" and again.settled == 0 and again.ok
    with app.app_context():
        settles = db.session.scalar(
            select(func.count(LedgerTransaction.id)).where(LedgerTransaction.kind == "payout")
        )
    assert settles == 1 and money.transfers() == 1
    assert money.balance(ledger.EXTERNAL_PAYOUTS) == 15_000 and money.ledger_ok()


def test_reconciliation_flags_a_transfer_paid_for_a_payout_closed_unpaid(app, money, runner):
    pid = money.practitioner(balance=10_000)
    with app.app_context():
        view = payouts.create_payout(
            workflow_id="payments-payout-late",
            practitioner_id=pid,
            amount_cents=None,
            requested_by=REQUESTER,
            reason="",
            payment_method="bank_transfer",
            approval_threshold_cents=50_000,
            dual_approval_threshold_cents=500_000,
            config=app.config,
        )
        payouts.set_status(view.payout_id, "processing")
        payouts.close_unpaid(view.payout_id, "failed", "what the old code did")
        db.session.commit()
        payment_provider.transfer(
            idempotency_key=view.idempotency_key,
            destination="acct_test",
            amount_cents=10_000,
            currency="USD",
            payout_id=view.payout_id,
            payee_id=pid,
        )
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1, result.output
    assert "balanced" in result.output  # the ledger itself balances ...
    assert "paid_but_closed" in result.output  # ... but money left for a closed payout
    assert "(10000 cents paid, 0 processing); external:payouts 0 cents" in result.output
    assert "PAYOUTS DO NOT MATCH THE PROVIDER" in result.output
    with app.app_context():
        report_flags = db.session.scalar(select(func.count(OpsFlag.id)))
    assert report_flags == 0  # `ledger check` reports; it raises no flags


async def test_reconciliation_raises_flags_with_the_evidence(app, money, time_env):
    with app.app_context():
        payment_provider.transfer(
            idempotency_key="payout:nobody:1",
            destination="acct_x",
            amount_cents=999,
            currency="USD",
            payout_id=None,
            payee_id=1,
        )
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        report = await reconcile(time_env.client, prefix)
        await asyncio.sleep(0)
    assert not report.ok
    assert any("belongs to no payout" in f for f in report.findings)
    assert any("belongs to no payout" in m for m in flags(app, "payout_orphan_transfer"))


def test_money_in_external_payouts_without_a_paid_transfer_is_found(app, money):
    with app.app_context():
        ledger.post(
            "manual:payout-by-hand",
            "payout",
            [
                ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -500),
                ledger.Leg(ledger.EXTERNAL_PAYOUTS, 500),
            ],
        )
        db.session.commit()
        report = payout_reconciliation.reconcile(settle=False)
    assert [f.kind for f in report.problems] == ["ledger_total"]
    assert "manual:payout-by-hand moved 500 cents" in report.problems[0].message
