"""Role: a bidirectional DC source acting as the EV battery emulator."""

from __future__ import annotations

from abc import abstractmethod

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import DcReading


class DCSource(Instrument):
    """A bidirectional DC source acting as the EV battery emulator."""

    role = Role.DC_SOURCE

    @abstractmethod
    def set_voltage(self, v: float) -> None: ...

    @abstractmethod
    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        """Magnitudes: source = the emulator delivers (EV discharging), sink = it absorbs."""

    @abstractmethod
    def set_power_limits(self, *, source_w: float, sink_w: float) -> None: ...

    @abstractmethod
    def set_output(self, on: bool) -> None: ...

    @abstractmethod
    def output_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> DcReading:
        """Rig sign: positive when the emulator sinks, i.e. energy flows into the EV."""
