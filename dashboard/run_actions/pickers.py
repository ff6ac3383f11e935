"""Choices for the signal and update forms, so staff pick instead of typing codes and ids:
the onboarding's training modules come from the training catalogue (the modules still to
do), its services from the practitioner's own active services (by name), the pending
background check's reference from the run, the step to extend is the current one, and
reasons are the reason codes of that kind of action (`approval_rules.reason_codes_for`).

What a picker offers is only a convenience: the workflow's update validators still
refuse anything that does not apply, and the console shows their reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from dashboard.forms import FormField
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.onboarding_actions import modules_to_do, pending_modules
from estuary.db import db
from estuary.models import Service, TrainingModule

Choices = list[tuple[str, str]]  # (value, what a person reads)
ONBOARDING = "PractitionerOnboardingWorkflow"
TRAINING = "TrainingCertificationWorkflow"


def _progress(progress: Any) -> Mapping[str, Any]:
    return progress if isinstance(progress, Mapping) else {}


def _module_choices(codes: list[str]) -> Choices:
    titles = dict(
        db.session.execute(
            select(TrainingModule.code, TrainingModule.title).where(TrainingModule.code.in_(codes))
        ).all()
    )
    return [(c, f"{titles[c]} ({c})" if c in titles else c) for c in codes]


def _modules(progress: Mapping[str, Any]) -> Choices:
    return _module_choices(pending_modules(progress))


def _certification_modules(progress: Mapping[str, Any]) -> Choices:
    """A training certification run's modules still to do (its progress's `modules`)."""
    return _module_choices(modules_to_do(progress.get("modules")))


def _services(progress: Mapping[str, Any]) -> Choices:
    pid = progress.get("practitioner_id")
    if not isinstance(pid, int):
        return []
    configured = set(progress.get("services") or ())
    rows = db.session.execute(
        select(Service.id, Service.name)
        .where(Service.practitioner_id == pid, Service.active.is_(True))
        .order_by(Service.name, Service.id)
    ).all()
    return [(str(sid), name) for sid, name in rows if sid not in configured]


def _check_reference(progress: Mapping[str, Any]) -> Choices:
    check = progress.get("background_check") or {}
    ref = check.get("reference")
    return [(ref, ref)] if ref and not check.get("result") else []


def _current_step(progress: Mapping[str, Any]) -> Choices:
    step = progress.get("current_step")
    return [(step, step.replace("_", " "))] if isinstance(step, str) and step else []


def _codes(action: str) -> Callable[[Mapping[str, Any]], Choices]:
    def choices(_progress: Mapping[str, Any]) -> Choices:
        return [(c, c.replace("_", " ")) for c in reason_codes_for(action)]

    return choices


# (workflow type, handler, field) -> the choices, from the run's progress.
PICKERS: dict[tuple[str, str, str], Callable[[Mapping[str, Any]], Choices]] = {
    (ONBOARDING, "complete_training_module", "module"): _modules,
    (ONBOARDING, "configure_service", "service_id"): _services,
    (ONBOARDING, "record_background_check", "reference"): _check_reference,
    (ONBOARDING, "extend", "step"): _current_step,
    (ONBOARDING, "extend", "reason"): _codes("extend_step"),
    (ONBOARDING, "reject", "reason"): _codes("reject_onboarding"),
    (TRAINING, "complete_training_module", "module"): _certification_modules,
}


# What to say when a picker has nothing to offer (instead of a form nobody can send).
EMPTY = {
    (ONBOARDING, "configure_service", "service_id"): (
        "the practitioner has no active service left to configure; one must be added first"
    ),
    (ONBOARDING, "complete_training_module", "module"): "no required module is left to do",
    (TRAINING, "complete_training_module", "module"): "every module of this certification is done",
}


def empty_reason(workflow_type: str, handler: str, fields: list[FormField]) -> str:
    """Why a form whose picker is empty is not offered, in the staff's words."""
    for f in fields:
        if f.widget == "select" and not f.choices:
            return EMPTY.get((workflow_type, handler, f.name), "nothing to choose from yet")
    return ""


def has_pickers(workflow_type: str, handler: str) -> bool:
    """Whether a handler's form takes choices from pickers (and so needs the progress)."""
    return any(w == workflow_type and h == handler for w, h, _ in PICKERS)


def apply_pickers(
    workflow_type: str, handler: str, fields: list[FormField], progress: Any
) -> list[FormField]:
    """The form's fields with the pickers of this handler as selects; a picker with one
    choice comes preselected. Fields without a picker are left as they are."""
    state = _progress(progress)
    for f in fields:
        picker = PICKERS.get((workflow_type, handler, f.name))
        if picker is None:
            continue
        choices = picker(state)
        f.widget = "select"
        f.choices = tuple(value for value, _ in choices)
        f.choice_labels = dict(choices)
        if not f.value and len(choices) == 1:
            f.value = choices[0][0]
        elif f.value and f.value not in f.choices and not choices:
            f.value = ""
    return fields


def has_choices(fields: list[FormField]) -> bool:
    """False when a picker has nothing to offer (every module done, no service left)."""
    return all(f.choices or f.widget != "select" for f in fields)
