"""The onboarding forms' pickers: modules still to do from the training catalogue (by
title), the practitioner's own active services (by name, not id), the pending check,
the current step, reason codes per action; an empty picker says why."""

from __future__ import annotations

from dashboard import forms
from dashboard.run_actions.pickers import apply_pickers, empty_reason, has_choices
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.practitioners import (
    BackgroundCheckResultSignal,
    ExtendStepUpdate,
    RejectOnboardingUpdate,
    ServiceConfiguredSignal,
    TrainingModuleCompletedSignal,
)
from estuary.db import db
from estuary.models import Service, TrainingModule
from tests.console.write_support import seed_practitioner

WF = "PractitionerOnboardingWorkflow"


def _fields(name, arg_type, progress):
    return {f.name: f for f in apply_pickers(WF, name, forms.form_fields(arg_type), progress)}


def test_pickers_offer_what_applies(app):
    pid = seed_practitioner(app, status="onboarding")
    other = seed_practitioner(app, status="onboarding")
    with app.app_context():
        db.session.add(TrainingModule(code="pick-101", title="Picking", certification="x"))
        mine = Service(practitioner_id=pid, name="Reiki", price_cents=5_000)
        done = Service(practitioner_id=pid, name="Yoga", price_cents=5_000)
        off = Service(practitioner_id=pid, name="Old", price_cents=5_000, active=False)
        theirs = Service(practitioner_id=other, name="Theirs", price_cents=5_000)
        db.session.add_all([mine, done, off, theirs])
        db.session.commit()
        progress = {
            "practitioner_id": pid,
            "current_step": "training",
            "training": {"assigned": ["pick-101", "nope-9"], "completed": []},
            "services": [done.id],
            "background_check": {"reference": "BC-7", "result": None},
        }
        module = _fields("complete_training_module", TrainingModuleCompletedSignal, progress)
        assert module["module"].widget == "select"
        assert module["module"].choices == ("pick-101", "nope-9")
        assert module["module"].choice_labels["pick-101"] == "Picking (pick-101)"
        service = _fields("configure_service", ServiceConfiguredSignal, progress)["service_id"]
        assert service.widget == "select" and service.choices == (str(mine.id),)
        assert service.choice_labels == {str(mine.id): "Reiki"}
        assert service.value == str(mine.id)  # the one choice comes picked
        check = _fields("record_background_check", BackgroundCheckResultSignal, progress)
        assert check["reference"].choices == ("BC-7",) and check["reference"].value == "BC-7"
        extend = _fields("extend", ExtendStepUpdate, progress)
        assert extend["step"].choices == ("training",)
        assert extend["reason"].choices == reason_codes_for("extend_step")
        reject = _fields("reject", RejectOnboardingUpdate, progress)
        assert reject["reason"].choices == reason_codes_for("reject_onboarding")

        progress["services"] = [done.id, mine.id]
        fields = list(_fields("configure_service", ServiceConfiguredSignal, progress).values())
        assert not has_choices(fields)
        assert "no active service left" in empty_reason(WF, "configure_service", fields)


def test_a_training_run_offers_its_certifications_modules_still_to_do(app):
    with app.app_context():
        db.session.add(TrainingModule(code="cert-201", title="Safe touch", certification="c"))
        db.session.commit()
        progress = {"modules": {"assigned": ["cert-201", "cert-202"], "completed": ["cert-202"]}}
        fields = forms.form_fields(TrainingModuleCompletedSignal)
        module = {
            f.name: f
            for f in apply_pickers(
                "TrainingCertificationWorkflow", "complete_training_module", fields, progress
            )
        }["module"]
        assert module.widget == "select"
        assert module.choices == ("cert-201",)
        assert module.choice_labels == {"cert-201": "Safe touch (cert-201)"}
        assert module.value == "cert-201"  # the one left is preselected

        done = {"modules": {"assigned": ["cert-201"], "completed": ["cert-201"]}}
        fields = apply_pickers(
            "TrainingCertificationWorkflow",
            "complete_training_module",
            forms.form_fields(TrainingModuleCompletedSignal),
            done,
        )
        assert not has_choices(fields)
        assert empty_reason(
            "TrainingCertificationWorkflow", "complete_training_module", fields
        ) == ("every module of this certification is done")
