"""The EV's traction battery: state of charge, open-circuit voltage, internal resistance, limits.

Energy is counted at the terminals: the stored energy changes by the DC power at the battery
terminals times time, as a battery emulator's Wh counter counts it (the I^2 R loss is not split
off). Terminal voltage V = OCV(SoC) + I R, current positive when charging; while a battery
emulator holds its terminals at a set voltage (`held_v`, rig.sim.dc_source) the terminals show
that voltage and the current is the power over it.
"""

from __future__ import annotations

import bisect
import math

from rig.sim.config import BatteryConfig


class Battery:
    """Battery state; the world integrates DC power into it."""

    def __init__(self, config: BatteryConfig) -> None:
        self.config = config
        self.capacity_wh = config.capacity_wh
        self.reserve_soc = config.reserve_soc
        self.r_internal_ohm = config.r_internal_ohm
        self.energy_wh = config.soc * config.capacity_wh
        #: DC power at the terminals now flowing (positive charging), set by the world.
        self.power_w = 0.0
        #: The voltage a battery emulator holds at the terminals (CV), or None: the pack's own.
        self.held_v: float | None = None
        curve = tuple(config.ocv_curve)
        self._socs = [s for s, _ in curve]
        self._volts = [v for _, v in curve]
        self._ocv_at, self._ocv = math.nan, 0.0  # the OCV at energy _ocv_at (NaN: none yet)

    # --- state ----------------------------------------------------------------------------------
    @property
    def soc(self) -> float:
        return self.energy_wh / self.capacity_wh

    @property
    def reserve_wh(self) -> float:
        return self.reserve_soc * self.capacity_wh

    @property
    def ocv_v(self) -> float:
        """Open-circuit voltage, interpolated linearly on the curve, held flat beyond its ends."""
        energy = self.energy_wh
        if energy == self._ocv_at:
            return self._ocv  # read several times per solve at one state of charge
        soc, socs, volts = energy / self.capacity_wh, self._socs, self._volts
        if soc <= socs[0]:
            v = volts[0]
        elif soc >= socs[-1]:
            v = volts[-1]
        else:
            k = bisect.bisect_right(socs, soc)
            s0, s1, v0, v1 = socs[k - 1], socs[k], volts[k - 1], volts[k]
            v = v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
        self._ocv_at, self._ocv = energy, v
        return v

    @property
    def current_a(self) -> float:
        """Terminal current (positive charging) for the power now flowing: over the held voltage,
        or through the pack's OCV and resistance."""
        if self.power_w == 0.0:
            return 0.0
        if self.held_v is not None:
            return self.power_w / self.held_v if self.held_v > 0.0 else 0.0
        return self.current_for_power(self.power_w)

    @property
    def terminal_v(self) -> float:
        if self.held_v is not None:
            return self.held_v
        return self.ocv_v + self.current_a * self.r_internal_ohm

    def current_for_power(self, p_w: float) -> float:
        """Terminal current that moves p_w (positive charging): R I^2 + OCV I - P = 0."""
        ocv, r = self.ocv_v, self.r_internal_ohm
        if r <= 0.0:
            return p_w / ocv
        disc = ocv * ocv + 4.0 * r * p_w
        # Beyond the maximum-power point there is no real root; take the vertex (I = -OCV / 2R).
        return (-ocv + math.sqrt(max(disc, 0.0))) / (2.0 * r)

    def power_at_current(self, i_a: float) -> float:
        """Terminal power at current i_a (signed)."""
        return (self.ocv_v + i_a * self.r_internal_ohm) * i_a

    def set_power(self, p_w: float) -> None:
        """Record the terminal power now flowing."""
        self.power_w = p_w

    # --- what the BMS allows ------------------------------------------------------------------
    def max_charge_power_w(self) -> float:
        """Charge power the BMS accepts now (DC, magnitude); none when full."""
        if self.energy_wh >= self.capacity_wh:
            return 0.0
        by_current = self.power_at_current(self.config.max_charge_a)
        return max(0.0, min(self.config.max_charge_w, by_current))

    def max_discharge_power_w(self, *, respect_reserve: bool = True) -> float:
        """Discharge power the EV offers now (DC, magnitude). At or below the reserve the EV offers
        none (the EVMinimumV2XEnergyRequest floor); respect_reserve=False gives the hardware limit,
        which still ends at an empty pack."""
        floor = self.reserve_wh if respect_reserve else 0.0
        if self.energy_wh <= floor:
            return 0.0
        by_current = -self.power_at_current(-self.config.max_discharge_a)
        return max(0.0, min(self.config.max_discharge_w, by_current))

    def store(self, p_w: float, dt_s: float) -> None:
        """Integrate terminal power p_w over dt_s, bounded by an empty and a full pack."""
        energy = self.energy_wh + p_w * dt_s / 3600.0
        self.energy_wh = min(max(energy, 0.0), self.capacity_wh)
