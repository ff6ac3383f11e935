"""Counts for the home page that come from the app database (Temporal ones come from
the gateway in the view)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import Booking, OnboardingProgress, OpsFlag, Payout, Practitioner


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
    from estuary.models.base import utcnow

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


@dataclass(frozen=True)
class DayTotal:
    day: date
    cents: int
    count: int


def payout_volume_by_day(
    days: int = 14, *, today: date | None = None, zone: tzinfo = UTC
) -> list[DayTotal]:
    """Money paid out per day (payouts with status `paid`, by the day they were paid), oldest
    day first, with zero days included so the chart has no gaps. Days are the staff member's
    (`zone`): a payout at 23:30 UTC is on the next day in Asia/Kolkata."""
    today = today or datetime.now(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    rows = db.session.execute(
        select(Payout.paid_at, Payout.amount_cents).where(
            Payout.status == "paid", Payout.paid_at.is_not(None), Payout.paid_at >= since
        )
    ).all()
    cents: dict[date, int] = defaultdict(int)
    counts: dict[date, int] = defaultdict(int)
    for paid_at, amount in rows:
        moment = paid_at if paid_at.tzinfo else paid_at.replace(tzinfo=UTC)
        day = moment.astimezone(zone).date()
        cents[day] += int(amount)
        counts[day] += 1
    return [
        DayTotal(
            first + timedelta(days=i),
            cents[first + timedelta(days=i)],
            counts[first + timedelta(days=i)],
        )
        for i in range(days)
    ]


def open_flags(limit: int = 10) -> list[OpsFlag]:
    """The oldest unresolved ops flags first: what has waited longest for a person."""
    return list(
        db.session.scalars(
            select(OpsFlag)
            .where(OpsFlag.resolved_at.is_(None))
            .order_by(OpsFlag.raised_at)
            .limit(limit)
        )
    )
