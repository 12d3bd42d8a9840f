"""Emulated rig pilot box (instruments.pilot.pilot_box's commands) over the simulated pilot line.

The line is rig.sim.pilot.PilotLine, one per World (`pilot_of(world)`), shared with whatever
else acts on the pilot of the emulated bench (the emulated EV's or EVSE's link behaviour).
`MEAS:PIL?` answers the line's reading at the moment of the query (a pilot settles in
microseconds; the box is taken as reading it at once).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin
from instruments.emulated.world import WorldLike
from rig.sim.pilot import HLC_DUTY, PWM_FREQUENCY_HZ, PilotLine, PilotState

_LINES: weakref.WeakKeyDictionary[object, PilotLine] = weakref.WeakKeyDictionary()


def pilot_of(world: WorldLike) -> PilotLine:
    """The one pilot line of `world` (made on first use, on the world's clock)."""
    line = _LINES.get(world)
    if line is None:
        ref = weakref.ref(world)

        def now() -> float:
            w = ref()
            return 0.0 if w is None else w.now

        line = _LINES[world] = PilotLine(now)
    return line


def _number(value: float | None, digits: int = 4) -> str:
    return "NAN" if value is None or math.isnan(value) else f"{value:.{digits}f}"


class PilotBoxTwin(Twin):
    maker = "rig"
    default_model = "PilotBox"
    firmware = "emulated-1.0"
    option_names = frozenset({"side"})

    def configure(self) -> None:
        self.line = pilot_of(self.world)
        self.duty_percent = HLC_DUTY * 100.0
        self.frequency_hz = PWM_FREQUENCY_HZ
        self.pwm_on = False

    def state(self) -> dict[str, bool | float | str]:
        return {
            "ev_state": str(self.line.ev_state),
            "pwm_on": self.pwm_on,
            "duty_percent": self.duty_percent,
            "frequency_hz": self.frequency_hz,
            "signal": "NONE" if self.line.evse_signal is None else str(self.line.evse_signal),
        }

    def reset(self) -> None:
        self.line.set_ev_state(PilotState.A)
        self.line.signal(None)
        self.line.set_pwm(None)
        self.pwm_on = False

    def commands(self) -> Sequence[Command]:
        return [
            Command("PILot:EV:STATe", write=self._ev_state, read=lambda p: str(self.line.ev_state)),
            Command("PILot:PWM:DUTY", write=self._duty, read=lambda p: _number(self.duty_percent)),
            Command(
                "PILot:PWM:FREQuency",
                write=self._frequency,
                read=lambda p: _number(self.frequency_hz),
            ),
            Command("PILot:PWM:STATe", write=self._pwm, read=lambda p: "1" if self.pwm_on else "0"),
            Command("PILot:SIGNal", write=self._signal, read=self._signal_query),
            Command("MEASure:PILot", read=self._measure),
        ]

    def _ev_state(self, params: Params) -> None:
        params.expect(1)
        state = params.choice(0, {"A": "A", "B": "B", "C": "C", "D": "D"})
        self.line.set_ev_state(state)

    def _duty(self, params: Params) -> None:
        params.expect(1)
        self.duty_percent = params.number(0, low=0.0, high=100.0)
        self._apply()

    def _frequency(self, params: Params) -> None:
        params.expect(1)
        self.frequency_hz = params.number(0, unit="HZ", low=1.0, high=10_000.0)
        self._apply()

    def _pwm(self, params: Params) -> None:
        params.expect(1)
        self.pwm_on = params.boolean(0)
        self._apply()

    def _apply(self) -> None:
        if self.pwm_on:
            self.line.set_pwm(self.duty_percent / 100.0, self.frequency_hz)
        else:
            self.line.set_pwm(None)

    def _signal(self, params: Params) -> None:
        params.expect(1)
        choice = params.choice(0, {"E": "E", "F": "F", "NONE": "NONE"})
        self.line.signal(None if choice == "NONE" else choice)

    def _signal_query(self, params: Params) -> str:
        return "NONE" if self.line.evse_signal is None else str(self.line.evse_signal)

    def _measure(self, params: Params) -> str:
        if params.args:
            raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED)
        r = self.line.reading()
        duty = None if r.duty is None else r.duty * 100.0
        return ",".join(
            (
                str(r.state),
                _number(r.frequency_hz, 2),
                _number(duty, 3),
                _number(r.high_v, 3),
                _number(r.low_v, 3),
            )
        )
