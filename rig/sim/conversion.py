"""The EVSE's AC/DC conversion: constant efficiency, or a part-load curve with a no-load loss.

The constant form (no no-load loss) is the model every earlier test uses: DC = AC x efficiency
when charging, AC = DC x efficiency when discharging. The part-load form is what a real converter
does: a fixed loss while it switches (the no-load loss L0) plus a loss growing with the square of
the power (conduction), sized so that the efficiency at rated power is the configured one:

    L(P) = L0 + ((1 - efficiency) x P_rated - L0) x (P / P_rated)^2     for |P| > 0
    DC = AC - L(|AC|)          (both directions: the battery pays the losses when discharging)

An idle converter (AC exactly 0) stops switching and loses nothing; the EVSE's auxiliary supply
(standby) is a separate draw at its terminals (rig.sim.world). Efficiency is then low at light
load (a 40 W no-load loss is 12 % of 300 W) and highest between a third and half of rated power.
"""

from __future__ import annotations

import math

from rig.sim.power_stage import ac_power, dc_power


class Conversion:
    """AC <-> DC power through the EVSE's power stage (rig sign: + into the EV)."""

    def __init__(self, efficiency: float, *, no_load_loss_w: float = 0.0, rated_w: float) -> None:
        if not 0.0 < efficiency <= 1.0:
            raise ValueError(f"efficiency must be within (0, 1], got {efficiency!r}")
        if not (no_load_loss_w >= 0.0 and math.isfinite(no_load_loss_w)):
            raise ValueError(f"no-load loss must be >= 0 W, got {no_load_loss_w!r}")
        self.efficiency = efficiency
        self.no_load_loss_w = no_load_loss_w
        self.rated_w = rated_w
        self.curve = no_load_loss_w > 0.0
        at_rated = (1.0 - efficiency) * rated_w
        self._k = max(at_rated - no_load_loss_w, 0.0) / (rated_w * rated_w) if rated_w > 0 else 0.0

    def loss(self, p_ac_abs: float) -> float:
        """Conversion loss (W) at AC power magnitude p_ac_abs, part-load form."""
        if p_ac_abs <= 0.0:
            return 0.0
        return self.no_load_loss_w + self._k * p_ac_abs * p_ac_abs

    def dc_of(self, p_ac: float) -> float:
        """DC power at the battery for AC power p_ac."""
        if not self.curve:
            return dc_power(p_ac, self.efficiency)
        if p_ac == 0.0:
            return 0.0
        return p_ac - self.loss(abs(p_ac))

    def ac_export_for(self, dc_out_w: float) -> float:
        """The AC export (magnitude) a DC discharge of dc_out_w (magnitude) allows."""
        if dc_out_w <= 0.0:
            return 0.0
        if not self.curve:
            return -ac_power(-dc_out_w, self.efficiency)
        spare = dc_out_w - self.no_load_loss_w
        if spare <= 0.0:
            return 0.0
        k = self._k
        if k <= 0.0:
            return spare
        # k x^2 + x - spare = 0, the positive root.
        return (-1.0 + math.sqrt(1.0 + 4.0 * k * spare)) / (2.0 * k)

    def ac_import_for(self, dc_in_w: float) -> float:
        """The AC import (magnitude) that puts dc_in_w (magnitude) into the battery."""
        if dc_in_w <= 0.0:
            return 0.0
        if not self.curve:
            return ac_power(dc_in_w, self.efficiency)
        k = self._k
        need = dc_in_w + self.no_load_loss_w
        if k <= 0.0:
            return need
        # k x^2 - x + need = 0, the smaller root (beyond the vertex more AC moves less DC).
        disc = 1.0 - 4.0 * k * need
        return (1.0 - math.sqrt(max(disc, 0.0))) / (2.0 * k)
