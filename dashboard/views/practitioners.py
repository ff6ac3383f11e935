"""`/practitioners`: the practitioner list (status, onboarding, search) and each
practitioner's page (balances, subscriptions, payouts, bookings, documents, checks,
training, ops flags, recent runs). Shared helpers: `dashboard.domain_pages`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, render_template, request
from sqlalchemy import func, or_, select

from dashboard.domain_pages import (
    RECENT,
    entity_runs,
    flags,
    get_or_404,
    like,
    list_page,
    list_params,
    names,
    paged,
    rows_where,
)
from dashboard.permissions import require
from estuary.db import db
from estuary.models import (
    PRACTITIONER_STATUSES,
    BackgroundCheck,
    Booking,
    Certification,
    Client,
    OnboardingProgress,
    Payout,
    Practitioner,
    PractitionerDocument,
    Subscription,
    SubscriptionCharge,
    TrainingCompletion,
)
from estuary.services import ledger

bp = Blueprint("practitioners", __name__, url_prefix="/practitioners")

ONBOARDING_FILTERS = ("stalled", "in_progress", "completed", "none")


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


@bp.get("")
@require("view")
def index():
    p = list_params(
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
            pattern = like(p.get("q"))
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
        rows, more = paged(query, p.page)
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
    return list_page(
        "domains/practitioners.html",
        p,
        rows,
        more,
        progress=progress,
        balances=balances,
        subscriptions=subscriptions,
        statuses=PRACTITIONER_STATUSES,
        onboarding_filters=ONBOARDING_FILTERS,
        ledger=ledger,
    )


def _verification(pid: int) -> dict[str, list]:
    """The practitioner's documents, background checks, training and certifications."""
    documents = rows_where(
        PractitionerDocument,
        PractitionerDocument.practitioner_id == pid,
        order_by=PractitionerDocument.submitted_at.desc(),
    )
    checks = rows_where(
        BackgroundCheck,
        BackgroundCheck.practitioner_id == pid,
        order_by=BackgroundCheck.requested_at.desc(),
    )
    training = rows_where(
        TrainingCompletion,
        TrainingCompletion.practitioner_id == pid,
        order_by=TrainingCompletion.completed_at,
    )
    certifications = rows_where(
        Certification,
        Certification.practitioner_id == pid,
        order_by=Certification.issued_at.desc(),
    )
    return {
        "documents": documents,
        "checks": checks,
        "training": training,
        "certifications": certifications,
    }


@bp.get("/<int:practitioner_id>")
@require("view")
def detail(practitioner_id: int):
    practitioner = get_or_404(Practitioner, practitioner_id, "practitioner")
    pid = practitioner.id
    progress = db.session.scalar(
        select(OnboardingProgress).where(OnboardingProgress.practitioner_id == pid)
    )
    balances = ledger.balances([ledger.available_account(pid), ledger.held_account(pid)])
    subscriptions = rows_where(
        Subscription,
        Subscription.practitioner_id == pid,
        order_by=Subscription.created_at.desc(),
    )
    charges = rows_where(
        SubscriptionCharge,
        SubscriptionCharge.subscription_id.in_([s.id for s in subscriptions]),
        order_by=SubscriptionCharge.created_at.desc(),
        limit=RECENT,
    )
    payouts = rows_where(
        Payout, Payout.practitioner_id == pid, order_by=Payout.created_at.desc(), limit=RECENT
    )
    bookings = rows_where(
        Booking, Booking.practitioner_id == pid, order_by=Booking.start_at.desc(), limit=RECENT
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
        client_names=names(Client, {b.client_id for b in bookings}),
        **_verification(pid),
        flags=flags("practitioner", pid),
        runs=entity_runs("practitioner", pid),
    )
