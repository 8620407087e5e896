"""Seconds are NUMERIC in Postgres (Decimal in Python); JSON gets plain numbers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def to_decimal(value) -> Decimal:
    """A JSON number (int or float) as the Decimal it was written as: 10.1 -> Decimal('10.1')."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number of seconds")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def to_json(value):
    """Decimal -> int when whole, else float; None stays None."""
    if value is None:
        return None
    number = to_decimal(value)
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def fmt(value) -> str:
    """Seconds for a message: 600 -> '600', 12.50 -> '12.5' (never an exponent)."""
    text = format(to_decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
