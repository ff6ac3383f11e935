"""The guide's commands and `flask trigger-practitioner-workflows`, against the
time-skipping server with real workers, and their bad input."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from estuary.contracts.practitioners import ExtendStepUpdate
from estuary.db import db
from estuary.models import OnboardingProgress, Practitioner
from tests.conftest import gateway_for
from tests.practitioners.conftest import (
    ACTOR,
    ONBOARDING_MODULE_CODES,
    practitioner_workers,
    start_onboarding,
    wait_for,
    waiting_on_step,
)
from workers.temporal.cli import cli_actor


async def handle_progress(handle) -> dict:
    return await handle.query("progress")


def cli(runner):
    async def invoke(*args: str):
        # In a thread: the command blocks on the gateway while this loop runs the workers.
        return await asyncio.to_thread(runner.invoke, args=list(args))

    return invoke


async def test_onboarding_moved_through_its_steps_from_the_command_line(
    app, runner, time_env, data, cleanup
):
    data.modules()
    pid = data.practitioner(pid=123)
    service_id = data.service(pid)
    flask = cli(runner)
    tpw = "trigger-practitioner-workflows"
    # The time-skipping clock may be years ahead after other tests: the licence must
    # outlive the run's own clock, or the verification started at completion suspends.
    licence_expires_on = (await time_env.get_current_time() + timedelta(days=3650)).date()
    async with practitioner_workers(app, time_env):
        gateway_for(app, time_env)
        r = await flask(
            "trigger-workflows",
            "--domain",
            "practitioners",
            "--workflow",
            "PractitionerOnboardingWorkflow",
            "--args",
            "123",
        )
        assert r.exit_code == 0, r.output
        assert "Started PractitionerOnboardingWorkflow: practitioners-onboarding-123" in r.output
        r = await flask(tpw, "onboarding", "123")
        assert r.exit_code == 0, r.output
        assert "Already running: practitioners-onboarding-123" in r.output
        handle = time_env.client.get_workflow_handle("practitioners-onboarding-123")

        async def ok(*args: str) -> str:
            r = await flask(tpw, *args)
            assert r.exit_code == 0, r.output
            return r.output

        await wait_for(handle, waiting_on_step("profile"), what="profile")
        out = await ok("profile-completed", "123")
        assert out.startswith("complete_profile accepted by practitioners-onboarding-123: ")
        await wait_for(handle, waiting_on_step("documents"), what="documents")
        out = await ok(
            "documents-submitted",
            "123",
            "--kind",
            "licence",
            "--kind",
            "insurance",
            "--licence-expires-on",
            licence_expires_on.isoformat(),
        )
        assert '"kinds": "licence, insurance"' in out, out
        await wait_for(handle, lambda p: p["documents"]["state"] == "in_review", what="review")
        out = await ok("review-documents", "123", "--approve", "--notes", "all good")
        assert 'review_documents accepted by practitioners-onboarding-123: {"approved": true' in out
        await wait_for(handle, waiting_on_step("background_check", "BC-"), what="check")
        await ok("background-check", "123", "--passed")
        await wait_for(handle, waiting_on_step("training"), what="training")
        for done, module in enumerate(ONBOARDING_MODULE_CODES, 1):
            left = len(ONBOARDING_MODULE_CODES) - done
            out = await ok("module-completed", "123", module)
            # Answered once recorded: what is left is already counted.
            assert f'"module": "{module}", "modules_left": {left}' in out, out
        await wait_for(handle, waiting_on_step("subscription"), what="subscription")
        await ok("subscription", "123", "--tier", "pro")
        await wait_for(handle, waiting_on_step("services"), what="services")
        out = await ok("service-configured", "123", str(service_id))
        assert f'"configured": true, "service": {service_id}' in out, out
        result = await handle.result()
        shown = json.loads(await ok("progress", "onboarding", "123"))

    assert result["outcome"] == "completed"
    assert shown["status"] == "completed" and len(shown["steps_done"]) == 6
    # the OS user and host of the command line, never a name it typed
    assert shown["documents"]["reviews"][0]["reviewer"] == cli_actor()
    row = data.practitioner_row(pid)
    assert row["status"] == "active" and row["accepts_bookings"] is True


async def test_guide_commands_start_renewal_verification_and_training(
    app, runner, time_env, data, cleanup
):
    data.modules()
    now = await time_env.get_current_time()
    pid = data.practitioner(pid=123, status="active")
    data.subscription(pid, period_start=now, period_end=now + timedelta(days=30), sid=789)
    flask = cli(runner)
    async with practitioner_workers(app, time_env):
        gateway_for(app, time_env)
        r = await flask(
            "trigger-workflows",
            "--domain",
            "practitioners",
            "--workflow",
            "SubscriptionRenewalWorkflow",
            "--args",
            "789",
        )
        assert r.exit_code == 0, r.output
        assert "Started SubscriptionRenewalWorkflow: practitioners-subscription-789" in r.output
        r = await flask("trigger-practitioner-workflows", "renewal", "789")
        assert "Already running: practitioners-subscription-789" in r.output
        r = await flask("trigger-practitioner-workflows", "verification", "123")
        assert "Started PractitionerVerificationWorkflow: practitioners-verification-123" in (
            r.output
        )
        r = await flask("trigger-practitioner-workflows", "training", "123", "trauma-informed")
        assert "practitioners-training-123-trauma-informed" in r.output, r.output
        renewal = time_env.client.get_workflow_handle("practitioners-subscription-789")
        await wait_for(renewal, lambda p: p["stage"] == "reminding", what="renewal started")
        r = await flask("trigger-practitioner-workflows", "progress", "renewal", "789")
        assert json.loads(r.output)["subscription_id"] == 789
        training = time_env.client.get_workflow_handle("practitioners-training-123-trauma-informed")
        await wait_for(training, lambda p: p["stage"] == "training", what="training started")
        r = await flask(
            "trigger-practitioner-workflows",
            "module-completed",
            "123",
            "trauma-1",
            "--certification",
            "trauma-informed",
        )
        assert r.exit_code == 0, r.output
        # An update: answered once the training run recorded the module.
        assert "complete_training_module accepted by practitioners-training-123-" in r.output
        progress = await handle_progress(training)
        assert progress["modules"]["completed"] == ["trauma-1"]
        assert progress["waiting_for"].endswith("trauma-2")
        # The same module again is refused by the run's validator, with its reason.
        r = await flask(
            "trigger-practitioner-workflows",
            "module-completed",
            "123",
            "trauma-1",
            "--certification",
            "trauma-informed",
        )
        assert r.exit_code == 1, r.output
        assert r.output.strip().splitlines() == [
            "Error: practitioners-training-123-trauma-informed refused "
            "complete_training_module: trauma-1 was already completed"
        ]
        assert (await handle_progress(training))["ignored_signals"] == []
        r = await flask("trigger-practitioner-workflows", "retry-renewal", "789")
        assert r.exit_code == 1
        assert "no failed renewal charge is waiting for a retry" in r.output


async def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(
    app, runner, time_env, data, cleanup
):
    data.modules()
    pid = data.practitioner()
    other = data.practitioner()
    other_service = data.service(other)
    own_service = data.service(pid)
    flask = cli(runner)
    tpw = "trigger-practitioner-workflows"
    async with practitioner_workers(app, time_env) as prefix:
        gateway_for(app, time_env)
        handle = await start_onboarding(time_env.client, prefix, pid)
        before = await wait_for(handle, waiting_on_step("profile"), what="profile")

        refusals = {
            ("onboarding", "999"): "practitioner 999 does not exist",
            ("onboarding", "abc"): "practitioner_id: 'abc' is not an id",
            (
                "onboarding",
                str(pid),
                "--deadline-days",
                "0",
            ): "step_deadline_days: must be at least 1",
            ("renewal", "999"): "subscription 999 does not exist",
            ("training", str(pid), "nope"): "certification 'nope' has no required training modules",
            ("extend", str(pid), "--step", "nope", "--days", "3", "--reason", "x"): (
                "step: 'nope' is not one of: profile, documents, background_check, training, "
                "subscription, services"
            ),
            ("extend", str(pid), "--step", "profile", "--days", "-3", "--reason", "x"): (
                "days: must be at least 1"
            ),
            ("extend", str(pid), "--step", "profile", "--days", "91", "--reason", "x"): (
                "days: must be at most 90"
            ),
            ("extend", str(pid), "--step", "training", "--days", "3", "--reason", "x"): (
                "step 'training' is not the current step (current: profile)"
            ),
            ("subscription", str(pid), "--tier", "gold"): (
                "tier: 'gold' is not one of: basic, pro, premium"
            ),
            ("module-completed", str(pid), "yoga-101"): "training module 'yoga-101' does not exist",
            ("service-configured", str(pid), str(other_service)): (
                f"service {other_service} does not exist for practitioner {pid}"
            ),
            ("signal", str(pid), "paid_me"): "unknown onboarding signal 'paid_me'",
            ("signal", str(pid), "documents_submitted", "--field", "kinds=passport"): (
                "kinds: each must be one of: licence, insurance, id"
            ),
            ("review-documents", str(pid), "--approve"): "documents are not waiting for review",
            ("review-documents", str(pid), "--reject"): "notes: say what is wrong",
            ("background-check", str(pid), "--passed"): "has no pending background check",
            ("reject", str(pid), "--reason", " "): "reason: is required",
        }
        for args, message in refusals.items():
            r = await flask(tpw, *args)
            assert r.exit_code == 1, (args, r.output)
            assert message in r.output, (args, r.output)

        # Well-formed facts of other steps reach the workflow, whose validators refuse
        # them (one line, exit 1, nothing "sent" or "accepted", nothing in the history).
        wid = f"practitioners-onboarding-{pid}"
        at_profile = "the onboarding is at the profile step, not"
        refused = {
            ("module-completed", str(pid), ONBOARDING_MODULE_CODES[0]): (
                f"{wid} refused complete_training_module: {at_profile} training"
            ),
            ("service-configured", str(pid), str(own_service)): (
                f"{wid} refused configure_service: {at_profile} services"
            ),
            ("subscription", str(pid), "--tier", "pro"): (
                f"{wid} refused select_subscription: {at_profile} subscription"
            ),
            ("documents-submitted", str(pid), "--kind", "licence"): (
                f"{wid} refused submit_documents: {at_profile} documents"
            ),
            ("signal", str(pid), "documents_submitted", "--field", "kinds=id"): (
                f"{wid} refused submit_documents: {at_profile} documents"
            ),
        }
        for args, message in refused.items():
            r = await flask(tpw, *args)
            assert r.exit_code == 1, (args, r.output)
            assert r.output.strip().splitlines() == [f"Error: {message}"], (args, r.output)
        r = await flask(tpw, "documents-submitted", str(pid), "--kind", "passport")
        assert r.exit_code == 1 and "kinds: each must be one of" in r.output, r.output
        r = await flask(tpw, "documents-submitted", str(pid))
        assert r.exit_code == 1 and "kind: name each document submitted" in r.output

        # The workflow's own validators refuse what bypasses the parser.
        for arg, message in (
            (ExtendStepUpdate(ACTOR, "profile", -3, "x"), "days must be between 1 and 90"),
            (ExtendStepUpdate(ACTOR, "profile", 3, " "), "reason is required"),
        ):
            try:
                await handle.execute_update("extend", arg)
                raise AssertionError(f"{arg} accepted")
            except WorkflowUpdateFailedError as exc:
                assert message in exc.cause.message
        try:
            await handle.execute_update(
                "extend", {"actor": ACTOR, "step": "nope", "days": 3, "reason": "x"}
            )
            raise AssertionError("unknown step accepted")
        except WorkflowUpdateFailedError as exc:
            # Refused before any handler runs: the argument does not decode (step is a
            # Literal); the cause chain names the value and the allowed steps.
            chain, cause = [], exc.cause
            while cause is not None:
                chain.append(str(cause))
                cause = cause.__cause__
            assert any("Value nope not in literal values ('profile'" in c for c in chain), chain
        await handle.signal("subscription_selected", {"actor": ACTOR, "tier": "gold"})

        after = await handle.query("progress")
        # No workflow started for the unknown practitioner or subscription.
        for wid in ("practitioners-onboarding-999", "practitioners-subscription-999"):
            try:
                await time_env.client.get_workflow_handle(wid).describe()
                raise AssertionError(f"{wid} was started")
            except RPCError:
                pass

    assert after["steps"]["profile"]["deadline"] == before["steps"]["profile"]["deadline"]
    assert after["steps"]["profile"]["extensions"] == []
    assert after["ignored_signals"] == [] and after["subscription"] is None
    assert after["current_step"] == "profile"


async def test_generic_trigger_of_an_unknown_practitioner_fails_clearly(
    app, runner, time_env, data, cleanup
):
    flask = cli(runner)
    async with practitioner_workers(app, time_env):
        gateway_for(app, time_env)
        r = await flask(
            "trigger-workflows",
            "--domain",
            "practitioners",
            "--workflow",
            "PractitionerOnboardingWorkflow",
            "--args",
            "-5",
        )
        assert r.exit_code == 1 and "practitioner_id: '-5' is not an id" in r.output
        # The generic command checks the ids in the database before starting: nothing runs.
        r = await flask(
            "trigger-workflows",
            "--domain",
            "practitioners",
            "--workflow",
            "PractitionerOnboardingWorkflow",
            "--args",
            "999",
        )
        assert r.exit_code == 1
        assert "practitioner_id: no practitioner with id 999" in r.output
        with pytest.raises(RPCError):
            await time_env.client.get_workflow_handle("practitioners-onboarding-999").describe()
    with app.app_context():
        assert db.session.scalar(select(func.count(OnboardingProgress.id))) == 0
        assert db.session.scalar(select(func.count(Practitioner.id))) == 0
