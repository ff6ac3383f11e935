"""PractitionerVerificationWorkflow and TrainingCertificationWorkflow (time skipping)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from estuary.contracts.practitioners import (
    RecheckDocumentsSignal,
    TrainingCertificationInput,
    TrainingModuleCompletedSignal,
    VerificationInput,
    training_workflow_id,
    verification_workflow_id,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Certification, PractitionerDocument, TrainingCompletion
from tests.practitioners.conftest import ACTOR, assert_close, at, practitioner_workers, wait_for
from workers.practitioners.training.workflows import TrainingCertificationWorkflow
from workers.practitioners.verification.workflows import (
    VERIFICATION_CHECKS_PER_RUN,
    PractitionerVerificationWorkflow,
)


async def test_verification_reminds_suspends_reinstates_and_continues_as_new(
    app, time_env, data, cleanup
):
    now = await time_env.get_current_time()
    pid = data.practitioner(status="active")
    expires_on = (now + timedelta(days=10)).date()
    licence = data.document(pid, kind="licence", expires_on=expires_on)
    lapses = datetime.combine(expires_on + timedelta(days=1), time(0), tzinfo=UTC)
    client = time_env.client
    async with practitioner_workers(app, time_env) as prefix:
        handle = await client.start_workflow(
            PractitionerVerificationWorkflow.run,
            VerificationInput(
                practitioner_id=pid, check_interval_days=1, reminder_days_before_expiry=[7, 1]
            ),
            id=verification_workflow_id(pid),
            task_queue=f"{prefix}practitioners",
            search_attributes=run_attributes("practitioners", "practitioner", pid, "test"),
        )
        first_run = handle.result_run_id
        # Past the 1-day reminder, before the licence lapses.
        await time_env.sleep(lapses - timedelta(hours=12) - now)
        progress = await wait_for(
            handle, lambda p: len(p["reminders"]) == 2, what="both expiry reminders"
        )
        assert [r["days_before"] for r in progress["reminders"]] == [7, 1]
        for reminder in progress["reminders"]:
            assert_close(at(reminder["sent_at"]), lapses - timedelta(days=reminder["days_before"]))
        assert data.practitioner_row(pid)["status"] == "active"

        # The licence lapses: suspended at that moment.
        await time_env.sleep(timedelta(hours=13))
        progress = await wait_for(handle, lambda p: p["events"], what="suspension")
        assert progress["events"][0]["event"] == "suspended"
        assert_close(at(progress["events"][0]["at"]), lapses)
        row = data.practitioner_row(pid)
        assert row["status"] == "suspended" and row["accepts_bookings"] is False
        assert "licence" in row["suspended_reason"]
        with app.app_context():
            assert db.session.get(PractitionerDocument, licence).status == "expired"

        # Ops approve a new licence and ask for a re-check: reinstated.
        data.document(pid, kind="licence", expires_on=(now + timedelta(days=400)).date())
        await handle.signal("recheck", RecheckDocumentsSignal(actor=ACTOR, reason="new licence"))
        progress = await wait_for(handle, lambda p: len(p["events"]) == 2, what="reinstatement")
        assert progress["events"][1]["event"] == "reinstated"
        row = data.practitioner_row(pid)
        assert row["status"] == "active" and row["accepts_bookings"] is True

        # Daily checks: after VERIFICATION_CHECKS_PER_RUN the run continues as new.
        await time_env.sleep(timedelta(days=VERIFICATION_CHECKS_PER_RUN))
        first = client.get_workflow_handle(handle.id, run_id=first_run)
        assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        latest = await wait_for(
            client.get_workflow_handle(handle.id),
            lambda p: p["checks_this_run"] >= 1,
            what="the next run",
        )
    assert latest["practitioner_status"] == "active"
    assert [d["kind"] for d in latest["valid_documents"]] == ["licence"]


async def test_training_certificate_expiry_reminder_and_recertification(
    app, time_env, data, cleanup
):
    data.modules()
    pid = data.practitioner(status="active")
    client = time_env.client

    def module(code: str) -> TrainingModuleCompletedSignal:
        return TrainingModuleCompletedSignal(actor=ACTOR, module=code)

    async with practitioner_workers(app, time_env) as prefix:
        handle = await client.start_workflow(
            TrainingCertificationWorkflow.run,
            TrainingCertificationInput(
                practitioner_id=pid,
                certification="trauma-informed",
                validity_days=365,
                expiry_reminder_days=30,
            ),
            id=training_workflow_id(pid, "trauma-informed"),
            task_queue=f"{prefix}practitioners",
            search_attributes=run_attributes("practitioners", "practitioner", pid, "test"),
        )
        progress = await wait_for(handle, lambda p: p["stage"] == "training", what="training")
        assert progress["modules"] == {"assigned": ["trauma-1", "trauma-2"], "completed": []}
        for code in ("trauma-1", "trauma-1", "safety-101", "trauma-2"):
            await handle.signal("training_module_completed", module(code))
        certified = await wait_for(handle, lambda p: p["stage"] == "certified", what="cert")
        cert = certified["certificate"]
        assert at(cert["expires_at"]) == at(cert["issued_at"]) + timedelta(days=365)
        assert [i["reason"] for i in certified["ignored_signals"]] == [
            "trauma-1 was already completed",
            "safety-101 is not a module of trauma-informed",
        ]
        assert at(certified["waiting_until"]) == at(cert["expires_at"]) - timedelta(days=30)

        # The expiry reminder opens re-certification (continue-as-new, cycle 2).
        await time_env.sleep(timedelta(days=336))
        latest = client.get_workflow_handle(handle.id)
        cycle2 = await wait_for(
            latest, lambda p: p["cycle"] == 2 and p["stage"] == "training", what="cycle 2"
        )
        assert cycle2["previous_certificate"] == cert["number"]
        assert cycle2["modules"]["completed"] == []  # done again in each cycle
        # Not renewed in time: the old certificate expires.
        await time_env.sleep(timedelta(days=31))
        await wait_for(latest, lambda p: p["previous_expired"], what="old certificate expired")
        for code in ("trauma-2", "trauma-1"):
            await handle.signal("training_module_completed", module(code))
        renewed = await wait_for(latest, lambda p: p["stage"] == "certified", what="renewed")

    with app.app_context():
        certs = db.session.scalars(
            select(Certification)
            .where(Certification.practitioner_id == pid)
            .order_by(Certification.issued_at)
        ).all()
        assert [(c.certificate_number, c.status) for c in certs] == [
            (cert["number"], "expired"),
            (renewed["certificate"]["number"], "valid"),
        ]
        assert_close(
            at(cycle2_reminder_time(app, cert["number"])),
            at(cert["expires_at"]) - timedelta(days=30),
        )
        completions = db.session.scalars(
            select(TrainingCompletion).where(TrainingCompletion.practitioner_id == pid)
        ).all()
        assert sorted(c.module_code for c in completions) == ["trauma-1", "trauma-2"]


def cycle2_reminder_time(app, number: str) -> str:
    import json

    from estuary.models import Notification

    row = db.session.scalar(
        select(Notification).where(Notification.key == f"certificate:{number}:expiry-reminder")
    )
    return json.loads(row.payload_json)["sent_at"]
