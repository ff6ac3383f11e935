"""Console forms generated from input dataclasses (workflow inputs, signal and update
arguments).

The fields come from `catalogue.input_fields` plus the dataclass metadata; parsing is
`estuary.contracts.inputs.parse_input`, the one parser the commands use too, so the console
accepts and refuses exactly what `flask trigger-workflows` does. Only the fields a form
shows are read from the request: anything else a client sends (`status`, `approver`, ...)
is ignored, except fields only the server fills (who acts: `actor`, `requested_by`;
settings such as approval thresholds): a request that sends one is refused, naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from dashboard import times
from estuary.contracts import catalogue, inputs, money
from estuary.contracts.inputs import DEFAULT_MAX_LENGTH, InputError, parse_input
from estuary.services.references import missing_references

# Filled by the server from the signed-in user; a form never shows them, and a request
# that sends one anyway is refused (the one list, shared with the command line).
SERVER_FILLED = inputs.SERVER_FILLED
# Text that may be longer than this gets a textarea; shorter text a one-line input.
TEXTAREA_FROM = 500


@dataclass
class FormField:
    """One input of a generated form, ready for the template."""

    name: str
    label: str
    widget: str  # text, textarea, money, id, ids, int, select, checkboxes, bool, datetime, date
    required: bool
    help: str
    choices: tuple[str, ...] = ()
    value: str = ""
    error: str | None = None
    max_length: int | None = None
    # What a person reads for each choice (a service's name for its id); the value when absent.
    choice_labels: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"


def label_for(name: str) -> str:
    """`min_amount_cents` -> "Min amount", `booking_id` -> "Booking"."""
    for suffix in ("_cents", "_ids", "_id"):
        if name.endswith(suffix):
            name = name[: -len(suffix)] + ("s" if suffix == "_ids" else "")
            break
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def cents_text(cents: int | None, currency: str = "USD") -> str:
    """Integer cents as the text a person types (1234.50); the inverse of parse_money."""
    return money.input_text(cents, currency)


def _literal_choices(tp: Any) -> tuple[str, ...]:
    if typing.get_origin(tp) is typing.Literal:
        return tuple(str(c) for c in typing.get_args(tp))
    for arg in typing.get_args(tp):  # Optional[Literal[...]]
        if typing.get_origin(arg) is typing.Literal:
            return tuple(str(c) for c in typing.get_args(arg))
    return ()


def _base_type(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin is typing.Union or type(None) in typing.get_args(tp):
        return _base_type(args[0]) if args else tp
    return tp


def _widget(f: dataclasses.Field, tp: Any, choices: tuple[str, ...]) -> str | None:
    """The input kind for a field, or None when a form cannot carry it."""
    base = _base_type(tp)
    if f.metadata.get("money"):
        return "money"
    origin = typing.get_origin(base)
    if choices:  # a list of known values is ticked, one value is chosen
        return "checkboxes" if origin in (list, tuple) else "select"
    if origin in (list, tuple):
        item = (typing.get_args(base) or (str,))[0]
        return "ids" if item is int else ("text" if item is str else None)
    if base is bool:
        return "bool"
    if base is int:
        return "id" if f.name.endswith("_id") else "int"
    if base is datetime:
        return "datetime"
    if base is date:
        return "date"
    if base is str:
        limit = f.metadata.get("max_length", DEFAULT_MAX_LENGTH)
        return "textarea" if limit > TEXTAREA_FROM else "text"
    return None  # nested dataclasses and other structures are not form fields


def _default_text(widget: str, default: Any) -> str:
    if default is None:
        return ""
    if widget == "money":
        return cents_text(default)
    if widget == "bool":
        return "yes" if default else "no"
    if widget == "ids" or isinstance(default, list | tuple):
        return ", ".join(str(v) for v in default)
    if isinstance(default, datetime):
        return times.input_value(default)
    return str(default)


def form_fields(
    input_type: type,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    exclude: Iterable[str] = (),
    prefill: Mapping[str, Any] | None = None,
) -> list[FormField]:
    """The visible fields of `input_type`, with submitted values and errors if any.

    `prefill` gives starting values (already in text form) for a GET; `values` are what
    was submitted and win over defaults.
    """
    skip = set(SERVER_FILLED) | set(exclude)
    hints = typing.get_type_hints(input_type)
    dc_fields = {f.name: f for f in dataclasses.fields(input_type)}
    out: list[FormField] = []
    for info in catalogue.input_fields(input_type):
        f = dc_fields[info.name]
        if info.name in skip or info.internal:
            continue
        tp = hints[info.name]
        choices = info.choices or _literal_choices(tp)
        widget = _widget(f, tp, tuple(str(c) for c in choices))
        if widget is None:
            continue
        if values is not None and info.name in values:
            value = str(values.get(info.name) or "")
        elif prefill and info.name in prefill:
            value = str(prefill[info.name])
        else:
            value = _default_text(widget, info.default)
        out.append(
            FormField(
                name=info.name,
                label=label_for(info.name),
                widget=widget,
                required=info.required,
                help=info.help,
                choices=tuple(str(c) for c in choices),
                value=value,
                error=(errors or {}).get(info.name),
                max_length=f.metadata.get("max_length") if widget in ("text", "textarea") else None,
                choice_labels=dict(f.metadata.get("choice_labels") or {}),
            )
        )
    return out


def visible_names(input_type: type, *, exclude: Iterable[str] = ()) -> list[str]:
    return [f.name for f in form_fields(input_type, exclude=exclude)]


def submitted_values(
    input_type: type, form: Mapping[str, Any], *, exclude: Iterable[str] = ()
) -> dict[str, str]:
    """The raw text of the visible fields only; anything else in the request is ignored."""
    out: dict[str, str] = {}
    for f in form_fields(input_type, exclude=exclude):
        if f.widget == "checkboxes" and hasattr(form, "getlist"):
            # Every ticked box, joined as the parser reads a list; the form's empty hidden
            # input makes "none ticked" a value (absent: not sent at all, the default).
            ticked = form.getlist(f.name)
            if ticked:
                out[f.name] = ", ".join(str(v) for v in ticked if str(v).strip())
            continue
        raw = form.get(f.name)
        if raw is not None:
            out[f.name] = str(raw)
    return out


def checked(field: FormField) -> set[str]:
    """The ticked values of a checkboxes field (its text value, comma-separated)."""
    return {v for v in field.value.replace(",", " ").split() if v}


def parse_form(
    input_type: type,
    form: Mapping[str, Any],
    *,
    actor: str,
    fixed: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> Any:
    """Build `input_type` from a submitted form; raise InputError with field messages.

    `actor` fills the server-filled fields the dataclass has; `fixed` gives values the
    form may not change (an entity id taken from the URL). Every id field must name an
    existing row.
    """
    fixed = dict(fixed or {})
    inputs.refuse_server_filled(input_type, form)
    values = submitted_values(input_type, form, exclude=[*exclude, *fixed])
    for field_info in form_fields(input_type, exclude=[*exclude, *fixed]):
        raw = values.get(field_info.name, "").strip()
        if field_info.widget == "datetime" and raw:
            # Typed in the staff member's zone (unless it carries an offset); the
            # workflow input gets UTC with its offset. Text that is no time is left for
            # parse_input to refuse with the field's message.
            with contextlib.suppress(ValueError):
                values[field_info.name] = times.parse_local(raw).isoformat()
    # A multi-select sent with nothing ticked is refused (its default is no answer).
    none_ticked = {
        f.name: f"tick at least one ({', '.join(f.choice_labels.get(c, c) for c in f.choices)})"
        for f in form_fields(input_type, exclude=[*exclude, *fixed])
        if f.widget == "checkboxes" and f.name in values and not values[f.name].strip()
    }
    names = {f.name for f in dataclasses.fields(input_type)}
    for name in SERVER_FILLED:
        if name in names:
            values[name] = actor
    values.update(fixed)
    try:
        instance = parse_input(input_type, values)
    except InputError as exc:
        raise InputError({**exc.errors, **none_ticked}) from None
    if none_ticked:
        raise InputError(none_ticked)
    problems = missing_references(instance)
    if problems:
        raise InputError(problems)
    return instance


# --- references -------------------------------------------------------------------------


def describe_value(input_type: type, name: str, value: Any) -> str:
    """A parsed value as a person reads it on a confirmation page."""
    f = {x.name: x for x in dataclasses.fields(input_type)}.get(name)
    if value is None or value == "" or value == []:
        return "—"
    if f is not None and f.metadata.get("money") and isinstance(value, int):
        return cents_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    labels = dict(f.metadata.get("choice_labels") or {}) if f is not None else {}
    known = _literal_choices(typing.get_type_hints(input_type).get(name)) if f else ()

    def said(v: Any) -> str:
        # A known value as the form's picker shows it (`bank_transfer` -> "bank transfer").
        if isinstance(v, str) and v in known:
            return labels.get(v) or v.replace("_", " ")
        return str(v)

    if isinstance(value, list | tuple):
        return ", ".join(said(v) for v in value)
    if isinstance(value, datetime):
        return times.format_local(value)
    return said(value)
