"""The home's AC load: constant power, or a parallel RLC load for islanding tests.

A constant-power load draws its P and Q whatever the voltage while a stiff grid holds the bus. On an
island nothing holds the voltage, so it acts as the impedance that draws P and Q at nominal voltage
(the usual reading of a constant-power load below its design voltage). A parallel RLC load draws
P = V^2/R and Q = V^2/(2 pi f L) - V^2 2 pi f C (inductive positive), which is what IEEE 1547.1 5.10
and IEC 62116 balance against the unit under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class HomeLoadMode(StrEnum):
    CONSTANT_POWER = "constant_power"
    RLC = "rlc"


@dataclass(frozen=True)
class RlcLoad:
    """Parallel RLC values; L or C None means that branch is absent."""

    r_ohm: float
    l_h: float | None = None
    c_f: float | None = None

    def __post_init__(self) -> None:
        if not (self.r_ohm > 0 and math.isfinite(self.r_ohm)):
            raise ValueError(f"RLC load: r_ohm must be > 0, got {self.r_ohm!r}")
        for name, value in (("l_h", self.l_h), ("c_f", self.c_f)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"RLC load: {name} must be > 0 or None, got {value!r}")

    @property
    def resonance_hz(self) -> float | None:
        if self.l_h is None or self.c_f is None:
            return None
        return 1.0 / (2.0 * math.pi * math.sqrt(self.l_h * self.c_f))

    @property
    def quality_factor(self) -> float | None:
        """Qf = R sqrt(C/L) (IEEE 1547.1 5.10, IEC 62116)."""
        if self.l_h is None or self.c_f is None:
            return None
        return self.r_ohm * math.sqrt(self.c_f / self.l_h)


def balanced_rlc(
    p_w: float,
    voltage_v: float = 230.0,
    frequency_hz: float = 50.0,
    quality_factor: float = 1.0,
    *,
    phases: int = 1,
) -> RlcLoad:
    """The per-phase RLC load that draws p_w (total) at voltage_v (phase to neutral) and resonates
    at frequency_hz with quality factor Qf: R = V^2/P, Q_L = Q_C = Qf P (IEEE 1547.1 5.10)."""
    if p_w <= 0 or voltage_v <= 0 or frequency_hz <= 0 or quality_factor <= 0 or phases < 1:
        raise ValueError("balanced_rlc needs positive power, voltage, frequency and quality factor")
    p_w = p_w / phases
    omega = 2.0 * math.pi * frequency_hz
    r = voltage_v**2 / p_w
    l_h = voltage_v**2 / (omega * quality_factor * p_w)
    c_f = quality_factor * p_w / (omega * voltage_v**2)
    return RlcLoad(r, l_h, c_f)


class HomeLoad:
    """The home's consumption (P, Q totals over the phases; RLC values per phase, wye-connected);
    steps take effect at once."""

    def __init__(
        self, *, p_w: float = 0.0, q_var: float = 0.0, voltage_nominal_v: float, phases: int = 1
    ) -> None:
        self.v_nominal = voltage_nominal_v
        self.phases = phases
        self.on = True
        self.mode = HomeLoadMode.CONSTANT_POWER
        self.p_w = float(p_w)
        self.q_var = float(q_var)
        self.rlc: RlcLoad | None = None

    def set_constant_power(self, p_w: float, q_var: float = 0.0) -> None:
        if not (math.isfinite(p_w) and math.isfinite(q_var)):
            raise ValueError("home load P and Q must be finite")
        self.mode = HomeLoadMode.CONSTANT_POWER
        self.p_w, self.q_var = float(p_w), float(q_var)

    def set_rlc(self, rlc: RlcLoad) -> None:
        self.mode = HomeLoadMode.RLC
        self.rlc = rlc

    def power(self, v: float, f: float, *, stiff: bool) -> tuple[float, float]:
        """(P, Q) drawn at bus voltage v and frequency f; stiff: a grid holds the bus."""
        if not self.on or v <= 0.0:
            return 0.0, 0.0
        if self.mode is HomeLoadMode.CONSTANT_POWER:
            if stiff:
                return self.p_w, self.q_var
            scale = (v / self.v_nominal) ** 2
            return self.p_w * scale, self.q_var * scale
        rlc = self.rlc
        assert rlc is not None
        v2 = v * v * self.phases
        q = 0.0
        omega = 2.0 * math.pi * f
        if rlc.l_h is not None and omega > 0:
            q += v2 / (omega * rlc.l_h)
        if rlc.c_f is not None:
            q -= v2 * omega * rlc.c_f
        return v2 / rlc.r_ohm, q

    def conductance_s(self) -> float:
        """The load's total conductance as an island sees it (P = V^2 G, V phase to neutral);
        never negative."""
        if not self.on:
            return 0.0
        if self.mode is HomeLoadMode.CONSTANT_POWER:
            return max(self.p_w, 0.0) / self.v_nominal**2
        assert self.rlc is not None
        return self.phases / self.rlc.r_ohm

    def resonance_hz(self) -> float | None:
        """Frequency at which the load draws no reactive power, if it has one."""
        if not self.on:
            return None
        if self.mode is HomeLoadMode.RLC:
            assert self.rlc is not None
            return self.rlc.resonance_hz
        return None

    def reactive_free(self) -> bool:
        """True when the load never draws reactive power (Q = 0 at any frequency)."""
        if not self.on:
            return True
        if self.mode is HomeLoadMode.CONSTANT_POWER:
            return self.q_var == 0.0
        assert self.rlc is not None
        return self.rlc.l_h is None and self.rlc.c_f is None
