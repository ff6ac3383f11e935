"""Progressive release of a package's net earnings, one exact part per completed session.

The purchase's `net_cents` (the practitioner's share, fixed when the client paid) is
split into `sessions_total` parts with `split_exact`: every part is
`net // sessions_total` except the last, which also takes the remainder. The k-th
session released (in completion order, whichever booking it is) gets part k, so the
released parts always sum to `net_cents` exactly.

Ledger legs of a release (key `package-release:{purchase}:{k}`):
    platform:clearing               -part_k
    practitioner:{id}:available     +part_k
On expiry, the unreleased remainder R (key `package-expiry:{purchase}`), by policy:
    release_remaining:   platform:clearing -R, practitioner:{id}:available +R
    retain_by_platform:  platform:clearing -R, platform:expired_packages +R
    refer_to_ops:        nothing moves; an ops flag asks a person to decide
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from estuary.contracts.payments import PackageExpiryResult, PackageReleaseResult, PackageState
from estuary.db import db, lock_row
from estuary.models import Booking, PackagePurchase
from estuary.models.base import utcnow
from estuary.models.payments import PackageRelease
from estuary.services import booking_policies, ledger, ops_flags
from estuary.services.errors import BusinessRuleError, NotFoundError

EXPIRY_POLICIES = ("release_remaining", "retain_by_platform", "refer_to_ops")


def release_refusal(booking: Booking, now: datetime, *, no_show_forfeits: bool) -> str | None:
    """Why this booking's session releases no part, or None. Only a session that
    happened releases one: completed, with its start in the past. A no-show follows the
    no-show policy: when the client forfeits the session (BOOKING_NO_SHOW_CREDIT_FORFEITED)
    it is used up and its part is earned; otherwise it releases nothing. Confirmed
    (future or unresolved), cancelled and rescheduled bookings never release a part."""
    start = booking.start_at if booking.start_at.tzinfo else booking.start_at.replace(tzinfo=UTC)
    if booking.status not in ("completed", "no_show"):
        return f"booking {booking.id} is {booking.status}: only a completed session releases a part"
    if start > now:
        return f"booking {booking.id} starts at {start.isoformat()}, in the future"
    if booking.status == "no_show" and not no_show_forfeits:
        return (
            f"booking {booking.id} was a no-show and the no-show policy gives the client "
            "the session back: no part is released"
        )
    return None


def split_exact(total_cents: int, parts: int) -> list[int]:
    """Split `total_cents` into `parts` integer parts that sum to it exactly.

    Every part is `total // parts`; the last one also takes the remainder
    (10000 over 3 -> [3333, 3333, 3334]).
    """
    if not isinstance(total_cents, int) or total_cents < 0:
        raise BusinessRuleError(f"cannot split {total_cents!r} cents")
    if not isinstance(parts, int) or parts < 1:
        raise BusinessRuleError(f"cannot split into {parts!r} parts")
    base = total_cents // parts
    return [base] * (parts - 1) + [total_cents - base * (parts - 1)]


def _purchase(purchase_id: int, *, lock: bool = False) -> PackagePurchase:
    if lock:
        # Serialise releases of one purchase (row lock on PostgreSQL, write lock on SQLite).
        lock_row(PackagePurchase, purchase_id)
    purchase = db.session.get(PackagePurchase, purchase_id)
    if purchase is None:
        raise NotFoundError(f"package purchase {purchase_id} does not exist")
    if purchase.sessions_total < 1:
        raise BusinessRuleError(f"package purchase {purchase_id} has no sessions")
    if purchase.net_cents < 0:
        raise BusinessRuleError(f"package purchase {purchase_id} has a negative net amount")
    return purchase


def _releases(purchase_id: int) -> list[PackageRelease]:
    return list(
        db.session.scalars(
            select(PackageRelease)
            .where(PackageRelease.package_purchase_id == purchase_id)
            .order_by(PackageRelease.part)
        )
    )


def load_state(purchase_id: int) -> PackageState:
    purchase = _purchase(purchase_id)
    releases = _releases(purchase_id)
    sessions = [r for r in releases if r.kind == "session"]
    return PackageState(
        package_purchase_id=purchase.id,
        practitioner_id=purchase.practitioner_id,
        sessions_total=purchase.sessions_total,
        net_cents=purchase.net_cents,
        expires_at=purchase.expires_at.astimezone(UTC).isoformat(),
        status=purchase.status,
        released_booking_ids=[r.booking_id for r in sessions if r.booking_id is not None],
        released_cents=sum(r.amount_cents for r in sessions),
        expiry_settled=any(r.kind != "session" for r in releases),
    )


def release_session(
    purchase_id: int, booking_id: int, *, now: datetime | None = None
) -> PackageReleaseResult:
    """Release the next exact part for a session that happened, once per booking.

    `now` is the caller's clock (the workflow's time); the session must have started
    before it."""
    purchase = _purchase(purchase_id, lock=True)
    releases = _releases(purchase_id)
    sessions = [r for r in releases if r.kind == "session"]
    released_total = sum(r.amount_cents for r in sessions)
    result = PackageReleaseResult(
        package_purchase_id=purchase_id,
        booking_id=booking_id,
        released=False,
        released_cents_total=released_total,
        sessions_released=len(sessions),
    )
    for r in sessions:
        if r.booking_id == booking_id:
            result.released, result.part, result.amount_cents = True, r.part, r.amount_cents
            return result
    refusal = _release_refusal(purchase, releases, booking_id, now or utcnow())
    if refusal:
        result.ignored_reason = refusal
        return result
    part = len(sessions) + 1
    amount = split_exact(purchase.net_cents, purchase.sessions_total)[part - 1]
    _post_release(purchase, booking_id, part, amount)
    result.released, result.part, result.amount_cents, result.created = True, part, amount, True
    result.released_cents_total = released_total + amount
    result.sessions_released = part
    return result


def _release_refusal(
    purchase: PackagePurchase, releases: list[PackageRelease], booking_id: int, now: datetime
) -> str | None:
    """Why this booking releases nothing from the purchase, or None."""
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        return f"booking {booking_id} does not exist"
    if booking.package_purchase_id != purchase.id:
        return f"booking {booking_id} is not a session of package purchase {purchase.id}"
    refusal = release_refusal(
        booking, now, no_show_forfeits=booking_policies.defaults().no_show_credit_forfeited
    )
    if refusal:
        return refusal
    if any(r.kind != "session" for r in releases):
        return f"package purchase {purchase.id} has expired and was settled"
    if sum(1 for r in releases if r.kind == "session") >= purchase.sessions_total:
        return f"all {purchase.sessions_total} sessions are already released"
    return None


def _post_release(purchase: PackagePurchase, booking_id: int, part: int, amount: int) -> None:
    """Record release `part` for the booking and move its amount to the practitioner."""
    key = f"package-release:{purchase.id}:{part}"
    db.session.add(
        PackageRelease(
            package_purchase_id=purchase.id,
            booking_id=booking_id,
            part=part,
            amount_cents=amount,
            kind="session",
            ledger_key=key,
        )
    )
    if amount > 0:
        ledger.post(
            key,
            "package_release",
            [
                ledger.Leg(ledger.PLATFORM_CLEARING, -amount),
                ledger.Leg(ledger.available_account(purchase.practitioner_id), amount),
            ],
            description=f"Package {purchase.id}: session {part} of {purchase.sessions_total}"
            f" (booking {booking_id})",
            currency=purchase.currency,
        )
    if part == purchase.sessions_total:
        purchase.status = "completed"
    db.session.flush()


def settle_expiry(
    purchase_id: int, policy: str, workflow_id: str | None = None
) -> PackageExpiryResult:
    """Apply the expiry policy to the unreleased remainder, once per purchase."""
    if policy not in EXPIRY_POLICIES:
        raise BusinessRuleError(f"unknown expiry policy {policy!r}")
    purchase = _purchase(purchase_id, lock=True)
    releases = _releases(purchase_id)
    for r in releases:
        if r.kind != "session":
            return _expiry_outcome(purchase_id, policy, r.kind, r.amount_cents)
    remaining = purchase.net_cents - sum(r.amount_cents for r in releases)
    if remaining < 0:
        raise BusinessRuleError(f"package purchase {purchase_id} released more than its net")
    if purchase.status == "active":
        purchase.status = "expired"
    key = f"package-expiry:{purchase_id}"
    if policy == "refer_to_ops":
        kind = "referred"
        if remaining > 0:
            ops_flags.raise_flag(
                key=key,
                kind="package_expired",
                entity_type="package_purchase",
                entity_id=purchase_id,
                message=(
                    f"Package purchase {purchase_id} expired with {remaining} cents of the "
                    "practitioner's earnings unreleased (policy refer_to_ops): decide and "
                    "post the release by hand."
                ),
                workflow_id=workflow_id,
            )
    else:
        kind = "expiry_release" if policy == "release_remaining" else "expiry_retained"
        target = (
            ledger.available_account(purchase.practitioner_id)
            if policy == "release_remaining"
            else ledger.PLATFORM_EXPIRED_PACKAGES
        )
        if remaining > 0:
            ledger.post(
                key,
                "package_expiry",
                [ledger.Leg(ledger.PLATFORM_CLEARING, -remaining), ledger.Leg(target, remaining)],
                description=f"Package {purchase_id} expired: {policy}",
                currency=purchase.currency,
            )
    # The expiry row (part 0) marks the purchase settled: later sessions are ignored.
    db.session.add(
        PackageRelease(
            package_purchase_id=purchase_id,
            booking_id=None,
            part=0,
            amount_cents=remaining,
            kind=kind,
            ledger_key=key,
        )
    )
    db.session.flush()
    return _expiry_outcome(purchase_id, policy, kind, remaining)


def _expiry_outcome(purchase_id: int, policy: str, kind: str, amount: int) -> PackageExpiryResult:
    outcome = _OUTCOME_OF_KIND[kind] if amount else "nothing"
    return PackageExpiryResult(purchase_id, policy, amount, outcome)


_OUTCOME_OF_KIND = {
    "expiry_release": "released_to_practitioner",
    "expiry_retained": "retained_by_platform",
    "referred": "referred_to_ops",
}
