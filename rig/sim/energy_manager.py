"""The EVSE's energy manager: what AC power the power stage should aim at.

"setpoint" follows a commanded power (the runner's charge/discharge steps, or the 15118 target);
"follow_home" is the V2H mode of home-backup products: it discharges as much as the home draws so
that the import at the grid point stays at zero, and charges from a surplus only if told to.
"""

from __future__ import annotations

import math
from enum import StrEnum


class EnergyMode(StrEnum):
    SETPOINT = "setpoint"
    FOLLOW_HOME = "follow_home"


class EnergyManager:
    def __init__(self) -> None:
        self.mode = EnergyMode.SETPOINT
        self.setpoint_w = 0.0
        self.allow_charge = False

    def command_setpoint(self, p_w: float) -> None:
        if not math.isfinite(p_w):
            raise ValueError(f"setpoint must be finite, got {p_w!r}")
        self.mode = EnergyMode.SETPOINT
        self.setpoint_w = float(p_w)

    def command_follow_home(self, on: bool = True, *, allow_charge: bool = False) -> None:
        """on: follow the home; off: back to the last setpoint."""
        self.mode = EnergyMode.FOLLOW_HOME if on else EnergyMode.SETPOINT
        self.allow_charge = allow_charge

    def target_w(self, home_p_w: float) -> float:
        """AC target (rig sign) given what the home draws now."""
        if self.mode is EnergyMode.SETPOINT:
            return self.setpoint_w
        target = -home_p_w  # grid import = home + EVSE = 0
        if target > 0.0 and not self.allow_charge:
            return 0.0
        return target
