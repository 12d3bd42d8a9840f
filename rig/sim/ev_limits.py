"""What the EV tells the EVSE about its limits, as the emulated EVSE's controller hears it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EvAnnouncement:
    """The EV's announced limits at the DC side (magnitudes, W): EVMaximumChargePower,
    EVMaximumDischargePower, and whether its V2X energy window is used up
    (EVMinimumV2XEnergyRequest >= 0: at or below the reserve, nothing more to give back)."""

    max_charge_w: float
    max_discharge_w: float
    v2x_window_used_up: bool = False
