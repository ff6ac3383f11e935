"""The settlement steps of PractitionerPayoutWorkflow: transfer, reconciliation of an
unknown outcome, failure, paid, notification and the result.

Workflow code (the sandbox re-imports it): `PayoutSettlement` is a base of
`PractitionerPayoutWorkflow` (workers/payments/payout_workflow.py), whose `__init__` sets
the state these methods use.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from estuary.contracts import policies
from estuary.contracts.failures import innermost_message
from estuary.contracts.payments import (
    CheckPayoutTransferInput,
    CheckPayoutTransferResult,
    ClosePayoutInput,
    ClosePayoutResult,
    MarkReconcilingInput,
    NotifyPayoutInput,
    PayoutPolicy,
    PayoutPolicyInput,
    PayoutRecord,
    PractitionerPayoutResult,
    SetPayoutStatusInput,
    TransferPayoutInput,
    TransferPayoutResult,
)
from workers.payments.workflow_support import known_not_sent
from workers.temporal.base_workflows import BaseWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.payments.activities as activities

# Runs started with this patch leave marking the payout `processing` to transfer_payout
# (committed before the provider is called, as the separate activity did): one activity
# and one workflow task fewer per payout. Runs whose `create_payout` result says
# `transfer_marks_processing` (every run since) take that path without asking the patch,
# so they record neither its marker nor the upsert of `TemporalChangeVersion` that comes
# with it; the patch still tells the runs recorded before apart (with or without its
# marker), so both still replay.
TRANSFER_MARKS_PROCESSING_PATCH = "payout-transfer-marks-processing"

# The first look at the provider after an unknown outcome (a bank transfer the provider
# accepted takes minutes to pay out), and the longest gap between looks (durable timers:
# a worker restart does not lose them).
RECONCILE_FIRST_CHECK = timedelta(minutes=5)
RECONCILE_MAX_INTERVAL = timedelta(hours=1)


class PayoutSettlement(BaseWorkflow):
    """From the transfer to the end of the run. State set by the workflow's `__init__`."""

    _record: PayoutRecord | None
    _approvals: list[dict]
    _rejection: dict | None
    _stage: str
    _steps_done: list[str]
    _deadline: datetime | None
    _provider_reference: str | None
    _failure: str | None
    _reconciling: bool
    _final: str | None

    async def _transfer(self) -> PractitionerPayoutResult:
        record = self._record
        assert record is not None
        self._stage = "transferring"
        if not (
            record.transfer_marks_processing or workflow.patched(TRANSFER_MARKS_PROCESSING_PATCH)
        ):
            # Runs started before the patch marked the payout processing in an activity
            # of its own; transfer_payout now does it first, in its own commit.
            await self.execute_activity(
                activities.set_payout_status,
                SetPayoutStatusInput(record.payout_id, "processing"),
                policy=policies.DATABASE,
            )
        sent: TransferPayoutResult | None = None
        transfer = workflow.start_activity(
            activities.transfer_payout,
            TransferPayoutInput(record.payout_id),
            start_to_close_timeout=policies.PAYOUT_TRANSFER.start_to_close,
            retry_policy=policies.PAYOUT_TRANSFER.retry,
        )
        try:
            try:
                # Shielded: cancelling the run must not abandon a transfer in flight.
                sent = await asyncio.shield(transfer)
            except asyncio.CancelledError:
                self._steps_done.append("cancel requested during the transfer: finishing it")
                sent = await transfer
        except ActivityError as err:
            self._failure = innermost_message(err)
            if not known_not_sent(err):
                return await self._reconcile(f"transfer outcome unknown: {self._failure}")
            return await self._fail(err)
        if sent.status != "paid":
            return await self._reconcile("the provider accepted the transfer and is processing it")
        self._provider_reference = sent.provider_reference
        return await self._paid()

    async def _fail(self, err: BaseException) -> PractitionerPayoutResult:
        """The provider refused the transfer for good: nothing left; return the hold."""
        record = self._record
        assert record is not None
        self._stage = "transfer failed: returning the hold"
        closed: ClosePayoutResult = await self.execute_activity(
            activities.close_unpaid_payout,
            ClosePayoutInput(record.payout_id, "failed", self._failure or ""),
            policy=policies.DATABASE,
        )
        if closed.status == "paid":
            # The provider had paid it after all (its answers were lost): it is paid.
            self._provider_reference = closed.provider_reference
            self._failure = None
            return await self._paid()
        if closed.status == "reconciling":
            return await self._reconcile("the provider has a transfer for this payout")
        self._steps_done.append(
            f"transfer failed ({self._failure}); hold of {closed.released_cents} cents returned"
        )
        await self._notify("failed")
        self._stage = "done"
        self._final = "failed"
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(
            f"payout {record.payout_id} failed: {self._failure}; the hold of "
            f"{closed.released_cents} cents was returned to the available balance",
            type="PayoutFailed",
            non_retryable=True,
        ) from err

    async def _reconcile(self, why: str) -> PractitionerPayoutResult:
        """The transfer's outcome is unknown: never "not paid". Keep the hold and ask the
        provider by idempotency key (durable timers, backing off) until the settle
        window has passed; then decide from the provider's answer."""
        record = self._record
        assert record is not None
        deadline = await self._start_reconciling(record, why)
        delay = RECONCILE_FIRST_CHECK
        while True:
            give_up = workflow.now() >= deadline
            check: CheckPayoutTransferResult = await self.execute_activity(
                activities.check_payout_transfer,
                CheckPayoutTransferInput(record.payout_id, give_up=give_up),
                policy=policies.DATABASE,
            )
            if check.outcome == "paid":
                return await self._provider_paid(check)
            if check.outcome == "not_paid":
                return await self._provider_not_paid(record, check)
            if check.outcome == "in_doubt":
                return await self._left_in_doubt(check)
            if check.outcome == "missing":
                resent = await self._resend(record.payout_id)
                if resent == "paid":
                    continue  # the next look settles it
                if resent == "refused":
                    self._reconciling = False
                    return await self._fail(
                        ApplicationError(self._failure or "refused", type="ProviderDeclined")
                    )
            left = deadline - workflow.now()
            if left <= timedelta(0):
                continue
            await workflow.sleep(min(delay, left))
            delay = min(delay * 2, RECONCILE_MAX_INTERVAL)

    async def _start_reconciling(self, record: PayoutRecord, why: str) -> datetime:
        """Mark the payout reconciling (the hold stays) and set the settle deadline."""
        self._reconciling = True
        await self.execute_activity(
            activities.mark_payout_reconciling,
            MarkReconcilingInput(record.payout_id, why),
            policy=policies.DATABASE,
        )
        # Named only once the payout row says so too (the console and tests read both).
        self._stage = "reconciling with the provider"
        self._steps_done.append(f"reconciling: {why}; the hold stays")
        policy: PayoutPolicy = await self.execute_activity(
            activities.load_payout_policy,
            PayoutPolicyInput(record.practitioner_id),
            policy=policies.DATABASE,
        )
        deadline = workflow.now() + timedelta(seconds=policy.settle_window_seconds)
        self._deadline = deadline
        return deadline

    async def _provider_paid(self, check: CheckPayoutTransferResult) -> PractitionerPayoutResult:
        self._reconciling = False
        self._provider_reference = check.provider_reference
        self._failure = None
        self._steps_done.append(f"the provider confirms it paid ({check.provider_reference})")
        return await self._paid()

    async def _provider_not_paid(
        self, record: PayoutRecord, check: CheckPayoutTransferResult
    ) -> PractitionerPayoutResult:
        """No transfer at the provider after the settle window: the hold was returned."""
        self._reconciling = False
        self._steps_done.append(
            "the provider has no transfer after the settle window: "
            f"hold of {check.released_cents} cents returned"
        )
        await self._notify("failed")
        self._stage = "done"
        self._final = "failed"
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(
            f"payout {record.payout_id} failed: the provider has no transfer for it "
            f"after the settle window; the hold of {check.released_cents} cents was "
            "returned to the available balance",
            type="PayoutFailed",
            non_retryable=True,
        )

    async def _left_in_doubt(self, check: CheckPayoutTransferResult) -> PractitionerPayoutResult:
        self._steps_done.append(
            f"still in doubt after the settle window ({check.provider_reference}): "
            "left reconciling with its hold, flagged to ops"
        )
        self._stage = "done"
        self._final = "reconciling"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("reconciling")

    async def _resend(self, payout_id: int) -> str:
        """Send again under the same key (the provider has no record of it): paid /
        unknown (still no answer) / refused (the provider declined for good)."""
        try:
            sent: TransferPayoutResult = await self.execute_activity(
                activities.transfer_payout,
                TransferPayoutInput(payout_id),
                policy=policies.PAYOUT_TRANSFER_RESEND,
            )
        except ActivityError as err:
            if known_not_sent(err):
                self._failure = innermost_message(err)
                return "refused"
            return "unknown"
        return "paid" if sent.status == "paid" else "unknown"

    async def _paid(self) -> PractitionerPayoutResult:
        self._steps_done.append(f"transferred ({self._provider_reference})")
        await self._notify("paid")
        self._stage = "done"
        self._final = "paid"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result("paid")

    async def _notify(self, event: str) -> None:
        assert self._record is not None
        await self.execute_activity(
            activities.notify_payout,
            NotifyPayoutInput(self._record.payout_id, event),
            policy=policies.NOTIFICATION,
        )
        self._steps_done.append(f"practitioner notified ({event})")

    def _result(self, status: str) -> PractitionerPayoutResult:
        record = self._record
        assert record is not None
        return PractitionerPayoutResult(
            payout_id=record.payout_id,
            practitioner_id=record.practitioner_id,
            amount_cents=record.amount_cents,
            status=status,
            idempotency_key=record.idempotency_key,
            approvals=[a["actor"] for a in self._approvals],
            provider_reference=self._provider_reference,
            reason_code=self._rejection["reason_code"] if self._rejection else None,
        )
