"""Any workflow value (input, progress, result, a signal's arguments) as labelled fields
for people instead of JSON: humanised keys, money through `format_money`, times through
the `dt` filter, entity ids linked to their pages, lists of records as small tables.

`fields_of(value)` is what the run page's definition lists render
(`runs/_values.html`); the per-workflow-type views in `dashboard.presentation.run_progress`
use it for whatever they do not lay out themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context

from dashboard import times
from dashboard.writes import link
from estuary.contracts.money import format_money

# Keys whose name says what an id points at, and the page it has.
ID_PAGES: dict[str, tuple[str, str]] = {
    "practitioner_id": ("practitioners.detail", "practitioner_id"),
    "booking_id": ("bookings.detail", "booking_id"),
    "payout_id": ("payouts.detail", "payout_id"),
}
ID_LIST_PAGES = {
    "practitioner_ids": "practitioner_id",
    "booking_ids": "booking_id",
    "queued_booking_ids": "booking_id",
    "ignored_booking_ids": "booking_id",
    "payout_ids": "payout_id",
}
_WORKFLOW_ID_KEYS = ("workflow_id", "onboarding_workflow_id", "parent_workflow_id")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_WORDS_SPLIT = re.compile(r"[_\s]+")
# Words the keys spell in short.
_KEY_WORDS = {
    "id": "",
    "ids": "",
    "cents": "",
    "wf": "workflow",
    "qty": "quantity",
}
MAX_TABLE_ROWS = 200
MAX_DEPTH = 4


@dataclass
class Field:
    """One labelled value. `kind`: text, money, count_money, time, link, links, list,
    fields, table, yes_no, none."""

    label: str
    kind: str
    value: Any = None
    href: str | None = None
    currency: str = ""
    amount: int | None = None  # count_money: the count is `value`
    children: list[Field] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Field]] = field(default_factory=list)
    more: int = 0  # rows or items left out


def currency() -> str:
    if has_app_context():
        return str(current_app.config.get("CURRENCY") or "USD")
    return "USD"


def humanise_key(key: str) -> str:
    """`amount_cents` -> "Amount", `practitioner_id` -> "Practitioner",
    `waiting_until` -> "Waiting until", `queued_booking_ids` -> "Queued bookings"."""
    text = str(key)
    plural = text.endswith("_ids")
    words = [w for w in _WORDS_SPLIT.split(text) if w]
    out = [_KEY_WORDS.get(w, w) for w in words]
    out = [w for w in out if w]
    if not out:
        return text
    if plural and not out[-1].endswith("s"):
        out[-1] += "s"
    phrase = " ".join(out)
    return phrase[0].upper() + phrase[1:]


_CENTS_IN_TEXT = re.compile(r"(-?\d+) cents\b")
_ISO_IN_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?"
)


def plain_text(text: str) -> str:
    """A sentence a workflow wrote, with amounts in cents and ISO times said for people:
    "released part 1 (6800 cents, booking 4)" -> "released part 1 (68.00 USD, booking 4)"."""
    text = _CENTS_IN_TEXT.sub(lambda m: format_money(int(m[1]), currency()), text)
    return _ISO_IN_TEXT.sub(lambda m: times.format_local(m[0]), text)


def words(value: Any) -> str:
    """A code value as words: `pending_approval` -> "pending approval"; amounts in cents
    and ISO times in a sentence said for people (`plain_text`)."""
    if not isinstance(value, str):
        return str(value)
    return plain_text(value.replace("_", " "))


# The names of the entities the values on a page point at (`Names` of run_titles), set
# by the page being drawn (`naming`); ids are shown as `#12` without it.
_NAMES: ContextVar[Any] = ContextVar("run_value_names", default=None)


@contextmanager
def naming(names: Any) -> Iterator[None]:
    """Within this block, a practitioner id reads as the practitioner's name."""
    token = _NAMES.set(names)
    try:
        yield
    finally:
        _NAMES.reset(token)


def id_text(key: str, value: int) -> str:
    names = _NAMES.get()
    if names is not None and key == "practitioner_id" and value in names.practitioners:
        return f"{names.practitioners[value].name} (#{value})"
    return f"#{value}"


def entity_link(key: str, value: Any) -> str | None:
    page = ID_PAGES.get(key)
    if page is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    endpoint, arg = page
    return link(endpoint, **{arg: value})


def run_link(workflow_id: str) -> str | None:
    return link("runs.latest", workflow_id=workflow_id)


def parse_json_text(text: Any) -> Any:
    """A payload as the timeline keeps it (JSON text) back as a value; the text itself
    when it is not JSON (clipped payloads, descriptions of binary ones)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _money_pair(value: Mapping) -> bool:
    return set(value) == {"count", "cents"}


def value_field(
    key: str, value: Any, *, money_currency: str | None = None, depth: int = 0
) -> Field:
    """One key and its value as a field for people."""
    label = humanise_key(key)
    cur = money_currency or currency()
    if value is None or value == "" or value == [] or value == {}:
        return Field(label, "none")
    if isinstance(value, bool):
        return Field(label, "yes_no", value)
    if key.endswith("_cents") and isinstance(value, int):
        return Field(label, "money", value, currency=cur)
    if key in ID_PAGES and isinstance(value, int):
        return Field(label, "link", id_text(key, value), href=entity_link(key, value))
    if key in _WORKFLOW_ID_KEYS and isinstance(value, str):
        return Field(label, "link", value, href=run_link(value))
    if isinstance(value, str):
        if _ISO.match(value) and times.as_datetime(value) is not None:
            return Field(label, "time", value)
        return Field(label, "text", plain_text(value))
    if isinstance(value, int | float):
        return Field(label, "text", value)
    if isinstance(value, Mapping):
        if _money_pair(value) and isinstance(value.get("cents"), int):
            return Field(
                label, "count_money", value.get("count"), amount=value["cents"], currency=cur
            )
        if depth >= MAX_DEPTH:
            return Field(label, "text", f"{len(value)} values")
        return Field(
            label, "fields", children=fields_of(value, money_currency=cur, depth=depth + 1)
        )
    if isinstance(value, list | tuple):
        return _list_field(key, label, list(value), cur, depth)
    return Field(label, "text", str(value))


def _list_field(key: str, label: str, items: list[Any], cur: str, depth: int) -> Field:
    if all(isinstance(i, Mapping) for i in items):
        return table_field(label, items, money_currency=cur, depth=depth)
    if key in ID_LIST_PAGES and all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        one = ID_LIST_PAGES[key]
        shown = items[:MAX_TABLE_ROWS]
        return Field(
            label,
            "links",
            [(id_text(one, i), entity_link(one, i)) for i in shown],
            more=len(items) - len(shown),
        )
    shown = items[:MAX_TABLE_ROWS]
    texts = []
    for item in shown:
        if isinstance(item, str) and _ISO.match(item) and times.as_datetime(item):
            texts.append(times.format_local(item))
        elif isinstance(item, Mapping | list | tuple):
            texts.append(f"{len(item)} values")
        else:
            texts.append(words(item))
    return Field(label, "list", texts, more=len(items) - len(shown))


def table_field(
    label: str, items: list[Mapping], *, money_currency: str | None = None, depth: int = 0
) -> Field:
    """Records as a table: one column per key any of them has (in first-seen order)."""
    columns: list[str] = []
    for item in items[:MAX_TABLE_ROWS]:
        for k in item:
            if k not in columns:
                columns.append(k)
    rows = [
        [
            value_field(c, item.get(c), money_currency=money_currency, depth=depth + 1)
            for c in columns
        ]
        for item in items[:MAX_TABLE_ROWS]
    ]
    return Field(
        label,
        "table",
        columns=[humanise_key(c) for c in columns],
        rows=rows,
        more=max(len(items) - MAX_TABLE_ROWS, 0),
    )


def fields_of(
    value: Any, *, skip: tuple[str, ...] = (), money_currency: str | None = None, depth: int = 0
) -> list[Field]:
    """A mapping as fields (keys in their own order, `skip` left out); any other value as
    one field labelled "Value"."""
    value = parse_json_text(value)
    if isinstance(value, Mapping):
        return [
            value_field(str(k), v, money_currency=money_currency, depth=depth)
            for k, v in value.items()
            if k not in skip
        ]
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [_list_field("values", "Values", list(value), money_currency or currency(), depth)]
    return [value_field("value", value, money_currency=money_currency, depth=depth)]


def count_and_cents(progress: Mapping[str, Any], key: str) -> tuple[int, Any]:
    """A `{count, cents}` part of a batch's progress, or `<key>_count`/`<key>_cents` of its
    result, as (count, cents)."""
    value = progress.get(key)
    if isinstance(value, Mapping):
        return int(value.get("count") or 0), value.get("cents")
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    count = progress.get(f"{key}_count")
    return (int(count), progress.get(f"{key}_cents")) if isinstance(count, int) else (0, None)
