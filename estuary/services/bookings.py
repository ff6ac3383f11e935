"""Booking rules: outcomes (completed, no-show, cancelled), moving and rescheduling,
feedback, the messages about a booking, and the flags a booking raises for ops.

No HTTP and no Temporal here. Times that matter to a rule ("is it in the future?", "how
long before the start?") are passed in by the caller: the workflow's time for activities,
the wall clock for commands. Every change is idempotent: status changes are conditional
updates (a repeat changes nothing and reports the first outcome), messages and ledger
transactions carry keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from estuary.contracts.bookings import BookingOutcome, utc_iso
from estuary.db import add_once, db
from estuary.models import Booking, Client, Feedback, OpsFlag, Practitioner
from estuary.services import booking_policies, ledger, notifications, ops_flags
from estuary.services.errors import BusinessRuleError, NotFoundError

ACTIVE = "confirmed"
FINISHED = ("completed", "no_show", "cancelled", "rescheduled")
AUDIENCES = ("client", "practitioner")
NOTICE_TEMPLATES = {
    "confirmation": "booking_confirmation",
    "follow_up": "booking_follow_up",
    "feedback_reminder": "booking_feedback_reminder",
    "no_show": "booking_no_show",
    "cancelled": "booking_cancelled",
    "moved": "booking_moved",
    "rescheduled": "booking_rescheduled",
    "feedback": "booking_feedback_shared",
}
FLAG_KINDS = ("unresolved_session", "payments_step_failed")
PLATFORM_FORFEITED = "platform:forfeited_bookings"


def client_credit_account(client_id: int) -> str:
    """Ledger account of what the platform owes a client as session credit."""
    return f"client:{client_id}:credit"


def flag_key(booking_id: int, kind: str) -> str:
    return f"booking:{booking_id}:{kind}"


def notice_key(booking_id: int, kind: str, audience: str, suffix: str = "") -> str:
    middle = f"{kind}:{suffix}" if suffix else kind
    return f"booking:{booking_id}:{middle}:{audience}"


# --- lookups ------------------------------------------------------------------------------


def get_booking(booking_id: int) -> Booking:
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFoundError(f"booking {booking_id} not found", field="booking_id")
    return booking


def require_active(booking: Booking, action: str) -> None:
    if booking.status != ACTIVE:
        raise BusinessRuleError(
            f"booking {booking.id} is {booking.status}; it cannot be {action}",
            field="booking_id",
        )


def check_lifecycle_can_start(booking_id: int) -> Booking:
    """For the starting side: the booking exists and is still confirmed."""
    booking = get_booking(booking_id)
    require_active(booking, "given a lifecycle")
    return booking


def overlapping_booking(
    practitioner_id: int, start_at: datetime, end_at: datetime, exclude_ids: tuple[int, ...]
) -> Booking | None:
    """A confirmed booking of the practitioner that overlaps [start_at, end_at), if any."""
    query = (
        select(Booking)
        .where(
            Booking.practitioner_id == practitioner_id,
            Booking.status == ACTIVE,
            Booking.start_at < end_at,
            Booking.end_at > start_at,
        )
        .order_by(Booking.start_at)
        .limit(1)
    )
    if exclude_ids:
        query = query.where(Booking.id.not_in(exclude_ids))
    return db.session.scalar(query)


def check_new_slot(booking: Booking, new_start_at: datetime, now: datetime) -> datetime:
    """Refuse a move of `booking` to `new_start_at` unless it is allowed; return the new end."""
    require_active(booking, "moved")
    if new_start_at.tzinfo is None:
        raise BusinessRuleError("new start must carry a time zone", field="new_start_at")
    if new_start_at <= now:
        raise BusinessRuleError(
            f"new start {utc_iso(new_start_at)} is not in the future", field="new_start_at"
        )
    if booking.start_at <= now:
        raise BusinessRuleError(
            f"booking {booking.id}'s session already started at {utc_iso(booking.start_at)}; "
            "mark it completed or no-show instead",
            field="booking_id",
        )
    if new_start_at == booking.start_at:
        raise BusinessRuleError(
            f"booking {booking.id} already starts at {utc_iso(new_start_at)}",
            field="new_start_at",
        )
    new_end_at = new_start_at + (booking.end_at - booking.start_at)
    clash = overlapping_booking(booking.practitioner_id, new_start_at, new_end_at, (booking.id,))
    if clash is not None:
        raise BusinessRuleError(
            f"the practitioner is not free then: booking {clash.id} runs "
            f"{utc_iso(clash.start_at)} to {utc_iso(clash.end_at)}",
            field="new_start_at",
        )
    return new_end_at


# --- messages ----------------------------------------------------------------------------


def _recipient(booking: Booking, audience: str) -> str:
    if audience == "client":
        return db.session.get(Client, booking.client_id).email
    if audience == "practitioner":
        return db.session.get(Practitioner, booking.practitioner_id).email
    raise BusinessRuleError(f"unknown audience {audience!r}")


def booking_payload(booking: Booking, workflow_time: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "booking_id": booking.id,
        "start_at": utc_iso(booking.start_at),
        "end_at": utc_iso(booking.end_at),
        "workflow_time": utc_iso(workflow_time),
        **extra,
    }


def send_notice(
    booking_id: int,
    kind: str,
    audience: list[str],
    workflow_time: datetime,
    *,
    key_suffix: str = "",
    details: dict[str, str] | None = None,
) -> list[notifications.SentNotification]:
    """Send one kind of message about a booking to each audience, once per key."""
    if kind not in NOTICE_TEMPLATES:
        raise BusinessRuleError(f"unknown booking notice {kind!r}")
    booking = get_booking(booking_id)
    sent = []
    for who in audience:
        if who not in AUDIENCES:
            raise BusinessRuleError(f"unknown audience {who!r}")
        sent.append(
            notifications.send(
                key=notice_key(booking_id, kind, who, key_suffix),
                channel="email",
                recipient=_recipient(booking, who),
                template=NOTICE_TEMPLATES[kind],
                payload=booking_payload(booking, workflow_time, audience=who, **(details or {})),
                entity_type="booking",
                entity_id=booking_id,
            )
        )
    return sent


# --- outcomes ----------------------------------------------------------------------------


def _transition(booking: Booking, to_status: str, **values: Any) -> bool:
    """Move a confirmed booking to `to_status` atomically; False if it was not confirmed."""
    result = db.session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == ACTIVE)
        .values(status=to_status, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(booking)
    return result.rowcount == 1


def _repeat_or_refuse(booking: Booking, wanted: str) -> BookingOutcome:
    """The outcome already recorded, if it is `wanted`; otherwise a refusal."""
    if booking.status == wanted:
        return BookingOutcome(
            booking.id,
            booking.status,
            booking.credit_issued_cents or 0,
            booking.practitioner_fee_cents or 0,
            f"already {wanted}",
            changed=False,
        )
    raise BusinessRuleError(
        f"booking {booking.id} is already {booking.status}; it cannot become {wanted}",
        field="booking_id",
    )


def _clear_unresolved_flag(booking: Booking) -> None:
    ops_flags.resolve_flag(flag_key(booking.id, "unresolved_session"))
    booking.needs_attention = False


def _settle(booking: Booking, key: str, kind: str, settlement: booking_policies.Settlement) -> None:
    """Move the settled part of the booking's price out of clearing: fee to the
    practitioner, credit to the client, the forfeited part to the platform. Client credit is
    also kept on the client row for quick reads."""
    legs = [
        ledger.Leg(ledger.available_account(booking.practitioner_id), settlement.fee_cents),
        ledger.Leg(client_credit_account(booking.client_id), settlement.credit_cents),
        ledger.Leg(PLATFORM_FORFEITED, settlement.forfeited_cents),
    ]
    legs = [leg for leg in legs if leg.amount_cents]
    if not legs:
        return
    moved = sum(leg.amount_cents for leg in legs)
    ledger.post(
        key,
        kind,
        [ledger.Leg(ledger.PLATFORM_CLEARING, -moved), *legs],
        description=f"booking {booking.id}: {settlement.note}",
        currency=booking.currency,
    )
    if settlement.credit_cents:
        db.session.execute(
            update(Client)
            .where(Client.id == booking.client_id)
            .values(credit_cents=Client.credit_cents + settlement.credit_cents)
            .execution_options(synchronize_session=False)
        )


def complete(booking_id: int, *, actor: str, at: datetime) -> BookingOutcome:
    booking = get_booking(booking_id)
    if not _transition(booking, "completed", completed_at=at, outcome_at=at, outcome_by=actor):
        return _repeat_or_refuse(booking, "completed")
    _clear_unresolved_flag(booking)
    return BookingOutcome(booking.id, "completed", 0, 0, "session completed", changed=True)


def apply_no_show(
    booking_id: int, *, actor: str, at: datetime, fee_percent: int, credit_forfeited: bool
) -> BookingOutcome:
    booking = get_booking(booking_id)
    if at < booking.start_at:
        raise BusinessRuleError(
            f"booking {booking.id} has not started yet (starts {utc_iso(booking.start_at)})"
        )
    settlement = booking_policies.no_show(
        booking.price_cents,
        fee_percent=fee_percent,
        credit_forfeited=credit_forfeited,
        package_session=booking.package_purchase_id is not None,
    )
    return _close_with_settlement(
        booking, "no_show", "no_show", settlement, outcome_at=at, outcome_by=actor
    )


def apply_cancellation(
    booking_id: int,
    *,
    actor: str,
    by: str,
    reason: str,
    at: datetime,
    full_credit_hours: int,
    late_credit_percent: int,
) -> BookingOutcome:
    booking = get_booking(booking_id)
    if by not in ("client", "practitioner", "ops"):
        raise BusinessRuleError(f"unknown canceller {by!r}", field="by")
    if by == "client" and at >= booking.start_at:
        raise BusinessRuleError(
            f"booking {booking.id}'s session started at {utc_iso(booking.start_at)}; "
            "the client can no longer cancel it",
            field="by",
        )
    settlement = booking_policies.cancellation(
        booking.price_cents,
        start_at=booking.start_at,
        now=at,
        by=by,
        full_credit_hours=full_credit_hours,
        late_credit_percent=late_credit_percent,
        package_session=booking.package_purchase_id is not None,
    )
    return _close_with_settlement(
        booking,
        "cancelled",
        "cancellation",
        settlement,
        cancel_reason=reason[:500],
        cancelled_by=f"{by}:{actor}"[:254],
        outcome_at=at,
        outcome_by=actor,
    )


def _close_with_settlement(
    booking: Booking,
    status: str,
    event: str,
    settlement: booking_policies.Settlement,
    **values: Any,
) -> BookingOutcome:
    """Move a confirmed booking to `status` with the policy's credit and fee, post them
    once (ledger key `booking:{id}:{event}`) and clear its unresolved-session flag; a
    booking that was no longer confirmed gets the repeat-or-refuse answer instead."""
    if not _transition(
        booking,
        status,
        credit_issued_cents=settlement.credit_cents,
        practitioner_fee_cents=settlement.fee_cents,
        **values,
    ):
        return _repeat_or_refuse(booking, status)
    _settle(booking, f"booking:{booking.id}:{event}", f"booking_{event}", settlement)
    _clear_unresolved_flag(booking)
    return BookingOutcome(
        booking.id, status, settlement.credit_cents, settlement.fee_cents, settlement.note, True
    )


# --- moving and rescheduling ---------------------------------------------------------------


def move(
    booking_id: int, *, new_start_at: datetime, expected_start_at: datetime, at: datetime
) -> Booking:
    """Move a booking's time in place (the lifecycle's `reschedule` update). A repeat of a
    move already made returns the booking unchanged."""
    booking = get_booking(booking_id)
    if booking.start_at == new_start_at and booking.status == ACTIVE:
        return booking
    if booking.start_at != expected_start_at:
        raise BusinessRuleError(
            f"booking {booking.id} now starts at {utc_iso(booking.start_at)}, not "
            f"{utc_iso(expected_start_at)}; reload and try again",
            field="new_start_at",
        )
    new_end_at = check_new_slot(booking, new_start_at, at)
    result = db.session.execute(
        update(Booking)
        .where(
            Booking.id == booking.id,
            Booking.status == ACTIVE,
            Booking.start_at == expected_start_at,
        )
        .values(start_at=new_start_at, end_at=new_end_at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise BusinessRuleError(f"booking {booking.id} changed meanwhile; try again")
    db.session.refresh(booking)
    return booking


@dataclass(frozen=True)
class RescheduleCheck:
    old: Booking
    new_start_at: datetime
    new_end_at: datetime
    existing: Booking | None  # the booking this request already created, if any


def check_reschedule(
    booking_id: int, *, new_start_at: datetime, reschedule_key: str, now: datetime
) -> RescheduleCheck:
    """Refuse a reschedule that cannot happen; recognise one that already happened."""
    old = get_booking(booking_id)
    existing = db.session.scalar(select(Booking).where(Booking.reschedule_key == reschedule_key))
    if existing is not None:
        if existing.rescheduled_from_id != old.id:
            raise BusinessRuleError(
                f"request key {reschedule_key} belongs to booking {existing.rescheduled_from_id}"
            )
        return RescheduleCheck(old, existing.start_at, existing.end_at, existing)
    new_end_at = check_new_slot(old, new_start_at, now)
    return RescheduleCheck(old, new_start_at, new_end_at, None)


def create_rescheduled_booking(
    booking_id: int,
    *,
    new_start_at: datetime,
    reschedule_key: str,
    reason: str,
    actor: str,
    now: datetime,
) -> tuple[Booking, Booking, bool]:
    """Replace a booking by a new one at `new_start_at`; returns (old, new, created).

    One request (`reschedule_key`, unique) creates at most one booking.
    """
    check = check_reschedule(
        booking_id, new_start_at=new_start_at, reschedule_key=reschedule_key, now=now
    )
    if check.existing is not None:
        return check.old, check.existing, False
    old = check.old
    if not _transition(
        old,
        "rescheduled",
        cancel_reason=(reason or "rescheduled")[:500],
        cancelled_by=actor[:254],
        outcome_at=now,
        outcome_by=actor,
    ):
        raise BusinessRuleError(f"booking {old.id} changed meanwhile; try again")
    new = Booking(
        client_id=old.client_id,
        practitioner_id=old.practitioner_id,
        service_id=old.service_id,
        package_purchase_id=old.package_purchase_id,
        start_at=check.new_start_at,
        end_at=check.new_end_at,
        status=ACTIVE,
        price_cents=old.price_cents,
        currency=old.currency,
        rescheduled_from_id=old.id,
        reschedule_key=reschedule_key,
    )
    try:
        with db.session.begin_nested():
            db.session.add(new)
    except IntegrityError:
        raise BusinessRuleError(f"request {reschedule_key} is being carried out already") from None
    return old, new, True


# --- feedback and flags ----------------------------------------------------------------------


def record_feedback(
    booking_id: int, *, rating: int, comment: str, at: datetime
) -> tuple[int, bool]:
    """Store the client's feedback once per booking; returns (rating kept, created)."""
    booking = get_booking(booking_id)
    if booking.status != "completed":
        raise BusinessRuleError(f"booking {booking.id} is {booking.status}, not completed")
    if not 1 <= rating <= 5:
        raise BusinessRuleError("rating must be between 1 and 5", field="rating")

    def find() -> Feedback | None:
        return db.session.scalar(select(Feedback).where(Feedback.booking_id == booking_id))

    existing = find()
    if existing is not None:
        return existing.rating, False
    row = Feedback(booking_id=booking_id, rating=rating, comment=comment[:2000], received_at=at)
    kept, created = add_once(row, find)
    return kept.rating, created


def raise_booking_flag(booking_id: int, *, kind: str, message: str, workflow_id: str) -> OpsFlag:
    """Raise an ops flag about a booking (once per booking and kind) and mark the booking
    as needing attention, so it shows in the console."""
    if kind not in FLAG_KINDS:
        raise BusinessRuleError(f"unknown booking flag kind {kind!r}")
    booking = get_booking(booking_id)
    flag = ops_flags.raise_flag(
        key=flag_key(booking_id, kind),
        kind=kind,
        entity_type="booking",
        entity_id=booking_id,
        message=message,
        workflow_id=workflow_id,
    )
    booking.needs_attention = True
    return flag
