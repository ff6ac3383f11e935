"""Parse text (command-line arguments, form fields) into workflow input dataclasses.

One place for the rules, so `flask trigger-workflows`, the domain commands and the
console's start forms accept and refuse exactly the same things. Each refusal names the
field and what is wrong; nothing is started until every field parses.

Field metadata understood (`dataclasses.field(metadata=...)`):
  help        text shown in forms and `list-workflows`
  money       the field holds integer cents; users type an amount like 12.50
  min, max    bounds for integers (money: in cents)
  max_length  for strings
  pattern     a regular expression strings must match in full
"""

from __future__ import annotations

import dataclasses
import re
import typing
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_MONEY_CENTS = 1_000_000_000  # 10 million in major units: far above any real payout
MAX_ID = 2**63 - 1
DEFAULT_MAX_LENGTH = 500


class InputError(ValueError):
    """One or more fields did not parse; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def parse_money(text: str, *, allow_zero: bool = False) -> int:
    """An amount in major units ("12.50") as integer cents, refusing anything inexact."""
    raw = str(text).strip()
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", raw):
        raise ValueError(f"{raw!r} is not an amount (use digits like 12.50)")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not an amount") from None
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{raw} has more than two decimal places")
    cents = int(amount * 100)
    if cents < 0 or (cents == 0 and not allow_zero):
        raise ValueError("must be greater than zero" if not allow_zero else "must not be negative")
    if cents > MAX_MONEY_CENTS:
        raise ValueError(f"must be at most {MAX_MONEY_CENTS // 100:,}.00")
    return cents


def format_money(cents: int, currency: str = "USD") -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d} {currency}"


def parse_id(text: str) -> int:
    raw = str(text).strip()
    if not re.fullmatch(r"\d{1,19}", raw):
        raise ValueError(f"{raw!r} is not an id (a positive whole number)")
    value = int(raw)
    if value < 1 or value > MAX_ID:
        raise ValueError(f"{raw!r} is not an id (a positive whole number)")
    return value


def parse_int(text: str, *, lo: int | None = None, hi: int | None = None) -> int:
    raw = str(text).strip()
    if not re.fullmatch(r"[+-]?\d{1,18}", raw):
        raise ValueError(f"{raw!r} is not a whole number")
    value = int(raw)
    if lo is not None and value < lo:
        raise ValueError(f"must be at least {lo}")
    if hi is not None and value > hi:
        raise ValueError(f"must be at most {hi}")
    return value


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date-time; a time without an offset is taken as UTC. Returned in UTC."""
    raw = str(text).strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date and time (use 2026-12-01T10:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(text: str) -> date:
    raw = str(text).strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date (use 2026-12-01)") from None


def parse_bool(text: str) -> bool:
    raw = str(text).strip().lower()
    if raw in {"1", "true", "yes", "on", "y"}:
        return True
    if raw in {"0", "false", "no", "off", "n", ""}:
        return False
    raise ValueError(f"{text!r} is not yes/no")


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def parse_value(f: dataclasses.Field, tp: Any, raw: Any) -> Any:
    """Parse one field's text into its type (raises ValueError with a message)."""
    meta = f.metadata
    base, _optional = _strip_optional(tp)
    if meta.get("money"):
        cents = parse_money(raw, allow_zero=meta.get("min", 1) == 0)
        return cents
    origin = typing.get_origin(base)
    if origin is typing.Literal:
        choices = typing.get_args(base)
        value = str(raw).strip()
        if value not in choices:
            raise ValueError(f"{value!r} is not one of: {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(base)[:1]
        items = [p for p in re.split(r"[\s,]+", str(raw).strip()) if p]
        if len(items) > meta.get("max_items", 10_000):
            raise ValueError(f"at most {meta.get('max_items', 10_000)} items")
        if item_tp is int:
            return [parse_id(p) for p in items]
        return items
    if base is bool:
        return parse_bool(raw)
    if base is int:
        if f.name.endswith("_id"):
            return parse_id(raw)
        return parse_int(raw, lo=meta.get("min"), hi=meta.get("max"))
    if base is datetime:
        return parse_datetime(raw)
    if base is date:
        return parse_date(raw)
    if base is str:
        value = str(raw).strip()
        limit = meta.get("max_length", DEFAULT_MAX_LENGTH)
        if len(value) > limit:
            raise ValueError(f"is {len(value)} characters long; at most {limit}")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not valid here")
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        return value
    raise ValueError(f"unsupported field type {base!r}")


def parse_input(input_type: type, values: dict[str, Any]) -> Any:
    """Build `input_type` from text values, checking every field; raise InputError."""
    hints = typing.get_type_hints(input_type)
    fields = {f.name: f for f in dataclasses.fields(input_type)}
    errors: dict[str, str] = {}
    unknown = [k for k in values if k not in fields]
    for name in unknown:
        errors[name] = f"unknown field (fields: {', '.join(fields)})"
    parsed: dict[str, Any] = {}
    for name, f in fields.items():
        raw = values.get(name)
        missing = raw is None or (isinstance(raw, str) and raw.strip() == "")
        if missing:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                errors[name] = "is required"
            continue
        try:
            parsed[name] = parse_value(f, hints[name], raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise InputError(errors)
    instance = input_type(**parsed)
    check = getattr(instance, "validate", None)
    if callable(check):
        problems = check()
        if problems:
            raise InputError(problems)
    return instance


def positional_values(input_type: type, args: list[str]) -> dict[str, str]:
    """Map positional command-line arguments onto the dataclass fields in order."""
    names = [f.name for f in dataclasses.fields(input_type)]
    if len(args) > len(names):
        raise InputError(
            {"args": f"expected at most {len(names)} ({', '.join(names)}), got {len(args)}"}
        )
    return dict(zip(names, args, strict=False))


def parse_kwargs(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError({"kwargs": f"{pair!r} is not key=value"})
        key, value = pair.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", key):
            raise InputError({"kwargs": f"{key!r} is not a field name"})
        if key in out:
            raise InputError({"kwargs": f"{key!r} given twice"})
        out[key] = value
    return out
