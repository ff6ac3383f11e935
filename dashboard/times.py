"""How the console shows and reads times: one format everywhere, in the signed-in staff
member's time zone, with the UTC time in the tooltip.

- Shown: `2026-12-08 09:39 CET` (`format_local`), as `<time datetime=... title="... UTC">`
  (`time_element`, the `dt` template filter), for datetimes and for the ISO 8601 texts
  workflows answer with (`progress` deadlines and the like).
- Read: every date-time input takes the same `2026-12-08 09:39` (a `T` works too), in
  the staff member's zone unless it carries an offset (`parse_local`).
- The zone is the staff member's profile setting (`StaffUser.time_zone`); until they have
  one, their browser's zone is saved on the first page they load (static/js/app.js posts
  it to /profile/time-zone), and until then times are shown in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from markupsafe import Markup, escape

INPUT_FORMAT = "YYYY-MM-DD HH:MM"
INPUT_EXAMPLE = "2026-12-01 10:00"
MAX_ZONE_LENGTH = 64
_NANOS = re.compile(r"(\.\d+)")


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows (for the profile's picker)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone of that IANA name, or None if it is no zone."""
    raw = (name or "").strip()
    if not raw or len(raw) > MAX_ZONE_LENGTH or raw not in zone_names():
        return None
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def staff_zone() -> tzinfo:
    """The signed-in staff member's zone; UTC outside a request or before they have one."""
    try:
        from flask_login import current_user

        name = getattr(current_user, "time_zone", None) if current_user else None
    except RuntimeError:  # no request or app context
        name = None
    return zone_or_none(name) or UTC


def zone_label(zone: tzinfo | None = None) -> str:
    """The zone's name as staff read it next to an input (`Europe/Paris`, `UTC`)."""
    zone = zone or staff_zone()
    return getattr(zone, "key", None) or "UTC"


def as_datetime(value: object) -> datetime | None:
    """A datetime (naive ones are UTC) or an ISO 8601 text as an aware datetime; None for
    anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        # Temporal's event times carry nanoseconds; Python reads at most microseconds.
        text = _NANOS.sub(lambda m: m[1][:7], value.strip())
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def format_local(value: object, zone: tzinfo | None = None) -> str:
    """`2026-12-08 09:39 CET` in the staff member's zone; `-` when there is no time."""
    moment = as_datetime(value)
    if moment is None:
        return "-" if value in (None, "") else str(value)
    local = moment.astimezone(zone or staff_zone())
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone_label(zone)}"


def format_utc(value: object) -> str:
    """`2026-12-08 08:39:12 UTC` (the tooltip)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def time_element(value: object, zone: tzinfo | None = None) -> Markup:
    """The `dt` filter: the local time in a <time> element with the UTC time as its title."""
    moment = as_datetime(value)
    if moment is None:
        return escape(format_local(value, zone))
    iso = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, format_utc(moment), format_local(moment, zone)
    )


def input_value(value: object, zone: tzinfo | None = None) -> str:
    """A time as a date-time input shows it (`2026-12-08 09:39`, the staff member's zone)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    return f"{moment.astimezone(zone or staff_zone()):%Y-%m-%d %H:%M}"


def parse_local(text: str, zone: tzinfo | None = None) -> datetime:
    """A typed date-time in UTC: `2026-12-08 09:39` (or with a `T`) is read in the staff
    member's zone, one with an offset or `Z` as written. ValueError says how to write it."""
    raw = " ".join(str(text or "").split())
    if not raw or len(raw) > 40:
        raise ValueError(f"is not a date and time (write it as {INPUT_EXAMPLE})")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"is not a date and time (write it as {INPUT_EXAMPLE})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or staff_zone())
    return value.astimezone(UTC)


def running_for(start: object, now: datetime | None = None) -> str:
    """How long a run that has not ended has been going: `running for 3 min`."""
    moment = as_datetime(start)
    if moment is None:
        return "running"
    seconds = max(int(((now or datetime.now(UTC)) - moment).total_seconds()), 0)
    if seconds < 60:
        return f"running for {seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"running for {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"running for {hours} h {minutes} min" if minutes else f"running for {hours} h"
    days, hours = divmod(hours, 24)
    return f"running for {days} d {hours} h" if hours else f"running for {days} d"
