"""Exactly-once payouts under faults. Each test ends with exactly one Transfer row, the
payout paid once and a balanced ledger:

* the provider commits the transfer, then fails (its answer lost); the activity retries;
* a real worker process is SIGKILLed while the transfer is in flight and a new one starts;
* the workflow is reset to before the transfer (and then to before the payout record).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from estuary.contracts.payments import PractitionerPayoutResult
from estuary.db import db
from estuary.models import LedgerTransaction, Notification, Payout, Transfer
from temporal_gateway.codec import data_converter, new_key_entry
from tests.conftest import gateway_for, running_workers, unique_prefix
from tests.payments.helpers import payout_input, start_payout

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")


async def activity_attempts(handle, activity_type: str) -> list[int]:
    """Attempt numbers of every started execution of an activity type in the history."""
    history = await handle.fetch_history()
    scheduled: dict[int, str] = {}
    attempts = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if scheduled.get(attrs.scheduled_event_id) == activity_type:
                attempts.append(attrs.attempt)
    return attempts


def assert_paid_exactly_once(app, money, practitioner_id: int, amount: int) -> None:
    with app.app_context():
        transfers = list(db.session.scalars(select(Transfer)))
        payouts = list(db.session.scalars(select(Payout)))
        settles = db.session.scalar(
            select(func.count(LedgerTransaction.id)).where(LedgerTransaction.kind == "payout")
        )
        notices = db.session.scalar(
            select(func.count(Notification.id)).where(Notification.template == "payout_paid")
        )
    assert len(transfers) == 1 and transfers[0].amount_cents == amount
    assert [(p.status, p.amount_cents) for p in payouts] == [("paid", amount)]
    assert transfers[0].idempotency_key == payouts[0].idempotency_key
    assert settles == 1 and notices == 1
    assert money.available(practitioner_id) == 0 and money.held(practitioner_id) == 0
    assert money.ledger_ok()


async def test_provider_fails_after_commit_and_the_activity_retries(app, money, time_env):
    pid = money.practitioner(balance=30_000)
    app.config["PAYMENT_PROVIDER_FAIL_AFTER_COMMIT"] = 2
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        result = await handle.result()
        attempts = await activity_attempts(handle, "transfer_payout")
    assert result.status == "paid"
    assert attempts == [3]  # two lost answers after the commit, then the third attempt
    assert app.config["PAYMENT_PROVIDER_FAIL_AFTER_COMMIT"] == 0
    assert_paid_exactly_once(app, money, pid, 30_000)


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [FLASK, "start-worker", "--domains", "payments"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _wait_for(predicate, seconds: float, what: str):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not reached in {seconds}s")
        await asyncio.sleep(0.2)


@pytest.mark.live
async def test_worker_killed_mid_transfer_and_restarted(
    app, money, local_env, database_url, tmp_path
):
    pid = money.practitioner(balance=42_000)
    prefix = unique_prefix()
    # The worker processes encrypt payloads; this side reads them with the same key.
    keys = new_key_entry("exactly-once")
    client = Client(
        **{**local_env.client.config(), "data_converter": data_converter({"PAYLOAD_KEYS": keys})}
    )
    env = {
        **os.environ,
        "FLASK_APP": "estuary_ops",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": local_env.client.namespace,
        "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        "ESTUARY_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "PAYLOAD_KEYS": keys,
    }
    env.pop("TEST_DATABASE_URL", None)
    log = tmp_path / "worker.log"
    # The first worker's provider commits the transfer, then takes a minute to answer.
    first = _start_worker({**env, "PAYMENT_PROVIDER_DELAY_AFTER_COMMIT_SECONDS": "60"}, log)
    second = None
    try:
        handle = await start_payout(client, prefix, payout_input(pid))

        def transfer_committed() -> bool:
            with app.app_context():
                return db.session.scalar(select(func.count(Transfer.id))) == 1

        await _wait_for(transfer_committed, 60, "transfer committed by the first worker")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        with app.app_context():
            payout = db.session.scalar(select(Payout))
            assert payout.status == "processing"  # money left, the settlement did not run
        assert money.held(pid) == 42_000

        second = _start_worker(env, log)
        result = await asyncio.wait_for(handle.result(), 90)
        attempts = await activity_attempts(handle, "transfer_payout")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    assert isinstance(result, PractitionerPayoutResult) and result.status == "paid", log.read_text()
    assert attempts == [2]  # the attempt lost with the killed worker timed out, then retried
    assert_paid_exactly_once(app, money, pid, 42_000)


def _workflow_task_before(events, activity_type: str) -> int:
    """The WorkflowTaskCompleted event whose commands scheduled `activity_type`."""
    last_completed = None
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_completed = event.event_id
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
        ):
            assert last_completed is not None
            return last_completed
    raise AssertionError(f"{activity_type} never scheduled")


@pytest.mark.live
async def test_reset_to_before_the_transfer_pays_once(app, money, local_env):
    pid = money.practitioner(balance=25_000)
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        gw = gateway_for(app, local_env, prefix)
        handle = await start_payout(local_env.client, prefix, payout_input(pid))
        first = await handle.result()
        run_ids = [handle.result_run_id]
        for activity_type in ("transfer_payout", "create_payout"):
            history = await local_env.client.get_workflow_handle(
                handle.id, run_id=run_ids[-1]
            ).fetch_history()
            event_id = _workflow_task_before(history.events, activity_type)
            new_run = await asyncio.to_thread(
                gw.reset, handle.id, run_ids[-1], event_id, f"test: replay {activity_type}"
            )
            run_ids.append(new_run)
            again = await local_env.client.get_workflow_handle(
                handle.id, run_id=new_run, result_type=PractitionerPayoutResult
            ).result()
            assert again.status == "paid"
            assert again.idempotency_key == first.idempotency_key
            assert again.provider_reference == first.provider_reference
            attempts = await activity_attempts(
                local_env.client.get_workflow_handle(handle.id, run_id=new_run),
                "transfer_payout",
            )
            assert attempts == [1]  # the transfer step really ran again after the reset
    assert len(set(run_ids)) == 3
    assert_paid_exactly_once(app, money, pid, 25_000)
