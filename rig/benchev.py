"""The rig's EV on a real bench: a battery model fed by what the battery emulator measures.

When the DUT is a real EVSE, the rig plays the car: its EVCC talks to the charger, and the
bench's bidirectional DC source plays the traction battery. The EV's state the EVCC reports
(state of charge, voltage, limits, energy window with the reserve) comes from a battery model
(rig.sim.Battery with the plan's EV: capacity, starting SoC, reserve, limits) whose stored energy
is integrated from the DC power the battery emulator itself measures, read at most every
`read_every` seconds (a ChargeLoop asks four times a second; the emulator answers in
milliseconds). The model is the rig's, not the DUT's: nothing the charger claims moves it.

The same rig.emulators.ev.SimEv controller runs over it as over the emulated bench's physics.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rig.ev import EVSpec
from rig.sim import Battery

if TYPE_CHECKING:
    from instruments.roles import DCSource


class MeasuredBattery:
    """The EV's physical side for rig.emulators.ev.SimEv on a real bench (an EvPhysics)."""

    #: Longest gap between two readings of the battery emulator while a session asks (s).
    READ_EVERY_S = 0.25

    def __init__(self, ev: EVSpec, dc_source: DCSource | None) -> None:
        self.battery = Battery(ev.battery_config())
        self.dc_source = dc_source
        self._t: float | None = None
        self._p_w = 0.0
        self.readings = 0
        self.error: str | None = None

    def advance_to(self, t: float) -> None:
        """Integrate the last measured DC power up to t; read the emulator again when due."""
        if self._t is None:
            self._t = t
        if t - self._t < self.READ_EVERY_S:
            return
        self.battery.store(self._p_w, t - self._t)
        self._t = t
        self._read()

    def _read(self) -> None:
        if self.dc_source is None:
            return
        try:
            reading = self.dc_source.measure()
        except Exception as exc:  # the run's sampler will hit the same fault and stop the run
            self.error = f"{type(exc).__name__}: {exc}"
            return
        if math.isfinite(reading.p_w):
            self._p_w = reading.p_w
            self.battery.set_power(reading.p_w)
            self.readings += 1

    @property
    def evse_ac_power_w(self) -> float:
        """Not measured by the EV: the DC side stands for it (AC services' present power)."""
        return self._p_w

    @property
    def evse_efficiency(self) -> float:
        """The EV knows no charger efficiency: its requests are on its own (DC) side."""
        return 1.0
