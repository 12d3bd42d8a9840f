"""What the emulated grid simulators share: setpoints that step or ramp, the output, its meter.

A setpoint with a finite slew rate moves the World's grid in steps of `RAMP_STEP_S` (scheduled
on the World's own timers, so the ramp happens in simulated time whatever the caller does); a
new setpoint cancels a ramp under way and starts from where it got to. The output goes through
the SiteWiring, in series with S3. The source measures at its own terminals: the World's grid
point while the grid reaches the site, its own voltage with no current while S3 is open.
"""

from __future__ import annotations

import math
from typing import ClassVar

from instruments.emulated.meter import AcValues, measure_ac
from instruments.emulated.twin import Twin
from instruments.emulated.world import TimerLike

#: Ramp granularity (s): half a cycle at 50 Hz, the rig's own choice.
RAMP_STEP_S = 0.01


class _Ramp:
    """One quantity moving from `start` to `target` at `rate` per second from `t0`."""

    def __init__(self, start: float, target: float, rate: float, t0: float) -> None:
        self.start, self.target, self.rate, self.t0 = start, target, rate, t0
        self.t_end = t0 + abs(target - start) / rate if rate > 0 else t0

    def value(self, t: float) -> float:
        if t >= self.t_end:
            return self.target
        return self.start + math.copysign(self.rate * (t - self.t0), self.target - self.start)


class GridSourceTwin(Twin):
    """Base of AC6900Twin and C61800Twin (point: the World point at the source terminals)."""

    #: Phases the twin keeps setpoints for.
    phase_count: ClassVar[int] = 1

    def init_source(self, point: str) -> None:
        self.point = point
        self.output_on = self.site.source_on
        setpoint = self.world.grid_voltage_setpoint
        self.voltage_set: dict[int, float] = dict.fromkeys(range(1, self.phase_count + 1), setpoint)
        self.frequency_set = self.world.grid_frequency_setpoint
        self.voltage_slew = math.inf
        self.frequency_slew = math.inf
        self._timers: dict[str, TimerLike] = {}
        self._ramps: dict[str, _Ramp] = {}

    # --- setpoints ---------------------------------------------------------------------------

    def voltage_target(self) -> float:
        """What the World's single (balanced) grid gets: the mean of the phase setpoints."""
        return sum(self.voltage_set.values()) / len(self.voltage_set)

    def move(self, quantity: str, target: float) -> None:
        """Step or ramp the World's grid `quantity` ("voltage" or "frequency") to `target`."""
        timer = self._timers.pop(quantity, None)
        if timer is not None:
            timer.cancel()
        self._ramps.pop(quantity, None)
        rate = self.voltage_slew if quantity == "voltage" else self.frequency_slew
        now = self.world.now
        present = (
            self.world.grid_voltage_setpoint
            if quantity == "voltage"
            else self.world.grid_frequency_setpoint
        )
        if math.isinf(rate) or present == target:
            self._apply(quantity, target)
            return
        self._ramps[quantity] = _Ramp(present, target, rate, now)
        self._step(quantity)

    def _step(self, quantity: str) -> None:
        ramp = self._ramps.get(quantity)
        if ramp is None:
            return
        now = self.world.now
        self._apply(quantity, ramp.value(now))
        if now >= ramp.t_end:
            self._ramps.pop(quantity, None)
            self._timers.pop(quantity, None)
            return
        due = min(now + RAMP_STEP_S, ramp.t_end)
        self._timers[quantity] = self.world.call_at(due, lambda: self._step(quantity))

    def _apply(self, quantity: str, value: float) -> None:
        if quantity == "voltage":
            self.world.set_grid(voltage_v=value)
        else:
            self.world.set_grid(frequency_hz=value)

    def stop_ramps(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ramps.clear()

    def set_source_output(self, on: bool) -> None:
        self.output_on = on
        self.site.set_source_output(on)

    # --- the source's own measurement ---------------------------------------------------------

    def terminal_reading(
        self, channel: str, *, voltage_range: float, current_range: float
    ) -> AcValues:
        assert self.meter is not None and self.history is not None
        _, window = self.latest_window()
        if self.output_on and not self.site.s3_closed:
            # S3 open: the source holds its voltage into an open circuit.
            t = window[1]
            v = self.meter.reading(
                channel, "voltage", self.world.grid_voltage_setpoint, t, voltage_range
            )
            f = self.meter.reading(channel, "frequency", self.world.grid_frequency_setpoint, t)
            return AcValues(abs(v), 0.0, 0.0, 0.0, 0.0, math.nan, f)
        return measure_ac(
            self.meter,
            self.history,
            channel,
            self.point,
            window,
            phases=self.history.phases,
            voltage_range=voltage_range,
            current_range=current_range,
        )
