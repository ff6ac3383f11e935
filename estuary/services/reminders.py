"""Session reminders (24 h and 1 h before the start), sent by the booking lifecycle and by
the batch reminder run. Both go through `send_reminder`, whose notification key is per
booking, reminder type and start time: whichever sends first wins, the other is a no-op,
and a moved booking's reminders (new start, new key) are distinct from the old ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from estuary.contracts.bookings import REMINDER_OFFSETS, ReminderResult, reminder_key, utc_iso
from estuary.db import db
from estuary.models import Booking, Client, Notification
from estuary.services import notifications
from estuary.services.bookings import ACTIVE, booking_payload, get_booking
from estuary.services.errors import BusinessRuleError

TEMPLATE = "booking_reminder"


def _check_type(reminder_type: str) -> None:
    if reminder_type not in REMINDER_OFFSETS:
        raise BusinessRuleError(
            f"unknown reminder type {reminder_type!r} (use {', '.join(REMINDER_OFFSETS)})",
            field="reminder_type",
        )


def send_reminder(
    booking_id: int,
    reminder_type: str,
    *,
    start_at: datetime,
    now: datetime,
    sent_by: str,
) -> ReminderResult:
    """Remind the client of a session starting at `start_at`, once per key.

    Skipped (not an error) when the booking is no longer confirmed, has moved away from
    `start_at`, or has already started: reminding about those would mislead.
    """
    _check_type(reminder_type)
    booking = get_booking(booking_id)
    key = reminder_key(booking_id, reminder_type, start_at)
    if booking.status != ACTIVE:
        return ReminderResult(key, "skipped", f"booking is {booking.status}")
    if booking.start_at != start_at:
        return ReminderResult(key, "skipped", f"booking moved to {utc_iso(booking.start_at)}")
    if booking.start_at <= now:
        return ReminderResult(key, "skipped", "session already started")
    client = db.session.get(Client, booking.client_id)
    sent = notifications.send(
        key=key,
        channel="email",
        recipient=client.email,
        template=TEMPLATE,
        payload=booking_payload(booking, now, reminder_type=reminder_type, sent_by=sent_by),
        entity_type="booking",
        entity_id=booking_id,
    )
    return ReminderResult(key, "sent" if sent.created else "already_sent")


@dataclass(frozen=True)
class ReminderPage:
    booking_ids: list[int]
    last_booking_id: int
    exhausted: bool
    already_sent: int = 0


def bookings_needing_reminder(
    window_start: datetime,
    window_end: datetime,
    reminder_type: str,
    *,
    now: datetime,
    after_booking_id: int,
    limit: int,
) -> ReminderPage:
    """One page (by booking id) of confirmed bookings starting in [window_start, window_end)
    and after `now` that have not had this reminder for their current start time."""
    _check_type(reminder_type)
    rows = db.session.execute(
        select(Booking.id, Booking.start_at)
        .where(
            Booking.status == ACTIVE,
            Booking.start_at >= window_start,
            Booking.start_at < window_end,
            Booking.start_at > now,
            Booking.id > after_booking_id,
        )
        .order_by(Booking.id)
        .limit(limit)
    ).all()
    if not rows:
        return ReminderPage([], after_booking_id, True)
    keys = {
        booking_id: reminder_key(booking_id, reminder_type, start) for booking_id, start in rows
    }
    sent = set(
        db.session.scalars(select(Notification.key).where(Notification.key.in_(keys.values())))
    )
    needing = [booking_id for booking_id, key in keys.items() if key not in sent]
    return ReminderPage(needing, rows[-1][0], len(rows) < limit, len(rows) - len(needing))


@dataclass(frozen=True)
class ChunkCounts:
    sent: int
    already_sent: int
    skipped: int


def send_reminders(booking_ids: list[int], reminder_type: str, *, now: datetime) -> ChunkCounts:
    """Send this reminder to each booking (at its current start time), once per key."""
    counts = {"sent": 0, "already_sent": 0, "skipped": 0}
    for booking_id in booking_ids:
        booking = db.session.get(Booking, booking_id)
        if booking is None:
            counts["skipped"] += 1
            continue
        outcome = send_reminder(
            booking_id, reminder_type, start_at=booking.start_at, now=now, sent_by="batch"
        )
        counts[outcome.state] += 1
    return ChunkCounts(**counts)
