"""Emulated Yokogawa WT1800 (see wt_series.py for what the WT twins do).

Model facts: six elements, update intervals 50 ms to 20 s (?), the 50 A element's ranges (?),
display resolution 600000 counts (?), and the accuracy used for the readings: voltage, current
and power ±(0.05 % of reading + 0.05 % of range), frequency ±0.06 % of reading (? the rig's
reading of the WT1800 datasheet; a bench overrides them with the `accuracy` option).
"""

from __future__ import annotations

from instruments.emulated.meter import Accuracy, MeterSpec
from instruments.emulated.wt_series import WTSeriesTwin
from instruments.yokogawa.wt1800 import WT1800


class WT1800Twin(WTSeriesTwin):
    default_model = "WT1806"
    firmware = "F3.01"  # (?)
    ELEMENTS = WT1800.ELEMENTS
    UPDATE_INTERVALS_S = WT1800.UPDATE_INTERVALS_S
    VOLTAGE_RANGES_V = WT1800.VOLTAGE_RANGES_V
    CURRENT_RANGES_A = WT1800.CURRENT_RANGES_A
    meter_spec = MeterSpec(
        update_interval_s=0.5,  # (?) the power-on default
        jitter_s=0.001,
        accuracy={
            "voltage": Accuracy(0.0005, 0.0005),
            "current": Accuracy(0.0005, 0.0005),
            "power": Accuracy(0.0005, 0.0005),
            "frequency": Accuracy(0.0006),
        },
        counts=600_000,
    )
