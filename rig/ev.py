"""The EV a plan describes, and the one derivation of everything that follows from it.

A plan's `ev:` block (capacity, starting SoC, reserve, charge and discharge limits) becomes an
EVSpec. From it, and only here, come the emulated battery's model (rig.sim), the online SoC the
runner's `wait_for: soc_below` reads, and what the checks know of the EV (rig.checks.Context).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.sim import BatteryConfig


@dataclass(frozen=True)
class EVSpec:
    """The EV battery as the plan states it: energy in Wh, SoC as a fraction, power magnitudes."""

    capacity_wh: float
    soc: float
    reserve_soc: float
    max_charge_w: float
    max_discharge_w: float  # magnitude

    @property
    def reserve_wh(self) -> float:
        return self.reserve_soc * self.capacity_wh

    @property
    def energy_wh(self) -> float:
        """Energy stored at the start."""
        return self.soc * self.capacity_wh

    def battery_config(self) -> BatteryConfig:
        """The emulated battery's model (rig.sim) for this EV."""
        from rig.sim import BatteryConfig

        return BatteryConfig(
            capacity_wh=self.capacity_wh,
            soc=self.soc,
            reserve_soc=self.reserve_soc,
            max_charge_w=self.max_charge_w,
            max_discharge_w=self.max_discharge_w,
        )
