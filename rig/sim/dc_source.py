"""The bidirectional DC source that emulates the EV battery at the EVSE's DC terminals.

"Source" is the direction in which the emulator delivers (the EV discharging), "sink" the one in
which it absorbs (the EV charging); limits are magnitudes, None means unlimited.

The voltage setting is what a battery emulator's voltage setting is: its constant-voltage (CV)
target. The emulator holds its terminals at that voltage whatever power the EVSE pushes or draws
(within its current and power limits), so the DC current is the EVSE's DC power over that voltage.
A pack does not behave like that: its voltage is OCV(SoC) + I x R. The rig therefore drives the
setting from its EV battery model every sample (rig.evmodel), on this twin as on a real unit; a
setting left wrong (the 450 V the station starts with) moves the battery current away from what
the pack would carry. Until a voltage is set the emulator stands for an ideal pack (OCV + I R of
the sim's battery), as the emulated bench did before it had a CV model. A setting below
`MIN_VOLTAGE_V` leaves no DC bus to move power on.
"""

from __future__ import annotations

import math

from rig.sim.battery import Battery


def _limit(value: float | None, name: str) -> float:
    if value is None:
        return math.inf
    if not (value >= 0 and not math.isnan(value)):
        raise ValueError(f"DC source {name} must be >= 0, got {value!r}")
    return float(value)


#: Below this CV target the DC bus cannot carry power (V).
MIN_VOLTAGE_V = 10.0


class DcSource:
    def __init__(self, *, output_on: bool = True) -> None:
        self.output_on = output_on
        self.voltage_v = math.inf
        self.source_current_a = math.inf
        self.sink_current_a = math.inf
        self.source_power_w = math.inf
        self.sink_power_w = math.inf

    def set_limits(
        self,
        *,
        voltage_v: float | None = None,
        source_current_a: float | None = None,
        sink_current_a: float | None = None,
        source_power_w: float | None = None,
        sink_power_w: float | None = None,
    ) -> None:
        """Change the given limits; arguments left None keep their value."""
        if voltage_v is not None:
            self.voltage_v = _limit(voltage_v, "voltage")
        if source_current_a is not None:
            self.source_current_a = _limit(source_current_a, "source current")
        if sink_current_a is not None:
            self.sink_current_a = _limit(sink_current_a, "sink current")
        if source_power_w is not None:
            self.source_power_w = _limit(source_power_w, "source power")
        if sink_power_w is not None:
            self.sink_power_w = _limit(sink_power_w, "sink power")

    @property
    def holds_voltage(self) -> bool:
        """True once a CV target is set (the emulator, not the pack model, sets the voltage)."""
        return math.isfinite(self.voltage_v)

    def window(self, battery: Battery) -> tuple[float, float]:
        """(sink_w, source_w): DC power magnitudes the emulator lets through now."""
        if not self.output_on:
            return 0.0, 0.0
        sink, source = self.sink_power_w, self.source_power_w
        if self.holds_voltage:
            if self.voltage_v < MIN_VOLTAGE_V:
                return 0.0, 0.0
            # At a held voltage the current limits are power limits at that voltage.
            sink = min(sink, self.sink_current_a * self.voltage_v)
            source = min(source, self.source_current_a * self.voltage_v)
            return max(sink, 0.0), max(source, 0.0)
        if math.isfinite(self.sink_current_a):
            sink = min(sink, battery.power_at_current(self.sink_current_a))
        if math.isfinite(self.source_current_a):
            source = min(source, -battery.power_at_current(-self.source_current_a))
        return max(sink, 0.0), max(source, 0.0)
