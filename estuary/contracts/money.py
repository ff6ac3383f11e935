"""Money, written once: integer minor units with a currency, one formatter, one parser.

Amounts travel as integers of the currency's minor unit (cents for USD, yen for JPY,
fils for KWD) and are never floats. `format_money` is the only formatter (the console's
`money` Jinja filter, command output and messages call it); `parse_money` is the only
parser of what staff type ("12.50"): exact text is checked first, then converted with
Decimal, so nothing is rounded or normalised. Standard library only: workflows, the
domain and the console all import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from estuary.contracts.field_types import resolve_field_types

# ISO 4217 minor units of the currencies that differ from the usual 2.
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}
DEFAULT_CURRENCY = "USD"
# The largest amount anyone may type or a workflow input may carry, in minor units (10
# million in major units for a 2-decimal currency: far above any real payout).
MAX_MONEY_CENTS = 1_000_000_000


def minor_units(currency: str) -> int:
    """How many decimals the currency's minor unit has (USD 2, JPY 0, KWD 3)."""
    return _MINOR_UNITS.get((currency or DEFAULT_CURRENCY).upper(), 2)


@dataclass(frozen=True)
class Money:
    """An amount in the currency's minor unit (`minor`: cents for USD)."""

    minor: int
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError(f"money is a whole number of minor units, not {self.minor!r}")

    def __str__(self) -> str:
        return format_money(self.minor, self.currency)

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, exactly (Decimal("1842.50") for 184250 USD)."""
        return Decimal(self.minor).scaleb(-minor_units(self.currency))

    def input_text(self) -> str:
        """The text a person types for this amount ("1842.50"): the inverse of parse."""
        return input_text(self.minor, self.currency)

    @classmethod
    def parse(
        cls, text: str, currency: str = DEFAULT_CURRENCY, *, allow_zero: bool = False
    ) -> Money:
        return cls(parse_money(text, currency, allow_zero=allow_zero), currency)


def _split(minor: int, currency: str) -> tuple[str, int, str, int]:
    """(sign, whole, fraction digits, decimals) of an amount in minor units."""
    decimals = minor_units(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(int(minor)), 10**decimals)
    return sign, whole, f"{fraction:0{decimals}d}" if decimals else "", decimals


def format_money(minor: int | None, currency: str = DEFAULT_CURRENCY) -> str:
    """An amount for people: "1,842.50 USD", "1,842 JPY", "1.842 KWD"; "-" for None."""
    if minor is None:
        return "-"
    currency = currency or DEFAULT_CURRENCY
    sign, whole, fraction, decimals = _split(minor, currency)
    return f"{sign}{whole:,}{'.' if decimals else ''}{fraction} {currency}"


def whole_units_text(minor: int, currency: str = DEFAULT_CURRENCY) -> str:
    """The whole major units only, for chart axes ("1,842" for 184250 USD)."""
    sign, whole, _fraction, _decimals = _split(minor, currency)
    return f"{sign}{whole:,}"


def input_text(minor: int | None, currency: str = DEFAULT_CURRENCY) -> str:
    """An amount as a person types it ("1842.50", no separators, no currency); "" for None."""
    if minor is None:
        return ""
    sign, whole, fraction, decimals = _split(minor, currency)
    return f"{sign}{whole}{'.' if decimals else ''}{fraction}"


def why_not_a_number(raw: str) -> str:
    """The most useful reason a text is not a plain ASCII number ("" if none stands out);
    the id and integer parsers give the same reasons."""
    if raw != raw.strip() or any(ch.isspace() for ch in raw):
        return "it contains spaces; type the number alone"
    if any(ch.isnumeric() and not ("0" <= ch <= "9") for ch in raw):
        return "use the digits 0-9"
    if raw.startswith("+"):
        return "no '+' sign"
    if "_" in raw:
        return "digits only, no '_'"
    if "e" in raw.lower() and any("0" <= ch <= "9" for ch in raw):
        return "plain digits, not exponent form"
    return ""


def _too_many_places(decimals: int) -> str:
    words = {1: "one", 2: "two", 3: "three"}
    return f"more than {words.get(decimals, str(decimals))} decimal places"


def quoted(raw: str) -> str:
    """`raw` for a message: repr, cut at 40 characters."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def max_money_text(currency: str = DEFAULT_CURRENCY) -> str:
    """The ceiling in words, for messages ("10,000,000.00")."""
    return format_money(MAX_MONEY_CENTS, currency).rsplit(" ", 1)[0]


def parse_money(text: str, currency: str = DEFAULT_CURRENCY, *, allow_zero: bool = False) -> int:
    """An amount in major units ("12.50") as integer minor units: ASCII digits, at most one
    decimal point and the currency's decimals; anything else is refused, never normalised.

    Python's Decimal() would accept " +1_0 ", full-width digits and exponents, so the text
    must match the plain form before Decimal sees it."""
    raw = str(text)
    decimals = minor_units(currency)
    top = f"must be at most {max_money_text(currency)}"
    fraction_re = rf"(?:\.[0-9]{{1,{decimals}}})?" if decimals else ""
    plain = re.compile(rf"[0-9]{{1,10}}{fraction_re}", re.ASCII)
    if raw.startswith("-") and plain.fullmatch(raw[1:]):
        raise ValueError("must not be negative" if allow_zero else "must be greater than zero")
    if not plain.fullmatch(raw):
        if re.fullmatch(rf"[0-9]{{11,}}{fraction_re}", raw, re.ASCII):
            raise ValueError(top)
        if re.fullmatch(r"[0-9]{1,10}\.[0-9]+", raw, re.ASCII):
            if decimals:
                raise ValueError(f"{raw} has {_too_many_places(decimals)}")
            raise ValueError(f"{quoted(raw)} is not an amount: {currency} has no decimals")
        why = why_not_a_number(raw) or (
            "use digits like 12.50" if decimals else "use whole numbers like 1250"
        )
        raise ValueError(f"{quoted(raw)} is not an amount: {why}")
    minor = int(Decimal(raw).scaleb(decimals))
    if minor == 0 and not allow_zero:
        raise ValueError("must be greater than zero")
    if minor > MAX_MONEY_CENTS:
        raise ValueError(top)
    return minor


resolve_field_types(__name__)
