"""The AC grid source: a stiff voltage and frequency while its output relay is closed, else gone."""

from __future__ import annotations

import math

from rig.sim.config import GridConfig


class GridSource:
    """The grid simulator standing in for the utility. Stiff: its voltage and frequency do not
    depend on what the site draws (IEEE 1547.1 5.10 "AC source")."""

    def __init__(self, config: GridConfig, *, output_on: bool = True) -> None:
        self.config = config
        self.voltage_v = config.voltage_nominal_v
        self.frequency_hz = config.frequency_nominal_hz
        self.output_on = output_on

    def set(self, *, voltage_v: float | None = None, frequency_hz: float | None = None) -> None:
        if voltage_v is not None:
            if not (voltage_v >= 0 and math.isfinite(voltage_v)):
                raise ValueError(f"grid voltage must be >= 0 V, got {voltage_v!r}")
            self.voltage_v = float(voltage_v)
        if frequency_hz is not None:
            if not (frequency_hz > 0 and math.isfinite(frequency_hz)):
                raise ValueError(f"grid frequency must be > 0 Hz, got {frequency_hz!r}")
            self.frequency_hz = float(frequency_hz)

    @property
    def v_pu(self) -> float:
        return self.voltage_v / self.config.voltage_nominal_v

    @property
    def df_hz(self) -> float:
        return self.frequency_hz - self.config.frequency_nominal_hz
