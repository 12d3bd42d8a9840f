"""The control pilot line of IEC 61851-1 on the emulated bench: generator, resistors, diode, levels.

The EVSE drives the line through R1 = 1 kOhm from a +12 V / -12 V generator: a steady +12 V, a
1 kHz PWM between +12 V and -12 V (5 % duty asks for high-level communication), 0 V (state E)
or -12 V (state F). The EV loads it through a diode and R2 = 2.74 kOhm (state B), R3 = 1.3 kOhm
in parallel for C (882 Ohm in all) or 270 Ohm for D (FACTS.md "Link layer"). The high level is
the divider with the diode's drop, V = (12 R + 1000 Vd) / (R + 1000): 12 V open (A), 9 V (B),
6 V (C), 3 V (D); the low level stays at -12 V whenever the EV is connected (the diode blocks).
The state an EVSE reads is the high level's band (IEC 61851-1 Table A.4 as open code gives it:
A 12 V, B 9 V, C 6 V, D 3 V, each +-1 V (?)).

PilotLine keeps the state and tells subscribers of every change at the time it happens on the
caller's timeline; `reading()` is what a scope would measure. EvPilot and EvsePilot are the
emulated EV's and EVSE's pilot behaviour around an ISO 15118 session (when each state or duty
is applied), with the seeded defects that break the pilot checks (PILOT_DEFECTS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

#: IEC 61851-1 values (FACTS.md "Link layer"): generator, source resistor, EV resistors (Ohm).
GENERATOR_V = 12.0
R1_OHM = 1000.0
R2_OHM = 2740.0
R3_OHM = 1300.0
RD_OHM = 270.0
DIODE_DROP_V = 0.7  # (?) a silicon diode; open code models 0.6-0.7 V
PWM_FREQUENCY_HZ = 1000.0
HLC_DUTY = 0.05  # 5 %: high-level communication


class PilotState(StrEnum):
    """IEC 61851-1 states as the line shows them."""

    A = "A"  # no EV (+12 V)
    B = "B"  # EV connected, not ready (9 V)
    C = "C"  # EV ready, charging (6 V)
    D = "D"  # EV ready, ventilation required (3 V)
    E = "E"  # EVSE: no supply, error (0 V)
    F = "F"  # EVSE: not available (-12 V)


#: The EV's load per state it can set (Ohm; None: disconnected).
EV_LOAD: Mapping[PilotState, float | None] = {
    PilotState.A: None,
    PilotState.B: R2_OHM,
    PilotState.C: 1.0 / (1.0 / R2_OHM + 1.0 / R3_OHM),
    PilotState.D: 1.0 / (1.0 / R2_OHM + 1.0 / RD_OHM),
}
#: Nominal high level per state, and the band an EVSE reads it in (+-1 V (?)).
STATE_LEVEL_V: Mapping[PilotState, float] = {
    PilotState.A: 12.0,
    PilotState.B: 9.0,
    PilotState.C: 6.0,
    PilotState.D: 3.0,
}
STATE_BAND_V = 1.0


def high_level(load_ohm: float | None) -> float:
    """The pilot's positive level with the EV's load through the diode (or open)."""
    if load_ohm is None:
        return GENERATOR_V
    return (GENERATOR_V * load_ohm + R1_OHM * DIODE_DROP_V) / (load_ohm + R1_OHM)


def state_of_level(high_v: float) -> PilotState | None:
    """The state an EVSE reads from the high level (None: between the bands)."""
    for state, level in STATE_LEVEL_V.items():
        if abs(high_v - level) <= STATE_BAND_V:
            return state
    return None


@dataclass(frozen=True, slots=True)
class PilotReading:
    """What a scope on the pilot measures: PWM frequency (None: no PWM) and duty, the levels,
    and the state they show."""

    state: PilotState
    frequency_hz: float | None
    duty: float | None  # 0..1 (None: no PWM)
    high_v: float
    low_v: float


class PilotLine:
    """The line between one EVSE and one EV; see the module docstring."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.ev_state = PilotState.A  # what the EV applies (A: unplugged)
        self.duty: float | None = None  # the EVSE's PWM duty (None: steady +12 V)
        self.frequency_hz = PWM_FREQUENCY_HZ
        self.evse_signal: PilotState | None = None  # E or F while the EVSE signals it
        self.history: list[tuple[float, PilotReading]] = []
        self._listeners: list[Callable[[float, PilotReading], None]] = []
        self._changed()

    def subscribe(self, listener: Callable[[float, PilotReading], None]) -> None:
        """listener(t, reading) after every change."""
        self._listeners.append(listener)

    # -- the EV's side --------------------------------------------------------------------------
    def set_ev_state(self, state: PilotState | str) -> None:
        state = PilotState(state)
        if state not in EV_LOAD:
            raise ValueError(f"an EV sets A, B, C or D, not {state}")
        if state != self.ev_state:
            self.ev_state = state
            self._changed()

    # -- the EVSE's side ------------------------------------------------------------------------
    def set_pwm(self, duty: float | None, frequency_hz: float = PWM_FREQUENCY_HZ) -> None:
        """PWM at `duty` (0..1), or None for a steady +12 V."""
        if duty is not None and not 0.0 <= duty <= 1.0:
            raise ValueError(f"duty {duty} out of 0..1")
        if not math.isfinite(frequency_hz) or frequency_hz <= 0:
            raise ValueError(f"PWM frequency {frequency_hz}")
        if (duty, frequency_hz, None) != (self.duty, self.frequency_hz, self.evse_signal):
            self.duty, self.frequency_hz, self.evse_signal = duty, frequency_hz, None
            self._changed()

    def signal(self, state: PilotState | str | None) -> None:
        """The EVSE signals E (0 V) or F (-12 V); None goes back to its generator."""
        state = None if state is None else PilotState(state)
        if state not in (None, PilotState.E, PilotState.F):
            raise ValueError(f"an EVSE signals E or F, not {state}")
        if state != self.evse_signal:
            self.evse_signal = state
            self._changed()

    # -- what is measured -----------------------------------------------------------------------
    def reading(self) -> PilotReading:
        if self.evse_signal is PilotState.E:
            return PilotReading(PilotState.E, None, None, 0.0, 0.0)
        if self.evse_signal is PilotState.F:
            return PilotReading(PilotState.F, None, None, -GENERATOR_V, -GENERATOR_V)
        high = high_level(EV_LOAD[self.ev_state])
        state = state_of_level(high) or self.ev_state
        if self.duty is None:
            return PilotReading(state, None, None, high, high)
        if self.duty == 0.0:
            return PilotReading(PilotState.F, None, None, -GENERATOR_V, -GENERATOR_V)
        return PilotReading(state, self.frequency_hz, self.duty, high, -GENERATOR_V)

    def _changed(self) -> None:
        t = self.now()
        reading = self.reading()
        if self.history and self.history[-1][1] == reading:
            return
        self.history.append((t, reading))
        del self.history[:-1000]  # bounded: the last thousand changes
        for listener in list(self._listeners):
            listener(t, reading)


@dataclass(frozen=True, slots=True)
class PilotDefect:
    """One seeded pilot defect of the emulated EV or EVSE, and the check it breaks."""

    name: str
    side: str  # "ev" or "evse"
    summary: str
    breaks: tuple[str, ...]
    state_c_delay_s: float | None = None
    state_b_delay_s: float | None = None
    early_state_c: bool = False
    dropout_s: float | None = None
    duty: float | None = None
    frequency_hz: float | None = None


_ALL = (
    PilotDefect(
        "late_state_c",
        "ev",
        "closes S2 (state C) 400 ms after its first PowerDeliveryReq(Start), beyond 250 ms",
        ("pilot_state_c_after_start",),
        state_c_delay_s=0.4,
    ),
    PilotDefect(
        "early_state_c",
        "ev",
        "goes to state C as soon as SLAC has matched, before its first PowerDeliveryReq(Start)",
        ("pilot_state_b_before_start",),
        early_state_c=True,
    ),
    PilotDefect(
        "late_state_b",
        "ev",
        "opens S2 (state B) 600 ms after its PowerDeliveryReq(Stop), beyond 250 ms",
        ("pilot_state_b_after_stop",),
        state_b_delay_s=0.6,
    ),
    PilotDefect(
        "state_c_dropout",
        "ev",
        "drops to state B for 50 ms two seconds into the charge loop",
        ("pilot_state_held",),
        dropout_s=0.05,
    ),
    PilotDefect(
        "nominal_duty_cycle",
        "evse",
        "signals a 16 A nominal duty cycle (26.7 %) instead of 5 % for high-level communication",
        ("pilot_pwm",),
        duty=16.0 / 0.6 / 100.0,
    ),
    PilotDefect(
        "pwm_frequency_drift",
        "evse",
        "its PWM runs at 1.05 kHz, outside 1 kHz +- 2 %",
        ("pilot_pwm",),
        frequency_hz=1050.0,
    ),
)

PILOT_DEFECTS: Mapping[str, PilotDefect] = MappingProxyType({d.name: d for d in _ALL})


@dataclass(frozen=True, slots=True)
class EvPilotTiming:
    """When the emulated EV changes state (a good EV: well inside -20's 250 ms)."""

    state_c_delay_s: float = 0.05  # after its first PowerDeliveryReq(Start) [V2G20-847]
    state_b_delay_s: float = 0.05  # after its PowerDeliveryReq(Stop) [V2G20-848]
    early_state_c: bool = False
    dropout_s: float | None = None
    dropout_after_s: float = 2.0


def ev_timing(defects: Iterable[str]) -> EvPilotTiming:
    timing = EvPilotTiming()
    for name in defects:
        d = PILOT_DEFECTS.get(name)
        if d is None or d.side != "ev":
            continue
        timing = EvPilotTiming(
            d.state_c_delay_s if d.state_c_delay_s is not None else timing.state_c_delay_s,
            d.state_b_delay_s if d.state_b_delay_s is not None else timing.state_b_delay_s,
            timing.early_state_c or d.early_state_c,
            d.dropout_s if d.dropout_s is not None else timing.dropout_s,
        )
    return timing


@dataclass(frozen=True, slots=True)
class EvsePilotSettings:
    """What the emulated EVSE applies for high-level communication."""

    duty: float = HLC_DUTY
    frequency_hz: float = PWM_FREQUENCY_HZ


def evse_settings(defects: Iterable[str]) -> EvsePilotSettings:
    settings = EvsePilotSettings()
    for name in defects:
        d = PILOT_DEFECTS.get(name)
        if d is None or d.side != "evse":
            continue
        settings = EvsePilotSettings(
            d.duty if d.duty is not None else settings.duty,
            d.frequency_hz if d.frequency_hz is not None else settings.frequency_hz,
        )
    return settings
