"""The demo's living part: `flask seed-demo-runs` (called by `make run` once the workers
poll) starts real workflows on the demo data, so a newcomer's console is not empty. Like
the console, it reaches Temporal only through the gateway, by workflow name with the
contract types.

- a booking lifecycle for every upcoming booking (confirmations sent, reminders due);
- Ines Moreau's onboarding mid-way: profile done, documents submitted and approved by
  the demo operator, the background check with the local provider, one training module
  done, two to go;
- Maya Okafor's payout waiting for an approver;
- Rafael Duarte's payout above the dual-approval tier, approved once (by
  approver@estuary.local) and waiting for a second, different approver;
- Aiko Tanaka's payout failed (she had given no payout destination); she has given one
  since, so pressing Retry pays her;
- Maya's five-session package with the parts of its two past sessions released.

Each of them is started once: before starting, the run's business id is looked up
(strongly consistent) and so are the demo's earlier runs of that workflow for that entity
(visibility), so a second `make run` starts nothing twice, also on another day (a payout's
business id carries the date).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import select

from dashboard import visibility
from estuary.contracts.bookings import BookingLifecycleInput
from estuary.contracts.payments import (
    ApprovePayoutDecision,
    PackagePayoutInput,
    PractitionerPayoutInput,
    SessionCompletedSignal,
)
from estuary.contracts.practitioners import (
    DocumentsSubmittedSignal,
    OnboardingInput,
    ProfileCompletedSignal,
    ReviewDocumentsUpdate,
    TrainingModuleCompletedSignal,
)
from estuary.db import db
from estuary.models import Booking, PackagePurchase, Payout, Practitioner
from estuary.services import demo, payout_policy
from temporal_gateway.gateway import (
    GatewayError,
    NoWorkerAnswered,
    RunNotFound,
    StartedRun,
    TemporalGateway,
    UpdateRejected,
)

# The TriggeredBy of every demo run (kept in clear by Temporal, so no personal data).
DEMO_TRIGGER = "demo-seed"
DEMO_REASON = "demo data (make run)"
REQUESTER = "operator@estuary.local"
FIRST_APPROVER = "approver@estuary.local"

T = TypeVar("T")


@dataclass
class DemoRunsReport:
    started: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Demo:
    def __init__(self, gw: TemporalGateway, report: DemoRunsReport, wait_seconds: float) -> None:
        self.gw = gw
        self.report = report
        self.wait_seconds = wait_seconds
        self.scope = visibility.console_scope(gw.prefix)

    # -- once only ------------------------------------------------------------------------

    def _ran_before(
        self, workflow_name: str, payload: Any, entity_type: str, entity_id: str
    ) -> bool:
        try:
            self.gw.describe(self.gw.business_id(workflow_name, payload))
            return True
        except RunNotFound:
            pass
        query = (
            f"TriggeredBy = {visibility.quote(DEMO_TRIGGER)} AND "
            f"WorkflowType = {visibility.quote(workflow_name)} AND "
            f"EntityType = {visibility.quote(entity_type)} AND "
            f"EntityId = {visibility.quote(entity_id)}"
        )
        if self.scope:
            query = f"({self.scope}) AND {query}"
        return self.gw.count(query) > 0

    def start_once(
        self, workflow_name: str, payload: Any, entity_type: str, entity_id: int | str, what: str
    ) -> StartedRun | None:
        """Start the run unless the demo started it before; None if it did."""
        if self._ran_before(workflow_name, payload, entity_type, str(entity_id)):
            self.report.already.append(what)
            return None
        started = self.gw.start(
            workflow_name,
            payload,
            triggered_by=DEMO_TRIGGER,
            reason=DEMO_REASON,
            triggered_by_ref=DEMO_TRIGGER,
        )
        if started.existing:
            self.report.already.append(what)
            return None
        self.report.started.append(f"{what} ({started.workflow_id})")
        return started

    # -- waiting for a run to get somewhere -------------------------------------------------

    def eventually(self, attempt: Callable[[], T | None], what: str) -> T | None:
        """Call `attempt` until it returns something (an update refused because the run
        is not there yet counts as not yet); None and a problem noted after the wait."""
        deadline = time.monotonic() + self.wait_seconds
        last = ""
        while True:
            try:
                result = attempt()
                if result is not None:
                    return result
            except (UpdateRejected, NoWorkerAnswered) as exc:
                # Not there yet, or no worker answered yet: the updates carry an id, so
                # asking again cannot apply one twice.
                last = exc.message
            if time.monotonic() > deadline:
                self.report.problems.append(f"{what}: not done within {self.wait_seconds:.0f} s")
                if last:
                    self.report.problems[-1] += f" ({last})"
                return None
            time.sleep(0.3)


def _practitioner(name: str) -> Practitioner | None:
    return db.session.scalar(select(Practitioner).where(Practitioner.name == name))


def _upcoming_lifecycles(d: _Demo) -> None:
    now = datetime.now(UTC)
    for booking in db.session.scalars(
        select(Booking).where(Booking.status == "confirmed").order_by(Booking.id)
    ):
        start = (
            booking.start_at if booking.start_at.tzinfo else booking.start_at.replace(tzinfo=UTC)
        )
        if start <= now:
            continue
        d.start_once(
            "BookingLifecycleWorkflow",
            BookingLifecycleInput(booking_id=booking.id),
            "booking",
            booking.id,
            f"lifecycle of booking {booking.id}",
        )


def _onboarding_mid_way(d: _Demo) -> None:
    ines = _practitioner(demo.INES)
    if ines is None:
        return
    started = d.start_once(
        "PractitionerOnboardingWorkflow",
        OnboardingInput(practitioner_id=ines.id),
        "practitioner",
        ines.id,
        f"onboarding of {ines.name}",
    )
    if started is None:
        return
    wid, actor = started.workflow_id, f"practitioner:{ines.id}"
    d.gw.signal(wid, "profile_completed", ProfileCompletedSignal(actor=actor))
    expires = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    d.gw.signal(
        wid,
        "documents_submitted",
        DocumentsSubmittedSignal(actor=actor, licence_expires_on=expires),
    )
    review = ReviewDocumentsUpdate(
        actor=REQUESTER, approved=True, notes="Demo: licence, insurance and id checked"
    )
    if d.eventually(
        lambda: d.gw.update(wid, "review_documents", review, update_id=f"{wid}-demo-review"),
        f"the document review of {ines.name}",
    ):
        # The local background-check provider answers by itself; the training step then
        # finds this module done and waits for the other two.
        first_module = demo.ONBOARDING_MODULES[0][0]
        d.gw.signal(
            wid,
            "training_module_completed",
            TrainingModuleCompletedSignal(actor=actor, module=first_module),
        )


def _payout_input(practitioner: Practitioner) -> PractitionerPayoutInput:
    policy = payout_policy.policy_from_config(current_app.config)
    return PractitionerPayoutInput(
        practitioner_id=practitioner.id,
        requested_by=REQUESTER,
        reason="Demo: monthly payout",
        approval_threshold_cents=policy.approval_threshold_cents,
        dual_approval_threshold_cents=policy.dual_approval_threshold_cents,
        approval_timeout_seconds=policy.approval_timeout_seconds,
    )


def _payout_row(workflow_id: str) -> Payout | None:
    db.session.expire_all()
    return db.session.scalar(select(Payout).where(Payout.workflow_id == workflow_id))


def _payouts(d: _Demo) -> None:
    maya = _practitioner(demo.MAYA)
    if maya is not None:
        d.start_once(
            "PractitionerPayoutWorkflow",
            _payout_input(maya),
            "practitioner",
            maya.id,
            f"payout to {maya.name} (waits for an approver)",
        )

    rafael = _practitioner(demo.RAFAEL)
    if rafael is not None:
        started = d.start_once(
            "PractitionerPayoutWorkflow",
            _payout_input(rafael),
            "practitioner",
            rafael.id,
            f"payout to {rafael.name} (needs two approvers)",
        )
        if started is not None:
            wid = started.workflow_id
            payout = d.eventually(lambda: _payout_row(wid), f"the payout record of {wid}")
            if payout is not None:
                decision = ApprovePayoutDecision(
                    actor=FIRST_APPROVER,
                    amount_cents=payout.amount_cents,
                    practitioner_id=rafael.id,
                    note="Demo: first of two approvals",
                )
                d.eventually(
                    lambda: d.gw.update(
                        wid, "approve", decision, update_id=f"{wid}-demo-first-approval"
                    ),
                    f"the first approval of {wid}",
                )

    aiko = _practitioner(demo.AIKO)
    if aiko is not None and not aiko.payout_destination:
        started = d.start_once(
            "PractitionerPayoutWorkflow",
            _payout_input(aiko),
            "practitioner",
            aiko.id,
            f"payout to {aiko.name} (fails: no payout destination yet)",
        )
        if started is not None:
            wid = started.workflow_id

            def failed() -> bool | None:
                return d.gw.describe(wid).status == "Failed" or None

            if d.eventually(failed, f"the failure of {wid}"):
                # She has given her bank details since: a retry now pays her.
                aiko = db.session.merge(aiko)
                aiko.payout_destination = f"acct_demo_{aiko.id:04d}"
                db.session.commit()


def _package_with_parts_released(d: _Demo) -> None:
    maya = _practitioner(demo.MAYA)
    if maya is None:
        return
    purchase = db.session.scalar(
        select(PackagePurchase)
        .where(PackagePurchase.practitioner_id == maya.id)
        .order_by(PackagePurchase.id)
    )
    if purchase is None:
        return
    policy = str(current_app.config.get("PACKAGE_EXPIRY_POLICY") or "release_remaining")
    started = d.start_once(
        "ProgressivePackagePayoutWorkflow",
        PackagePayoutInput(package_purchase_id=purchase.id, expiry_policy=policy),
        "package_purchase",
        purchase.id,
        f"package payout of purchase {purchase.id}",
    )
    if started is None:
        return
    for booking_id in db.session.scalars(
        select(Booking.id)
        .where(Booking.package_purchase_id == purchase.id, Booking.status == "completed")
        .order_by(Booking.id)
    ):
        d.gw.signal(
            started.workflow_id,
            "session_completed",
            SessionCompletedSignal(booking_id=booking_id, actor="bookings"),
        )


def start_demo_runs(gw: TemporalGateway, *, wait_seconds: float = 30.0) -> DemoRunsReport:
    """Start the demo's workflows (each once); say what started, what was there, what not."""
    report = DemoRunsReport()
    d = _Demo(gw, report, wait_seconds)
    for part in (_upcoming_lifecycles, _package_with_parts_released, _payouts, _onboarding_mid_way):
        try:
            part(d)
        except GatewayError as exc:
            report.problems.append(f"{part.__name__.strip('_').replace('_', ' ')}: {exc.message}")
    return report
