"""Practitioners test helpers: data factories, starting runs, waiting on `progress`, and
terminating every run a test started (workflow ids are business keys and the database
ids restart in each test, so a run left behind would collide with the next test's)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from estuary.contracts.practitioners import (
    OnboardingInput,
    background_check_workflow_id,
    onboarding_workflow_id,
    subscription_workflow_id,
    training_workflow_id,
    verification_workflow_id,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Practitioner,
    PractitionerDocument,
    Service,
    Subscription,
    TrainingModule,
)
from estuary.services.demo import CERT_MODULES, ONBOARDING_MODULES
from tests.conftest import running_workers
from workers.practitioners.onboarding.workflows import PractitionerOnboardingWorkflow

_seq = count(1)
ACTOR = "ops@estuary.local"


class Data:
    """Factories that commit rows and return plain ids."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def modules(self) -> None:
        """The seed's training modules (onboarding: 3; trauma-informed: 2)."""
        with self.app.app_context():
            for code, title in ONBOARDING_MODULES:
                db.session.add(TrainingModule(code=code, title=title, certification="onboarding"))
            for code, title, cert in CERT_MODULES:
                db.session.add(TrainingModule(code=code, title=title, certification=cert))
            db.session.commit()

    def practitioner(
        self,
        *,
        status: str = "pending",
        profile_complete: bool = False,
        tier: str = "basic",
        pid: int | None = None,
    ) -> int:
        n = next(_seq)
        with self.app.app_context():
            p = Practitioner(
                name=f"Practitioner {n}",
                email=f"practitioner{n}@test.local",
                status=status,
                tier=tier,
                profile_complete=profile_complete,
                accepts_bookings=status == "active",
            )
            if pid is not None:
                p.id = pid
            db.session.add(p)
            db.session.commit()
            return p.id

    def email(self, practitioner_id: int) -> str:
        with self.app.app_context():
            return db.session.get(Practitioner, practitioner_id).email

    def service(self, practitioner_id: int) -> int:
        with self.app.app_context():
            s = Service(practitioner_id=practitioner_id, name="Massage", price_cents=9_000)
            db.session.add(s)
            db.session.commit()
            return s.id

    def subscription(
        self,
        practitioner_id: int,
        *,
        period_start: datetime,
        period_end: datetime,
        tier: str = "pro",
        price_cents: int = 5_900,
        sid: int | None = None,
    ) -> int:
        with self.app.app_context():
            sub = Subscription(
                practitioner_id=practitioner_id,
                tier=tier,
                price_cents=price_cents,
                status="active",
                current_period_start=period_start,
                current_period_end=period_end,
            )
            if sid is not None:
                sub.id = sid
            db.session.add(sub)
            db.session.commit()
            return sub.id

    def document(
        self, practitioner_id: int, *, kind: str = "licence", expires_on: date | None = None
    ) -> int:
        with self.app.app_context():
            doc = PractitionerDocument(
                practitioner_id=practitioner_id,
                kind=kind,
                status="approved",
                required=True,
                expires_on=expires_on,
            )
            db.session.add(doc)
            db.session.commit()
            return doc.id

    def practitioner_row(self, practitioner_id: int) -> dict:
        with self.app.app_context():
            p = db.session.get(Practitioner, practitioner_id)
            return {
                "status": p.status,
                "accepts_bookings": p.accepts_bookings,
                "profile_complete": p.profile_complete,
                "tier": p.tier,
                "suspended_reason": p.suspended_reason,
            }


@pytest.fixture
def data(app: Flask) -> Data:
    # Tests answer background checks themselves (by signal) unless they say otherwise.
    app.config["BACKGROUND_CHECK_PROVIDER"] = "manual"
    return Data(app)


def _termination_order(workflow_id: str) -> int:
    for rank, kind in enumerate(("background-check", "subscription", "verification", "training")):
        if workflow_id.startswith(f"practitioners-{kind}-"):
            return rank
    return 9


def workflow_ids_in(app: Flask) -> list[str]:
    """Every business id a practitioners run of this test can have used."""
    with app.app_context():
        ids: list[str] = []
        certs = sorted({m.certification for m in db.session.scalars(select(TrainingModule))})
        for pid in db.session.scalars(select(Practitioner.id)):
            ids += [onboarding_workflow_id(pid), verification_workflow_id(pid)]
            ids += [training_workflow_id(pid, c) for c in certs]
        for sid in db.session.scalars(select(Subscription.id)):
            ids.append(subscription_workflow_id(sid))
        for ref in db.session.scalars(select(BackgroundCheck.reference)):
            ids.append(background_check_workflow_id(ref))
        return ids


def _open_work(events: list) -> int:
    """How many workflow tasks, activities, child starts and outgoing signals are open."""
    open_ids: set[int] = set()
    for e in events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            open_ids.add(-1)  # at most one workflow task is open at a time
        elif t in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        ):
            open_ids.discard(-1)
        elif t in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
            EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        ):
            open_ids.add(e.event_id)
        else:
            for attr in (
                "activity_task_completed_event_attributes",
                "activity_task_failed_event_attributes",
                "activity_task_timed_out_event_attributes",
                "activity_task_canceled_event_attributes",
            ):
                if e.HasField(attr):
                    open_ids.discard(getattr(e, attr).scheduled_event_id)
            for attr in (
                "child_workflow_execution_started_event_attributes",
                "start_child_workflow_execution_failed_event_attributes",
                "external_workflow_execution_signaled_event_attributes",
                "signal_external_workflow_execution_failed_event_attributes",
            ):
                if e.HasField(attr):
                    open_ids.discard(getattr(e, attr).initiated_event_id)
    return len(open_ids)


async def _settle(handle: WorkflowHandle, timeout: float = 30.0) -> None:
    """Wait until the run has nothing in flight (per its history)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return
        history = await handle.fetch_history()
        if not _open_work(list(history.events)):
            return
        await asyncio.sleep(0.05)


async def terminate_runs(app: Flask, client: Client) -> None:
    """Terminate every run the test started, each once it is idle.

    The time-skipping server locks its clock while a workflow task or activity is open and
    unlocks it when that completes; terminating a run with one open leaves the clock
    locked for good, and every later time skip of the session then hangs. Providers and
    children go first, then the onboardings that started them.
    """
    for wid in sorted(workflow_ids_in(app), key=_termination_order):
        handle = client.get_workflow_handle(wid)
        with contextlib.suppress(RPCError):  # not started, or already closed
            await _settle(handle)
            await handle.terminate("test finished")


@asynccontextmanager
async def practitioner_workers(
    app: Flask, env: WorkflowEnvironment, domains: tuple[str, ...] = ("practitioners", "payments")
) -> AsyncIterator[str]:
    """Real workers for the test; on the way out every run the test started is terminated
    while the workers still run (so no task is left in flight)."""
    async with running_workers(env.client, app, list(domains)) as prefix:
        try:
            yield prefix
        finally:
            await terminate_runs(app, env.client)


@pytest.fixture
async def cleanup(app: Flask, time_env: WorkflowEnvironment) -> AsyncIterator[None]:
    """Safety net: terminate whatever a failed test left running."""
    yield
    await terminate_runs(app, time_env.client)


async def start_onboarding(
    client: Client, prefix: str, practitioner_id: int, **settings: Any
) -> WorkflowHandle:
    return await client.start_workflow(
        PractitionerOnboardingWorkflow.run,
        OnboardingInput(practitioner_id=practitioner_id, **settings),
        id=onboarding_workflow_id(practitioner_id),
        task_queue=f"{prefix}practitioners",
        search_attributes=run_attributes("practitioners", "practitioner", practitioner_id, "test"),
    )


async def wait_for(
    handle: WorkflowHandle,
    predicate: Callable[[dict], bool],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> dict:
    """Poll the run's `progress` until `predicate` holds (queries do not move time)."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            last = await handle.query("progress")
        except RPCError:
            last = {}
        if last and predicate(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last progress: {last}")


def waiting_on_step(step: str, contains: str = "") -> Callable[[dict], bool]:
    def check(p: dict) -> bool:
        s = p["steps"][step]
        return (
            p["current_step"] == step
            and s["state"] in ("waiting", "stalled")
            and contains in (s["waiting_for"] or "")
        )

    return check


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


# A timer is a duration the server starts when it records the command, a few milliseconds
# after the workflow computed it; "exactly" means within this.
TIMER_TOLERANCE = timedelta(seconds=1)


def assert_close(actual: datetime, expected: datetime) -> None:
    assert abs(actual - expected) < TIMER_TOLERANCE, f"{actual} is not {expected}"


# --- driving an onboarding through its steps ----------------------------------------------

ONBOARDING_MODULE_CODES = ("platform-101", "privacy-101", "safety-101")


async def submit_documents(handle: WorkflowHandle, email: str) -> None:
    from estuary.contracts.practitioners import DocumentsSubmittedSignal

    await wait_for(
        handle, lambda p: p["documents"]["state"] == "awaiting_submission", what="documents"
    )
    await handle.signal("documents_submitted", DocumentsSubmittedSignal(actor=email))
    await wait_for(handle, lambda p: p["documents"]["state"] == "in_review", what="review")


async def pass_documents(handle: WorkflowHandle, email: str) -> None:
    from estuary.contracts.practitioners import ReviewDocumentsUpdate

    await submit_documents(handle, email)
    await handle.execute_update(
        "review_documents", ReviewDocumentsUpdate(actor=ACTOR, approved=True, notes="")
    )


async def check_reference(handle: WorkflowHandle) -> str:
    progress = await wait_for(
        handle, waiting_on_step("background_check", "signal for BC-"), what="background check"
    )
    return progress["background_check"]["reference"]


async def pass_background_check(handle: WorkflowHandle) -> None:
    from estuary.contracts.practitioners import BackgroundCheckResultSignal

    reference = await check_reference(handle)
    await handle.signal(
        "background_check_result",
        BackgroundCheckResultSignal(actor=ACTOR, passed=True, reference=reference),
    )


async def complete_training(handle: WorkflowHandle, email: str) -> None:
    from estuary.contracts.practitioners import TrainingModuleCompletedSignal

    await wait_for(handle, waiting_on_step("training"), what="training")
    for module in ONBOARDING_MODULE_CODES:
        await handle.signal(
            "training_module_completed", TrainingModuleCompletedSignal(actor=email, module=module)
        )


async def start_renewal(
    client: Client, prefix: str, subscription_id: int, **settings: Any
) -> WorkflowHandle:
    from estuary.contracts.practitioners import SubscriptionRenewalInput
    from workers.practitioners.subscription.workflows import SubscriptionRenewalWorkflow

    return await client.start_workflow(
        SubscriptionRenewalWorkflow.run,
        SubscriptionRenewalInput(subscription_id=subscription_id, **settings),
        id=subscription_workflow_id(subscription_id),
        task_queue=f"{prefix}practitioners",
        search_attributes=run_attributes("practitioners", "subscription", subscription_id, "test"),
    )


async def eventually(check: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll a database condition written by an activity that runs asynchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")
