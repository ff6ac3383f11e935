"""The payout lifecycle as a hypothesis state machine (issue 10).

Rules are what people, workers and the provider do: earn, request (manual payouts under a
small pool of business ids, so reruns collide), approve and reject (the requester tries
too), cancel, terminate, rerun, reset (as a new run from the same input: the time-skipping
server cannot reset), time passing, the provider failing / losing its
answers / processing slowly / answering late, batch payouts of the same practitioners, the
sweep and the reconciliation. They run against the real services and real workers on a
time-skipping Temporal server of this test's own (its own event loop thread: the
session's `time_env` belongs to pytest's loop).

After every step, on the database:
- money sent (provider transfers) <= money earned, per practitioner;
- every provider transfer belongs to exactly one payout, never to one closed unpaid;
- the ledger balances and `external:payouts` equals what the provider paid for paid
  payouts (after a reconciliation: everything the provider paid);
- no payout has a decision by its own requester;
- a payout with a recorded rejection never pays;
- each practitioner's held balance equals the sum of their open payouts.

Bounded: a few examples of a dozen steps (about a minute here).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from estuary.contracts import approval_rules, policies
from estuary.contracts.payments import (
    ApprovePayoutDecision,
    BatchPayoutInput,
    PayoutReconciliationInput,
    PayoutSweepInput,
    PractitionerPayoutInput,
    RejectPayoutDecision,
)
from estuary.contracts.search_attributes import ALL_KEYS, run_attributes
from estuary.db import db
from estuary.models import Payout, PayoutApproval, Transfer
from estuary.services import ledger, payment_provider, payouts
from tests.conftest import _binary, _reset_database, running_workers, unique_prefix
from tests.payments.conftest import Money
from workers.payments.workflows import (
    BatchPractitionerPayoutWorkflow,
    PayoutReconciliationWorkflow,
    PayoutSweepWorkflow,
    PractitionerPayoutWorkflow,
)

REQUESTERS = ("alice@ops.test", "bob@ops.test")
ACTORS = (*REQUESTERS, "carol@ops.test", "dave@ops.test")
# Manual payouts carry stricter thresholds than the config (allowed): they need approvals,
# while batch children (config thresholds, set out of reach) never do, so a batch never
# leaves an abandoned child (the time-skipping server stops skipping after one).
THRESHOLD, DUAL = 5_000, 7_000
AMOUNTS = (None, 2_000, 6_000, 8_000)
STABLE_STAGES = ("waiting for approval", "reconciling with the provider", "done")
_examples = count(1)


class Harness:
    """A time-skipping server and payments workers on an event loop of their own."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.env: WorkflowEnvironment = self.call(self._start_env(), 120)
        self.client = self.env.client
        self.prefix = unique_prefix()
        self.stop: asyncio.Event | None = None
        ready = threading.Event()
        self.workers = asyncio.run_coroutine_threadsafe(self._workers(ready), self.loop)
        if not ready.wait(60):
            raise RuntimeError("payments workers did not start")

    async def _start_env(self) -> WorkflowEnvironment:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=_binary("temporal-test-server")
        )
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL_KEYS
                },
            )
        )
        return env

    async def _workers(self, ready: threading.Event) -> None:
        self.stop = asyncio.Event()
        async with running_workers(self.client, self.app, ["payments"], prefix=self.prefix):
            ready.set()
            await self.stop.wait()

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        assert self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.workers.result(60)
        self.call(self.env.shutdown(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class PayoutLifecycle(RuleBasedStateMachine):
    harness: Harness
    database_url: str

    def __init__(self) -> None:
        super().__init__()
        self.app = self.harness.app
        self.h = self.harness
        self.money = Money(self.app)
        self.example = next(_examples)
        self.earned: dict[int, int] = defaultdict(int)
        self.practitioners: list[int] = []
        self.wids: list[str] = []
        self.reconciled = False

    # --- setup and plumbing ----------------------------------------------------------------

    @initialize()
    def setup(self) -> None:
        with self.app.app_context():
            _reset_database(self.database_url)
        for provider_switch in (
            "PROVIDER_FAILURE_PERCENT",
            "PAYMENT_PROVIDER_FAIL_AFTER_COMMIT",
            "PROVIDER_PROCESSING_SECONDS",
        ):
            self.app.config[provider_switch] = 0
        for _ in range(2):
            pid = self.money.practitioner(balance=9_000)
            self.earned[pid] += 9_000
            self.practitioners.append(pid)
        days = [f"4{self.example:03d}01{d:02d}" for d in (1, 2)]
        self.days = days
        self.wids = [f"payments-payout-{p}-{d}" for p in self.practitioners for d in days]
        # Every example starts with one payout waiting for approval per practitioner.
        self.request(0, REQUESTERS[0], 6_000)
        self.request(2, REQUESTERS[1], 8_000)

    def teardown(self) -> None:
        # Nothing of this example may fire later, against the next example's database.
        self.settle()
        for wid in self.wids:
            self.h.call(self._terminate_if_running(wid))

    async def _terminate_if_running(self, wid: str) -> None:
        handle = self.h.client.get_workflow_handle(wid)
        try:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("example over")
        except RPCError:
            pass

    async def _stable(self, wid: str) -> bool:
        handle = self.h.client.get_workflow_handle(wid)
        try:
            desc = await handle.describe()
        except RPCError:
            return True  # never started
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return True
        if desc.raw_description.pending_activities:
            return False
        try:
            progress = await handle.query("progress")
        except Exception:  # the first workflow task has not run yet
            return False
        return progress["stage"] in STABLE_STAGES

    def settle(self) -> None:
        """Wait until every run waits (approval or a timer) or has closed."""

        async def wait() -> None:
            for _ in range(600):
                states = [await self._stable(w) for w in self.wids]
                if all(states):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("runs did not settle")

        self.h.call(wait(), 90)

    async def _running_waiting(self, wid: str, stage: str) -> bool:
        handle = self.h.client.get_workflow_handle(wid)
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return False
            return (await handle.query("progress"))["stage"] == stage
        except Exception:
            return False

    def _pick(self, index: int) -> str:
        return self.wids[index % len(self.wids)]

    def _practitioner_of(self, wid: str) -> int:
        return int(wid.split("-")[2])

    # --- rules: people -----------------------------------------------------------------------

    @rule(p=st.integers(0, 1), amount=st.integers(100, 9_000))
    def earn(self, p: int, amount: int) -> None:
        pid = self.practitioners[p]
        with self.app.app_context():
            ledger.post(
                f"test:earn:{pid}:{uuid.uuid4().hex}",
                "earning",
                [
                    ledger.Leg(ledger.EXTERNAL_CLIENT_PAYMENTS, -amount),
                    ledger.Leg(ledger.available_account(pid), amount),
                ],
            )
            db.session.commit()
        self.earned[pid] += amount

    @rule(
        w=st.integers(0, 3), requester=st.sampled_from(REQUESTERS), amount=st.sampled_from(AMOUNTS)
    )
    def request(self, w: int, requester: str, amount: int | None) -> None:
        """A manual payout (also a rerun, when the id's last run failed or was terminated)."""
        wid = self._pick(w)
        inp = PractitionerPayoutInput(
            practitioner_id=self._practitioner_of(wid),
            amount_cents=amount,
            requested_by=requester,
            reason="state machine",
            approval_threshold_cents=THRESHOLD,
            dual_approval_threshold_cents=DUAL,
            approval_timeout_seconds=3 * 24 * 3600,
        )

        async def start() -> None:
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await self.h.client.start_workflow(
                    PractitionerPayoutWorkflow.run,
                    inp,
                    id=wid,
                    task_queue=f"{self.h.prefix}payments",
                    id_reuse_policy=policies.MONEY_ID_REUSE,
                    id_conflict_policy=policies.ID_CONFLICT,
                    search_attributes=run_attributes(
                        "payments", "practitioner", inp.practitioner_id, requester
                    ),
                )

        self.h.call(start())
        self.settle()

    def _decide(self, wid: str, name: str, arg: Any) -> None:
        async def send() -> None:
            if not await self._running_waiting(wid, "waiting for approval"):
                return
            # A refusal (four-eyes, already decided, ...) is fine: the invariants check it.
            with contextlib.suppress(WorkflowUpdateFailedError):
                await self.h.client.get_workflow_handle(wid).execute_update(name, arg)

        self.h.call(send())
        self.settle()

    def _payout_of(self, wid: str) -> tuple[int, int] | None:
        with self.app.app_context():
            row = db.session.scalar(
                select(Payout).where(Payout.workflow_id == wid).order_by(Payout.id.desc())
            )
            return (row.amount_cents, row.practitioner_id) if row else None

    @rule(w=st.integers(0, 3), actor=st.sampled_from(ACTORS))
    def approve(self, w: int, actor: str) -> None:
        wid = self._pick(w)
        seen = self._payout_of(wid)
        if seen:
            self._decide(wid, "approve", ApprovePayoutDecision(actor, seen[0], seen[1]))

    @rule(w=st.integers(0, 3), actor=st.sampled_from(ACTORS))
    def reject(self, w: int, actor: str) -> None:
        wid = self._pick(w)
        seen = self._payout_of(wid)
        if seen:
            decision = RejectPayoutDecision(actor, seen[0], seen[1], "suspected_fraud")
            self._decide(wid, "reject", decision)

    @rule(w=st.integers(0, 3))
    def cancel(self, w: int) -> None:
        wid = self._pick(w)

        async def go() -> None:
            handle = self.h.client.get_workflow_handle(wid)
            try:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.cancel()
            except RPCError:
                pass

        self.h.call(go())
        self.settle()

    @rule(w=st.integers(0, 3))
    def terminate(self, w: int) -> None:
        self.h.call(self._terminate_if_running(self._pick(w)))
        self.settle()

    @rule(w=st.integers(0, 3))
    def reset(self, w: int) -> None:
        """A reset to the run's first workflow task. The time-skipping server does not
        implement ResetWorkflowExecution (the dev-server tests in test_exactly_once.py
        reset for real), so this does what such a reset does to the payout: the run is
        ended and a new run of the same id starts from the same input, running
        create_payout again (which must resume the same payout)."""
        wid = self._pick(w)

        async def go() -> None:
            handle = self.h.client.get_workflow_handle(wid)
            try:
                desc = await handle.describe()
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    return
                history = await handle.fetch_history()
                started = history.events[0].workflow_execution_started_event_attributes
                [inp] = await self.h.client.data_converter.decode(
                    started.input.payloads, [PractitionerPayoutInput]
                )
                await handle.terminate("state machine: reset")
                await self.h.client.start_workflow(
                    PractitionerPayoutWorkflow.run,
                    inp,
                    id=wid,
                    task_queue=f"{self.h.prefix}payments",
                    id_reuse_policy=policies.MONEY_ID_REUSE,
                    id_conflict_policy=policies.ID_CONFLICT,
                    search_attributes=desc.typed_search_attributes,
                )
            except (RPCError, WorkflowAlreadyStartedError):
                pass  # closed meanwhile, or a batch child (not a payout started here)

        self.h.call(go())
        self.settle()

    # --- rules: time, provider, schedules ------------------------------------------------------

    @rule(hours=st.sampled_from([1, 6, 30, 24 * 4]))
    def time_passes(self, hours: int) -> None:
        self.h.call(self.h.env.sleep(timedelta(hours=hours)), 120)
        self.settle()

    @rule(mode=st.sampled_from(["ok", "down", "lost_answers", "processing"]))
    def provider(self, mode: str) -> None:
        self.app.config["PROVIDER_FAILURE_PERCENT"] = 100 if mode == "down" else 0
        self.app.config["PAYMENT_PROVIDER_FAIL_AFTER_COMMIT"] = (
            10**6 if mode == "lost_answers" else 0
        )
        # Accepted transfers stay processing for a moment of real time, then pay out.
        self.app.config["PROVIDER_PROCESSING_SECONDS"] = 0.2 if mode == "processing" else 0

    @rule(w=st.integers(0, 3))
    def late_answer_lands(self, w: int) -> None:
        """The provider's late answer: a transfer lands for a payout that reconciles."""
        wid = self._pick(w)
        with self.app.app_context():
            row = db.session.scalar(
                select(Payout).where(Payout.workflow_id == wid, Payout.status == "reconciling")
            )
            if row is None:
                return
            destination = "acct_test"
            key, amount, payout_id, pid = (
                row.idempotency_key,
                row.amount_cents,
                row.id,
                row.practitioner_id,
            )
        saved = self.app.config["PROVIDER_FAILURE_PERCENT"]
        self.app.config["PROVIDER_FAILURE_PERCENT"] = 0
        with self.app.app_context():
            payment_provider.transfer(
                idempotency_key=key,
                destination=destination,
                amount_cents=amount,
                currency="USD",
                payout_id=payout_id,
                payee_id=pid,
            )
        self.app.config["PROVIDER_FAILURE_PERCENT"] = saved

    @rule(d=st.integers(0, 1))
    def batch(self, d: int) -> None:
        inp = BatchPayoutInput(
            min_amount_cents=1_000,
            requested_by="schedule:state-machine",
            practitioner_ids=list(self.practitioners),
            payout_date=self.days[d],
            approval_threshold_cents=10**8,
            dual_approval_threshold_cents=10**8,
            approval_timeout_seconds=3 * 24 * 3600,
        )

        async def go() -> None:
            # A batch reports refused children in its result; it does not fail for them.
            await self.h.client.execute_workflow(
                BatchPractitionerPayoutWorkflow.run,
                inp,
                id=f"payments-batch-payout-{uuid.uuid4().hex[:10]}",
                task_queue=f"{self.h.prefix}payments",
                search_attributes=run_attributes("payments", "payout_batch", "all", "sm"),
            )

        self.h.call(go(), 120)
        self.settle()

    @rule()
    def sweep(self) -> None:
        self.h.call(
            self.h.client.execute_workflow(
                PayoutSweepWorkflow.run,
                PayoutSweepInput(requested_by="sm", min_closed_seconds=0),
                id=f"payments-payout-sweep-{uuid.uuid4().hex[:10]}",
                task_queue=f"{self.h.prefix}payments",
                search_attributes=run_attributes("payments", "payout_sweep", "all", "sm"),
            ),
            120,
        )
        self.settle()

    @rule()
    def reconcile(self) -> None:
        self.h.call(
            self.h.client.execute_workflow(
                PayoutReconciliationWorkflow.run,
                PayoutReconciliationInput(requested_by="sm"),
                id=f"payments-payout-reconciliation-{uuid.uuid4().hex[:10]}",
                task_queue=f"{self.h.prefix}payments",
                search_attributes=run_attributes("payments", "payout_reconciliation", "all", "sm"),
            ),
            120,
        )
        self.settle()
        self.reconciled = True

    # --- invariants ----------------------------------------------------------------------------

    def _rows(self) -> tuple[list[Payout], list[Transfer], list[PayoutApproval]]:
        payouts_ = list(db.session.scalars(select(Payout)))
        transfers = list(db.session.scalars(select(Transfer)))
        decisions = list(db.session.scalars(select(PayoutApproval)))
        return payouts_, transfers, decisions

    @invariant()
    def money_is_right(self) -> None:
        """Checked at rest. The ledger and the payouts are read in separate statements,
        so a workflow that moves on right after a step (a decision it just took) can
        make one look inconsistent for a moment: a failing check is checked again once
        the runs have settled; a real break stays broken and fails."""
        if not self.practitioners:
            return
        for attempt in range(5):
            try:
                self._check_money()
                break
            except AssertionError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
                self.settle()
        self.reconciled = False

    def _check_money(self) -> None:
        with self.app.app_context():
            rows, transfers, decisions = self._rows()
            by_id = {p.id: p for p in rows}
            by_key = {p.idempotency_key: p for p in rows}
            sent: dict[int, int] = defaultdict(int)
            for t in transfers:
                payout = by_key.get(t.idempotency_key)
                assert payout is not None and payout.id == t.payout_id, "orphan transfer"
                assert payout.status not in payouts.CLOSED_WITHOUT_PAYMENT, (
                    f"transfer for payout {payout.id} which is {payout.status}"
                )
                assert t.amount_cents == payout.amount_cents
                sent[payout.practitioner_id] += t.amount_cents
            for pid in self.practitioners:
                assert sent[pid] <= self.earned[pid], "sent more than earned"
                open_sum = sum(
                    p.amount_cents
                    for p in rows
                    if p.practitioner_id == pid and p.status in payouts.OPEN
                )
                assert ledger.balance(ledger.held_account(pid)) == open_sum, "holds != open"
                assert ledger.balance(ledger.available_account(pid)) >= 0
            for p in rows:
                if p.status == "paid":
                    assert p.idempotency_key in {t.idempotency_key for t in transfers}
            for d in decisions:
                payout = by_id[d.payout_id]
                assert not approval_rules.same_person(d.approver, payout.requested_by), (
                    "a requester decided their own payout"
                )
            rejected = {d.payout_id for d in decisions if d.decision == "reject"}
            for pid_ in rejected:
                payout = by_id[pid_]
                assert payout.status != "paid", "a rejected payout paid"
                assert payout.idempotency_key not in {t.idempotency_key for t in transfers}
            check = ledger.check()
            assert check.ok, check.unbalanced_keys
            paid_out = sum(
                t.amount_cents for t in transfers if by_key[t.idempotency_key].status == "paid"
            )
            assert ledger.balance(ledger.EXTERNAL_PAYOUTS) == paid_out
            if self.reconciled:
                # Right after a reconciliation, the provider's paid total is the ledger's.
                provider_paid = sum(
                    t.amount_cents
                    for t in transfers
                    if payment_provider.transfer_status(t) == "paid"
                )
                assert ledger.balance(ledger.EXTERNAL_PAYOUTS) == provider_paid


def test_the_payout_lifecycle_keeps_money_right(app, database_url):
    app.config["PAYOUT_APPROVAL_THRESHOLD_CENTS"] = 10**8
    app.config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"] = 10**8
    app.config["PAYOUT_SETTLE_WINDOW_SECONDS"] = 12 * 3600
    harness = Harness(app)
    PayoutLifecycle.harness = harness
    PayoutLifecycle.database_url = database_url
    try:
        run_state_machine_as_test(
            PayoutLifecycle,
            settings=settings(
                max_examples=10,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            ),
        )
    finally:
        harness.close()
