"""The one money type: minor units per currency, one formatter, one parser."""

from decimal import Decimal

import pytest

from estuary.contracts.money import Money, format_money, input_text, minor_units, parse_money


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (184250, "USD", "1,842.50 USD"),
        (-5, "USD", "-0.05 USD"),
        (0, "EUR", "0.00 EUR"),
        (1842, "JPY", "1,842 JPY"),
        (1842500, "KWD", "1,842.500 KWD"),
        (7, "KWD", "0.007 KWD"),
        (None, "USD", "-"),
    ],
)
def test_format_money_honours_the_currency_minor_units(minor, currency, text):
    assert format_money(minor, currency) == text


def test_money_type_formats_parses_and_round_trips():
    amount = Money(184250, "USD")
    assert str(amount) == "1,842.50 USD"
    assert amount.decimal == Decimal("1842.50")
    assert amount.input_text() == "1842.50"
    assert Money.parse(amount.input_text(), "USD") == amount
    assert Money.parse("1842", "JPY") == Money(1842, "JPY")
    assert Money.parse("1.5", "KWD") == Money(1500, "KWD")
    assert minor_units("usd") == 2 and minor_units("JPY") == 0 and minor_units("KWD") == 3
    with pytest.raises(TypeError):
        Money(10.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("10.5", "JPY", "JPY has no decimals"),
        ("1.2345", "KWD", "more than three decimal places"),
        ("10.005", "USD", "more than two decimal places"),
    ],
)
def test_parse_refuses_more_decimals_than_the_currency_has(text, currency, message):
    with pytest.raises(ValueError, match=message):
        parse_money(text, currency)


def test_input_text_is_the_inverse_of_parse():
    for minor in (1, 99, 100, 123456, 1_000_000_000):
        for currency in ("USD", "JPY", "KWD"):
            assert parse_money(input_text(minor, currency), currency) == minor
    assert input_text(None) == ""


def test_whole_units_for_chart_axes():
    from estuary.contracts.money import whole_units_text

    assert whole_units_text(184250, "USD") == "1,842"
    assert whole_units_text(1842, "JPY") == "1,842"
    assert whole_units_text(-1842500, "KWD") == "-1,842"
