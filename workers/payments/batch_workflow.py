"""BatchPractitionerPayoutWorkflow: every practitioner owed at least the minimum, one payout
child each.

Deterministic code only: the workflow sandbox re-imports this module for every new run, so it
holds one workflow (or a small family) and imports only modules passed through the sandbox
(workers.temporal.worker.WORKFLOW_PASSTHROUGH_MODULES) besides its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

from estuary.contracts import policies
from estuary.contracts.failures import innermost_message
from estuary.contracts.payments import (
    BATCH_LINE_LIMIT,
    BatchPayoutInput,
    BatchPayoutLine,
    BatchPayoutResult,
    PayoutCandidate,
    PayoutCandidatePage,
    PayoutPolicy,
    PayoutPolicyInput,
    PayoutWaitingSignal,
    PractitionerPayoutInput,
    PractitionerPayoutResult,
    SelectPayoutCandidatesInput,
    payout_workflow_id,
    policy_given,
)
from estuary.contracts.search_attributes import TRIGGERED_BY
from workers.payments.payout_workflow import PractitionerPayoutWorkflow
from workers.payments.workflow_support import refuse_bad_input
from workers.temporal.base_workflows import BaseWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.payments.activities as activities

# Runs started with this patch keep a sliding window of `chunk_size` payouts in flight (the
# next starts as soon as one ends, the next page is read while they run) instead of
# starting a chunk and waiting for all of it; earlier runs replay the chunked path.
SLIDING_WINDOW_PATCH = "batch-sliding-window"


PayoutFor = Callable[[PayoutCandidate], tuple[str, PractitionerPayoutInput]]


def _child_payouts(
    inp: BatchPayoutInput, payout_date: str, requester: str, threshold: int, dual: int, timeout: int
) -> PayoutFor:
    """How each candidate's child payout run is named and what it is given: the same
    terms for the whole batch."""

    def payout_for(c: PayoutCandidate) -> tuple[str, PractitionerPayoutInput]:
        return payout_workflow_id(c.practitioner_id, payout_date), PractitionerPayoutInput(
            practitioner_id=c.practitioner_id,
            amount_cents=c.available_cents,
            requested_by=requester,
            reason=f"batch {workflow.info().workflow_id}",
            payment_method=inp.payment_method,
            approval_threshold_cents=threshold,
            dual_approval_threshold_cents=dual,
            approval_timeout_seconds=timeout,
        )

    return payout_for


def _waiting_line(c: PayoutCandidate, child_id: str) -> BatchPayoutLine:
    return BatchPayoutLine(
        c.practitioner_id,
        c.available_cents,
        "waiting_for_approval",
        "needs approval; the batch does not wait for it",
        child_id,
    )


def _outcome_line(
    c: PayoutCandidate, child_id: str, outcome: PractitionerPayoutResult | BaseException
) -> BatchPayoutLine:
    """The summary line of a payout run that ended: its result, or why it failed."""
    if isinstance(outcome, BaseException):
        return BatchPayoutLine(
            c.practitioner_id, c.available_cents, "failed", innermost_message(outcome), child_id
        )
    status = outcome.status if outcome.status == "paid" else "failed"
    return BatchPayoutLine(
        c.practitioner_id, outcome.amount_cents, status, outcome.status, child_id
    )


@workflow.defn
class BatchPractitionerPayoutWorkflow(BaseWorkflow):
    """Children below the approval threshold are awaited (paid or failed); children that
    need approval are started and left to wait for their approvers (ParentClosePolicy
    ABANDON). The summary counts outcomes, not intentions: a child that needs approval
    counts as waiting_for_approval only once it has told the batch it waits (signal
    `payout_waiting`, sent after its payout and hold exist); one that ended first counts
    by how it ended (failed, paid, ...).
    A practitioner who already has a payout run today (same child id) is skipped.

    At most `chunk_size` payouts are in flight: each slot is refilled as its payout ends
    (or says it waits for approval), so a slow payout holds up only itself. Before
    continuing as new the batch lets the payouts in flight end (their outcomes belong to
    this run's summary)."""

    @workflow.init
    def __init__(self, inp: BatchPayoutInput) -> None:
        self._inp = inp
        self._result = inp.carried or BatchPayoutResult(dry_run=inp.dry_run)
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._cursor = inp.cursor
        self._in_flight = 0
        self._windowed = False
        self._followers: list[asyncio.Task] = []
        self._waiting_children: set[str] = set()

    @workflow.signal
    def payout_waiting(self, signal: PayoutWaitingSignal) -> None:
        self._waiting_children.add(signal.workflow_id)

    @workflow.query
    def progress(self) -> dict:
        r = self._result
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done[-20:]),
            "waiting_for": (
                (
                    f"{self._in_flight} payouts in flight"
                    if self._windowed
                    else f"{self._in_flight} payouts in this chunk"
                )
                if self._in_flight
                else None
            ),
            "in_flight": self._in_flight,
            "waiting_until": None,
            "dry_run": self._inp.dry_run,
            "cursor": self._cursor,
            "run": r.runs,
            "paid": {"count": r.paid_count, "cents": r.paid_cents},
            "waiting_for_approval": {
                "count": r.waiting_for_approval_count,
                "cents": r.waiting_for_approval_cents,
            },
            "skipped": {"count": r.skipped_count, "cents": r.skipped_cents},
            "failed": {"count": r.failed_count, "cents": r.failed_cents},
            "would_pay": {"count": r.would_pay_count, "cents": r.would_pay_cents},
        }

    def _line(self, line: BatchPayoutLine) -> None:
        r = self._result
        if len(r.lines) < BATCH_LINE_LIMIT:
            r.lines.append(line)
        else:
            r.lines_truncated = True
        counters = {
            "paid": ("paid_count", "paid_cents"),
            "waiting_for_approval": ("waiting_for_approval_count", "waiting_for_approval_cents"),
            "skipped": ("skipped_count", "skipped_cents"),
            "failed": ("failed_count", "failed_cents"),
            "would_pay": ("would_pay_count", "would_pay_cents"),
        }
        count_name, cents_name = counters[line.outcome]
        setattr(r, count_name, getattr(r, count_name) + 1)
        setattr(r, cents_name, getattr(r, cents_name) + line.amount_cents)

    @workflow.run
    async def run(self, inp: BatchPayoutInput) -> BatchPayoutResult:
        refuse_bad_input(inp)
        self._windowed = workflow.patched(SLIDING_WINDOW_PATCH)
        payout_date = inp.payout_date or workflow.now().strftime("%Y%m%d")
        threshold, dual, timeout = await self._policy(inp)
        triggered = workflow.info().typed_search_attributes.get(TRIGGERED_BY)
        requester = (inp.requested_by or triggered or "schedule").strip()

        payout_for = _child_payouts(inp, payout_date, requester, threshold, dual, timeout)
        handled = 0
        while True:
            self._stage = f"selecting practitioners after id {self._cursor}"
            page: PayoutCandidatePage = await self.execute_activity(
                activities.select_payout_candidates,
                SelectPayoutCandidatesInput(
                    min_amount_cents=inp.min_amount_cents,
                    after_practitioner_id=self._cursor,
                    limit=inp.chunk_size,
                    practitioner_ids=inp.practitioner_ids,
                    payout_date=payout_date,
                ),
                policy=policies.BATCH,
            )
            await self._handle_page(inp, page, threshold, payout_for)
            self._cursor = page.next_cursor
            handled += len(page.candidates) + len(page.skipped)
            self._steps_done.append(
                f"chunk up to practitioner {self._cursor}: {len(page.candidates)} candidates, "
                f"{len(page.skipped)} skipped"
            )
            if page.exhausted:
                break
            if (
                handled >= min(inp.items_per_run, policies.CONTINUE_AS_NEW_AFTER_ITEMS)
                or workflow.info().is_continue_as_new_suggested()
            ):
                await self._continue_as_new(
                    inp,
                    payout_date=payout_date,
                    requested_by=requester,
                    approval_threshold_cents=threshold,
                    dual_approval_threshold_cents=dual,
                    approval_timeout_seconds=timeout,
                )
        await self._drain("finishing")
        self._stage = "done"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    async def _handle_page(
        self,
        inp: BatchPayoutInput,
        page: PayoutCandidatePage,
        threshold: int,
        payout_for: PayoutFor,
    ) -> None:
        """Record the page's skipped lines; pay (or, dry run, list) its candidates."""
        for line in page.skipped:
            self._line(line)
        if inp.dry_run:
            for c in page.candidates:
                self._line(BatchPayoutLine(c.practitioner_id, c.available_cents, "would_pay"))
        elif page.candidates and self._windowed:
            await self._start_in_window(page.candidates, inp.chunk_size, threshold, payout_for)
        elif page.candidates:
            await self._pay_chunk(page.candidates, threshold, payout_for)

    async def _continue_as_new(self, inp: BatchPayoutInput, **fixed: object) -> None:
        """Let this run's payouts finish, then continue as new from the cursor with the
        carried result and the values this run fixed (date, requester, policy)."""
        await self._drain("continuing as new")
        self._stage = "continuing as new"
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._result.runs += 1
        workflow.continue_as_new(
            dataclasses.replace(inp, cursor=self._cursor, carried=self._result, **fixed)
        )

    async def _drain(self, then: str) -> None:
        """Wait until every payout this run started has an outcome (windowed runs)."""
        if not self._followers:
            return
        self._stage = f"{then}: waiting for {self._in_flight} payouts in flight"
        followers, self._followers = self._followers, []
        # Re-raises a bug in _pay_one instead of losing it with its task.
        await asyncio.gather(*followers)

    async def _start_in_window(
        self,
        candidates: list[PayoutCandidate],
        window: int,
        threshold: int,
        payout_for: PayoutFor,
    ) -> None:
        """Start a payout for each candidate as soon as a slot of the window is free."""
        for c in candidates:
            if self._in_flight >= window:
                self._stage = f"paying: {self._in_flight} payouts in flight"
                await workflow.wait_condition(lambda: self._in_flight < window)
            self._in_flight += 1
            child_id, child_input = payout_for(c)
            self._followers.append(
                asyncio.ensure_future(
                    self._pay_one(c, child_id, child_input, c.available_cents >= threshold)
                )
            )
        self._stage = f"paying: {self._in_flight} payouts in flight"

    async def _start_payout(
        self, c: PayoutCandidate, child_id: str, child_input: PractitionerPayoutInput
    ) -> workflow.ChildWorkflowHandle | None:
        """Start one practitioner's payout run; None (and a "skipped" line) when a payout
        for them already ran or runs today under the same id."""
        try:
            return await workflow.start_child_workflow(
                PractitionerPayoutWorkflow.run,
                child_input,
                id=child_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=policies.MONEY_ID_REUSE,
                search_attributes=self.child_search_attributes("practitioner", c.practitioner_id),
            )
        except WorkflowAlreadyStartedError:
            self._line(
                BatchPayoutLine(
                    c.practitioner_id,
                    c.available_cents,
                    "skipped",
                    "a payout for this practitioner already ran or runs today",
                    child_id,
                )
            )
            return None

    async def _pay_one(
        self,
        c: PayoutCandidate,
        child_id: str,
        child_input: PractitionerPayoutInput,
        needs_approval: bool,
    ) -> None:
        """One payout of the window, from its start to the line in the summary."""
        try:
            handle = await self._start_payout(c, child_id, child_input)
            if handle is None:
                return
            if needs_approval:
                # Counted as waiting once it says so (its payout and hold exist); one
                # that ends first counts by how it ended.
                await workflow.wait_condition(
                    lambda: child_id in self._waiting_children or handle.done()
                )
                if not handle.done():
                    self._line(_waiting_line(c, child_id))
                    return
            try:
                outcome = await handle
            except Exception as err:  # the payout failed (ChildWorkflowError)
                self._line(_outcome_line(c, child_id, err))
                return
            self._line(_outcome_line(c, child_id, outcome))
        finally:
            self._in_flight -= 1

    async def _policy(self, inp: BatchPayoutInput) -> tuple[int, int, int]:
        if inp.dry_run or policy_given(inp):
            return (
                inp.approval_threshold_cents or 0,
                inp.dual_approval_threshold_cents or 0,
                inp.approval_timeout_seconds or 0,
            )
        policy: PayoutPolicy = await self.execute_activity(
            activities.load_payout_policy, PayoutPolicyInput(), policy=policies.DATABASE
        )
        filled = policy.for_input(inp)
        return (
            filled.approval_threshold_cents,
            filled.dual_approval_threshold_cents,
            filled.approval_timeout_seconds,
        )

    async def _pay_chunk(
        self,
        candidates: list[PayoutCandidate],
        threshold: int,
        payout_for: PayoutFor,
    ) -> None:
        self._stage = f"paying {len(candidates)} practitioners"
        awaited: list[tuple[PayoutCandidate, str, workflow.ChildWorkflowHandle]] = []
        approval: list[tuple[PayoutCandidate, str, workflow.ChildWorkflowHandle]] = []
        for c in candidates:
            child_id, child_input = payout_for(c)
            handle = await self._start_payout(c, child_id, child_input)
            if handle is None:
                continue
            if c.available_cents >= threshold:
                approval.append((c, child_id, handle))
                continue
            awaited.append((c, child_id, handle))
        self._in_flight = len(awaited) + len(approval)
        outcomes = await asyncio.gather(*(h for _, _, h in awaited), return_exceptions=True)
        # A child that needs approval has either said it waits, or ended (failed before
        # its payout existed, or was decided already): count what happened.
        await workflow.wait_condition(
            lambda: all(cid in self._waiting_children or h.done() for _, cid, h in approval)
        )
        self._in_flight = 0
        for c, child_id, handle in approval:
            if not handle.done():
                self._line(_waiting_line(c, child_id))
                continue
            awaited.append((c, child_id, handle))
            outcomes.append(handle.exception() or handle.result())
        for (c, child_id, _), outcome in zip(awaited, outcomes, strict=True):
            self._line(_outcome_line(c, child_id, outcome))
