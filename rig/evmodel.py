"""The rig's EV battery model: what makes a battery emulator behave like a pack, in a closed loop.

A battery emulator (EA PSB 10000 and the like) in source/sink operation holds its terminals at its
voltage setting (constant voltage) within its current and power limits; a traction pack does not:
its terminal voltage is OCV(SoC) + I x R, it rises while charging and sags while discharging, and
the OCV follows the state of charge. So the rig keeps the pack in software and drives the
emulator from it every sample: it integrates the emulator's own measured DC power into the state
of charge (rig sign: + into the EV), looks up the open-circuit voltage, and sets the emulator's
voltage to OCV + I x R from the measured current; where the emulator has a resistance mode (EA's
UIR mode (?), FACTS.md), the loop can hand R to the instrument and set OCV alone. The same loop
runs on a real unit and on the emulated twin (rig.sim.dc_source models the CV behaviour, so a
setting left wrong moves the battery current there as it would on the bench).

For the lead: `BatteryEmulatorLoop.for_ev(plan.ev, set_voltage=dc.set_voltage)` once the station
is open, then `loop.update(t, dc.measure())` on every sample (the runner measures the DC source at
every sample already). The loop's state of charge is an estimate for driving the emulator only;
the checks judge the battery from the trace (rig.checks.reserve).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rig.ev import EVSpec


class DcReadingLike(Protocol):
    """One coherent reading of the emulator (rig sign: + into the EV)."""

    @property
    def v(self) -> float: ...

    @property
    def i(self) -> float: ...

    @property
    def p_w(self) -> float: ...


@dataclass(frozen=True)
class PackModel:
    """The pack the emulator stands for: capacity, starting SoC, OCV curve, internal resistance."""

    capacity_wh: float
    soc: float
    ocv_curve: tuple[tuple[float, float], ...]
    r_internal_ohm: float

    def __post_init__(self) -> None:
        if not (self.capacity_wh > 0 and math.isfinite(self.capacity_wh)):
            raise ValueError(f"pack capacity must be positive, got {self.capacity_wh!r}")
        if len(self.ocv_curve) < 2 or any(
            b[0] <= a[0] for a, b in zip(self.ocv_curve, self.ocv_curve[1:], strict=False)
        ):
            raise ValueError("the OCV curve needs at least two points, SoC strictly ascending")
        if self.r_internal_ohm < 0:
            raise ValueError("internal resistance must be >= 0")

    @classmethod
    def for_ev(cls, ev: EVSpec) -> PackModel:
        """The plan's EV with the emulated battery's OCV curve and resistance (rig.sim)."""
        battery = ev.battery_config()
        return cls(
            ev.capacity_wh,
            ev.soc,
            tuple(battery.ocv_curve),
            battery.r_internal_ohm,
        )

    def ocv(self, soc: float) -> float:
        """Open-circuit voltage, linear between the curve's points, flat beyond its ends."""
        socs: Sequence[float] = [s for s, _ in self.ocv_curve]
        volts = [v for _, v in self.ocv_curve]
        if soc <= socs[0]:
            return volts[0]
        if soc >= socs[-1]:
            return volts[-1]
        k = bisect.bisect_right(socs, soc)
        s0, s1, v0, v1 = socs[k - 1], socs[k], volts[k - 1], volts[k]
        return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


class BatteryEmulatorLoop:
    """Sets a battery emulator's voltage from the pack model, one measured sample at a time."""

    def __init__(
        self,
        pack: PackModel,
        *,
        set_voltage: Callable[[float], None],
        set_resistance: Callable[[float], None] | None = None,
        min_change_v: float = 0.05,
    ) -> None:
        self.pack = pack
        self.soc = pack.soc
        self._set_voltage = set_voltage
        self._resistance_mode = set_resistance is not None
        self._min_change_v = min_change_v
        self._last: tuple[float, float] | None = None  # (t, p_w) of the previous sample
        self.voltage_set: float | None = None
        if set_resistance is not None:
            set_resistance(pack.r_internal_ohm)

    @classmethod
    def for_ev(
        cls,
        ev: EVSpec,
        *,
        set_voltage: Callable[[float], None],
        set_resistance: Callable[[float], None] | None = None,
    ) -> BatteryEmulatorLoop:
        return cls(PackModel.for_ev(ev), set_voltage=set_voltage, set_resistance=set_resistance)

    def target(self, current_a: float) -> float:
        """The voltage the emulator should hold now: OCV(SoC) + I R, or the OCV alone where the
        emulator adds the I R drop itself (resistance mode)."""
        ocv = self.pack.ocv(self.soc)
        return ocv if self._resistance_mode else ocv + current_a * self.pack.r_internal_ohm

    def update(self, t: float, reading: DcReadingLike) -> float:
        """Integrate the reading into the SoC and set the emulator's voltage (only when it moved
        by more than `min_change_v`, so an idle pack does not flood the instrument). A reading
        that is not a number changes nothing. Returns the voltage in force."""
        p, i = float(reading.p_w), float(reading.i)
        if math.isfinite(p):
            if self._last is not None and t > self._last[0]:
                t0, p0 = self._last
                self.soc += (t - t0) * (p0 + p) / 2.0 / 3600.0 / self.pack.capacity_wh
                self.soc = min(max(self.soc, 0.0), 1.0)
            self._last = (t, p)
        target = self.target(i if math.isfinite(i) else 0.0)
        if self.voltage_set is None or abs(target - self.voltage_set) >= self._min_change_v:
            self._set_voltage(target)
            self.voltage_set = target
        return self.voltage_set
