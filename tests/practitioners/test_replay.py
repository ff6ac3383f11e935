"""Proof the replay test can fail, and fails readably: a recorded onboarding history
with reminders does not replay against a workflow that sends them differently, and the
message names the workflow, the history file and the event (tests/test_replay_histories.py
replays every recorded history; this checks what it says when one breaks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Replayer

from estuary.contracts.practitioners import OnboardingInput, OnboardingResult
from tests.test_replay_histories import ReplayFailed, _first_failing_event, load, replay
from workers.practitioners.onboarding.workflows import PractitionerOnboardingWorkflow

STALLED = (
    Path(__file__).parent.parent
    / "histories"
    / "PractitionerOnboardingWorkflow"
    / "onboarding_stalled_extended.json"
)


@workflow.defn(name="PractitionerOnboardingWorkflow", sandboxed=False)
class ReorderedOnboarding(PractitionerOnboardingWorkflow):
    """The same workflow with one change that alters its commands: reminders go out
    without updating the console's progress copy afterwards."""

    async def _send_reminder(self, step, number, due_at) -> None:  # type: ignore[override]
        step.reminders_sent.append({"number": number, "at": workflow.now().isoformat()})

    @workflow.run
    async def run(self, inp: OnboardingInput) -> OnboardingResult:
        return await super().run(inp)


async def test_replay_failure_names_workflow_file_and_event():
    with pytest.raises(ReplayFailed) as failed:
        await replay(load(STALLED), Replayer(workflows=[ReorderedOnboarding]))
    message = str(failed.value)
    assert message.startswith("PractitionerOnboardingWorkflow no longer replays ")
    assert (
        "tests/histories/PractitionerOnboardingWorkflow/onboarding_stalled_extended.json" in message
    )
    assert "at event 22 (ActivityTaskScheduled: activity " in message
    assert "Nondeterminism" in message and "workflow.patched()" in message


async def test_the_failing_event_is_found_even_when_the_sdk_does_not_name_it():
    # The fallback replays shorter and shorter prefixes of the history.
    found = await _first_failing_event(Replayer(workflows=[ReorderedOnboarding]), load(STALLED))
    assert found is not None and found.event_id == 22
