"""Constants duplicated across the sandbox boundary stay equal, and the input dataclasses
refuse bad values with messages naming the field (no Temporal needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from estuary.contracts import practitioners as shared
from estuary.contracts.inputs import InputError, parse_input
from estuary.models import TIERS
from estuary.services import onboarding, subscriptions
from workers.temporal import registry


def test_constants_match_the_models_and_services():
    assert shared.TIERS == TIERS
    assert shared.ONBOARDING_STEPS == onboarding.STEPS
    assert shared.DOCUMENT_KINDS == onboarding.DOCUMENT_KINDS
    assert set(subscriptions.TIER_PRICES_CENTS) == set(TIERS)


def test_console_forms_see_the_choices_of_steps_and_tiers():
    fields = {f.name: f for f in registry.input_fields(shared.ExtendStepUpdate)}
    assert fields["step"].choices == shared.ONBOARDING_STEPS
    tier = registry.input_fields(shared.SubscriptionSelectedSignal)[1]
    assert tier.name == "tier" and tier.choices == TIERS
    spec = registry.workflow("PractitionerOnboardingWorkflow").spec
    assert [name for name, _ in spec.signals] == [
        "profile_completed",
        "documents_submitted",
        "background_check_result",
        "training_module_completed",
        "subscription_selected",
        "service_configured",
    ]
    assert [name for name, _ in spec.updates] == [
        "complete_profile",
        "submit_documents",
        "review_documents",
        "record_background_check",
        "complete_training_module",
        "select_subscription",
        "configure_service",
        "extend",
        "reject",
    ]
    assert spec.console_signals == ()
    for _, arg in (*spec.signals, *spec.updates):
        assert registry.input_fields(arg)[0].name == "actor"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"practitioner_id": "0"}, "practitioner_id", "is not an id"),
        ({"practitioner_id": "5", "step_deadline_days": "0"}, "step_deadline_days", "at least 1"),
        ({"practitioner_id": "5", "reminder_days": "2,9"}, "reminder_days", "before the deadline"),
        ({"practitioner_id": "5", "reminder_days": "5,2"}, "reminder_days", "increasing"),
    ],
)
def test_onboarding_input_refuses_bad_values(values, field, message):
    with pytest.raises(InputError) as err:
        parse_input(shared.OnboardingInput, values)
    assert message in err.value.errors[field]


def test_onboarding_input_defaults():
    inp = parse_input(shared.OnboardingInput, {"practitioner_id": "123"})
    assert (inp.practitioner_id, inp.step_deadline_days, inp.reminder_days) == (123, 7, [2, 5])


@pytest.mark.parametrize(
    ("input_type", "values", "field", "message"),
    [
        (shared.ExtendStepUpdate, {"step": "nope", "days": "3", "reason": "x"}, "step", "nope"),
        (
            shared.ExtendStepUpdate,
            {"step": "profile", "days": "-3", "reason": "x"},
            "days",
            "at least 1",
        ),
        (shared.SubscriptionSelectedSignal, {"tier": "gold"}, "tier", "basic, pro, premium"),
        (shared.ReviewDocumentsUpdate, {"approved": "no"}, "notes", "say what is wrong"),
        (
            shared.DocumentsSubmittedSignal,
            {"licence_expires_on": "soon"},
            "licence_expires_on",
            "not valid",
        ),
        (
            shared.TrainingCertificationInput,
            {"practitioner_id": "1", "certification": "Bad Cert"},
            "certification",
            "not valid",
        ),
    ],
)
def test_signal_and_update_arguments_refuse_bad_values(input_type, values, field, message):
    with pytest.raises(InputError) as err:
        parse_input(input_type, {"actor": "ops@estuary.local", **values})
    assert message in err.value.errors[field]


def test_steps_are_stored_in_process_order(app, data):
    pid = data.practitioner()
    reversed_steps = {name: {"state": "pending"} for name in reversed(shared.ONBOARDING_STEPS)}
    with app.app_context():
        onboarding.record_progress(
            practitioner_id=pid,
            workflow_id=shared.onboarding_workflow_id(pid),
            sequence=1,
            current_step="profile",
            status="in_progress",
            stalled=False,
            steps=reversed_steps,
        )
        # An older write of the same run is dropped.
        assert not onboarding.record_progress(
            practitioner_id=pid,
            workflow_id=shared.onboarding_workflow_id(pid),
            sequence=1,
            current_step="documents",
            status="in_progress",
            stalled=True,
            steps={},
        )
        stored = onboarding.progress_of(pid)
    assert list(stored["steps"]) == list(shared.ONBOARDING_STEPS)
    assert stored["current_step"] == "profile" and stored["stalled"] is False


def test_add_month_keeps_the_day_or_the_month_end():
    assert subscriptions.add_month(datetime(2026, 1, 31, 9, tzinfo=UTC)) == datetime(
        2026, 2, 28, 9, tzinfo=UTC
    )
    assert subscriptions.add_month(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(
        2027, 1, 15, tzinfo=UTC
    )
