"""Domain pages: practitioners, bookings, payouts and the notification outbox.

Everything here comes from the app database, so these pages work when Temporal is
unreachable; the detail pages add the entity's recent runs from Temporal (one call) and
say so in a banner when Temporal cannot be asked. Every URL parameter is validated; a bad
one is a field error on the page and no query runs with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import Select, func, or_, select

from dashboard import visibility
from dashboard.permissions import require
from dashboard.views.runs import console_scope, temporal
from estuary.contracts.inputs import parse_id, query_int
from estuary.db import db
from estuary.models import (
    BOOKING_STATUSES,
    PAYOUT_STATUSES,
    PRACTITIONER_STATUSES,
    BackgroundCheck,
    Booking,
    Certification,
    Client,
    Feedback,
    Notification,
    OnboardingProgress,
    OpsFlag,
    PackagePurchase,
    Payout,
    PayoutApproval,
    Practitioner,
    PractitionerDocument,
    Service,
    Subscription,
    SubscriptionCharge,
    TrainingCompletion,
    Transfer,
)
from estuary.models.base import utcnow
from estuary.services import ledger
from estuary.services.notifications import CHANNELS
from temporal_gateway.access import gateway

bp = Blueprint("domains", __name__)

PAGE_SIZE = 50
MAX_PAGE = 100_000
RECENT = 20
ONBOARDING_FILTERS = ("stalled", "in_progress", "completed", "none")
TEMPLATE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


# --- parameters ----------------------------------------------------------------------------


@dataclass
class Params:
    values: dict[str, Any]
    errors: dict[str, str]
    page: int

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def _params(args: Mapping[str, str], spec: dict[str, Any]) -> Params:
    """Validate list filters: spec maps a name to a tuple of choices, "id", "flag" or "text"."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, kind in spec.items():
        given = str(args.get(name) or "")
        raw = given.strip()
        if not raw:
            continue
        if isinstance(kind, tuple):
            if raw in kind:
                values[name] = raw
            else:
                errors[name] = f"must be one of: {', '.join(kind)}"
        elif kind == "id":
            try:
                values[name] = parse_id(given)  # unstripped: " 7" is refused, not fixed
            except ValueError as exc:
                errors[name] = str(exc)
        elif kind == "flag":
            if raw in ("1", "0"):
                values[name] = raw == "1"
            else:
                errors[name] = "must be 1 or 0"
        elif kind == "text":
            if len(raw) <= 100 and "\x00" not in raw:
                values[name] = raw
            else:
                errors[name] = "at most 100 characters"
        elif kind == "template":
            if TEMPLATE_RE.fullmatch(raw):
                values[name] = raw
            else:
                errors[name] = "letters, digits and _ . : - only"
    page, problem = query_int(args, "page", 1, lo=1, hi=MAX_PAGE)
    if problem:
        errors["page"] = problem
    return Params(values, errors, page)


def _paged(query: Select, page: int) -> tuple[list[Any], bool]:
    rows = list(db.session.scalars(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _get_or_404(model: type, ident: int, what: str) -> Any:
    row = db.session.get(model, ident)
    if row is None:
        abort(404, f"No {what} {ident}.")
    return row


def _entity_runs(entity_type: str, entity_id: int | str, limit: int = 10) -> list | None:
    """Recent runs about one entity (one Temporal call); None if Temporal cannot be asked."""
    filters = visibility.RunFilters(entity_type=entity_type, entity_id=str(entity_id))
    query = visibility.build_query(filters, scope=console_scope())
    page = temporal(gateway().list_runs, query, page_size=limit)
    return page.runs if page is not None else None


def _workflow_runs(workflow_ids: list[str], limit: int = 10) -> list | None:
    ids = [w for w in workflow_ids if visibility.ID_RE.fullmatch(w)][:20]
    if not ids:
        return []
    scope = console_scope()
    where = "WorkflowId IN (" + ", ".join(visibility.quote(w) for w in ids) + ")"
    page = temporal(
        gateway().list_runs, f"({scope}) AND {where}" if scope else where, page_size=limit
    )
    return page.runs if page is not None else None


def _flags(entity_type: str, entity_id: int) -> list[OpsFlag]:
    return list(
        db.session.scalars(
            select(OpsFlag)
            .where(OpsFlag.entity_type == entity_type, OpsFlag.entity_id == entity_id)
            .order_by(OpsFlag.raised_at.desc())
            .limit(RECENT)
        )
    )


def _names(model: type, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


# --- practitioners ------------------------------------------------------------------------


@dataclass(frozen=True)
class OnboardingStep:
    name: str
    state: str
    deadline: str | None
    completed_at: str | None


def onboarding_steps(progress: OnboardingProgress | None) -> list[OnboardingStep]:
    """The steps stored by the onboarding run (JSON written by its activities)."""
    if progress is None:
        return []
    try:
        raw = json.loads(progress.steps_json or "{}")
    except ValueError:
        return []
    if not isinstance(raw, dict):
        return []
    steps = []
    for name, info in raw.items():
        info = info if isinstance(info, dict) else {"state": str(info)}
        steps.append(
            OnboardingStep(
                str(name),
                str(info.get("state", "")),
                info.get("deadline"),
                info.get("completed_at"),
            )
        )
    return steps


@bp.get("/practitioners")
@require("view")
def practitioners():
    p = _params(
        request.args,
        {"status": PRACTITIONER_STATUSES, "onboarding": ONBOARDING_FILTERS, "q": "text"},
    )
    rows: list[Practitioner] = []
    more = False
    if not p.errors:
        query = select(Practitioner).order_by(Practitioner.name, Practitioner.id)
        if p.get("status"):
            query = query.where(Practitioner.status == p.get("status"))
        if p.get("q"):
            pattern = _like(p.get("q"))
            query = query.where(
                or_(
                    func.lower(Practitioner.name).like(pattern, escape="\\"),
                    func.lower(Practitioner.email).like(pattern, escape="\\"),
                )
            )
        onboarding = p.get("onboarding")
        if onboarding == "stalled":
            query = query.join(OnboardingProgress).where(OnboardingProgress.stalled.is_(True))
        elif onboarding in ("in_progress", "completed"):
            query = query.join(OnboardingProgress).where(
                OnboardingProgress.status == onboarding, OnboardingProgress.stalled.is_(False)
            )
        elif onboarding == "none":
            query = query.outerjoin(OnboardingProgress).where(OnboardingProgress.id.is_(None))
        rows, more = _paged(query, p.page)
    ids = [r.id for r in rows]
    progress = {
        o.practitioner_id: o
        for o in db.session.scalars(
            select(OnboardingProgress).where(OnboardingProgress.practitioner_id.in_(ids))
        )
    }
    accounts = [ledger.available_account(i) for i in ids] + [ledger.held_account(i) for i in ids]
    balances = ledger.balances(accounts) if ids else {}
    subscriptions: dict[int, Subscription] = {}
    for s in db.session.scalars(
        select(Subscription)
        .where(Subscription.practitioner_id.in_(ids))
        .order_by(Subscription.created_at)
    ):
        subscriptions[s.practitioner_id] = s  # the latest wins
    return render_template(
        "domains/practitioners.html",
        rows=rows,
        more=more,
        p=p,
        progress=progress,
        balances=balances,
        subscriptions=subscriptions,
        statuses=PRACTITIONER_STATUSES,
        onboarding_filters=ONBOARDING_FILTERS,
        ledger=ledger,
    ), (400 if p.errors else 200)


@bp.get("/practitioners/<int:practitioner_id>")
@require("view")
def practitioner(practitioner_id: int):
    practitioner = _get_or_404(Practitioner, practitioner_id, "practitioner")
    pid = practitioner.id
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
    )
    balances = ledger.balances([ledger.available_account(pid), ledger.held_account(pid)])
    subscriptions = list(
        db.session.scalars(
            select(Subscription)
            .where(Subscription.practitioner_id == pid)
            .order_by(Subscription.created_at.desc())
        )
    )
    charges = list(
        db.session.scalars(
            select(SubscriptionCharge)
            .where(SubscriptionCharge.subscription_id.in_([s.id for s in subscriptions]))
            .order_by(SubscriptionCharge.created_at.desc())
            .limit(RECENT)
        )
    )
    payouts = list(
        db.session.scalars(
            select(Payout)
            .where(Payout.practitioner_id == pid)
            .order_by(Payout.created_at.desc())
            .limit(RECENT)
        )
    )
    bookings = list(
        db.session.scalars(
            select(Booking)
            .where(Booking.practitioner_id == pid)
            .order_by(Booking.start_at.desc())
            .limit(RECENT)
        )
    )
    documents = list(
        db.session.scalars(
            select(PractitionerDocument)
            .where(PractitionerDocument.practitioner_id == pid)
            .order_by(PractitionerDocument.submitted_at.desc())
        )
    )
    checks = list(
        db.session.scalars(
            select(BackgroundCheck)
            .where(BackgroundCheck.practitioner_id == pid)
            .order_by(BackgroundCheck.requested_at.desc())
        )
    )
    training = list(
        db.session.scalars(
            select(TrainingCompletion)
            .where(TrainingCompletion.practitioner_id == pid)
            .order_by(TrainingCompletion.completed_at)
        )
    )
    certifications = list(
        db.session.scalars(
            select(Certification)
            .where(Certification.practitioner_id == pid)
            .order_by(Certification.issued_at.desc())
        )
    )
    return render_template(
        "domains/practitioner.html",
        practitioner=practitioner,
        progress=progress,
        steps=onboarding_steps(progress),
        available=balances[ledger.available_account(pid)],
        held=balances[ledger.held_account(pid)],
        subscriptions=subscriptions,
        charges=charges,
        payouts=payouts,
        bookings=bookings,
        client_names=_names(Client, {b.client_id for b in bookings}),
        documents=documents,
        checks=checks,
        training=training,
        certifications=certifications,
        flags=_flags("practitioner", pid),
        runs=_entity_runs("practitioner", pid),
    )


# --- bookings -----------------------------------------------------------------------------


def _unresolved_booking_ids() -> Select:
    return select(OpsFlag.entity_id).where(
        OpsFlag.entity_type == "booking",
        OpsFlag.kind == "unresolved_session",
        OpsFlag.resolved_at.is_(None),
    )


@bp.get("/bookings")
@require("view")
def bookings():
    p = _params(
        request.args,
        {
            "status": BOOKING_STATUSES,
            "practitioner_id": "id",
            "client_id": "id",
            "attention": "flag",
            "upcoming": "flag",
        },
    )
    rows: list[Booking] = []
    more = False
    if not p.errors:
        query = select(Booking)
        if p.get("status"):
            query = query.where(Booking.status == p.get("status"))
        if p.get("practitioner_id"):
            query = query.where(Booking.practitioner_id == p.get("practitioner_id"))
        if p.get("client_id"):
            query = query.where(Booking.client_id == p.get("client_id"))
        if p.get("attention"):
            query = query.where(
                or_(Booking.needs_attention.is_(True), Booking.id.in_(_unresolved_booking_ids()))
            )
        if p.get("upcoming"):
            query = query.where(Booking.start_at >= utcnow(), Booking.status == "confirmed")
            query = query.order_by(Booking.start_at, Booking.id)
        else:
            query = query.order_by(Booking.start_at.desc(), Booking.id.desc())
        rows, more = _paged(query, p.page)
    ids = [b.id for b in rows]
    sent = dict(
        db.session.execute(
            select(Notification.entity_id, func.count(Notification.id))
            .where(Notification.entity_type == "booking", Notification.entity_id.in_(ids))
            .group_by(Notification.entity_id)
        ).all()
    )
    return render_template(
        "domains/bookings.html",
        rows=rows,
        more=more,
        p=p,
        sent=sent,
        statuses=BOOKING_STATUSES,
        practitioner_names=_names(Practitioner, {b.practitioner_id for b in rows}),
        client_names=_names(Client, {b.client_id for b in rows}),
    ), (400 if p.errors else 200)


@bp.get("/bookings/<int:booking_id>")
@require("view")
def booking(booking_id: int):
    booking = _get_or_404(Booking, booking_id, "booking")
    notifications = list(
        db.session.scalars(
            select(Notification)
            .where(Notification.entity_type == "booking", Notification.entity_id == booking.id)
            .order_by(Notification.created_at)
        )
    )
    feedback = db.session.scalar(select(Feedback).where(Feedback.booking_id == booking.id))
    purchase = (
        db.session.get(PackagePurchase, booking.package_purchase_id)
        if booking.package_purchase_id
        else None
    )
    moved_to = db.session.scalar(select(Booking).where(Booking.rescheduled_from_id == booking.id))
    return render_template(
        "domains/booking.html",
        booking=booking,
        practitioner=db.session.get(Practitioner, booking.practitioner_id),
        client=db.session.get(Client, booking.client_id),
        service=db.session.get(Service, booking.service_id),
        purchase=purchase,
        moved_to=moved_to,
        notifications=notifications,
        reminders=[n for n in notifications if "reminder" in n.template],
        feedback=feedback,
        flags=_flags("booking", booking.id),
        runs=_entity_runs("booking", booking.id),
    )


# --- payouts ------------------------------------------------------------------------------


@bp.get("/payouts")
@require("view")
def payouts():
    p = _params(request.args, {"status": PAYOUT_STATUSES, "practitioner_id": "id"})
    rows: list[Payout] = []
    more = False
    if not p.errors:
        query = select(Payout).order_by(Payout.created_at.desc(), Payout.id.desc())
        if p.get("status"):
            query = query.where(Payout.status == p.get("status"))
        if p.get("practitioner_id"):
            query = query.where(Payout.practitioner_id == p.get("practitioner_id"))
        rows, more = _paged(query, p.page)
    ids = [r.id for r in rows]
    approvals = dict(
        db.session.execute(
            select(PayoutApproval.payout_id, func.count(PayoutApproval.id))
            .where(PayoutApproval.payout_id.in_(ids), PayoutApproval.decision == "approve")
            .group_by(PayoutApproval.payout_id)
        ).all()
    )
    return render_template(
        "domains/payouts.html",
        rows=rows,
        more=more,
        p=p,
        approvals=approvals,
        statuses=PAYOUT_STATUSES,
        practitioner_names=_names(Practitioner, {r.practitioner_id for r in rows}),
    ), (400 if p.errors else 200)


@bp.get("/payouts/<int:payout_id>")
@require("view")
def payout(payout_id: int):
    payout = _get_or_404(Payout, payout_id, "payout")
    approvals = list(
        db.session.scalars(
            select(PayoutApproval)
            .where(PayoutApproval.payout_id == payout.id)
            .order_by(PayoutApproval.created_at)
        )
    )
    transfers = list(
        db.session.scalars(
            select(Transfer).where(Transfer.payout_id == payout.id).order_by(Transfer.created_at)
        )
    )
    return render_template(
        "domains/payout.html",
        payout=payout,
        practitioner=db.session.get(Practitioner, payout.practitioner_id),
        approvals=approvals,
        transfers=transfers,
        flags=_flags("payout", payout.id),
        runs=_workflow_runs([payout.workflow_id]),
    )


# --- notifications ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    notification: Notification
    payload: str


@bp.get("/notifications")
@require("view")
def notifications():
    p = _params(
        request.args,
        {
            "channel": CHANNELS,
            "template": "template",
            "entity_type": "template",
            "entity_id": "id",
        },
    )
    rows: list[Notification] = []
    more = False
    if not p.errors:
        query = select(Notification).order_by(
            Notification.created_at.desc(), Notification.id.desc()
        )
        for name in ("channel", "template", "entity_type", "entity_id"):
            if p.get(name) is not None:
                query = query.where(getattr(Notification, name) == p.get(name))
        rows, more = _paged(query, p.page)
    outbox = []
    for n in rows:
        try:
            payload = json.dumps(json.loads(n.payload_json or "{}"), indent=2, sort_keys=True)
        except ValueError:
            payload = n.payload_json or ""
        outbox.append(OutboxRow(n, payload))
    templates = list(
        db.session.scalars(select(Notification.template).distinct().order_by(Notification.template))
    )
    return render_template(
        "domains/notifications.html",
        rows=outbox,
        more=more,
        p=p,
        channels=CHANNELS,
        templates=templates,
    ), (400 if p.errors else 200)


@bp.app_template_filter("age")
def age(value: datetime | None) -> str:
    """How long ago (or from now) a time is, in words."""
    if value is None:
        return "-"
    delta = value - utcnow()
    seconds = int(abs(delta.total_seconds()))
    if seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400 * 2:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86400} days"
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} ago"


@bp.app_context_processor
def pager_helpers() -> dict[str, Any]:
    def page_url(page: int) -> str:
        args = {k: v for k, v in request.args.items() if k != "page"}
        return url_for(
            request.endpoint or "home.index", **(request.view_args or {}), **args, page=page
        )

    return {"page_url": page_url}
