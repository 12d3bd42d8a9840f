"""Bench-file options as drivers and twins read them: numbers, quantities with units, mappings.

A bench entry's extra keys arrive as plain YAML values: numbers (SI units), strings with a unit
("50 ms", "300 V", "0.05 %"), mappings keyed by element or channel number. Every parser names the
option it is reading in its error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

#: unit -> (dimension, factor to SI)
_UNITS: Mapping[str, tuple[str, float]] = {
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "µs": ("time", 1e-6),
    "min": ("time", 60.0),
    "v": ("voltage", 1.0),
    "mv": ("voltage", 1e-3),
    "kv": ("voltage", 1e3),
    "a": ("current", 1.0),
    "ma": ("current", 1e-3),
    "w": ("power", 1.0),
    "kw": ("power", 1e3),
    "var": ("reactive", 1.0),
    "kvar": ("reactive", 1e3),
    "hz": ("frequency", 1.0),
    "khz": ("frequency", 1e3),
    "mhz": ("frequency", 1e6),
    "%": ("ratio", 1e-2),
    "ppm": ("ratio", 1e-6),
    "ohm": ("resistance", 1.0),
    "sa/s": ("rate", 1.0),
    "ksa/s": ("rate", 1e3),
    "msa/s": ("rate", 1e6),
    "gsa/s": ("rate", 1e9),
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%/]*)\s*$")


def quantity(name: str, value: object, dimension: str) -> float:
    """A number (already SI) or a string with a unit of `dimension` -> SI float."""
    if isinstance(value, bool):
        raise ValueError(f"option {name}: expected a {dimension}, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None:
            raise ValueError(f"option {name}: {value!r} is not a number with a unit")
        number = float(match.group(1))
        unit = match.group(2).lower()
        if unit:
            found = _UNITS.get(unit)
            if found is None or found[0] != dimension:
                raise ValueError(f"option {name}: {value!r} is not a {dimension}")
            number *= found[1]
    else:
        raise ValueError(f"option {name}: expected a {dimension}, got {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"option {name}: {value!r} is not finite")
    return number


def number(options: Mapping[str, object], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"option {name} must be a number, got {value!r}")
    return float(value)


def text(options: Mapping[str, object], name: str, default: str) -> str:
    value = options.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"option {name} must be a string, got {value!r}")
    return value


def flag(options: Mapping[str, object], name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"option {name} must be true or false, got {value!r}")
    return value


def index(name: str, value: object) -> int:
    """An element or channel number (YAML may give it as a string key)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {value!r}") from None


def indexed(name: str, value: object) -> dict[int, object]:
    """{number: value} from a mapping whose keys may be strings."""
    if not isinstance(value, Mapping):
        raise ValueError(f"option {name}: expected a mapping number -> value, got {value!r}")
    return {index(name, key): item for key, item in value.items()}


def names_to_numbers(name: str, value: object) -> dict[str, int]:
    """{channel name: channel number} (a switch unit's `channels:`)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"option {name}: expected a mapping name -> channel, got {value!r}")
    out: dict[str, int] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"option {name}: channel names are strings, got {key!r}")
        out[key] = index(f"{name}.{key}", item)
    if len(set(out.values())) != len(out):
        raise ValueError(f"option {name}: two names for one channel in {value!r}")
    return out


def numbers(name: str, value: object) -> list[int]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"option {name}: expected a list of numbers, got {value!r}")
    return [index(name, item) for item in value]
