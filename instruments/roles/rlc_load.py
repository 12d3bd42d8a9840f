"""Role: the anti-islanding RLC load bank (a parallel R, L, C tank per phase).

IEEE 1547.1-2020 5.10 and IEC 62116 balance a parallel RLC load against the unit under test:
R draws the unit's active power P, L and C each draw Qf x P of reactive power at nominal voltage
and frequency, so that the tank resonates at nominal frequency with quality factor Qf
(Qf = R sqrt(C/L), 1.0 in both standards). The procedure then detunes the reactive load in 1 %
steps (95 % to 105 %) to find the worst case. Banks are programmed in watts and vars at their
nominal voltage; `RlcTank` holds that setting and gives the per-phase R, L, C it stands for.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import AcReading


@dataclass(frozen=True)
class RlcTank:
    """A parallel RLC setting: totals over `phases` at nominal phase voltage and frequency.

    `q_l_var` is the inductive branch's reactive power and `q_c_var` the capacitive branch's,
    both as positive magnitudes; a branch at 0 is switched out.
    """

    p_w: float
    q_l_var: float
    q_c_var: float
    v_nominal: float
    f_nominal: float
    phases: int = 1

    def __post_init__(self) -> None:
        for name in ("p_w", "q_l_var", "q_c_var"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RlcTank.{name} must be a finite value >= 0, got {value!r}")
        for name in ("v_nominal", "f_nominal"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RlcTank.{name} must be positive, got {value!r}")
        if self.phases not in (1, 3):
            raise ValueError(f"RlcTank.phases must be 1 or 3, got {self.phases!r}")

    @classmethod
    def balanced(
        cls,
        p_w: float,
        quality_factor: float = 1.0,
        *,
        v_nominal: float,
        f_nominal: float,
        phases: int = 1,
        inductive_pct: float = 100.0,
        capacitive_pct: float = 100.0,
    ) -> RlcTank:
        """The tank that draws `p_w` and resonates at `f_nominal` with `quality_factor`
        (QL = QC = Qf P, IEEE 1547.1 5.10), with the L or C branch detuned to the given percent
        of its balanced value (the 95 % to 105 % steps of the procedure)."""
        if not (p_w > 0 and quality_factor > 0):
            raise ValueError("a balanced tank needs positive power and quality factor")
        q = quality_factor * p_w
        return cls(
            p_w=p_w,
            q_l_var=q * inductive_pct / 100.0,
            q_c_var=q * capacitive_pct / 100.0,
            v_nominal=v_nominal,
            f_nominal=f_nominal,
            phases=phases,
        )

    @property
    def _omega(self) -> float:
        return 2.0 * math.pi * self.f_nominal

    @property
    def r_ohm(self) -> float | None:
        """Per-phase resistance (None: R branch out)."""
        return None if self.p_w == 0 else self.v_nominal**2 * self.phases / self.p_w

    @property
    def l_h(self) -> float | None:
        """Per-phase inductance (None: L branch out)."""
        if self.q_l_var == 0:
            return None
        return self.v_nominal**2 * self.phases / (self._omega * self.q_l_var)

    @property
    def c_f(self) -> float | None:
        """Per-phase capacitance (None: C branch out)."""
        if self.q_c_var == 0:
            return None
        return self.q_c_var / (self.phases * self._omega * self.v_nominal**2)

    @property
    def quality_factor(self) -> float | None:
        """Qf = R sqrt(C/L) = sqrt(QL QC) / P (IEEE 1547.1 5.10)."""
        if self.p_w == 0 or self.q_l_var == 0 or self.q_c_var == 0:
            return None
        return math.sqrt(self.q_l_var * self.q_c_var) / self.p_w

    @property
    def resonance_hz(self) -> float | None:
        l_h, c_f = self.l_h, self.c_f
        if l_h is None or c_f is None:
            return None
        return 1.0 / (2.0 * math.pi * math.sqrt(l_h * c_f))


class RlcLoadBank(Instrument):
    """A resonant RLC load bank (per phase R, L, C in parallel); input off = every branch out."""

    role = Role.RLC_LOAD

    @abstractmethod
    def set_tank(self, tank: RlcTank) -> None:
        """Program the bank's P, QL, QC (at its nominal voltage and frequency)."""

    def set_balanced(
        self,
        p_w: float,
        quality_factor: float = 1.0,
        *,
        v_nominal: float,
        f_nominal: float,
        phases: int = 1,
        inductive_pct: float = 100.0,
        capacitive_pct: float = 100.0,
    ) -> RlcTank:
        """Program the balanced tank of IEEE 1547.1 5.10 (optionally detuned); returns it."""
        tank = RlcTank.balanced(
            p_w,
            quality_factor,
            v_nominal=v_nominal,
            f_nominal=f_nominal,
            phases=phases,
            inductive_pct=inductive_pct,
            capacitive_pct=capacitive_pct,
        )
        self.set_tank(tank)
        return tank

    @abstractmethod
    def set_input(self, on: bool) -> None: ...

    @abstractmethod
    def input_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> AcReading:
        """Positive power when the bank consumes."""
