"""Replay of recorded onboarding histories: today's workflow code must make the same
decisions as the code that produced them (no accidental non-determinism).

The histories come from real runs of two tests in test_onboarding.py; re-record them with
`PRACTITIONERS_RECORD_HISTORY=1 pytest tests/practitioners/test_onboarding.py -k "full or
stalls"` only when a change is meant to be incompatible (and guard running executions with
`workflow.patched()` instead where they exist).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from workers.practitioners.shared import OnboardingInput, OnboardingResult
from workers.practitioners.workflows import (
    BackgroundCheckProviderWorkflow,
    PractitionerOnboardingWorkflow,
    PractitionerVerificationWorkflow,
    SubscriptionRenewalWorkflow,
    TrainingCertificationWorkflow,
)
from workers.temporal.worker import MonitoringInterceptor

HISTORIES = Path(__file__).parent / "histories"
RECORDED = ("onboarding_full.json", "onboarding_stalled_extended.json")
WORKFLOWS = [
    PractitionerOnboardingWorkflow,
    BackgroundCheckProviderWorkflow,
    SubscriptionRenewalWorkflow,
    PractitionerVerificationWorkflow,
    TrainingCertificationWorkflow,
]


def load(name: str) -> WorkflowHistory:
    record = json.loads((HISTORIES / name).read_text())
    return WorkflowHistory.from_json(record["workflow_id"], record["history"])


@pytest.mark.parametrize("name", RECORDED)
async def test_recorded_onboarding_replays(name):
    history = load(name)
    assert len(history.events) > 100  # a whole onboarding, not a stub
    result = await Replayer(
        workflows=WORKFLOWS, interceptors=[MonitoringInterceptor()]
    ).replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="PractitionerOnboardingWorkflow", sandboxed=False)
class ReorderedOnboarding(PractitionerOnboardingWorkflow):
    """The same workflow with one change that alters its commands: reminders go out
    without updating the console's progress copy afterwards."""

    async def _send_reminder(self, step, number, due_at) -> None:  # type: ignore[override]
        step.reminders_sent.append({"number": number, "at": workflow.now().isoformat()})

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        return await super().run(inp)


async def test_replay_catches_a_changed_workflow():
    """Proof the replay test can fail: a history with reminders does not replay against
    a workflow that sends them differently."""
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[ReorderedOnboarding]).replay_workflow(
            load("onboarding_stalled_extended.json")
        )
