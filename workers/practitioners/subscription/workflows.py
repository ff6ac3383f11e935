"""SubscriptionRenewalWorkflow: reminders before period end, the renewal charge through
the payments domain, dunning, expiry; continues as new for each period.

Deterministic code only: the sandbox re-imports this module.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.payments import SubscriptionChargeInput, SubscriptionChargeResult
from estuary.contracts.practitioners import (
    RENEWAL_REMINDER_DAYS,
    CancellationRequestInput,
    CancelSubscriptionSignal,
    PeriodSettlementInput,
    RenewalReminderInput,
    RetryNowUpdate,
    SubscriptionEndInput,
    SubscriptionNoticeInput,
    SubscriptionRefInput,
    SubscriptionRenewalInput,
    SubscriptionRenewalResult,
    SubscriptionSnapshot,
    WaiveChargeUpdate,
)
from workers.temporal.base_workflows import BaseWorkflow, require_text

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.subscription.activities as activities


@workflow.defn
class SubscriptionRenewalWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: SubscriptionRenewalInput) -> None:
        self._inp = inp
        self._stage = "loading"
        self._steps_done: list[str] = []
        self._waiting_for: str | None = None
        self._waiting_until: str | None = None
        self._sub: SubscriptionSnapshot | None = None
        self._reminders: list[dict] = []
        self._charges: list[dict] = []
        self._cancel: dict | None = None
        self._retry_now: dict | None = None
        self._waiver: dict | None = None
        self._dunning = False
        self._outcome: str | None = None

    @workflow.run
    async def run(self, inp: SubscriptionRenewalInput) -> SubscriptionRenewalResult:
        sub = await self.execute_activity(
            activities.load_subscription, SubscriptionRefInput(inp.subscription_id)
        )
        self._sub = sub
        if sub.status in ("expired", "cancelled"):
            self._stage = self._outcome = "not_renewable"
            return SubscriptionRenewalResult(
                subscription_id=sub.subscription_id,
                outcome="not_renewable",
                period_start=sub.period_start,
                reason=f"the subscription is {sub.status}",
            )
        if sub.cancel_at_period_end and self._cancel is None:
            self._cancel = {"by": "subscription", "reason": "cancellation recorded", "at": None}
        period_end = datetime.fromisoformat(sub.period_end)
        self._steps_done.append("loaded")

        await self._send_reminders(sub, period_end)

        self._stage = "waiting_for_period_end"
        delay = period_end - workflow.now()
        if delay > timedelta(0):
            self._waiting_for = "the end of the period"
            self._waiting_until = sub.period_end
            # A cancellation does not shorten the period the practitioner paid for.
            await workflow.sleep(delay)
        if self._cancel is not None:
            return await self._end("cancelled", self._cancel.get("reason") or "cancelled")

        collected = await self._collect(sub, inp.dunning_retries)
        if isinstance(collected, SubscriptionRenewalResult):
            return collected
        how, actor, reason = collected

        self._stage = "settling"
        self._waiting_for = self._waiting_until = None
        await self.execute_activity(
            activities.settle_subscription_period,
            PeriodSettlementInput(
                subscription_id=sub.subscription_id,
                paid_period_start=sub.period_end,
                how=how,
                actor=actor,
                reason=reason,
            ),
        )
        self._steps_done.append(how)
        self._stage = "continuing_as_new"
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            SubscriptionRenewalInput(
                subscription_id=inp.subscription_id, dunning_retries=inp.dunning_retries
            )
        )

    async def _send_reminders(self, sub: SubscriptionSnapshot, period_end: datetime) -> None:
        """The renewal reminders before period end (none once a cancellation is recorded)."""
        self._stage = "reminding"
        for days in RENEWAL_REMINDER_DAYS:
            if self._cancel is not None:
                break
            due = period_end - timedelta(days=days)
            # Each timer is computed from the workflow's clock when it is set.
            delay = due - workflow.now()
            if delay <= timedelta(0):
                self._reminders.append(
                    {
                        "days_before": days,
                        "due_at": due.isoformat(),
                        "sent_at": None,
                        "skipped": "its time had passed when this period's run started",
                    }
                )
                continue
            self._waiting_for = f"the renewal reminder {days} days before period end"
            self._waiting_until = due.isoformat()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._cancel is not None,
                    timeout=delay,
                    timeout_summary=f"renewal reminder {days} days before period end",
                )
            if self._cancel is not None:
                break
            sent_at = workflow.now()
            await self.execute_activity(
                activities.send_renewal_reminder,
                RenewalReminderInput(
                    sub.subscription_id, sub.period_end, days, sent_at.isoformat()
                ),
                policy=policies.NOTIFICATION,
            )
            self._reminders.append(
                {"days_before": days, "due_at": due.isoformat(), "sent_at": sent_at.isoformat()}
            )
        self._steps_done.append("reminders")

    async def _collect(
        self, sub: SubscriptionSnapshot, dunning_retries: int
    ) -> tuple[str, str | None, str | None] | SubscriptionRenewalResult:
        """Charge the period, with dunning retries: (how, actor, reason) once paid or waived,
        else the run's end (expired or cancelled)."""
        attempt = 0
        while True:
            attempt += 1
            self._stage = "charging"
            charge = await self._charge(sub, attempt)
            if charge.status == "paid":
                return "paid", None, None
            await self.execute_activity(
                activities.mark_subscription_past_due,
                SubscriptionNoticeInput(
                    sub.subscription_id, sub.period_end, attempt, charge.failure_reason
                ),
            )
            if attempt > dunning_retries:
                return await self._end(
                    "expired",
                    f"unpaid after {attempt} attempts ({charge.failure_reason or 'declined'})",
                )
            self._stage = "dunning"
            self._dunning = True
            retry_at = workflow.now() + timedelta(days=1)
            self._waiting_for = (
                f"dunning retry {attempt} of {dunning_retries} (or ops retry_now / waive)"
            )
            self._waiting_until = retry_at.isoformat()
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: (
                        self._retry_now is not None
                        or self._waiver is not None
                        or self._cancel is not None
                    ),
                    timeout=timedelta(days=1),
                    timeout_summary=f"dunning retry {attempt}",
                )
            self._dunning = False
            if self._waiver is not None:
                return "waived", self._waiver["by"], self._waiver["reason"]
            if self._cancel is not None:
                return await self._end("cancelled", self._cancel.get("reason") or "cancelled")
            self._retry_now = None

    async def _charge(self, sub: SubscriptionSnapshot, attempt: int) -> SubscriptionChargeResult:
        self._waiting_for = f"charge attempt {attempt} for the period from {sub.period_end}"
        self._waiting_until = None
        result: SubscriptionChargeResult = await self.execute_activity(
            "charge_subscription",
            SubscriptionChargeInput(
                subscription_id=sub.subscription_id,
                period_start=sub.period_end,  # the renewal pays the next period
                amount_cents=sub.price_cents,
                attempt=attempt,
            ),
            domain="payments",
            policy=policies.PAYMENT_PROVIDER,
            result_type=SubscriptionChargeResult,
            summary=f"renewal of subscription {sub.subscription_id}, attempt {attempt}",
        )
        self._charges.append(
            {
                "attempt": attempt,
                "at": workflow.now().isoformat(),
                "status": result.status,
                "charge_id": result.charge_id,
                "failure_reason": result.failure_reason,
            }
        )
        return result

    async def _end(self, outcome: str, reason: str) -> SubscriptionRenewalResult:
        assert self._sub is not None
        self._stage = self._outcome = outcome
        self._waiting_for = self._waiting_until = None
        actor = self._cancel.get("by") if outcome == "cancelled" and self._cancel else None
        await self.execute_activity(
            activities.end_subscription,
            SubscriptionEndInput(self._sub.subscription_id, outcome, reason, actor),
        )
        self._steps_done.append(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SubscriptionRenewalResult(
            subscription_id=self._sub.subscription_id,
            outcome=outcome,
            period_start=self._sub.period_start,
            reason=reason,
        )

    @workflow.signal(name="cancel")
    async def cancel(self, arg: CancelSubscriptionSignal) -> None:
        if self._cancel is not None or self._outcome is not None:
            return
        self._cancel = {
            "by": arg.actor,
            "reason": arg.reason or "cancelled",
            "at": workflow.now().isoformat(),
        }
        await self.execute_activity(
            activities.request_subscription_cancellation,
            CancellationRequestInput(self._inp.subscription_id, arg.actor, arg.reason),
        )

    def _check_dunning(self) -> None:
        if not self._dunning:
            raise ValueError("no failed renewal charge is waiting for a retry")
        if self._retry_now is not None or self._waiver is not None:
            raise ValueError("a retry or a waiver is already under way")

    @workflow.update(name="retry_now")
    async def retry_now(self, arg: RetryNowUpdate) -> dict:
        self._retry_now = {"by": arg.actor, "note": arg.note, "at": workflow.now().isoformat()}
        return {"retrying": True}

    @retry_now.validator
    def _validate_retry_now(self, arg: RetryNowUpdate) -> None:
        self._check_dunning()
        require_text(arg.actor, "actor is required")

    @workflow.update(name="waive")
    async def waive(self, arg: WaiveChargeUpdate) -> dict:
        self._waiver = {"by": arg.actor, "reason": arg.reason, "at": workflow.now().isoformat()}
        return {"waived": True}

    @waive.validator
    def _validate_waive(self, arg: WaiveChargeUpdate) -> None:
        self._check_dunning()
        require_text(arg.reason, "reason is required to waive a charge")
        require_text(arg.actor, "actor is required")

    @workflow.query
    def progress(self) -> dict:
        sub = self._sub
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done),
            "waiting_for": self._waiting_for,
            "waiting_until": self._waiting_until,
            "subscription_id": self._inp.subscription_id,
            "tier": sub.tier if sub else None,
            "price_cents": sub.price_cents if sub else None,
            "period_start": sub.period_start if sub else None,
            "period_end": sub.period_end if sub else None,
            "charging_period_start": sub.period_end if sub else None,
            "reminders": list(self._reminders),
            "charges": list(self._charges),
            "dunning": self._dunning,
            "dunning_retries": self._inp.dunning_retries,
            "cancel_requested": dict(self._cancel) if self._cancel else None,
            "waiver": dict(self._waiver) if self._waiver else None,
            "outcome": self._outcome,
        }
