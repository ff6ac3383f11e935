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
from typing import Any

from estuary.contracts.money import (
    parse_money,
    quoted,
    why_not_a_number,
)

# Ids and integers are stored in 32-bit INTEGER columns (PostgreSQL `integer`).
MAX_ID = 2**31 - 1
MIN_INT = -(2**31)
MAX_INT = 2**31 - 1
DEFAULT_MAX_LENGTH = 500

# What people may type for numbers: ASCII digits only. No sign, spaces, underscores,
# exponents or other scripts' digits: Python's int() and Decimal() accept all of those
# (`int("\uff11\uff10") == 10`, `int(" +1_0 ") == 10`), which is why nothing here calls them on
# text that has not matched one of these first.
_UNSIGNED_RE = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNED_RE = re.compile(r"-?[0-9]{1,12}", re.ASCII)
_NUMBERISH_RE = re.compile(r"[-+]?[0-9]*\.?[0-9]*", re.ASCII)


class InputError(ValueError):
    """One or more fields did not parse; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# Who acts: filled by the server (the signed-in user, or `user@host` of a command line).
SERVER_FILLED = ("actor", "requested_by", "triggered_by")


def is_internal_field(f: dataclasses.Field) -> bool:
    """Fields a person never sets: continuation state and settings taken from the config
    (metadata `internal`, or help text starting "Internal" / "Filled from")."""
    if f.metadata.get("internal"):
        return True
    help_text = str(f.metadata.get("help", "")).lower()
    return help_text.startswith(("internal", "filled from"))


def server_filled_fields(input_type: type) -> set[str]:
    """The fields of `input_type` only the server may fill: who acts, and the settings
    and state the server copies in (approval thresholds, continuation totals)."""
    return {
        f.name
        for f in dataclasses.fields(input_type)
        if f.name in SERVER_FILLED or is_internal_field(f)
    }


def refuse_server_filled(input_type: type, given: Any) -> None:
    """Raise InputError naming every server-filled field among `given` (names a caller
    typed: `--kwargs`, form fields, an API body), so who asked is never the caller's say."""
    # The who-acts names are refused even where the input has no such field: a request
    # that sends one is trying to say who acted.
    names = server_filled_fields(input_type) | set(SERVER_FILLED)
    errors = {
        name: (
            "is filled in by the server (the signed-in user, or user@host for a command); "
            "it cannot be given"
            if name in SERVER_FILLED
            else "is filled in by the server from its settings; it cannot be given"
        )
        for name in given
        if name in names
    }
    if errors:
        raise InputError(errors)


def is_id_text(text: str) -> bool:
    """True if `text` is an id the database can hold (ASCII digits, 1..MAX_ID)."""
    return bool(_UNSIGNED_RE.fullmatch(text)) and 1 <= int(text) <= MAX_ID


def parse_id(text: str) -> int:
    """A row id: ASCII digits, 1 to MAX_ID (the INTEGER column's range)."""
    raw = str(text)
    if is_id_text(raw):
        return int(raw)
    if re.fullmatch(r"[0-9]+", raw, re.ASCII):
        why = f"ids are whole numbers from 1 to {MAX_ID}"
    else:
        why = why_not_a_number(raw) or "a positive whole number"
    raise ValueError(f"{quoted(raw)} is not an id: {why}")


def parse_int(text: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """A whole number in ASCII digits (a leading '-' allowed), within [lo, hi] and the
    INTEGER column's range."""
    raw = str(text)
    lo = MIN_INT if lo is None else max(lo, MIN_INT)
    hi = MAX_INT if hi is None else min(hi, MAX_INT)
    if not _SIGNED_RE.fullmatch(raw):
        if re.fullmatch(r"-?[0-9]+", raw, re.ASCII):
            raise ValueError(
                f"must be at least {lo}" if raw.startswith("-") else f"must be at most {hi}"
            )
        why = why_not_a_number(raw) or "digits 0-9 only"
        raise ValueError(f"{quoted(raw)} is not a whole number: {why}")
    value = int(raw)
    if value < lo:
        raise ValueError(f"must be at least {lo}")
    if value > hi:
        raise ValueError(f"must be at most {hi}")
    return value


def query_int(
    args: Any, name: str, default: int, *, lo: int = 1, hi: int = MAX_INT
) -> tuple[int, str | None]:
    """A query-string integer (`?page=2`): (value, None), or (default, message) when the
    text is not a plain ASCII number within [lo, hi]. An absent or empty value is the
    default."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default, None
    try:
        return parse_int(str(raw), lo=lo, hi=hi), None
    except ValueError as exc:
        return default, str(exc)


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
        if typing.get_origin(item_tp) is typing.Literal:  # a multi-select's known values
            choices = tuple(str(c) for c in typing.get_args(item_tp))
            unknown = [p for p in items if p not in choices]
            if unknown:
                raise ValueError(
                    f"each must be one of: {', '.join(choices)} "
                    f"(not {', '.join(repr(u) for u in unknown)})"
                )
            return list(dict.fromkeys(items))
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
