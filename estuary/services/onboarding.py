"""Practitioner onboarding: the rules behind PractitionerOnboardingWorkflow's activities.

The workflow decides *when* (steps, reminders, deadlines); this module decides *what* a
step changes in the app database. `OnboardingProgress` is the console's copy of each
run's state, so a practitioner page can show the onboarding without asking Temporal.
Every write is idempotent: documents by submission key, notifications and ops flags by
key, progress by the run's sequence number.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from flask import current_app
from sqlalchemy import select

from estuary.contracts.practitioners import DOCUMENT_KINDS
from estuary.db import db
from estuary.models import (
    OnboardingProgress,
    Practitioner,
    PractitionerDocument,
    Service,
)
from estuary.services import notifications, ops_flags, training
from estuary.services.errors import BusinessRuleError, NotFoundError
from estuary.services.practitioners import email_practitioner, get_practitioner

STALLED_FLAG_KIND = "stalled_onboarding"
# The guide's steps in order (the same as estuary.contracts.practitioners.ONBOARDING_STEPS;
# a test keeps them equal). `steps_json` lists them in this order for the console.
STEPS = ("profile", "documents", "background_check", "training", "subscription", "services")
DEFAULT_OPS_EMAIL = "ops@estuary.local"


def check_can_onboard(practitioner: Practitioner) -> None:
    """Refuse onboarding a practitioner who is active or suspended (nothing to onboard)."""
    if practitioner.status in ("active", "suspended"):
        raise BusinessRuleError(
            f"practitioner {practitioner.id} is {practitioner.status}; only pending, onboarding "
            "or rejected practitioners can be onboarded",
            field="practitioner_id",
        )


def ops_email() -> str:
    return current_app.config.get("OPS_NOTIFICATIONS_EMAIL", DEFAULT_OPS_EMAIL)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- start and progress -------------------------------------------------------------------


def start(practitioner_id: int, workflow_id: str) -> dict:
    """Mark the practitioner as onboarding and open (or reopen) their progress row."""
    practitioner = get_practitioner(practitioner_id)
    check_can_onboard(practitioner)
    practitioner.status = "onboarding"
    practitioner.accepts_bookings = False
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is None:
        progress = OnboardingProgress(practitioner_id=practitioner_id, workflow_id=workflow_id)
        db.session.add(progress)
    # Each run starts from a clean slate (a re-run after a rejection, or after a run
    # that was terminated, must not keep the old run's state or sequence).
    progress.workflow_id = workflow_id
    progress.status = "in_progress"
    progress.current_step = "profile"
    progress.steps_json = "{}"
    progress.stalled = False
    progress.sequence = 0
    modules = training.required_modules(training.ONBOARDING)
    done = training.completed_modules(practitioner_id, modules)
    db.session.flush()
    return {
        "practitioner_id": practitioner.id,
        "email": practitioner.email,
        "name": practitioner.name,
        "profile_complete": bool(practitioner.profile_complete),
        "modules": modules,
        "completed_modules": done,
    }


def record_progress(
    *,
    practitioner_id: int,
    workflow_id: str,
    sequence: int,
    current_step: str,
    status: str,
    stalled: bool,
    steps: dict,
    resolve_flag_keys: list[str] | None = None,
) -> bool:
    """Store the run's state; False (and nothing written) if a newer state is stored.

    Flags in `resolve_flag_keys` are closed either way (their step has moved on).
    """
    for key in resolve_flag_keys or []:
        ops_flags.resolve_flag(key)
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is None:
        progress = OnboardingProgress(practitioner_id=practitioner_id, workflow_id=workflow_id)
        db.session.add(progress)
    elif progress.workflow_id == workflow_id and (progress.sequence or 0) >= sequence:
        return False
    progress.workflow_id = workflow_id
    progress.sequence = sequence
    progress.current_step = current_step
    progress.status = status
    progress.stalled = stalled
    ordered = {name: steps[name] for name in STEPS if name in steps}
    ordered.update({k: v for k, v in steps.items() if k not in ordered})
    progress.steps_json = json.dumps(ordered, default=str)
    db.session.flush()
    return True


def progress_of(practitioner_id: int) -> dict | None:
    """The stored onboarding state of one practitioner (what the console shows)."""
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is None:
        return None
    return {
        "workflow_id": progress.workflow_id,
        "current_step": progress.current_step,
        "status": progress.status,
        "stalled": progress.stalled,
        "steps": json.loads(progress.steps_json or "{}"),
        "updated_at": progress.updated_at,
    }


# --- reminders, stalls, extensions --------------------------------------------------------


def send_reminder(
    *,
    practitioner_id: int,
    key: str,
    step: str,
    number: int,
    waiting_for: str,
    waiting_on: str,
    deadline: str,
    sent_at: str,
) -> bool:
    """Remind whoever the step waits for (the practitioner, or ops for reviews and checks)."""
    practitioner = get_practitioner(practitioner_id)
    recipient = practitioner.email if waiting_on == "practitioner" else ops_email()
    sent = notifications.send(
        key=key,
        channel="email",
        recipient=recipient,
        template="onboarding_step_reminder",
        payload={
            "practitioner_id": practitioner_id,
            "step": step,
            "reminder": number,
            "waiting_for": waiting_for,
            "deadline": deadline,
            "sent_at": sent_at,
        },
        entity_type="practitioner",
        entity_id=practitioner_id,
    )
    return sent.created


def flag_stalled(
    *,
    practitioner_id: int,
    workflow_id: str,
    flag_key: str,
    step: str,
    waiting_for: str,
    deadline: str,
) -> int:
    """Raise the stalled-onboarding flag for ops and mark the progress row stalled."""
    get_practitioner(practitioner_id)
    flag = ops_flags.raise_flag(
        key=flag_key,
        kind=STALLED_FLAG_KIND,
        entity_type="practitioner",
        entity_id=practitioner_id,
        workflow_id=workflow_id,
        message=(
            f"Onboarding of practitioner {practitioner_id} is stalled at step {step!r}: "
            f"{waiting_for} was due by {deadline}. Extend the step or reject the onboarding."
        ),
    )
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is not None and progress.workflow_id == workflow_id:
        progress.stalled = True
    db.session.flush()
    return flag.id


def record_extension(
    *,
    practitioner_id: int,
    workflow_id: str,
    flag_key: str | None,
    step: str,
    days: int,
    new_deadline: str,
    reason: str,
    actor: str,
    notification_key: str,
) -> None:
    """Resolve the step's stalled flag and tell the practitioner the new deadline."""
    practitioner = get_practitioner(practitioner_id)
    if flag_key:
        ops_flags.resolve_flag(flag_key)
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is not None and progress.workflow_id == workflow_id:
        progress.stalled = False
    email_practitioner(
        practitioner,
        key=notification_key,
        template="onboarding_deadline_extended",
        payload={
            "step": step,
            "days": days,
            "new_deadline": new_deadline,
            "reason": reason,
            "extended_by": actor,
        },
    )
    db.session.flush()


# --- the steps ----------------------------------------------------------------------------


def complete_profile(practitioner_id: int) -> None:
    practitioner = get_practitioner(practitioner_id)
    practitioner.profile_complete = True
    db.session.flush()


def record_documents_submitted(
    *,
    practitioner_id: int,
    submission_key: str,
    kinds: list[str],
    licence_expires_on: str | None,
) -> list[int]:
    """Record one submission round's documents (once per key) for ops to review.

    Documents of the same kinds still waiting from an earlier submission are superseded.
    """
    get_practitioner(practitioner_id)
    unknown = [k for k in kinds if k not in DOCUMENT_KINDS]
    if unknown or not kinds:
        raise BusinessRuleError(
            f"document kinds must be among {', '.join(DOCUMENT_KINDS)}", field="kinds"
        )
    expires = date.fromisoformat(licence_expires_on) if licence_expires_on else None
    existing = {
        d.kind: d
        for d in db.session.scalars(
            select(PractitionerDocument).where(
                PractitionerDocument.submission_key == submission_key
            )
        )
    }
    ids: list[int] = []
    for kind in kinds:
        if kind in existing:
            ids.append(existing[kind].id)
            continue
        for older in db.session.scalars(
            select(PractitionerDocument).where(
                PractitionerDocument.practitioner_id == practitioner_id,
                PractitionerDocument.kind == kind,
                PractitionerDocument.status == "submitted",
            )
        ):
            older.status = "superseded"
        doc = PractitionerDocument(
            practitioner_id=practitioner_id,
            kind=kind,
            status="submitted",
            required=True,
            expires_on=expires if kind == "licence" else None,
            submission_key=submission_key,
        )
        db.session.add(doc)
        db.session.flush()
        ids.append(doc.id)
    return ids


def review_documents(
    *,
    practitioner_id: int,
    submission_key: str,
    approved: bool,
    notes: str,
    reviewer: str,
    reviewed_at: str,
) -> int:
    """Approve or reject a submission round; a rejection tells the practitioner why."""
    practitioner = get_practitioner(practitioner_id)
    if reviewer.strip().lower() == practitioner.email.lower():
        raise BusinessRuleError("practitioners cannot review their own documents", field="actor")
    docs = list(
        db.session.scalars(
            select(PractitionerDocument).where(
                PractitionerDocument.practitioner_id == practitioner_id,
                PractitionerDocument.submission_key == submission_key,
            )
        )
    )
    if not docs:
        raise NotFoundError(f"no documents were submitted under {submission_key}")
    when = _parse_time(reviewed_at)
    for doc in docs:
        if doc.reviewed_at is not None:
            continue  # a retry of this activity: already reviewed
        doc.status = "approved" if approved else "rejected"
        doc.reviewed_by = reviewer
        doc.review_notes = notes or None
        doc.reviewed_at = when
    if not approved:
        email_practitioner(
            practitioner,
            key=f"{submission_key}:review",
            template="onboarding_documents_rejected",
            payload={"notes": notes, "reviewer": reviewer},
        )
    db.session.flush()
    return len(docs)


def record_module_completion(*, practitioner_id: int, module: str, completed_at: str) -> bool:
    get_practitioner(practitioner_id)
    return training.record_completion(practitioner_id, module, _parse_time(completed_at))


def confirm_service(*, practitioner_id: int, service_id: int) -> None:
    """A configured service must exist, belong to the practitioner and be active."""
    get_practitioner(practitioner_id)
    service = db.session.get(Service, service_id)
    if service is None or service.practitioner_id != practitioner_id:
        raise NotFoundError(
            f"service {service_id} does not exist for practitioner {practitioner_id}",
            field="service_id",
        )
    if not service.active:
        raise BusinessRuleError(f"service {service_id} is not active", field="service_id")


# --- the end ------------------------------------------------------------------------------


def activate(*, practitioner_id: int, workflow_id: str, activated_at: str) -> None:
    """Onboarding done: the practitioner is active and takes bookings."""
    practitioner = get_practitioner(practitioner_id)
    if practitioner.status != "active":
        practitioner.status = "active"
        practitioner.accepts_bookings = True
        practitioner.suspended_reason = None
        practitioner.activated_at = _parse_time(activated_at)
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is not None and progress.workflow_id == workflow_id:
        progress.status = "completed"
        progress.stalled = False
        progress.current_step = "done"
    email_practitioner(
        practitioner,
        key=f"{workflow_id}:activated",
        template="onboarding_completed",
        payload={"practitioner_id": practitioner_id},
    )
    db.session.flush()


def reject(
    *,
    practitioner_id: int,
    workflow_id: str,
    reason: str,
    actor: str,
    open_flag_keys: list[str],
) -> None:
    """Onboarding refused: the practitioner is rejected, told why, and flags are closed."""
    practitioner = get_practitioner(practitioner_id)
    if practitioner.status != "active":
        practitioner.status = "rejected"
        practitioner.accepts_bookings = False
        practitioner.suspended_reason = reason[:500]
    for key in open_flag_keys:
        ops_flags.resolve_flag(key)
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == practitioner_id)
    )
    if progress is not None and progress.workflow_id == workflow_id:
        progress.status = "rejected"
        progress.stalled = False
    email_practitioner(
        practitioner,
        key=f"{workflow_id}:rejected",
        template="onboarding_rejected",
        payload={"reason": reason, "decided_by": actor},
    )
    db.session.flush()
