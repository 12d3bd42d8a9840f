"""Quantities with units as plan and bench files write them: "7 kW", "230 V", "200 ms", "30 %".

Every physical field in a YAML file carries its unit, so that a plan reads like a lab procedure and a
kW is never mistaken for a W. Values come back in SI base units (W, V, A, Hz, s, Wh, var, VA, ohm, H,
F) or, for percentages, as a fraction (30 % -> 0.30).
"""

from __future__ import annotations

import math
import re

_PREFIX = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "k": 1e3, "M": 1e6}

#: dimension -> accepted base unit symbols (without prefix) and extra literal units with factors
_DIMENSIONS: dict[str, dict[str, float]] = {
    "power": {"W": 1.0},
    "reactive_power": {"var": 1.0, "VAr": 1.0, "VAR": 1.0},
    "apparent_power": {"VA": 1.0},
    "voltage": {"V": 1.0},
    "current": {"A": 1.0},
    "frequency": {"Hz": 1.0},
    "energy": {"Wh": 1.0},
    "resistance": {"ohm": 1.0, "Ω": 1.0},
    "inductance": {"H": 1.0},
    "capacitance": {"F": 1.0},
    "ratio": {"%": 0.01, "p.u.": 1.0, "pu": 1.0},
    "power_rate": {"W/s": 1.0},
    "voltage_rate": {"V/s": 1.0},
    "frequency_rate": {"Hz/s": 1.0},
}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "min": 60.0, "h": 3600.0}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([^\s\d].*?)?\s*$")


class UnitError(ValueError):
    """A value that is not a quantity of the expected dimension."""


def _unit_factor(dimension: str, unit: str) -> float | None:
    if dimension == "time":
        return _TIME_UNITS.get(unit)
    table = _DIMENSIONS[dimension]
    if unit in table:
        return table[unit]
    for symbol, factor in table.items():
        if unit.endswith(symbol) and unit[: -len(symbol)] in _PREFIX:
            return _PREFIX[unit[: -len(symbol)]] * factor
    return None


def _examples(dimension: str) -> str:
    if dimension == "time":
        return "'200 ms', '60 s', '10 min', '2 h'"
    return {
        "power": "'7 kW', '500 W'",
        "reactive_power": "'1.2 kvar'",
        "apparent_power": "'11 kVA'",
        "voltage": "'230 V'",
        "current": "'32 A'",
        "frequency": "'50 Hz'",
        "energy": "'60 kWh'",
        "resistance": "'17.6 ohm'",
        "inductance": "'56 mH'",
        "capacitance": "'180 uF'",
        "ratio": "'30 %'",
        "power_rate": "'10 kW/s'",
        "voltage_rate": "'1000 V/s'",
        "frequency_rate": "'5 Hz/s'",
    }[dimension]


def parse(value: object, dimension: str, *, allow_bare_zero: bool = True) -> float:
    """Parse a quantity of `dimension` into SI (ratios into fractions).

    A bare number is refused (units are mandatory), except 0, which is the same in every unit.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a {dimension.replace('_', ' ')} like {_examples(dimension)}")
    if isinstance(value, int | float):
        if value == 0 and allow_bare_zero:
            return 0.0
        raise UnitError(f"{value!r} has no unit; write it like {_examples(dimension)}")
    if not isinstance(value, str):
        raise UnitError(f"expected a {dimension.replace('_', ' ')} like {_examples(dimension)}")
    m = _QUANTITY.match(value)
    if not m:
        raise UnitError(f"{value!r} is not a quantity; write it like {_examples(dimension)}")
    number, unit = float(m.group(1)), (m.group(2) or "").strip()
    if not unit:
        if number == 0 and allow_bare_zero:
            return 0.0
        raise UnitError(f"{value!r} has no unit; write it like {_examples(dimension)}")
    factor = _unit_factor(dimension, unit)
    if factor is None:
        raise UnitError(
            f"{value!r}: unit {unit!r} is not a {dimension.replace('_', ' ')}; "
            f"write it like {_examples(dimension)}"
        )
    result = number * factor
    if not math.isfinite(result):
        raise UnitError(f"{value!r} is not a finite quantity")
    return result
