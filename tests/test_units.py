"""Quantities in plan and bench files."""

import pytest

from rig import units


@pytest.mark.parametrize(
    ("text", "dim", "si"),
    [
        ("7 kW", "power", 7000.0),
        ("-7kW", "power", -7000.0),
        ("230 V", "voltage", 230.0),
        ("200 ms", "time", 0.2),
        ("10 min", "time", 600.0),
        ("2 h", "time", 7200.0),
        ("60 kWh", "energy", 60000.0),
        ("30 %", "ratio", 0.30),
        ("0.05 p.u.", "ratio", 0.05),
        ("20 kW/s", "power_rate", 20000.0),
        ("56 mH", "inductance", 0.056),
        ("180 uF", "capacitance", 180e-6),
        (0, "power", 0.0),
    ],
)
def test_parses_quantities_into_si(text: object, dim: str, si: float) -> None:
    assert units.parse(text, dim) == pytest.approx(si)


@pytest.mark.parametrize(
    ("text", "dim", "message"),
    [
        ("7 kWh", "power", "is not a power"),
        (230, "voltage", "has no unit"),
        ("fast", "time", "is not a quantity"),
        (True, "time", "expected a time"),
        ("5 parsecs", "time", "is not a time"),
    ],
)
def test_refuses_wrong_or_missing_units(text: object, dim: str, message: str) -> None:
    with pytest.raises(units.UnitError, match=message):
        units.parse(text, dim)
