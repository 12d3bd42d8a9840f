"""Emulated Yokogawa WT5000 (see wt_series.py for what the WT twins do).

Model facts: seven elements, update intervals 10 ms to 20 s (?), the 30 A element's ranges
(?), display resolution 600000 counts, and the accuracy used for the readings: voltage and
current ±(0.02 % of reading + 0.04 % of range), power ±(0.03 % + 0.05 %), frequency ±0.06 % of
reading (?: the rig's reading of the WT5000 datasheet's 45-66 Hz figures; a bench overrides
them with the `accuracy` option). Timestamp jitter 0.5 ms (?).
"""

from __future__ import annotations

from instruments.emulated.meter import Accuracy, MeterSpec
from instruments.emulated.wt_series import (
    DEFAULT_DC_ELEMENTS,
    DEFAULT_ELEMENTS,
    FUNCTIONS,
    WTSeriesTwin,
)
from instruments.yokogawa.wt5000 import WT5000

__all__ = ["DEFAULT_DC_ELEMENTS", "DEFAULT_ELEMENTS", "FUNCTIONS", "WT5000Twin"]


class WT5000Twin(WTSeriesTwin):
    default_model = "WT5000"
    firmware = "F1.01"  # (?) format of the WT5000 firmware field not confirmed
    ELEMENTS = WT5000.ELEMENTS
    UPDATE_INTERVALS_S = WT5000.UPDATE_INTERVALS_S
    VOLTAGE_RANGES_V = WT5000.VOLTAGE_RANGES_V
    CURRENT_RANGES_A = WT5000.CURRENT_RANGES_A
    meter_spec = MeterSpec(
        update_interval_s=0.5,  # (?) the power-on default
        jitter_s=0.0005,
        accuracy={
            "voltage": Accuracy(0.0002, 0.0004),
            "current": Accuracy(0.0002, 0.0004),
            "power": Accuracy(0.0003, 0.0005),
            "frequency": Accuracy(0.0006),
        },
        counts=600_000,
    )
