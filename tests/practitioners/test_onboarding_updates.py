"""The onboarding's facts as updates: each one is accepted at its own step only, and an
input the workflow would ignore (another step's fact, a module that is not required or
already done, a service that is not the practitioner's, another check's result) is
refused with its reason, the run unchanged (time-skipping server, real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from estuary.contracts.onboarding_actions import onboarding_actions
from estuary.contracts.practitioners import (
    ONBOARDING_STEPS,
    BackgroundCheckResultSignal,
    DocumentsSubmittedSignal,
    ProfileCompletedSignal,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    SubscriptionSelectedSignal,
    TrainingModuleCompletedSignal,
)
from tests.practitioners.conftest import (
    ACTOR,
    practitioner_workers,
    start_onboarding,
    wait_for,
    waiting_on_step,
)

MODULES = ("platform-101", "privacy-101", "safety-101")


async def _refused(handle, name: str, arg, contains: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(name, arg)
    message = getattr(info.value.cause, "message", "") or str(info.value.cause)
    assert contains in message, message


async def test_every_step_by_update_with_refusals_on_the_way(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner()
    other = data.practitioner()
    email = data.email(pid)
    service_id = data.service(pid)
    foreign_service = data.service(other)
    client = time_env.client
    licence = (await time_env.get_current_time() + timedelta(days=3650)).date().isoformat()
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        progress = await wait_for(handle, waiting_on_step("profile"), what="profile step")
        assert onboarding_actions(progress) == ("complete_profile", "extend", "reject")
        # Another step's fact is refused while the run is at the profile.
        await _refused(
            handle,
            "select_subscription",
            SubscriptionSelectedSignal(email, "pro"),
            "at the profile step, not subscription",
        )
        await handle.execute_update("complete_profile", ProfileCompletedSignal(actor=email))

        progress = await wait_for(handle, waiting_on_step("documents"), what="documents step")
        assert onboarding_actions(progress)[0] == "submit_documents"
        await handle.execute_update(
            "submit_documents",
            DocumentsSubmittedSignal(actor=email, kinds=["licence"], licence_expires_on=licence),
        )
        progress = await wait_for(
            handle, lambda p: p["documents"]["state"] == "in_review", what="review"
        )
        assert onboarding_actions(progress)[0] == "review_documents"
        await _refused(
            handle,
            "submit_documents",
            DocumentsSubmittedSignal(actor=email, kinds=["licence"]),
            "documents are not awaited",
        )
        await handle.execute_update(
            "review_documents", ReviewDocumentsUpdate(actor=ACTOR, approved=True)
        )

        progress = await wait_for(
            handle, waiting_on_step("background_check", "recorded by ops"), what="check"
        )
        reference = progress["background_check"]["reference"]
        await _refused(
            handle,
            "record_background_check",
            BackgroundCheckResultSignal(actor=ACTOR, passed=True, reference="bgc-nope"),
            "is not the pending check",
        )
        await handle.execute_update(
            "record_background_check",
            BackgroundCheckResultSignal(actor=ACTOR, passed=True, reference=reference),
        )

        await wait_for(handle, waiting_on_step("training"), what="training step")
        await _refused(
            handle,
            "complete_training_module",
            TrainingModuleCompletedSignal(actor=email, module="knitting-101"),
            "is not a required onboarding module",
        )
        answer = await handle.execute_update(
            "complete_training_module", TrainingModuleCompletedSignal(email, MODULES[0])
        )
        assert answer == {"module": MODULES[0], "modules_left": 2}
        await _refused(
            handle,
            "complete_training_module",
            TrainingModuleCompletedSignal(actor=email, module=MODULES[0]),
            "was already completed",
        )
        for module in MODULES[1:]:
            await handle.execute_update(
                "complete_training_module", TrainingModuleCompletedSignal(email, module)
            )

        await wait_for(handle, waiting_on_step("subscription"), what="subscription step")
        await handle.execute_update("select_subscription", SubscriptionSelectedSignal(email, "pro"))

        progress = await wait_for(handle, waiting_on_step("services"), what="services step")
        assert onboarding_actions(progress)[0] == "configure_service"
        await _refused(
            handle,
            "configure_service",
            ServiceConfiguredSignal(email, foreign_service),
            f"service {foreign_service} does not exist for practitioner {pid}",
        )
        answer = await handle.execute_update(
            "configure_service", ServiceConfiguredSignal(email, service_id)
        )
        assert answer == {"service": service_id, "configured": True}
        result = await handle.result()
        progress = await handle.query("progress")

    assert result.outcome == "completed" and result.steps_done == list(ONBOARDING_STEPS)
    assert progress["services"] == [service_id]
    assert onboarding_actions(progress) == ()
    # Refused updates are not in the history, so nothing was "ignored" on the way except
    # the foreign service, which the step checked with the app database.
    assert [i["signal"] for i in progress["ignored_signals"]] == ["service_configured"]
