"""Numbers on the SCPI wire: how drivers write setpoints and read replies with units or NAN.

IEEE 488.2 7.7.2 lets a program send any decimal form (<NRf>); instruments answer in NR1/NR2/NR3,
sometimes with a unit suffix (EA: `48.00V`) and sometimes with the SCPI/Yokogawa markers for
"no data" (`NAN`, `9.91E+37`) or "overrange" (`INF`, `9.9E+37`).
"""

from __future__ import annotations

import math
import re

#: SCPI-99 7.2.1.5: the values an instrument sends for "not a number" and "infinity".
SCPI_NAN = 9.91e37
SCPI_INF = 9.9e37

_NUMBER_WITH_UNIT = re.compile(
    r"^\s*(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[A-Za-z%]*)\s*$"
)


def format_nrf(value: float) -> str:
    """A setpoint as a short, exact-enough decimal (<NRf>): 400 -> '400', 17.5 -> '17.5'."""
    if not math.isfinite(value):
        raise ValueError(f"cannot send a non-finite number to an instrument: {value!r}")
    text = f"{value:.10g}"
    return "0" if text == "-0" else text


def parse_number(text: str, unit: str | None = None) -> float:
    """A numeric reply, optionally followed by `unit` ('48.00V', '48.00 V'); NAN/INF markers kept.

    Raises ValueError when the text is not a number or carries a different unit.
    """
    try:
        value = float(text)  # fast path: a bare number, NAN or INF (float() accepts all three)
    except ValueError:
        return _parse_slow(text, unit)
    return _scpi_special(value)


def _parse_slow(text: str, unit: str | None) -> float:
    token = text.strip()
    upper = token.upper()
    if upper in ("NAN", "+NAN", "-NAN"):
        return math.nan
    if upper in ("INF", "+INF"):
        return math.inf
    if upper in ("-INF", "NINF"):
        return -math.inf
    match = _NUMBER_WITH_UNIT.match(token)
    if match is None:
        raise ValueError(f"not a number: {text!r}")
    suffix = match.group("unit")
    if suffix and (unit is None or suffix.upper() != unit.upper()):
        raise ValueError(f"unexpected unit in {text!r} (expected {unit or 'none'})")
    return _scpi_special(float(match.group("num")))


def _scpi_special(value: float) -> float:
    if abs(value) >= SCPI_INF * 0.999 and math.isfinite(value):
        # 9.91E+37 is NAN and 9.9E+37 is INF on the wire (SCPI-99 7.2.1.5).
        if math.isclose(abs(value), SCPI_NAN, rel_tol=1e-4):
            return math.nan
        return math.copysign(math.inf, value)
    return value


def parse_boolean(text: str) -> bool:
    """An ON/OFF reply as instruments send it: '1'/'0' or 'ON'/'OFF'."""
    token = text.strip().upper()
    if token in ("1", "ON"):
        return True
    if token in ("0", "OFF"):
        return False
    raise ValueError(f"not a boolean reply: {text!r}")
