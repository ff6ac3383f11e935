"""The background-check provider adapter.

Requesting a check writes one `BackgroundCheck` row per idempotency key (a retried
request returns the first row and its reference). The provider's answer reaches the
onboarding run as the signal `background_check_result(passed, reference)`; recording it
here is the only place a check's status changes.

Providers (`BACKGROUND_CHECK_PROVIDER`):
  local   the default, a real local implementation: the onboarding run starts a small
          `BackgroundCheckProviderWorkflow` that waits `BACKGROUND_CHECK_DELAY_SECONDS`,
          asks `local_verdict` for the answer and signals the onboarding back. It passes
          every check except for practitioners listed in `BACKGROUND_CHECK_FAIL_PRACTITIONERS`
          (a set of ids), so the failure path can be exercised for real.
  manual  nothing answers by itself: ops records the result from the console or with
          `flask trigger-practitioner-workflows background-check ID --passed --reference R`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from estuary.db import db
from estuary.models import BackgroundCheck, Practitioner
from estuary.services.errors import BusinessRuleError, NotFoundError

PROVIDERS = ("local", "manual")


def provider() -> str:
    name = current_app.config.get("BACKGROUND_CHECK_PROVIDER", "local")
    if name not in PROVIDERS:
        raise BusinessRuleError(
            f"BACKGROUND_CHECK_PROVIDER must be one of {', '.join(PROVIDERS)}, got {name!r}"
        )
    return name


def delay_seconds() -> int:
    return max(0, int(current_app.config.get("BACKGROUND_CHECK_DELAY_SECONDS", 30)))


def reference_for(practitioner_id: int, idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:10].upper()
    return f"BC-{practitioner_id}-{digest}"


def request_check(practitioner_id: int, workflow_id: str, idempotency_key: str) -> BackgroundCheck:
    """Open a check with the provider, once per key."""
    if db.session.get(Practitioner, practitioner_id) is None:
        raise NotFoundError(f"practitioner {practitioner_id} does not exist")
    existing = db.session.scalar(
        select(BackgroundCheck).where(BackgroundCheck.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    check = BackgroundCheck(
        practitioner_id=practitioner_id,
        idempotency_key=idempotency_key,
        reference=reference_for(practitioner_id, idempotency_key),
        status="pending",
        workflow_id=workflow_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(check)
    except IntegrityError:
        existing = db.session.scalar(
            select(BackgroundCheck).where(BackgroundCheck.idempotency_key == idempotency_key)
        )
        if existing is None:
            raise
        return existing
    return check


def get_check(reference: str) -> BackgroundCheck:
    check = db.session.scalar(select(BackgroundCheck).where(BackgroundCheck.reference == reference))
    if check is None:
        raise NotFoundError(f"background check {reference!r} does not exist", field="reference")
    return check


def pending_check(practitioner_id: int) -> BackgroundCheck | None:
    return db.session.scalar(
        select(BackgroundCheck)
        .where(
            BackgroundCheck.practitioner_id == practitioner_id,
            BackgroundCheck.status == "pending",
        )
        .order_by(BackgroundCheck.id.desc())
        .limit(1)
    )


def local_verdict(reference: str) -> bool:
    """The local provider's answer for a pending check."""
    check = get_check(reference)
    failing = current_app.config.get("BACKGROUND_CHECK_FAIL_PRACTITIONERS") or set()
    return check.practitioner_id not in failing


def record_result(reference: str, passed: bool, completed_at: datetime) -> BackgroundCheck:
    """Record the provider's answer; a repeat of the same answer changes nothing."""
    check = get_check(reference)
    status = "passed" if passed else "failed"
    if check.status == status:
        return check
    if check.status != "pending":
        raise BusinessRuleError(
            f"background check {reference} was already recorded as {check.status}",
            field="passed",
        )
    check.status = status
    check.completed_at = completed_at
    db.session.flush()
    return check
