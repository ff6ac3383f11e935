"""Contracts of the commission calculation: a period's (or one booking's) platform
commission per completed booking, by practitioner tier."""

from __future__ import annotations

from dataclasses import dataclass, field

from estuary.contracts.checks import DATE_PATTERN, check_iso_date, is_cents
from estuary.contracts.field_types import resolve_field_types


@dataclass
class CommissionCalculationInput:
    period_start: str = field(
        metadata={"help": "First day (UTC) of completed bookings", "pattern": DATE_PATTERN}
    )
    period_end: str = field(metadata={"help": "Last day (UTC, inclusive)", "pattern": DATE_PATTERN})
    cursor: int = field(default=0, metadata={"help": "Internal: last booking id handled", "min": 0})
    carried: CommissionCalculationResult | None = field(
        default=None, metadata={"internal": True, "help": "Internal: totals carried over"}
    )

    def validate(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        start = check_iso_date(self.period_start)
        end = check_iso_date(self.period_end)
        if start is None:
            problems["period_start"] = f"{self.period_start!r} is not a date (use 2026-12-01)"
        if end is None:
            problems["period_end"] = f"{self.period_end!r} is not a date (use 2026-12-01)"
        if not is_cents(self.cursor) or self.cursor < 0:
            problems["cursor"] = "must not be negative"
        if start and end:
            if end < start:
                problems["period_end"] = "must not be before period_start"
            elif (end - start).days > 366:
                problems["period_end"] = "a period is at most 366 days"
        return problems


@dataclass
class CommissionCalculationResult:
    period_start: str
    period_end: str
    bookings_examined: int = 0
    commissions_created: int = 0
    commission_cents_created: int = 0
    net_released_cents: int = 0
    already_recorded: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # first few "booking N: reason"
    runs: int = 1


@dataclass
class CommissionPageInput:
    period_start: str
    period_end: str
    after_booking_id: int
    limit: int = 200


@dataclass
class CommissionPageResult:
    bookings_examined: int
    commissions_created: int
    commission_cents_created: int
    net_released_cents: int
    already_recorded: int
    failures: list[str]
    next_cursor: int
    exhausted: bool


resolve_field_types(__name__)
