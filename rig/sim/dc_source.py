"""The bidirectional DC source that emulates the EV battery at the EVSE's DC terminals.

The battery model sits behind it: the source's limits bound the power it lets through. "Source"
is the direction in which the emulator delivers (the EV discharging), "sink" the one in which it
absorbs (the EV charging); limits are magnitudes, None means unlimited. The voltage setting acts
as the charge-voltage ceiling: the emulator absorbs no current that would lift the terminal
voltage above it (constant-voltage behaviour of a battery emulator).
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

    def window(self, battery: Battery) -> tuple[float, float]:
        """(sink_w, source_w): DC power magnitudes the emulator lets through now."""
        if not self.output_on:
            return 0.0, 0.0
        sink = self.sink_power_w
        sink_a = self.sink_current_a
        r = battery.r_internal_ohm
        if math.isfinite(self.voltage_v):
            headroom = self.voltage_v - battery.ocv_v
            if headroom <= 0.0:
                sink_a = 0.0
            elif r > 0.0:
                sink_a = min(sink_a, headroom / r)
        if math.isfinite(sink_a):
            sink = min(sink, battery.power_at_current(sink_a))
        source = self.source_power_w
        if math.isfinite(self.source_current_a):
            source = min(source, -battery.power_at_current(-self.source_current_a))
        return max(sink, 0.0), max(source, 0.0)
