"""Role: an AC source standing in for the grid (per phase voltage, frequency, angle; steps and
ramps; the output relay)."""

from __future__ import annotations

import math
from abc import abstractmethod

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import AcReading

#: Slew rate meaning "step": the new setting takes effect at once.
STEP = math.inf


class GridSimulator(Instrument):
    """An AC source standing in for the grid; output off means the grid is gone.

    A setpoint moves at the present slew rate: `STEP` (the default after `set_slew_rates(
    voltage_v_per_s=STEP)`) jumps, a finite rate ramps. `phase=None` means every phase.
    """

    role = Role.GRID_SIMULATOR

    @property
    @abstractmethod
    def phases(self) -> int:
        """How many output phases the source drives (1 or 3)."""

    @abstractmethod
    def set_voltage(self, v_rms: float, *, phase: int | None = None) -> None:
        """Phase-to-neutral RMS voltage of one phase, or of every phase."""

    @abstractmethod
    def set_frequency(self, hz: float) -> None: ...

    @abstractmethod
    def set_phase_angle(self, phase: int, degrees: float) -> None:
        """Angle of `phase` (2 or 3) relative to phase 1."""

    @abstractmethod
    def set_slew_rates(
        self, *, voltage_v_per_s: float | None = None, frequency_hz_per_s: float | None = None
    ) -> None:
        """How fast later setpoints move; `STEP` jumps, None leaves a rate as it is."""

    def ramp_voltage(self, v_rms: float, *, v_per_s: float, phase: int | None = None) -> None:
        """A voltage ramp: set the slew rate, then the target."""
        self.set_slew_rates(voltage_v_per_s=v_per_s)
        self.set_voltage(v_rms, phase=phase)

    def ramp_frequency(self, hz: float, *, hz_per_s: float) -> None:
        """A frequency ramp: set the slew rate, then the target."""
        self.set_slew_rates(frequency_hz_per_s=hz_per_s)
        self.set_frequency(hz)

    @abstractmethod
    def set_output(self, on: bool) -> None: ...

    @abstractmethod
    def output_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> AcReading:
        """At the source terminals: positive power when the grid delivers (import)."""
