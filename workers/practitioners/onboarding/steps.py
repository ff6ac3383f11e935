"""The six onboarding steps, each waiting for its facts under the step timers.

Workflow code (the sandbox re-imports it): `OnboardingSteps` is a base of
`PractitionerOnboardingWorkflow`, whose `__init__` sets the state these methods use.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from estuary.contracts import policies
from estuary.contracts.failures import innermost_message
from estuary.contracts.payments import SubscriptionChargeInput, SubscriptionChargeResult
from estuary.contracts.practitioners import (
    TIERS,
    BackgroundCheckOutcomeInput,
    BackgroundCheckProviderInput,
    BackgroundCheckRequestInput,
    DocumentReviewInput,
    DocumentsSubmissionInput,
    FirstChargeOutcomeInput,
    OnboardingSubscriptionInput,
    ProfileCompletionInput,
    ReviewDocumentsUpdate,
    ServiceConfirmationInput,
    SubscriptionRenewalInput,
    SubscriptionSnapshot,
    background_check_workflow_id,
    subscription_workflow_id,
)
from workers.practitioners.background_check.workflows import BackgroundCheckProviderWorkflow
from workers.practitioners.onboarding.timers import OnboardingTimers
from workers.practitioners.subscription.workflows import SubscriptionRenewalWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.onboarding.activities as activities


class OnboardingSteps(OnboardingTimers):
    """profile, documents, background check, training, subscription, services."""

    async def _profile_step(self) -> bool:
        step = await self._begin_step("profile", "profile_completed signal (the practitioner)")
        if self._profile_complete_at_start:
            return True
        if not await self._wait(step, lambda: self._profile_signal is not None):
            return False
        await self.execute_activity(
            activities.complete_practitioner_profile,
            ProfileCompletionInput(self._inp.practitioner_id),
        )
        return True

    async def _documents_step(self) -> bool:
        # The round is open before the step shows as current: `_begin_step` awaits the
        # progress write, and a query or `submit_documents` in that wait must already see
        # the documents awaited (the console offers the action from the same state).
        self._docs_round += 1
        self._docs_state = "awaiting_submission"
        step = await self._begin_step("documents", "documents_submitted signal (the practitioner)")
        while True:
            if not await self._wait(step, lambda: self._docs_submission is not None):
                return False
            submission, self._docs_submission = self._docs_submission, None
            assert submission is not None
            key = f"{self._run_key}:documents:{self._docs_round}"
            document_ids = await self.execute_activity(
                activities.record_documents_submitted,
                DocumentsSubmissionInput(
                    practitioner_id=self._inp.practitioner_id,
                    submission_key=key,
                    kinds=list(submission.kinds),
                    licence_expires_on=submission.licence_expires_on or None,
                ),
            )
            self._docs_submissions.append(
                {
                    "round": self._docs_round,
                    "kinds": list(submission.kinds),
                    "document_ids": document_ids,
                    "submitted_by": submission.actor,
                    "at": workflow.now().isoformat(),
                }
            )
            self._docs_state = "in_review"
            await self._set_waiting(step, "review_documents update (ops review)", "ops")
            if not await self._wait(step, lambda: self._review is not None):
                return False
            review = await self._record_review(key)
            if review.approved:
                self._docs_state = "approved"
                return True
            self._docs_round += 1
            self._docs_state = "awaiting_submission"
            self._restart_phase(step)
            await self._set_waiting(
                step, "documents_submitted signal (new documents after a rejection)"
            )

    async def _record_review(self, key: str) -> ReviewDocumentsUpdate:
        """Record ops' review of this round's submission (`key`)."""
        review, self._review = self._review, None
        assert review is not None
        await self.execute_activity(
            activities.record_document_review,
            DocumentReviewInput(
                practitioner_id=self._inp.practitioner_id,
                submission_key=key,
                approved=review.approved,
                notes=review.notes,
                reviewer=review.actor,
                reviewed_at=workflow.now().isoformat(),
            ),
        )
        self._reviews.append(
            {
                "round": self._docs_round,
                "approved": review.approved,
                "notes": review.notes,
                "reviewer": review.actor,
                "at": workflow.now().isoformat(),
            }
        )
        return review

    async def _background_check_step(self) -> bool:
        step = await self._begin_step("background_check", "the background check to start")
        requested = await self.execute_activity(
            activities.request_background_check,
            BackgroundCheckRequestInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                idempotency_key=f"{self._run_key}:background-check",
            ),
            policy=policies.EXTERNAL_PROVIDER,
        )
        reference = requested.reference
        self._check = {
            "reference": reference,
            "provider": requested.provider,
            "requested_at": workflow.now().isoformat(),
            "result": None,
        }
        if requested.provider == "local":
            await self._start_child(
                BackgroundCheckProviderWorkflow.run,
                BackgroundCheckProviderInput(
                    practitioner_id=self._inp.practitioner_id,
                    reference=reference,
                    onboarding_workflow_id=self._workflow_id,
                    delay_seconds=requested.delay_seconds,
                ),
                workflow_id=background_check_workflow_id(reference),
                entity_type="background_check",
                entity_id=reference,
                abandon=False,
            )
            waiting_for = f"background_check_result signal for {reference} (local provider)"
            waiting_on = "provider"
        else:
            waiting_for = f"background_check_result signal for {reference} (recorded by ops)"
            waiting_on = "ops"
        await self._set_waiting(step, waiting_for, waiting_on)
        if not await self._wait(step, lambda: self._check_result is not None):
            return False
        return await self._record_check_result(reference)

    async def _record_check_result(self, reference: str) -> bool:
        """Record the signalled result; a failed check rejects the onboarding."""
        result = self._check_result
        assert result is not None
        await self.execute_activity(
            activities.record_background_check_result,
            BackgroundCheckOutcomeInput(
                reference=reference,
                passed=result.passed,
                recorded_by=result.actor,
                completed_at=workflow.now().isoformat(),
            ),
        )
        self._check["result"] = "passed" if result.passed else "failed"
        self._check["recorded_by"] = result.actor
        if not result.passed:
            self._rejection = {
                "reason": f"background check {reference} failed",
                "by": result.actor,
                "at": workflow.now().isoformat(),
            }
            return False
        return True

    async def _training_step(self) -> bool:
        step = await self._begin_step("training", self._training_waiting_for())
        while True:
            await self._record_queued_modules()
            if all(m in self._modules_done for m in self._modules):
                return True
            await self._set_waiting(step, self._training_waiting_for())
            if not await self._wait(step, lambda: bool(self._module_queue)):
                return False

    async def _subscription_step(self) -> bool:
        step = await self._begin_step(
            "subscription", f"subscription_selected signal (tier: {', '.join(TIERS)})"
        )
        current: SubscriptionSnapshot | None = None
        attempt = 0
        selections = 0
        while True:
            if not await self._wait(step, lambda: self._tier_selection is not None):
                return False
            tier, self._tier_selection = self._tier_selection, None
            assert tier is not None
            if current is None or current.tier != tier:
                selections += 1
                current = await self.execute_activity(
                    activities.create_onboarding_subscription,
                    OnboardingSubscriptionInput(
                        practitioner_id=self._inp.practitioner_id,
                        tier=tier,
                        idempotency_key=f"{self._run_key}:subscription:{selections}",
                        period_start=workflow.now().isoformat(),
                        replaces_subscription_id=current.subscription_id if current else None,
                    ),
                )
                attempt = 0
            attempt += 1
            self._subscription = self._charging(current, attempt)
            await self._set_waiting(
                step, f"the first charge of subscription {current.subscription_id}", "payments"
            )
            charge = await self._charge_first_period(current, attempt)
            paid = charge.status == "paid"
            if paid:
                break
            await self._set_waiting(
                step,
                "subscription_selected signal (the first charge was declined: "
                f"{charge.failure_reason or 'no reason given'}; select a tier to retry)",
            )
        if self._rejection is not None:
            # Rejected while the first charge was in flight: no renewals for this practitioner.
            return False
        await self._start_child(
            SubscriptionRenewalWorkflow.run,
            SubscriptionRenewalInput(subscription_id=current.subscription_id),
            workflow_id=subscription_workflow_id(current.subscription_id),
            entity_type="subscription",
            entity_id=current.subscription_id,
            abandon=True,
            id_reuse_policy=policies.MONEY_ID_REUSE,
        )
        return True

    @staticmethod
    def _charging(current: SubscriptionSnapshot, attempt: int) -> dict:
        """The `progress` entry of a first charge being attempted."""
        return {
            "subscription_id": current.subscription_id,
            "tier": current.tier,
            "amount_cents": current.price_cents,
            "period_start": current.period_start,
            "period_end": current.period_end,
            "attempt": attempt,
            "charge_status": "charging",
            "failure_reason": None,
        }

    async def _charge_first_period(
        self, current: SubscriptionSnapshot, attempt: int
    ) -> SubscriptionChargeResult:
        """Charge the first period through the payments domain and settle the outcome here."""
        charge: SubscriptionChargeResult = await self.execute_activity(
            "charge_subscription",
            SubscriptionChargeInput(
                subscription_id=current.subscription_id,
                period_start=current.period_start,
                amount_cents=current.price_cents,
                attempt=attempt,
            ),
            domain="payments",
            policy=policies.PAYMENT_PROVIDER,
            result_type=SubscriptionChargeResult,
            summary=f"first period of subscription {current.subscription_id}",
        )
        paid = charge.status == "paid"
        self._subscription["charge_status"] = charge.status
        self._subscription["charge_id"] = charge.charge_id
        self._subscription["failure_reason"] = charge.failure_reason
        await self.execute_activity(
            activities.settle_first_subscription_charge,
            FirstChargeOutcomeInput(
                subscription_id=current.subscription_id,
                paid=paid,
                failure_reason=charge.failure_reason,
                notification_key=(
                    f"{self._run_key}:subscription:{current.subscription_id}:charge:{attempt}"
                ),
            ),
        )
        return charge

    async def _services_step(self) -> bool:
        step = await self._begin_step(
            "services", "service_configured signal (at least one service)"
        )
        while True:
            while self._service_queue:
                # Dequeued only once checked, so a repeat meanwhile is seen as a duplicate.
                service_id = self._service_queue[0]
                try:
                    await self.execute_activity(
                        activities.confirm_onboarding_service,
                        ServiceConfirmationInput(self._inp.practitioner_id, service_id),
                    )
                except ActivityError as exc:
                    self._ignore("service_configured", innermost_message(exc))
                else:
                    self._services.append(service_id)
                self._service_queue.pop(0)
            if self._services:
                return True
            if not await self._wait(step, lambda: bool(self._service_queue)):
                return False
