"""The one parser for command-line and form input."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pytest

from estuary.contracts.inputs import (
    InputError,
    parse_input,
    parse_kwargs,
    parse_money,
    positional_values,
)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("10", 1000), ("10.0", 1000), ("10.5", 1050), ("0.01", 1), ("12.50", 1250), ("007", 700)],
)
def test_money_parses_exactly(text, cents):
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        ("NaN", "not an amount"),
        ("nan", "not an amount"),
        ("Infinity", "not an amount"),
        ("1e309", "not an amount: plain digits, not exponent form"),
        ("1e3", "not an amount: plain digits, not exponent form"),
        (" 3 ", "not an amount: it contains spaces"),
        ("+10", "not an amount: no '\\+' sign"),
        ("1_000", "not an amount: digits only, no '_'"),
        ("\uff11\uff10", "not an amount: use the digits 0-9"),  # full-width 10
        ("\u0661\u0660", "not an amount: use the digits 0-9"),  # Arabic-Indic 10
        ("\u00b2", "not an amount: use the digits 0-9"),  # superscript two
        ("10.", "not an amount"),
        (".5", "not an amount"),
        ("10.005", "more than two decimal places"),
        ("abc", "not an amount"),
        ("", "not an amount"),
        ("10,00", "not an amount"),
        ("99999999999", "at most"),
    ],
)
def test_money_refuses_inexact_or_silly_amounts(text, message):
    with pytest.raises(ValueError, match=message):
        parse_money(text)


@dataclass
class Sample:
    practitioner_id: int = field(metadata={"help": "who"})
    amount_cents: int | None = field(default=None, metadata={"money": True})
    method: Literal["bank_transfer", "card"] = "bank_transfer"
    when: datetime | None = None
    note: str = field(default="", metadata={"max_length": 10})
    ids: list[int] | None = None


def test_parse_input_builds_the_dataclass():
    value = parse_input(
        Sample,
        {
            "practitioner_id": "12",
            "amount_cents": "12.50",
            "method": "card",
            "when": "2026-12-01T10:00",
            "ids": "1, 2 3",
        },
    )
    assert value == Sample(12, 1250, "card", datetime(2026, 12, 1, 10, tzinfo=UTC), "", [1, 2, 3])


@pytest.mark.parametrize(
    ("values", "field_name", "message"),
    [
        ({}, "practitioner_id", "required"),
        ({"practitioner_id": "abc"}, "practitioner_id", "not an id"),
        ({"practitioner_id": "0"}, "practitioner_id", "not an id"),
        ({"practitioner_id": "-3"}, "practitioner_id", "not an id"),
        ({"practitioner_id": "1", "method": "cash"}, "method", "not one of"),
        ({"practitioner_id": "1", "when": "tomorrow"}, "when", "not a date and time"),
        ({"practitioner_id": "1", "note": "x" * 11}, "note", "at most 10"),
        ({"practitioner_id": "1", "amount_cents": "NaN"}, "amount_cents", "not an amount"),
        ({"practitioner_id": "1", "ids": "1,x"}, "ids", "not an id"),
        ({"practitioner_id": "1", "status": "paid"}, "status", "unknown field"),
    ],
)
def test_parse_input_names_the_bad_field(values, field_name, message):
    with pytest.raises(InputError) as info:
        parse_input(Sample, values)
    assert message in info.value.errors[field_name]


def test_positional_and_kwargs():
    assert positional_values(Sample, ["5"]) == {"practitioner_id": "5"}
    with pytest.raises(InputError, match="expected at most 6"):
        positional_values(Sample, ["1"] * 7)
    assert parse_kwargs(["method=card", "note=a=b"]) == {"method": "card", "note": "a=b"}
    for bad in (["novalue"], ["Bad-Key=1"], ["a=1", "a=2"]):
        with pytest.raises(InputError):
            parse_kwargs(bad)
