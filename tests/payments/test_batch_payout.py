"""BatchPractitionerPayoutWorkflow: outcomes, dry run, chunks and continue-as-new,
and two concurrent triggers for the same day (PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from estuary.contracts.payments import (
    ApprovePayoutDecision,
    BatchPayoutInput,
    BatchPayoutResult,
    CreatePayoutInput,
    PayoutRecord,
    PractitionerPayoutResult,
    TransferPayoutInput,
    TransferPayoutResult,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Payout
from temporal_gateway.gateway import TemporalGateway
from tests.conftest import POSTGRES, gateway_for, running_workers
from tests.payments.helpers import APPROVER_A, payout_input, start_payout, wait_for_stage
from workers.payments import activities as real
from workers.payments.workflows import BatchPractitionerPayoutWorkflow
from workers.temporal import registry
from workers.temporal.base_activities import bind_app, bind_client

_days = iter(range(1, 10_000))


def unique_day() -> str:
    """A payout date no other test of this session uses (children's ids include it, and
    the time-skipping server lives for the whole session)."""
    return f"3000{next(_days):04d}"


def batch_input(**overrides) -> BatchPayoutInput:
    values = {
        "min_amount_cents": 1_000,
        "requested_by": "schedule",
        "approval_threshold_cents": 50_000,
        "dual_approval_threshold_cents": 500_000,
        "approval_timeout_seconds": 7 * 24 * 3600,
        "payout_date": unique_day(),
        **overrides,
    }
    return BatchPayoutInput(**values)


async def run_batch(client, prefix, inp) -> tuple[BatchPayoutResult, str]:
    wid = f"payments-batch-payout-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        BatchPractitionerPayoutWorkflow.run,
        inp,
        id=wid,
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "payout_batch", "all", "test"),
    )
    return result, wid


async def run_history_lengths(client, workflow_id: str) -> list[int]:
    """History length of every run of a continue-as-new chain, first to last."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    run_id = desc.raw_description.workflow_execution_info.first_run_id
    lengths = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attrs = last.workflow_execution_continued_as_new_event_attributes
            run_id = attrs.new_execution_run_id
    return lengths


def outcome_of(result: BatchPayoutResult) -> dict[int, str]:
    return {line.practitioner_id: line.outcome for line in result.lines}


async def test_batch_pays_waits_skips_and_fails_across_runs(app, money, local_env):
    paid = money.practitioner(balance=20_000)
    big = money.practitioner(balance=60_000)
    money.practitioner(balance=500)  # below the minimum: not selected
    no_destination = money.practitioner(balance=5_000, destination=None)
    declined = money.practitioner(balance=5_000)
    suspended = money.practitioner(balance=5_000, status="suspended")
    paid_today = money.practitioner(balance=3_000)
    app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = {declined}
    day = unique_day()
    # On the dev server: the time-skipping test server stops skipping time for good once
    # a parent completes before its ABANDONed child (seen with temporal-test-server
    # 1.40), and this batch leaves a child waiting for approval by design.
    client = local_env.client
    async with running_workers(client, app, ["payments"]) as prefix:
        earlier = await start_payout(
            client,
            prefix,
            payout_input(paid_today, amount_cents=1_000),
            workflow_id=f"payments-payout-{paid_today}-{day}",
        )
        await earlier.result()
        result, _ = await run_batch(
            client,
            prefix,
            batch_input(chunk_size=1, items_per_run=2, payout_date=day),
        )
        waiting = client.get_workflow_handle(
            f"payments-payout-{big}-{day}", result_type=PractitionerPayoutResult
        )
        progress = await wait_for_stage(waiting, "waiting for approval")
        assert progress["waiting_for"] == "approval (0 of 1)"
        assert progress["requested_by"] == "schedule"
        await waiting.execute_update("approve", ApprovePayoutDecision(APPROVER_A, 60_000, big))
        approved = await waiting.result()
    assert outcome_of(result) == {
        paid: "paid",
        big: "waiting_for_approval",
        no_destination: "skipped",
        declined: "failed",
        suspended: "skipped",
        paid_today: "skipped",
    }
    assert (result.paid_count, result.paid_cents) == (1, 20_000)
    assert (result.waiting_for_approval_count, result.waiting_for_approval_cents) == (1, 60_000)
    assert (result.skipped_count, result.failed_count, result.failed_cents) == (3, 1, 5_000)
    assert result.runs >= 2 and not result.dry_run
    failed_line = next(line for line in result.lines if line.outcome == "failed")
    assert "declined" in failed_line.detail
    assert approved.status == "paid"
    assert money.available(paid) == 0 and money.available(big) == 0
    assert money.available(declined) == 5_000 and money.held(declined) == 0
    assert money.transfers() == 3 and money.ledger_ok()


async def test_dry_run_lists_and_moves_nothing(app, money, time_env):
    a = money.practitioner(balance=4_000)
    b = money.practitioner(balance=700)
    c = money.practitioner(balance=9_000)
    before = money.ledger_transactions()
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        result, _ = await run_batch(
            time_env.client,
            prefix,
            batch_input(dry_run=True, practitioner_ids=[c, b, a, 999_999], chunk_size=1),
        )
    assert result.dry_run
    assert (result.would_pay_count, result.would_pay_cents) == (2, 13_000)
    assert outcome_of(result) == {a: "would_pay", b: "skipped", c: "would_pay", 999_999: "skipped"}
    details = {line.practitioner_id: line.detail for line in result.lines}
    assert details[b] == "below the minimum amount"
    assert details[999_999] == "unknown practitioner"
    assert money.count(Payout) == 0 and money.ledger_transactions() == before


async def test_chunked_batch_continues_as_new_with_bounded_histories(app, money, time_env):
    ids = [money.practitioner(balance=1_000 + i) for i in range(24)]
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        result, wid = await run_batch(
            time_env.client, prefix, batch_input(chunk_size=5, items_per_run=10)
        )
        lengths = await run_history_lengths(time_env.client, wid)
    assert (result.paid_count, result.runs) == (24, 3)
    assert result.paid_cents == sum(1_000 + i for i in range(24))
    assert sorted(outcome_of(result)) == ids
    assert all(money.available(pid) == 0 for pid in ids)
    assert money.transfers() == 24 and money.ledger_ok()
    # Every run's history stays small: 10 children per run, whatever the batch size.
    assert len(lengths) == 3 and max(lengths) < 250


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)")
async def test_two_concurrent_triggers_start_one_batch(app, money, local_env):
    ids = [money.practitioner(balance=2_000) for _ in range(3)]
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    first = gateway_for(app, local_env, prefix)
    second = TemporalGateway(
        {**first.config, "TEMPORAL_RPC_TIMEOUT": 10}, identity="second-console"
    )
    inp = batch_input(payout_date="")
    barrier = threading.Barrier(2)
    started = []
    # The day's business id with a suffix of this test's own: other tests on the shared
    # dev server may already have run today's batch.
    wid = f"payments-batch-payout-{datetime.now(UTC):%Y-%m-%d}-{uuid.uuid4().hex[:6]}"

    def trigger(gw: TemporalGateway) -> None:
        barrier.wait()
        started.append(
            gw.start("BatchPractitionerPayoutWorkflow", inp, triggered_by="ops", workflow_id=wid)
        )

    threads = [threading.Thread(target=trigger, args=(gw,)) for gw in (first, second)]
    for t in threads:
        t.start()
    await asyncio.gather(*(asyncio.to_thread(t.join) for t in threads))
    second.close()
    assert len(started) == 2
    assert {s.workflow_id for s in started} == {wid}
    assert len({s.run_id for s in started}) == 1
    assert sorted(s.existing for s in started) == [False, True]
    async with running_workers(local_env.client, app, ["payments"], prefix=prefix):
        handle = local_env.client.get_workflow_handle(
            started[0].workflow_id, result_type=BatchPayoutResult
        )
        result = await handle.result()
        desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert result.paid_count == 3
    with app.app_context():
        assert sorted(db.session.scalars(select(Payout.practitioner_id))) == ids
    assert money.transfers() == 3 and money.ledger_ok()
    # A third trigger the same day is refused: the completed batch cannot run again.
    with pytest.raises(Exception, match="already ran"):
        first.start("BatchPractitionerPayoutWorkflow", inp, triggered_by="ops", workflow_id=wid)


async def test_the_summary_counts_how_children_that_need_approval_ended(app, money, local_env):
    """Issue 10: a child that needs approval but fails before its payout exists (a
    database outage past its retry budget) is failed, not "waiting for approval"."""
    waits = money.practitioner(balance=60_000)
    outage = money.practitioner(balance=70_000)

    @activity.defn(name="create_payout")
    def create_payout(inp: CreatePayoutInput) -> PayoutRecord:
        if inp.practitioner_id == outage:
            raise ApplicationError("database is locked (outage)", non_retryable=True)
        return real.create_payout(inp)

    day = unique_day()
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    bind_app(app)
    bind_client(local_env.client)
    domain = registry.domain("payments")
    acts = [a for a in domain.activities if a is not real.create_payout] + [create_payout]
    executor = ThreadPoolExecutor(max_workers=10)
    worker = Worker(
        local_env.client,
        task_queue=f"{prefix}payments",
        workflows=[w.cls for w in domain.workflows.values()],
        activities=acts,
        activity_executor=executor,
    )
    async with worker:
        result, _ = await run_batch(
            local_env.client, prefix, batch_input(practitioner_ids=[waits, outage], payout_date=day)
        )
        waiting = local_env.client.get_workflow_handle(f"payments-payout-{waits}-{day}")
        await waiting.terminate("test done")
    executor.shutdown(wait=False)
    assert outcome_of(result) == {waits: "waiting_for_approval", outage: "failed"}
    assert (result.waiting_for_approval_count, result.waiting_for_approval_cents) == (1, 60_000)
    assert (result.failed_count, result.failed_cents) == (1, 70_000)
    failed = next(line for line in result.lines if line.outcome == "failed")
    assert "outage" in failed.detail


async def test_a_slow_payout_holds_up_only_itself(app, money, local_env):
    """Issue 15: a sliding window, not chunk barriers. With two payouts in flight, one
    whose transfer hangs keeps its slot while the other slot pays the rest; the batch's
    progress says what is in flight and what is done, and it ends once the slow one
    does."""
    slow, *others = [money.practitioner(balance=5_000) for _ in range(5)]
    release = threading.Event()

    @activity.defn(name="transfer_payout")
    def transfer_payout(inp: TransferPayoutInput) -> TransferPayoutResult:
        if inp.payout_id == slow_payout_id():
            release.wait(60)
        return real.transfer_payout(inp)

    def slow_payout_id() -> int | None:
        with app.app_context():
            return db.session.scalar(select(Payout.id).where(Payout.practitioner_id == slow))

    def paid(pid: int) -> bool:
        with app.app_context():
            return (
                db.session.scalar(select(Payout.status).where(Payout.practitioner_id == pid))
                == "paid"
            )

    prefix = f"t{uuid.uuid4().hex[:10]}-"
    bind_app(app)
    bind_client(local_env.client)
    domain = registry.domain("payments")
    acts = [a for a in domain.activities if a is not real.transfer_payout] + [transfer_payout]
    executor = ThreadPoolExecutor(max_workers=10)
    worker = Worker(
        local_env.client,
        task_queue=f"{prefix}payments",
        workflows=[w.cls for w in domain.workflows.values()],
        activities=acts,
        activity_executor=executor,
    )
    async with worker:
        wid = f"payments-batch-payout-{uuid.uuid4().hex[:8]}"
        handle = await local_env.client.start_workflow(
            BatchPractitionerPayoutWorkflow.run,
            batch_input(practitioner_ids=[slow, *others], chunk_size=2),
            id=wid,
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "payout_batch", "all", "test"),
        )
        try:
            for _ in range(300):
                progress = await handle.query("progress")
                if progress["paid"]["count"] == 4:
                    break
                await asyncio.sleep(0.1)
            assert all(paid(p) for p in others), "the other slot did not pay the rest"
            assert not paid(slow)
            assert progress["in_flight"] == 1, progress
            assert progress["waiting_for"] == "1 payouts in flight"
            assert progress["paid"]["count"] == 4
        finally:
            release.set()
        result = await handle.result()
    executor.shutdown(wait=False)
    assert outcome_of(result) == {p: "paid" for p in [slow, *others]}
    assert (result.paid_count, result.failed_count) == (5, 0)
    assert money.ledger_ok()
