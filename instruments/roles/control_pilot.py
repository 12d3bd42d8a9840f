"""Role: the control pilot (IEC 61851-1): the rig's EV side or EVSE side of the pilot line.

EV side (the DUT is an EVSE): `set_state(A|B|C|D)` switches the EV's resistors, `measure()`
reads the EVSE's PWM (frequency, duty) and levels. EVSE side (the DUT is an EV): `set_pwm(duty)`
drives the 1 kHz PWM (5 % for high-level communication), `signal(E|F)` the error states, and
`measure()` reads the EV's state from the high level. A driver states which sides it has
(`sides`); a call for a side it lacks raises PilotSideError before anything is sent.

Safe state: EV side in state A (every resistor off the line), EVSE side with its PWM off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from instruments.roles.base import Instrument, Role


class PilotSide(StrEnum):
    EV = "ev"
    EVSE = "evse"


class PilotState(StrEnum):
    """IEC 61851-1 states (FACTS.md "Link layer")."""

    A = "A"  # +12 V, no EV
    B = "B"  # +9 V, EV connected (2.74 kOhm)
    C = "C"  # +6 V, EV ready (1.3 kOhm added: 882 Ohm)
    D = "D"  # +3 V, ventilation (270 Ohm added)
    E = "E"  # 0 V
    F = "F"  # -12 V


#: Nominal high level of the states an EV sets, and the band read as that state (+-1 V (?)).
STATE_LEVEL_V: Mapping[PilotState, float] = {
    PilotState.A: 12.0,
    PilotState.B: 9.0,
    PilotState.C: 6.0,
    PilotState.D: 3.0,
}
STATE_BAND_V = 1.0
#: The PWM an EVSE uses for high-level communication (IEC 61851-1; ISO 15118-3).
HLC_DUTY = 0.05
PWM_FREQUENCY_HZ = 1000.0


def state_of(high_v: float, low_v: float) -> PilotState | None:
    """The state the levels show (None: between the bands)."""
    if abs(high_v) <= STATE_BAND_V and abs(low_v) <= STATE_BAND_V:
        return PilotState.E
    if high_v <= -12.0 + STATE_BAND_V:
        return PilotState.F
    for state, level in STATE_LEVEL_V.items():
        if abs(high_v - level) <= STATE_BAND_V:
            return state
    return None


@dataclass(frozen=True)
class PilotMeasurement:
    """The pilot as measured: its state, the PWM (None: steady), the high and low levels."""

    state: PilotState | None
    frequency_hz: float | None
    duty: float | None  # 0..1
    high_v: float
    low_v: float

    def as_event(self) -> dict[str, object]:
        return {
            "state": None if self.state is None else str(self.state),
            "frequency_hz": self.frequency_hz,
            "duty": self.duty,
            "high_v": round(self.high_v, 3),
            "low_v": round(self.low_v, 3),
        }


class PilotSideError(RuntimeError):
    """A call for a side of the pilot this driver does not have."""


class ControlPilot(Instrument):
    """See the module docstring."""

    role = Role.CONTROL_PILOT
    sides: ClassVar[frozenset[PilotSide]]

    def _require(self, side: PilotSide) -> None:
        if side not in self.sides:
            have = ", ".join(sorted(self.sides))
            raise PilotSideError(f"{self.label}: no {side} side (this driver has: {have})")

    # -- EV side -----------------------------------------------------------------------------
    def set_state(self, state: PilotState | str) -> None:
        """Apply the EV's state A, B, C or D."""
        self._require(PilotSide.EV)
        state = PilotState(state)
        if state not in STATE_LEVEL_V:
            raise ValueError(f"{self.label}: an EV sets A, B, C or D, not {state}")
        self._set_state(state)

    def _set_state(self, state: PilotState) -> None:
        raise PilotSideError(f"{self.label}: no EV side")

    # -- EVSE side ---------------------------------------------------------------------------
    def set_pwm(self, duty: float | None, frequency_hz: float = PWM_FREQUENCY_HZ) -> None:
        """PWM at `duty` (0..1) and `frequency_hz`, or None for a steady +12 V."""
        self._require(PilotSide.EVSE)
        if duty is not None and not (math.isfinite(duty) and 0.0 <= duty <= 1.0):
            raise ValueError(f"{self.label}: duty {duty} is not within 0..1")
        if not (math.isfinite(frequency_hz) and 0.0 < frequency_hz <= 10_000.0):
            raise ValueError(f"{self.label}: PWM frequency {frequency_hz} Hz refused")
        self._set_pwm(duty, frequency_hz)

    def signal(self, state: PilotState | str | None) -> None:
        """Signal E or F (None: back to the generator)."""
        self._require(PilotSide.EVSE)
        state = None if state is None else PilotState(state)
        if state not in (None, PilotState.E, PilotState.F):
            raise ValueError(f"{self.label}: an EVSE signals E or F, not {state}")
        self._signal(state)

    def _set_pwm(self, duty: float | None, frequency_hz: float) -> None:
        raise PilotSideError(f"{self.label}: no EVSE side")

    def _signal(self, state: PilotState | None) -> None:
        raise PilotSideError(f"{self.label}: no EVSE side")

    # -- both --------------------------------------------------------------------------------
    def measure(self) -> PilotMeasurement:
        """The pilot now: state, PWM frequency and duty, high and low levels."""
        raise NotImplementedError
