"""The rig's pilot box: one SCPI instrument with both sides of the control pilot.

No product speaks this vocabulary: it is the rig's own small command set for a pilot interface
(an EV-side resistor switch, an EVSE-side ±12 V PWM generator behind 1 kOhm, and a measuring
input), so that the emulated bench has a control pilot reached through pyvisa like every other
instrument (instruments.emulated.pilot_box is its twin). A lab with such a box (or an adapter
speaking these commands) uses this driver; with generic parts it uses instruments.pilot.generic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from instruments.commands import Cmd
from instruments.roles import AnyResource, Instrument, Limits
from instruments.roles.control_pilot import (
    ControlPilot,
    PilotMeasurement,
    PilotSide,
    PilotState,
)

_OWN = "the rig's pilot box vocabulary (no vendor manual: the rig defines it)"

COMMANDS: Mapping[str, Cmd] = {
    "ev_state": Cmd("PIL:EV:STAT {state}", _OWN),
    "ev_state_query": Cmd("PIL:EV:STAT?", _OWN),
    "duty": Cmd("PIL:PWM:DUTY {percent}", _OWN + "; percent"),
    "frequency": Cmd("PIL:PWM:FREQ {hz}", _OWN),
    "pwm": Cmd("PIL:PWM:STAT {on}", _OWN),
    "pwm_query": Cmd("PIL:PWM:STAT?", _OWN),
    "signal": Cmd("PIL:SIGN {state}", _OWN + "; E, F or NONE"),
    "measure": Cmd("MEAS:PIL?", _OWN + "; state,frequency,duty %,high V,low V"),
}


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


class PilotBox(ControlPilot):
    maker = "rig"
    model = "PilotBox"
    sides: ClassVar[frozenset[PilotSide]] = frozenset({PilotSide.EV, PilotSide.EVSE})

    def __init__(
        self,
        resource: AnyResource,
        *,
        limits: Limits | None = None,
        name: str | None = None,
        side: PilotSide | None = None,
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        #: The side the bench uses (None: both); safe_state makes that side safe.
        self.side = side

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Option `side`: ev or evse (which side of the pilot the rig plays)."""
        unknown = sorted(set(options) - {"side"})
        if unknown:
            raise ValueError(f"PilotBox options: unknown {unknown}; known: ['side']")
        side = options.get("side")
        return cls(
            resource, limits=limits, name=name, side=None if side is None else PilotSide(str(side))
        )

    def _set_state(self, state: PilotState) -> None:
        self.write(COMMANDS["ev_state"](state=state.value))
        self.check_errors()

    def _set_pwm(self, duty: float | None, frequency_hz: float) -> None:
        if duty is None:
            self.write(COMMANDS["pwm"](on="OFF"))
        else:
            self.write(COMMANDS["frequency"](hz=f"{frequency_hz:g}"))
            self.write(COMMANDS["duty"](percent=f"{duty * 100:.4g}"))
            self.write(COMMANDS["pwm"](on="ON"))
        self.check_errors()

    def _signal(self, state: PilotState | None) -> None:
        self.write(COMMANDS["signal"](state="NONE" if state is None else state.value))
        self.check_errors()

    def measure(self) -> PilotMeasurement:
        reply = self.query(COMMANDS["measure"]())
        fields = [f.strip() for f in reply.split(",")]
        if len(fields) != 5:
            raise ValueError(f"{self.label}: MEAS:PIL? answered {reply!r}")
        state = None if fields[0] in ("", "?") else PilotState(fields[0])
        duty = _number(fields[2])
        return PilotMeasurement(
            state,
            _number(fields[1]),
            None if duty is None else duty / 100.0,
            float(fields[3]),
            float(fields[4]),
        )

    def settings(self) -> Mapping[str, object]:
        return {
            "side": None if self.side is None else str(self.side),
            "ev_state": self.query(COMMANDS["ev_state_query"]()),
            "pwm": self.query(COMMANDS["pwm_query"]()),
        }

    def safe_state(self) -> None:
        """EV side: state A; EVSE side: PWM off, no E/F (a steady +12 V); both when unset."""
        commands = []
        if self.side in (None, PilotSide.EV):
            commands.append(COMMANDS["ev_state"](state="A"))
        if self.side in (None, PilotSide.EVSE):
            commands += [COMMANDS["signal"](state="NONE"), COMMANDS["pwm"](on="OFF")]
        self._send_all(commands)
        if self.side in (None, PilotSide.EVSE):
            self._confirm_off(COMMANDS["pwm_query"]())
