"""Setpoint formatting and reply parsing on the SCPI wire."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruments.numbers import format_nrf, parse_boolean, parse_number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (400.0, "400"),
        (17.5, "17.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e-7, "1e-07"),
        (230.1234567891, "230.1234568"),
    ],
)
def test_format_nrf(value: float, text: str) -> None:
    assert format_nrf(value) == text


def test_format_nrf_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError):
        format_nrf(math.nan)


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("48.00V", "V", 48.0),
        ("48.00 V", "V", 48.0),
        ("-17.50A", "A", -17.5),
        ("+2.30000E+02", None, 230.0),
        ("229.87E+00", None, 229.87),
        ("9.9E+37", None, math.inf),
        ("-9.9E37", None, -math.inf),
        ("INF", None, math.inf),
    ],
)
def test_parse_number(text: str, unit: str | None, value: float) -> None:
    assert parse_number(text, unit) == value


@pytest.mark.parametrize("text", ["NAN", "9.91E+37", " nan "])
def test_not_a_number_markers(text: str) -> None:
    assert math.isnan(parse_number(text))


@pytest.mark.parametrize(
    ("text", "unit"), [("48.00A", "V"), ("48V", None), ("volts", "V"), ("", None)]
)
def test_wrong_unit_or_no_number_is_an_error(text: str, unit: str | None) -> None:
    with pytest.raises(ValueError):
        parse_number(text, unit)


def test_parse_boolean() -> None:
    assert parse_boolean("1") and parse_boolean("ON\n")
    assert not parse_boolean("0") and not parse_boolean("off")
    with pytest.raises(ValueError):
        parse_boolean("2")


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_a_formatted_setpoint_reads_back_within_ten_significant_digits(value: float) -> None:
    assert parse_number(format_nrf(value)) == pytest.approx(value, rel=1e-9, abs=1e-300)
