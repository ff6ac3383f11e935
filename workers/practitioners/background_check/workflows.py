"""BackgroundCheckProviderWorkflow: the local background-check provider, which answers the
onboarding by signal after a delay (see estuary/services/background_checks.py).

Deterministic code only: the sandbox re-imports this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.practitioners import (
    BackgroundCheckProviderInput,
    BackgroundCheckProviderResult,
    BackgroundCheckResultSignal,
    LocalBackgroundCheckInput,
)
from workers.temporal.base_workflows import BaseWorkflow, iso

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.background_check.activities as activities


@workflow.defn
class BackgroundCheckProviderWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: BackgroundCheckProviderInput) -> None:
        self._inp = inp
        self._stage = "checking"
        self._answer_at: datetime | None = None
        self._result: BackgroundCheckProviderResult | None = None

    @workflow.run
    async def run(self, inp: BackgroundCheckProviderInput) -> BackgroundCheckProviderResult:
        self._answer_at = workflow.now() + timedelta(seconds=inp.delay_seconds)
        if inp.delay_seconds > 0:
            await workflow.sleep(timedelta(seconds=inp.delay_seconds))
        result = await self.execute_activity(
            activities.run_local_background_check,
            LocalBackgroundCheckInput(inp.reference),
            policy=policies.EXTERNAL_PROVIDER,
        )
        self._stage = "answering"
        await workflow.get_external_workflow_handle(inp.onboarding_workflow_id).signal(
            "background_check_result",
            BackgroundCheckResultSignal(
                actor="provider:local", passed=result.passed, reference=inp.reference
            ),
        )
        self._result = result
        self._stage = "answered"
        return result

    @workflow.query
    def progress(self) -> dict:
        return {
            "stage": self._stage,
            "steps_done": ["answered"] if self._result else [],
            "waiting_for": None if self._result else "the provider's answer",
            "waiting_until": iso(self._answer_at) if not self._result else None,
            "reference": self._inp.reference,
            "onboarding_workflow_id": self._inp.onboarding_workflow_id,
            "passed": self._result.passed if self._result else None,
        }
