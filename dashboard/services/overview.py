"""Counts for the home page that come from the app database (Temporal ones come from
the gateway in the view)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Booking, OnboardingProgress, OpsFlag, Payout, Practitioner


@dataclass(frozen=True)
class DatabaseOverview:
    practitioners_active: int
    payouts_waiting_approval: int
    stalled_onboardings: int
    unresolved_sessions: int
    open_flags: int
    upcoming_bookings: int


def _count(query) -> int:
    return int(db.session.scalar(query) or 0)


def database_overview() -> DatabaseOverview:
    from dashboard.models.base import utcnow

    return DatabaseOverview(
        practitioners_active=_count(
            select(func.count(Practitioner.id)).where(Practitioner.status == "active")
        ),
        payouts_waiting_approval=_count(
            select(func.count(Payout.id)).where(Payout.status == "pending_approval")
        ),
        stalled_onboardings=_count(
            select(func.count(OnboardingProgress.id)).where(OnboardingProgress.stalled.is_(True))
        ),
        unresolved_sessions=_count(
            select(func.count(OpsFlag.id)).where(
                OpsFlag.kind == "unresolved_session", OpsFlag.resolved_at.is_(None)
            )
        ),
        open_flags=_count(select(func.count(OpsFlag.id)).where(OpsFlag.resolved_at.is_(None))),
        upcoming_bookings=_count(
            select(func.count(Booking.id)).where(
                Booking.status == "confirmed", Booking.start_at >= utcnow()
            )
        ),
    )
