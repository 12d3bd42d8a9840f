"""How the emulated instruments share the bench around one World: S3, and the loads on the bus.

Several twins act on the same physical things. The grid simulator's output relay and switch S3
of IEEE 1547.1 5.10 (driven by the switch unit) are in series between the source and the site:
the grid reaches the site only while both are closed, and the source's own output stays what the
source says. The electronic AC load (the home) and the RLC bank both hang on the home bus, while
the World holds one home load: when both are on, they are joined as one parallel impedance (the
constant-power load taken as the impedance that draws its P and Q at the source's voltage
setpoint), which is exact for impedances and the World's own reading of a constant-power load
on an island. One SiteWiring per World, shared by every twin built over it.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

from instruments.emulated.world import WorldLike


@dataclass(frozen=True)
class Impedance:
    """Per-phase parallel R, L, C (None: branch absent)."""

    r_ohm: float
    l_h: float | None = None
    c_f: float | None = None

    def parallel(self, other: Impedance) -> Impedance:
        r = 1.0 / (1.0 / self.r_ohm + 1.0 / other.r_ohm)
        inverse_l = sum(1.0 / x for x in (self.l_h, other.l_h) if x)
        c = sum(x for x in (self.c_f, other.c_f) if x)
        return Impedance(r, 1.0 / inverse_l if inverse_l else None, c or None)


@dataclass(frozen=True)
class PowerSetting:
    p_w: float
    q_var: float


class SiteWiring:
    """The shared state; see the module docstring."""

    def __init__(self, world: WorldLike) -> None:
        self._world = weakref.ref(world)
        self.source_on = world.grid_output
        self.s3_closed = True
        self.ac_load: PowerSetting | Impedance | None = None
        self.ac_load_on: bool | None = None
        self.rlc_bank: Impedance | None = None
        self.rlc_bank_on = False
        #: True while both loads are on and joined as one impedance (see the module docstring).
        self.loads_joined = False

    @property
    def world(self) -> WorldLike:
        world = self._world()
        if world is None:
            raise RuntimeError("the World behind this site wiring is gone")
        return world

    # --- the grid path -------------------------------------------------------------------------

    @property
    def grid_reaches_site(self) -> bool:
        return self.source_on and self.s3_closed

    def set_source_output(self, on: bool) -> None:
        self.source_on = on
        self._apply_grid()

    def set_s3(self, closed: bool) -> None:
        self.s3_closed = closed
        self._apply_grid()

    def _apply_grid(self) -> None:
        world = self.world
        if world.grid_output != self.grid_reaches_site:
            world.set_grid_output(self.grid_reaches_site)

    # --- the loads on the home bus ---------------------------------------------------------------

    def set_ac_load(self, setting: PowerSetting | Impedance) -> None:
        self.ac_load = setting
        self._apply_loads()

    def set_ac_load_on(self, on: bool) -> None:
        self.ac_load_on = on
        self._apply_loads()

    def set_rlc_bank(self, tank: Impedance | None) -> None:
        self.rlc_bank = tank
        self._apply_loads()

    def set_rlc_bank_on(self, on: bool) -> None:
        self.rlc_bank_on = on
        self._apply_loads()

    def _apply_loads(self) -> None:
        world = self.world
        bank = self.rlc_bank if self.rlc_bank_on else None
        load_on = bool(self.ac_load_on) and self.ac_load is not None
        self.loads_joined = bank is not None and load_on
        if bank is None:
            # Only the AC load acts: forward it as it is (the World's own load modes).
            if isinstance(self.ac_load, PowerSetting):
                world.set_home_load(self.ac_load.p_w, self.ac_load.q_var)
            elif isinstance(self.ac_load, Impedance):
                world.set_home_rlc(
                    r_ohm=self.ac_load.r_ohm, l_h=self.ac_load.l_h, c_f=self.ac_load.c_f
                )
            if self.ac_load_on is not None:
                world.set_home_load_on(self.ac_load_on)
            elif self.rlc_bank is not None:
                world.set_home_load_on(False)
            return
        total = bank
        if load_on and self.ac_load is not None:
            total = bank.parallel(self._as_impedance(self.ac_load))
        # A tank without a resistive branch: a resistance too large to matter (the World's
        # RLC load always has R).
        r = total.r_ohm if math.isfinite(total.r_ohm) else 1e12
        world.set_home_rlc(r_ohm=r, l_h=total.l_h, c_f=total.c_f)
        world.set_home_load_on(True)

    def _as_impedance(self, load: PowerSetting | Impedance) -> Impedance:
        if isinstance(load, Impedance):
            return load
        world = self.world
        v, f = world.grid_voltage_setpoint, world.grid_frequency_setpoint
        phases = world.record_history(1.0).phases  # R, L, C per phase; P, Q totals
        if load.p_w <= 0 or v <= 0:
            return Impedance(math.inf)
        omega = 2.0 * math.pi * f
        r = v * v * phases / load.p_w
        if load.q_var > 0:
            return Impedance(r, l_h=v * v * phases / (omega * load.q_var))
        if load.q_var < 0:
            return Impedance(r, c_f=-load.q_var / (phases * omega * v * v))
        return Impedance(r)


_SITES: weakref.WeakKeyDictionary[object, SiteWiring] = weakref.WeakKeyDictionary()


def site_of(world: WorldLike) -> SiteWiring:
    """The one SiteWiring of `world` (made on first use)."""
    found = _SITES.get(world)
    if found is None:
        found = _SITES[world] = SiteWiring(world)
    return found
