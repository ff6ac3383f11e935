"""No-show and cancellation policies: who gets what when a session does not happen.

Pure arithmetic on integer cents (no database, no Temporal), plus the configured defaults.
The lifecycle passes the policy values in; `defaults()` reads them from the app config
for the starting side (workflows cannot read config).

Rules:
- No-show: `fee_percent` of the price goes to the practitioner; the rest is forfeited by
  the client, unless `credit_forfeited` is off, in which case the rest becomes client credit.
- Cancellation by the practitioner or by ops: full credit to the client, no fee.
- Cancellation by the client more than `full_credit_hours` before the start: full credit.
  Later: `late_credit_percent` of the price as credit; the rest is the practitioner's
  late-cancellation fee.
- A package session moves no money here: a cancelled session returns to the package, a
  no-show session is used up; the package's payout workflow governs the practitioner's share.
Fees round down to whole cents and the credit is the rest of the price, so a rounding cent
always goes to the client and credit + fee + forfeited always equals the price (outside
package sessions, where all three are zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from estuary.contracts.bookings import (
    DEFAULT_CANCEL_FULL_CREDIT_HOURS,
    DEFAULT_FEEDBACK_REMINDER_HOURS,
    DEFAULT_GRACE_PERIOD_MINUTES,
    DEFAULT_LATE_CANCEL_CREDIT_PERCENT,
    DEFAULT_NO_SHOW_CREDIT_FORFEITED,
    DEFAULT_NO_SHOW_FEE_PERCENT,
)

# App config keys (integers, booleans) and their fallbacks.
CONFIG_DEFAULTS: dict[str, int | bool] = {
    "BOOKING_NO_SHOW_FEE_PERCENT": DEFAULT_NO_SHOW_FEE_PERCENT,
    "BOOKING_NO_SHOW_CREDIT_FORFEITED": DEFAULT_NO_SHOW_CREDIT_FORFEITED,
    "BOOKING_CANCEL_FULL_CREDIT_HOURS": DEFAULT_CANCEL_FULL_CREDIT_HOURS,
    "BOOKING_LATE_CANCEL_CREDIT_PERCENT": DEFAULT_LATE_CANCEL_CREDIT_PERCENT,
    "BOOKING_GRACE_PERIOD_MINUTES": DEFAULT_GRACE_PERIOD_MINUTES,
    "BOOKING_FEEDBACK_REMINDER_HOURS": DEFAULT_FEEDBACK_REMINDER_HOURS,
}


@dataclass(frozen=True)
class PolicyDefaults:
    no_show_fee_percent: int
    no_show_credit_forfeited: bool
    cancel_full_credit_hours: int
    late_cancel_credit_percent: int
    grace_period_minutes: int
    feedback_reminder_hours: int


def defaults() -> PolicyDefaults:
    """The configured policy (app config `BOOKING_*`, else the built-in defaults)."""
    cfg = current_app.config

    def get(name: str) -> int | bool:
        value = cfg.get(name)
        return CONFIG_DEFAULTS[name] if value is None else value

    return PolicyDefaults(
        no_show_fee_percent=int(get("BOOKING_NO_SHOW_FEE_PERCENT")),
        no_show_credit_forfeited=bool(get("BOOKING_NO_SHOW_CREDIT_FORFEITED")),
        cancel_full_credit_hours=int(get("BOOKING_CANCEL_FULL_CREDIT_HOURS")),
        late_cancel_credit_percent=int(get("BOOKING_LATE_CANCEL_CREDIT_PERCENT")),
        grace_period_minutes=int(get("BOOKING_GRACE_PERIOD_MINUTES")),
        feedback_reminder_hours=int(get("BOOKING_FEEDBACK_REMINDER_HOURS")),
    )


@dataclass(frozen=True)
class Settlement:
    """What a policy decided: credit to the client, fee to the practitioner (cents)."""

    credit_cents: int
    fee_cents: int
    full_credit: bool
    note: str
    # What the client loses and nobody else receives (kept by the platform).
    forfeited_cents: int = 0


def _percent_of(price_cents: int, percent: int) -> int:
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    return price_cents * percent // 100


def no_show(
    price_cents: int, *, fee_percent: int, credit_forfeited: bool, package_session: bool
) -> Settlement:
    if package_session:
        return Settlement(0, 0, False, "package session used up by the no-show; no money moves")
    fee = _percent_of(price_cents, fee_percent)
    credit = 0 if credit_forfeited else price_cents - fee
    forfeited = price_cents - fee - credit
    note = f"no-show: fee {fee} to practitioner ({fee_percent}%)"
    note += f", credit {credit} to client" if credit else f", client forfeits {forfeited}"
    return Settlement(credit, fee, False, note, forfeited)


def cancellation(
    price_cents: int,
    *,
    start_at: datetime,
    now: datetime,
    by: str,
    full_credit_hours: int,
    late_credit_percent: int,
    package_session: bool,
) -> Settlement:
    if package_session:
        return Settlement(0, 0, True, "package session returned to the package; no money moves")
    if by != "client":
        return Settlement(price_cents, 0, True, f"cancelled by {by}: full credit to the client")
    ahead = start_at - now
    if ahead > timedelta(hours=full_credit_hours):
        return Settlement(
            price_cents, 0, True, f"cancelled more than {full_credit_hours} h ahead: full credit"
        )
    fee = _percent_of(price_cents, 100 - late_credit_percent)
    credit = price_cents - fee
    return Settlement(
        credit,
        fee,
        False,
        f"late cancellation (within {full_credit_hours} h): credit {credit} "
        f"({late_credit_percent}%), fee {fee} to practitioner",
    )
