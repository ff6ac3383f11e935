"""Checks the contract dataclasses' `validate()` methods share: whole cents, ids, ISO
dates. Pure and standard library only (workflows call them inside the sandbox)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from estuary.contracts.money import MAX_MONEY_CENTS, max_money_text

DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
# The help of every input's `actor` field (the console never shows it as a field).
ACTOR_HELP = "Who sent it (filled in by the console or the command line)"


def check_iso_date(value: str) -> date | None:
    """The date `value` names (YYYY-MM-DD), or None."""
    if not isinstance(value, str) or not re.fullmatch(DATE_PATTERN, value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def is_cents(value: Any) -> bool:
    """A whole number (of cents, seconds...): an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: Any) -> bool:
    return is_cents(value) and 1 <= value <= 2**63 - 1


def money_problem(value: Any, *, allow_zero: bool = False) -> str | None:
    """What is wrong with an amount in cents, or None."""
    if not is_cents(value):
        return "must be a whole number of cents"
    if value < 0 or (value == 0 and not allow_zero):
        return "must be greater than zero" if not allow_zero else "must not be negative"
    if value > MAX_MONEY_CENTS:
        return f"must be at most {max_money_text()}"
    return None


def text_problem(value: str, max_length: int) -> str | None:
    """What is wrong with free text typed by staff (too long, or a NUL character), or None."""
    if len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length}"
    if "\x00" in value:
        return "contains a NUL character"
    return None
