"""Races on PostgreSQL (issue 10): a batch and a manual payout of the same practitioner at
once, and the reconciliation running while a batch pays. Real row locks, real workers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowFailureError

from estuary.contracts.payments import BatchPayoutInput, PayoutReconciliationInput
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import LedgerTransaction, OpsFlag, Payout, Transfer
from estuary.services import ledger, payouts
from tests.conftest import POSTGRES, running_workers
from tests.payments.helpers import payout_input, start_payout
from workers.payments.workflows import (
    BatchPractitionerPayoutWorkflow,
    PayoutReconciliationWorkflow,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)"),
]


def batch(ids: list[int], day: str) -> BatchPayoutInput:
    return BatchPayoutInput(
        min_amount_cents=100,
        requested_by="schedule",
        practitioner_ids=ids,
        payout_date=day,
        chunk_size=5,
        approval_threshold_cents=50_000,
        dual_approval_threshold_cents=500_000,
        approval_timeout_seconds=3600,
    )


async def run_batch(client, prefix: str, inp: BatchPayoutInput):
    return await client.execute_workflow(
        BatchPractitionerPayoutWorkflow.run,
        inp,
        id=f"payments-batch-payout-{uuid.uuid4().hex[:10]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "payout_batch", "all", "test"),
    )


def assert_books_agree(app, practitioners: dict[int, int]) -> None:
    """Sent <= earned, holds = open payouts, ledger balanced and equal to the provider."""
    with app.app_context():
        transfers = list(db.session.scalars(select(Transfer)))
        rows = {p.idempotency_key: p for p in db.session.scalars(select(Payout))}
        for pid, earned in practitioners.items():
            sent = sum(
                t.amount_cents for t in transfers if rows[t.idempotency_key].practitioner_id == pid
            )
            assert sent <= earned
            open_sum = sum(
                p.amount_cents
                for p in rows.values()
                if p.practitioner_id == pid and p.status in payouts.OPEN
            )
            assert ledger.balance(ledger.held_account(pid)) == open_sum
            assert ledger.balance(ledger.available_account(pid)) >= 0
        assert all(rows[t.idempotency_key].status == "paid" for t in transfers)
        assert ledger.check().ok
        assert ledger.balance(ledger.EXTERNAL_PAYOUTS) == sum(t.amount_cents for t in transfers)


async def test_batch_and_manual_payout_of_the_same_practitioner_at_once(app, money, time_env):
    earned = {money.practitioner(balance=4_000 + i): 4_000 + i for i in range(6)}
    ids = list(earned)
    with time_env.auto_time_skipping_disabled():
        await _pay_both_ways(app, time_env, earned, ids)


async def _pay_both_ways(app, time_env, earned: dict[int, int], ids: list[int]) -> None:
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        manual = [
            await start_payout(
                time_env.client,
                prefix,
                payout_input(pid, amount_cents=3_000),
                workflow_id=f"payments-payout-{pid}-manual",
            )
            for pid in ids
        ]
        outcomes = await asyncio.gather(
            run_batch(time_env.client, prefix, batch(ids, "39990101")),
            *(h.result() for h in manual),
            return_exceptions=True,
        )
    result, manual_results = outcomes[0], outcomes[1:]
    assert not isinstance(result, BaseException), result
    for outcome in manual_results:
        # Whoever came second found less available than it asked for: refused, no hold.
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, WorkflowFailureError)
            assert "available" in str(outcome.cause.cause)
        else:
            assert outcome.status == "paid"
    assert_books_agree(app, earned)
    with app.app_context():
        paid = db.session.scalar(select(func.count(Payout.id)).where(Payout.status == "paid"))
    assert paid >= len(ids)  # every practitioner was paid by one of the two at least


async def test_reconciliation_running_during_a_batch_settles_nothing_twice(app, money, time_env):
    earned = {money.practitioner(balance=2_000 + i): 2_000 + i for i in range(15)}
    # No timers here: without auto time skipping the server's clock cannot jump to a
    # run's execution deadline while the runs wait on each other's activities.
    with time_env.auto_time_skipping_disabled():
        await _pay_while_reconciling(app, money, time_env, earned)


async def _pay_while_reconciling(app, money, time_env, earned: dict[int, int]) -> None:
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        paying = asyncio.ensure_future(
            run_batch(time_env.client, prefix, batch(list(earned), "39990102"))
        )
        reports = []
        overlapped = 0
        while not paying.done() or not reports:
            overlapped += not paying.done()
            reports.append(
                await time_env.client.execute_workflow(
                    PayoutReconciliationWorkflow.run,
                    PayoutReconciliationInput(requested_by="test"),
                    id=f"payments-payout-reconciliation-{uuid.uuid4().hex[:10]}",
                    task_queue=f"{prefix}payments",
                    search_attributes=run_attributes(
                        "payments", "payout_reconciliation", "all", "test"
                    ),
                )
            )
        result = await paying
        final = await time_env.client.execute_workflow(
            PayoutReconciliationWorkflow.run,
            PayoutReconciliationInput(requested_by="test"),
            id=f"payments-payout-reconciliation-{uuid.uuid4().hex[:10]}",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "payout_reconciliation", "all", "test"),
        )
    assert result.paid_count == 15 and overlapped >= 1
    assert final.ok and final.settled == 0, final.findings
    assert final.provider_paid_cents == final.ledger_external_payouts_cents == sum(earned.values())
    with app.app_context():
        settles = db.session.scalar(
            select(func.count(LedgerTransaction.id)).where(LedgerTransaction.kind == "payout")
        )
        flags = list(
            db.session.scalars(select(OpsFlag.message).where(OpsFlag.resolved_at.is_(None)))
        )
    assert settles == 15 and money.transfers() == 15
    # Mid-batch reports see payouts in flight (and may settle one the provider has paid,
    # leaving a resolved note); none is a problem.
    assert flags == []
    assert_books_agree(app, earned)
