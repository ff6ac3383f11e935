"""Platform commission on completed bookings, by practitioner tier; once per booking.

Ledger legs (transaction key `commission:booking:{booking_id}`):

* A single (non-package) booking of gross G at rate r: commission C = G * r (Decimal,
  rounded half-up to the cent), net N = G - C. The client's payment sits in
  `platform:clearing`; completing the booking earns it out:
      platform:clearing                 -G
      platform:commission               +C
      practitioner:{id}:available       +N
* A package session: the package's commission (total_cents - net_cents of the purchase,
  fixed at purchase) is split exactly over its sessions, part k for the k-th session
  recorded (remainder on the last), so the parts sum to it to the cent:
      platform:clearing                 -C_k
      platform:commission               +C_k
  Its net earnings are NOT released here: ProgressivePackagePayoutWorkflow releases
  them (`package-release:{purchase}:{k}`: platform:clearing -> practitioner available).

Zero legs are left out (a free booking posts nothing). The Commission row (unique
booking_id) and the ledger transaction (unique key) are written in the caller's
transaction, so a second run finds the first and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from estuary.contracts.payments import BookingCommissionResult
from estuary.db import db, lock_row
from estuary.models import Booking, Commission, PackagePurchase, Practitioner
from estuary.services import ledger, ops_flags
from estuary.services.errors import BusinessRuleError, NotFoundError
from estuary.services.package_payouts import split_exact

# Platform commission in basis points (1500 = 15 %) by practitioner tier; the app config
# may override with COMMISSION_RATES_BPS = {"basic": ..., ...}.
DEFAULT_RATES_BPS = {"basic": 2000, "pro": 1500, "premium": 1000}


def rate_bps(tier: str) -> int:
    rates = {**DEFAULT_RATES_BPS, **(current_app.config.get("COMMISSION_RATES_BPS") or {})}
    if tier not in rates:
        raise BusinessRuleError(f"no commission rate for tier {tier!r}")
    return int(rates[tier])


def commission_for(gross_cents: int, bps: int) -> int:
    """Commission on a gross amount, rounded half-up to the cent (the one rounding step)."""
    if gross_cents < 0:
        raise BusinessRuleError("a gross amount cannot be negative")
    amount = (Decimal(gross_cents) * Decimal(bps) / Decimal(10_000)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return int(amount)


def record_booking_commission(booking_id: int) -> BookingCommissionResult:
    """Write the booking's commission row and ledger entries unless already written."""
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFoundError(f"booking {booking_id} does not exist")
    existing = db.session.scalar(select(Commission).where(Commission.booking_id == booking_id))
    if existing is not None:
        return _recorded(existing, created=False)
    if booking.status != "completed":
        raise BusinessRuleError(
            f"booking {booking_id} is {booking.status}; commission is taken on completed "
            "bookings only"
        )
    practitioner = db.session.get(Practitioner, booking.practitioner_id)
    if practitioner is None:
        raise NotFoundError(f"practitioner {booking.practitioner_id} does not exist")
    if booking.package_purchase_id is not None:
        return _record_package_session(booking, practitioner)
    gross = booking.price_cents
    bps = rate_bps(practitioner.tier)
    commission = commission_for(gross, bps)
    net = gross - commission
    row = _commission_row(booking, practitioner, bps, gross, commission, booking.currency)
    if not _insert(row):
        return _recorded(_by_booking(booking_id), created=False)
    legs = [
        ledger.Leg(ledger.PLATFORM_CLEARING, -gross),
        ledger.Leg(ledger.PLATFORM_COMMISSION, commission),
        ledger.Leg(ledger.available_account(practitioner.id), net),
    ]
    _post(booking, legs, "booking_earning")
    return BookingCommissionResult(booking.id, commission, created=True, net_released_cents=net)


def _record_package_session(
    booking: Booking, practitioner: Practitioner
) -> BookingCommissionResult:
    """A package session's commission: the next exact part of the package's commission
    (parts sum to it), once per booking, posted to the ledger."""
    purchase_id = booking.package_purchase_id
    assert purchase_id is not None
    lock_row(PackagePurchase, purchase_id)
    purchase = db.session.get(PackagePurchase, purchase_id)
    if purchase is None:
        raise NotFoundError(f"package purchase {purchase_id} does not exist")
    taken = db.session.scalar(
        select(func.count(Commission.id)).where(
            Commission.package_purchase_id == purchase_id, Commission.package_part.is_not(None)
        )
    )
    part = int(taken or 0) + 1
    if part > purchase.sessions_total:
        return _overbooked_session(booking, practitioner, purchase)
    package_commission = purchase.total_cents - purchase.net_cents
    if package_commission < 0:
        raise BusinessRuleError(f"package purchase {purchase_id} has net above its total")
    commission = split_exact(package_commission, purchase.sessions_total)[part - 1]
    gross = split_exact(purchase.total_cents, purchase.sessions_total)[part - 1]
    bps = _effective_rate_bps(package_commission, purchase.total_cents)
    row = _commission_row(
        booking,
        practitioner,
        bps,
        gross,
        commission,
        purchase.currency,
        package_purchase_id=purchase_id,
        package_part=part,
    )
    if not _insert(row):
        return _recorded(_by_booking(booking.id), created=False)
    _post(
        booking,
        [
            ledger.Leg(ledger.PLATFORM_CLEARING, -commission),
            ledger.Leg(ledger.PLATFORM_COMMISSION, commission),
        ],
        "package_commission",
    )
    return BookingCommissionResult(
        booking.id, commission, created=True, package_purchase_id=purchase_id
    )


def _effective_rate_bps(commission_cents: int, total_cents: int) -> int:
    """The package's commission as a rate in basis points, rounded half up (0 if free)."""
    if not total_cents:
        return 0
    rate = Decimal(commission_cents) * 10_000 / Decimal(total_cents)
    return int(rate.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _overbooked_session(
    booking: Booking, practitioner: Practitioner, purchase: PackagePurchase
) -> BookingCommissionResult:
    """More completed sessions than the package holds: take nothing (the package's
    commission is fully taken), keep a zero row so this is decided once, and ask ops."""
    ops_flags.raise_flag(
        key=f"package-overbooked:{purchase.id}:{booking.id}",
        kind="package_overbooked",
        entity_type="booking",
        entity_id=booking.id,
        message=(
            f"Booking {booking.id} completed as a session of package purchase "
            f"{purchase.id}, whose {purchase.sessions_total} sessions all have a "
            "commission already; no commission taken. Check the booking."
        ),
    )
    row = _commission_row(
        booking, practitioner, 0, 0, 0, purchase.currency, package_purchase_id=purchase.id
    )
    created = _insert(row)
    return BookingCommissionResult(booking.id, 0, created, package_purchase_id=purchase.id)


def _commission_row(
    booking: Booking,
    practitioner: Practitioner,
    rate_bps: int,
    gross_cents: int,
    commission_cents: int,
    currency: str,
    *,
    package_purchase_id: int | None = None,
    package_part: int | None = None,
) -> Commission:
    return Commission(
        booking_id=booking.id,
        practitioner_id=practitioner.id,
        tier=practitioner.tier,
        rate_bps=rate_bps,
        gross_cents=gross_cents,
        commission_cents=commission_cents,
        currency=currency,
        package_purchase_id=package_purchase_id,
        package_part=package_part,
    )


def _insert(row: Commission) -> bool:
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return False
    return True


def _post(booking: Booking, legs: list[ledger.Leg], kind: str) -> None:
    legs = [leg for leg in legs if leg.amount_cents != 0]
    if not legs:
        return
    ledger.post(
        f"commission:booking:{booking.id}",
        kind,
        legs,
        description=f"Commission and earnings of booking {booking.id}",
        currency=booking.currency,
    )


def _by_booking(booking_id: int) -> Commission:
    row = db.session.scalar(select(Commission).where(Commission.booking_id == booking_id))
    if row is None:  # the conflicting insert rolled back as well: let the caller retry
        raise RuntimeError(f"commission for booking {booking_id} vanished; retry")
    return row


def _recorded(row: Commission, *, created: bool) -> BookingCommissionResult:
    net = 0 if row.package_purchase_id is not None else row.gross_cents - row.commission_cents
    return BookingCommissionResult(
        row.booking_id,
        row.commission_cents,
        created,
        net_released_cents=net,
        package_purchase_id=row.package_purchase_id,
    )


# --- the period run --------------------------------------------------------------------


@dataclass
class CommissionPage:
    bookings_examined: int = 0
    commissions_created: int = 0
    commission_cents_created: int = 0
    net_released_cents: int = 0
    already_recorded: int = 0
    failures: list[str] | None = None
    next_cursor: int = 0
    exhausted: bool = True


def period_bounds(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    start = datetime.combine(period_start, time.min, tzinfo=UTC)
    end = datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC)
    return start, end


def record_period_page(
    period_start: date, period_end: date, after_booking_id: int, limit: int
) -> CommissionPage:
    """Record commissions for the next `limit` completed bookings of the period (by id).

    Each booking is its own savepoint: one refused booking is reported, the rest proceed.
    """
    start, end = period_bounds(period_start, period_end)
    ids = list(
        db.session.scalars(
            select(Booking.id)
            .where(
                Booking.status == "completed",
                Booking.completed_at >= start,
                Booking.completed_at < end,
                Booking.id > after_booking_id,
            )
            .order_by(Booking.id)
            .limit(limit)
        )
    )
    page = CommissionPage(failures=[], next_cursor=after_booking_id, exhausted=len(ids) < limit)
    for booking_id in ids:
        page.bookings_examined += 1
        page.next_cursor = booking_id
        try:
            with db.session.begin_nested():
                recorded = record_booking_commission(booking_id)
        except BusinessRuleError as exc:
            page.failures.append(f"booking {booking_id}: {exc.message}")
            continue
        if recorded.created:
            page.commissions_created += 1
            page.commission_cents_created += recorded.commission_cents
            page.net_released_cents += recorded.net_released_cents
        else:
            page.already_recorded += 1
    return page
