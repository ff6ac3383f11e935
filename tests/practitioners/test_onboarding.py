"""PractitionerOnboardingWorkflow against the time-skipping server with real workers
(practitioners + payments) and the real app database."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from estuary.contracts.practitioners import (
    ONBOARDING_STEPS,
    BackgroundCheckResultSignal,
    DocumentsSubmittedSignal,
    ExtendStepUpdate,
    ProfileCompletedSignal,
    RejectOnboardingUpdate,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    SubscriptionSelectedSignal,
    TrainingModuleCompletedSignal,
    background_check_workflow_id,
)
from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Notification,
    OnboardingProgress,
    OpsFlag,
    PractitionerDocument,
    Subscription,
    SubscriptionCharge,
    TrainingCompletion,
)
from tests.practitioners.conftest import (
    ACTOR,
    assert_close,
    at,
    check_reference,
    complete_training,
    pass_background_check,
    pass_documents,
    practitioner_workers,
    start_onboarding,
    submit_documents,
    wait_for,
    waiting_on_step,
)
from workers.practitioners.background_check.workflows import BackgroundCheckProviderWorkflow

MODULES = ("platform-101", "privacy-101", "safety-101")


async def test_full_onboarding_with_every_signal(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner()
    email = data.email(pid)
    service_id = data.service(pid)
    client = time_env.client
    # The time-skipping clock may be years ahead after other tests: the licence must
    # outlive the run's own clock, or the verification started at completion suspends.
    licence_expires_on = (await time_env.get_current_time() + timedelta(days=3650)).date()
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await wait_for(handle, waiting_on_step("profile"), what="profile step")
        await handle.signal("profile_completed", ProfileCompletedSignal(actor=email))

        await wait_for(handle, waiting_on_step("documents"), what="documents step")
        await handle.signal(
            "documents_submitted",
            DocumentsSubmittedSignal(
                actor=email,
                kinds=["licence", "insurance"],
                licence_expires_on=licence_expires_on.isoformat(),
            ),
        )
        await wait_for(handle, lambda p: p["documents"]["state"] == "in_review", what="review")
        answer = await handle.execute_update(
            "review_documents", ReviewDocumentsUpdate(actor=ACTOR, approved=True, notes="fine")
        )
        assert answer == {"round": 1, "approved": True}

        progress = await wait_for(
            handle, waiting_on_step("background_check", "recorded by ops"), what="check"
        )
        reference = progress["background_check"]["reference"]
        await handle.signal(
            "background_check_result",
            BackgroundCheckResultSignal(actor=ACTOR, passed=True, reference=reference),
        )

        await wait_for(handle, waiting_on_step("training"), what="training step")
        for module in MODULES:
            await handle.signal(
                "training_module_completed",
                TrainingModuleCompletedSignal(actor=email, module=module),
            )

        await wait_for(handle, waiting_on_step("subscription"), what="subscription step")
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "pro"))

        await wait_for(handle, waiting_on_step("services"), what="services step")
        await handle.signal("service_configured", ServiceConfiguredSignal(email, service_id))
        result = await handle.result()
        progress = await handle.query("progress")

    assert result.outcome == "completed"
    assert result.steps_done == list(ONBOARDING_STEPS)
    assert progress["status"] == "completed" and progress["steps_done"] == list(ONBOARDING_STEPS)
    assert progress["training"]["completed"] == list(MODULES)
    assert progress["services"] == [service_id]
    assert progress["subscription"]["charge_status"] == "paid"
    assert all(s["state"] == "done" for s in progress["steps"].values())
    assert not progress["ignored_signals"]

    row = data.practitioner_row(pid)
    assert row["status"] == "active" and row["accepts_bookings"] is True
    assert row["profile_complete"] is True and row["tier"] == "pro"
    with app.app_context():
        docs = db.session.scalars(
            select(PractitionerDocument).where(PractitionerDocument.practitioner_id == pid)
        ).all()
        assert sorted(d.kind for d in docs) == ["insurance", "licence"]
        assert all(d.status == "approved" and d.reviewed_by == ACTOR for d in docs)
        check = db.session.scalar(
            select(BackgroundCheck).where(BackgroundCheck.reference == reference)
        )
        assert check.status == "passed"
        completions = db.session.scalars(
            select(TrainingCompletion.module_code).where(TrainingCompletion.practitioner_id == pid)
        ).all()
        assert sorted(completions) == list(MODULES)
        sub = db.session.scalar(select(Subscription).where(Subscription.practitioner_id == pid))
        assert sub.status == "active" and sub.tier == "pro" and sub.price_cents == 5_900
        charges = db.session.scalars(
            select(SubscriptionCharge).where(SubscriptionCharge.subscription_id == sub.id)
        ).all()
        assert [(c.status, c.amount_cents, c.period_start) for c in charges] == [
            ("paid", 5_900, sub.current_period_start)
        ]
        stored = db.session.scalar(
            select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
        )
        assert stored.status == "completed" and not stored.stalled
        assert json.loads(stored.steps_json)["services"]["state"] == "done"
        welcome = db.session.scalar(
            select(func.count(Notification.id)).where(
                Notification.template == "onboarding_completed"
            )
        )
        assert welcome == 1
    assert at(result.finished_at) - at(progress["steps"]["profile"]["started_at"]) < timedelta(
        days=1
    )


async def test_each_step_stalls_at_its_deadline_then_is_extended_and_completed(
    app, time_env, data, cleanup
):
    data.modules()
    pid = data.practitioner()
    email = data.email(pid)
    service_id = data.service(pid)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(
            client, prefix, pid, step_deadline_days=7, reminder_days=[2, 5]
        )

        async def stall_and_extend(step: str) -> None:
            before = await wait_for(handle, waiting_on_step(step), what=f"{step} waiting")
            started = at(before["steps"][step]["started_at"])
            assert at(before["steps"][step]["deadline"]) == started + timedelta(days=7)
            await time_env.sleep(timedelta(days=7, hours=1))
            stalled = await wait_for(handle, lambda p: p["stalled"], what=f"{step} stalled")
            s = stalled["steps"][step]
            assert s["state"] == "stalled" and stalled["current_step"] == step
            # Reminders 2 and 5 days after the step started, stalled at the deadline.
            expected = [started + timedelta(days=2), started + timedelta(days=5)]
            assert [at(r["due_at"]) for r in s["reminders_sent"]] == expected
            for reminder, when in zip(s["reminders_sent"], expected, strict=True):
                assert_close(at(reminder["at"]), when)
            assert at(s["stalls"][0]["deadline"]) == started + timedelta(days=7)
            assert_close(at(s["stalls"][0]["at"]), started + timedelta(days=7))
            flag_key = s["stalls"][0]["flag_key"]
            with app.app_context():
                row = db.session.scalar(
                    select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
                )
                assert row.stalled is True and row.current_step == step
                flag = db.session.scalar(select(OpsFlag).where(OpsFlag.key == flag_key))
                assert flag.kind == "stalled_onboarding" and flag.entity_id == pid
                assert flag.resolved_at is None
            # Still waiting: a stalled run does not end.
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

            answer = await handle.execute_update(
                "extend",
                ExtendStepUpdate(actor=ACTOR, step=step, days=3, reason="practitioner on leave"),
            )
            extended = await handle.query("progress")
            e = extended["steps"][step]["extensions"][0]
            assert answer["deadline"] == e["new_deadline"]
            assert at(e["new_deadline"]) == at(e["at"]) + timedelta(days=3)
            assert extended["stalled"] is False and extended["steps"][step]["state"] == "waiting"
            assert extended["waiting_until"] == e["new_deadline"]
            with app.app_context():
                row = db.session.scalar(
                    select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
                )
                assert row.stalled is False
                flag = db.session.scalar(select(OpsFlag).where(OpsFlag.key == flag_key))
                assert flag.resolved_at is not None

        await stall_and_extend("profile")
        await handle.signal("profile_completed", ProfileCompletedSignal(actor=email))
        await stall_and_extend("documents")
        await pass_documents(handle, email)
        await stall_and_extend("background_check")
        await pass_background_check(handle)
        await stall_and_extend("training")
        await complete_training(handle, email)
        await stall_and_extend("subscription")
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "basic"))
        await stall_and_extend("services")
        await handle.signal("service_configured", ServiceConfiguredSignal(email, service_id))
        result = await handle.result()

    assert result.outcome == "completed"
    assert data.practitioner_row(pid)["status"] == "active"
    with app.app_context():
        reminders = db.session.scalar(
            select(func.count(Notification.id)).where(
                Notification.template == "onboarding_step_reminder"
            )
        )
        assert reminders == 12  # two per step
        assert not db.session.scalars(select(OpsFlag).where(OpsFlag.resolved_at.is_(None))).all()


async def test_document_rejection_and_resubmission(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await submit_documents(handle, email)
        # The practitioner cannot review their own documents.
        try:
            await handle.execute_update(
                "review_documents", ReviewDocumentsUpdate(actor=email, approved=True)
            )
            raise AssertionError("self-review accepted")
        except WorkflowUpdateFailedError as exc:
            assert "cannot review their own documents" in exc.cause.message
        await time_env.sleep(timedelta(days=3))
        await handle.execute_update(
            "review_documents",
            ReviewDocumentsUpdate(actor=ACTOR, approved=False, notes="licence photo is blurry"),
        )
        progress = await wait_for(
            handle,
            lambda p: (
                p["documents"]["state"] == "awaiting_submission" and p["documents"]["round"] == 2
            ),
            what="resubmission requested",
        )
        assert "after a rejection" in progress["waiting_for"]
        reviews = progress["documents"]["reviews"]
        assert reviews[0]["approved"] is False and reviews[0]["reviewer"] == ACTOR
        # A fresh deadline for the new documents, counted from the rejection.
        assert at(progress["waiting_until"]) == at(reviews[0]["at"]) + timedelta(days=7)
        # Nothing to review now: the update is refused and nothing changes.
        try:
            await handle.execute_update(
                "review_documents", ReviewDocumentsUpdate(actor=ACTOR, approved=True)
            )
            raise AssertionError("review accepted while nothing waits for review")
        except WorkflowUpdateFailedError as exc:
            assert "not waiting for review" in exc.cause.message
        assert (await handle.query("progress"))["documents"]["round"] == 2

        await submit_documents(handle, email)
        await handle.execute_update(
            "review_documents", ReviewDocumentsUpdate(actor=ACTOR, approved=True, notes="ok")
        )
        progress = await wait_for(handle, waiting_on_step("background_check"), what="next step")
        assert progress["steps"]["documents"]["state"] == "done"
        assert [r["approved"] for r in progress["documents"]["reviews"]] == [False, True]

    with app.app_context():
        docs = db.session.scalars(
            select(PractitionerDocument)
            .where(PractitionerDocument.practitioner_id == pid)
            .order_by(PractitionerDocument.id)
        ).all()
        assert [d.status for d in docs] == ["rejected"] * 3 + ["approved"] * 3
        assert docs[0].review_notes == "licence photo is blurry"
        told = db.session.scalars(
            select(Notification).where(Notification.template == "onboarding_documents_rejected")
        ).all()
        assert len(told) == 1 and "blurry" in told[0].payload_json


async def test_failed_background_check_rejects_the_onboarding(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await pass_documents(handle, email)
        reference = await check_reference(handle)
        # A result for another check is ignored.
        await handle.signal(
            "background_check_result",
            BackgroundCheckResultSignal(actor=ACTOR, passed=True, reference="BC-0-NOPE"),
        )
        await handle.signal(
            "background_check_result",
            BackgroundCheckResultSignal(actor=ACTOR, passed=False, reference=reference),
        )
        result = await handle.result()
        progress = await handle.query("progress")

    assert result.outcome == "rejected"
    assert result.reason == f"background check {reference} failed"
    assert result.steps_done == ["profile", "documents"]
    assert progress["status"] == "rejected"
    assert progress["steps"]["background_check"]["state"] == "rejected"
    assert progress["ignored_signals"][0]["signal"] == "background_check_result"
    row = data.practitioner_row(pid)
    assert row["status"] == "rejected" and row["accepts_bookings"] is False
    assert row["suspended_reason"] == result.reason
    with app.app_context():
        check = db.session.scalar(
            select(BackgroundCheck).where(BackgroundCheck.reference == reference)
        )
        assert check.status == "failed" and check.completed_at is not None
        stored = db.session.scalar(
            select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
        )
        assert stored.status == "rejected"
        assert (
            db.session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.template == "onboarding_rejected"
                )
            )
            == 1
        )


async def test_local_provider_answers_by_signal_after_its_delay(app, time_env, data, cleanup):
    app.config["BACKGROUND_CHECK_PROVIDER"] = "local"
    app.config["BACKGROUND_CHECK_DELAY_SECONDS"] = 3600
    data.modules()
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await pass_documents(handle, email)
        progress = await wait_for(
            handle, waiting_on_step("background_check", "local provider"), what="provider"
        )
        reference = progress["background_check"]["reference"]
        provider = client.get_workflow_handle_for(
            BackgroundCheckProviderWorkflow.run, background_check_workflow_id(reference)
        )
        await time_env.sleep(timedelta(hours=2))
        progress = await wait_for(handle, waiting_on_step("training"), what="training step")
        answer = await provider.result()

    check = progress["background_check"]
    assert check["result"] == "passed" and check["recorded_by"] == "provider:local"
    assert answer.passed is True and answer.reference == reference
    waited = at(progress["steps"]["background_check"]["completed_at"]) - at(check["requested_at"])
    assert timedelta(hours=1) <= waited < timedelta(hours=2)


async def test_duplicate_module_signals_are_ignored(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    client = time_env.client

    def module(code: str) -> TrainingModuleCompletedSignal:
        return TrainingModuleCompletedSignal(actor=email, module=code)

    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await wait_for(handle, waiting_on_step("documents"), what="documents step")
        # Early completions are kept for the training step; repeats and strangers are not.
        for code in ("safety-101", "safety-101", "yoga-101", "privacy-101"):
            await handle.signal("training_module_completed", module(code))
        await pass_documents(handle, email)
        await pass_background_check(handle)
        progress = await wait_for(
            handle,
            lambda p: (
                p["current_step"] == "training"
                and p["training"]["completed"] == ["safety-101", "privacy-101"]
            ),
            what="early modules recorded",
        )
        assert progress["waiting_for"].endswith("for platform-101")
        for code in ("privacy-101", "platform-101", "platform-101"):
            await handle.signal("training_module_completed", module(code))
        progress = await wait_for(handle, waiting_on_step("subscription"), what="next step")

    assert progress["training"]["completed"] == ["safety-101", "privacy-101", "platform-101"]
    assert [c["module"] for c in progress["training"]["completions"]] == [
        "safety-101",
        "privacy-101",
        "platform-101",
    ]
    ignored = [(i["signal"], i["reason"]) for i in progress["ignored_signals"]]
    assert ignored == [
        ("training_module_completed", "safety-101 was already completed"),
        ("training_module_completed", "yoga-101 is not an assigned module"),
        ("training_module_completed", "privacy-101 was already completed"),
        ("training_module_completed", "platform-101 was already completed"),
    ]
    with app.app_context():
        rows = db.session.scalars(
            select(TrainingCompletion.module_code).where(TrainingCompletion.practitioner_id == pid)
        ).all()
        assert sorted(rows) == list(MODULES)


async def test_declined_first_charge_waits_for_a_new_selection(app, time_env, data, cleanup):
    data.modules()
    other = data.practitioner(status="active")
    now = await time_env.get_current_time()
    placeholder = data.subscription(other, period_start=now, period_end=now + timedelta(days=30))
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    first_sub = placeholder + 1
    app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = {first_sub}
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await pass_documents(handle, email)
        await pass_background_check(handle)
        await complete_training(handle, email)
        await wait_for(handle, waiting_on_step("subscription"), what="subscription step")
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "pro"))
        progress = await wait_for(
            handle, waiting_on_step("subscription", "declined"), what="first decline"
        )
        assert progress["subscription"]["subscription_id"] == first_sub
        assert progress["subscription"]["charge_status"] == "failed"
        # Same tier again: the same subscription, a second attempt (still declined).
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "pro"))
        await wait_for(
            handle,
            lambda p: (
                p["subscription"]["attempt"] == 2 and p["subscription"]["charge_status"] == "failed"
            ),
            what="second decline",
        )
        # Another tier with a working card: a new subscription, paid.
        app.config["PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"] = set()
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "basic"))
        await wait_for(handle, waiting_on_step("services"), what="services step")
        foreign = data.service(other)
        await handle.signal("service_configured", ServiceConfiguredSignal(email, foreign))
        progress = await wait_for(
            handle, lambda p: p["ignored_signals"], what="foreign service ignored"
        )
        assert progress["ignored_signals"][0]["reason"] == (
            f"service {foreign} does not exist for practitioner {pid}"
        )
        assert progress["services"] == [] and progress["current_step"] == "services"

    assert progress["subscription"]["charge_status"] == "paid"
    assert progress["subscription"]["subscription_id"] == first_sub + 1
    with app.app_context():
        subs = db.session.scalars(
            select(Subscription)
            .where(Subscription.practitioner_id == pid)
            .order_by(Subscription.id)
        ).all()
        assert [(s.id, s.tier, s.status) for s in subs] == [
            (first_sub, "pro", "cancelled"),
            (first_sub + 1, "basic", "active"),
        ]
        charges = db.session.scalars(
            select(SubscriptionCharge).order_by(SubscriptionCharge.subscription_id)
        ).all()
        assert [(c.subscription_id, c.status, c.attempts) for c in charges] == [
            (first_sub, "failed", 2),
            (first_sub + 1, "paid", 1),
        ]
    assert data.practitioner_row(pid)["tier"] == "basic"


async def test_ops_reject_ends_the_onboarding(app, time_env, data, cleanup):
    data.modules()
    pid = data.practitioner(profile_complete=True)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await start_onboarding(client, prefix, pid, step_deadline_days=3)
        await wait_for(handle, waiting_on_step("documents"), what="documents step")
        await time_env.sleep(timedelta(days=4))
        progress = await wait_for(handle, lambda p: p["stalled"], what="stalled")
        flag_key = progress["steps"]["documents"]["stalls"][0]["flag_key"]
        answer = await handle.execute_update(
            "reject", RejectOnboardingUpdate(actor=ACTOR, reason="no documents after 3 days")
        )
        assert answer["status"] == "rejecting"
        result = await handle.result()

    assert result.outcome == "rejected" and result.reason == "no documents after 3 days"
    assert data.practitioner_row(pid)["status"] == "rejected"
    with app.app_context():
        flag = db.session.scalar(select(OpsFlag).where(OpsFlag.key == flag_key))
        assert flag.resolved_at is not None
