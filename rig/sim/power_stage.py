"""The EVSE's bidirectional power stage: how its AC power follows a target, and its efficiency.

A good stage moves its internal reference towards the target at no more than the ramp rate and its
output follows the reference with a first-order lag (the slew-limited, lagging response IEEE 1547.1
open-loop response-time tests measure). A badly tuned stage (the `overshoot` defect) skips the ramp
limiter and answers as an under-damped second-order system. Both are integrated exactly over a
substep for piecewise-linear inputs, so the result does not depend on the substep length.
"""

from __future__ import annotations

import math

#: Below this distance from its target (W) the stage counts as settled and snaps onto it.
SETTLE_W = 0.01


def dc_power(p_ac_w: float, efficiency: float) -> float:
    """DC power at the battery for AC power p_ac_w (rig sign): DC = AC * eff when charging, and
    AC = DC * eff when discharging."""
    return p_ac_w * efficiency if p_ac_w >= 0.0 else p_ac_w / efficiency


def ac_power(p_dc_w: float, efficiency: float) -> float:
    """Inverse of dc_power."""
    return p_dc_w / efficiency if p_dc_w >= 0.0 else p_dc_w * efficiency


class PowerStage:
    """Output state of the power stage (AC watts, rig sign: + charging the EV)."""

    def __init__(
        self, *, ramp_w_per_s: float, lag_s: float, damping_ratio: float | None = None
    ) -> None:
        self.ramp_w_per_s = ramp_w_per_s
        self.lag_s = lag_s
        self.damping_ratio = damping_ratio
        # The under-damped loop's natural frequency follows the nominal lag, so that a defective
        # unit answers about as fast as a good one but overshoots.
        self.omega_n = 1.0 / max(lag_s, 0.02)
        self.reference_w = 0.0
        self.output_w = 0.0
        self.rate_w_per_s = 0.0  # d(output)/dt, used by the second-order response

    def reset(self, value_w: float = 0.0) -> None:
        """Put the stage at value_w, at rest (after ceasing to energize, or grid-forming)."""
        self.reference_w = self.output_w = value_w
        self.rate_w_per_s = 0.0

    def settled(self, target_w: float) -> bool:
        if self.damping_ratio is not None:
            return (
                abs(self.output_w - target_w) <= SETTLE_W
                and abs(self.rate_w_per_s) <= SETTLE_W * self.omega_n
            )
        return self.reference_w == target_w and abs(self.output_w - target_w) <= SETTLE_W

    def clamp(self, low_w: float, high_w: float) -> None:
        """Hard limits on the output (the EV's and the DC source's limits act at once)."""
        if self.output_w > high_w:
            self.output_w = high_w
            self.rate_w_per_s = min(self.rate_w_per_s, 0.0)
        elif self.output_w < low_w:
            self.output_w = low_w
            self.rate_w_per_s = max(self.rate_w_per_s, 0.0)
        self.reference_w = min(max(self.reference_w, low_w), high_w)

    def step(self, target_w: float, dt: float) -> None:
        """Advance by dt seconds towards target_w."""
        if self.damping_ratio is not None:
            self._step_underdamped(target_w, dt)
        else:
            self._step_ramp_lag(target_w, dt)
        if self.settled(target_w):
            self.reset(target_w)

    def _step_ramp_lag(self, target_w: float, dt: float) -> None:
        r0, y, tau = self.reference_w, self.output_w, self.lag_s
        gap = target_w - r0
        ramp_s = abs(gap) / self.ramp_w_per_s
        ta = min(dt, ramp_s)
        if ta > 0.0:
            slope = math.copysign(self.ramp_w_per_s, gap)
            r1 = target_w if ta >= ramp_s else r0 + slope * ta
            if tau > 0.0:
                # y' = (r - y)/tau with r = r0 + slope t: exact solution at t = ta.
                lag = slope * tau
                y = r1 - lag + (y - r0 + lag) * math.exp(-ta / tau)
            else:
                y = r1
            r0 = r1
        tb = dt - ta
        if tb > 0.0:
            y = r0 + (y - r0) * math.exp(-tb / tau) if tau > 0.0 else r0
        self.reference_w, self.output_w = r0, y

    def _step_underdamped(self, target_w: float, dt: float) -> None:
        # e'' + 2 zeta w e' + w^2 e = 0 for the deviation e = y - target: exact solution.
        zeta, w = self.damping_ratio or 0.0, self.omega_n
        wd = w * math.sqrt(1.0 - zeta * zeta)
        zw = zeta * w
        e0, v0 = self.output_w - target_w, self.rate_w_per_s
        b = (v0 + zw * e0) / wd
        decay = math.exp(-zw * dt)
        c, s = math.cos(wd * dt), math.sin(wd * dt)
        e1 = decay * (e0 * c + b * s)
        v1 = decay * (-zw * (e0 * c + b * s) + wd * (b * c - e0 * s))
        self.reference_w = target_w
        self.output_w, self.rate_w_per_s = target_w + e1, v1
