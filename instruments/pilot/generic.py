"""The EV side of the pilot from generic lab parts: a switch unit and a scope (or DAQ) on the line.

Wiring (the bench file names the switch unit's channels): relay `connect` puts the EV's diode
and R2 = 2.74 kOhm on the CP line (state B), relay `c` adds R3 = 1.3 kOhm (state C), relay `d`
adds 270 Ohm (state D); all open is state A (FACTS.md "Link layer"). One scope channel probes CP
against PE; `measure()` captures a few PWM periods and reads them (instruments.pilot.analysis).

The two parts are drivers of their own roles (SwitchUnit, Oscilloscope), opened by the station
as any other instrument; this driver only sequences them. Its resource for identity and errors
is the switch unit's.

    pilot = GenericPilot(switch, scope, relays={"connect": "cp_b", "c": "cp_c", "d": "cp_d"},
                         scope_channel=1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from instruments.pilot.analysis import analyze_pilot
from instruments.roles import Identity, Oscilloscope, SwitchUnit
from instruments.roles.control_pilot import (
    ControlPilot,
    PilotMeasurement,
    PilotSide,
    PilotState,
)

#: Which relays are closed in each state the EV sets.
RELAYS_FOR: Mapping[PilotState, frozenset[str]] = {
    PilotState.A: frozenset(),
    PilotState.B: frozenset({"connect"}),
    PilotState.C: frozenset({"connect", "c"}),
    PilotState.D: frozenset({"connect", "d"}),
}
ROLES = ("connect", "c", "d")


class GenericPilot(ControlPilot):
    maker = "rig"
    model = "generic pilot (switch unit + scope)"
    sides: ClassVar[frozenset[PilotSide]] = frozenset({PilotSide.EV})
    #: Capture span: five PWM periods at 1 kHz, on 10 divisions (rig's own choice).
    SECONDS_PER_DIV = 0.0005

    def __init__(
        self,
        switch: SwitchUnit,
        scope: Oscilloscope,
        *,
        relays: Mapping[str, str],
        scope_channel: int = 1,
        name: str | None = None,
    ) -> None:
        missing = [r for r in ROLES if r not in relays]
        if missing:
            raise ValueError(f"generic pilot: relays {missing} not named (need {list(ROLES)})")
        for role in ROLES:
            switch._channel(relays[role])  # an unknown channel name fails here, not mid-run
        super().__init__(switch.resource, name=name)
        self.switch = switch
        self.scope = scope
        self.relays = dict(relays)
        self.scope_channel = scope_channel
        self.state = PilotState.A

    def identify(self) -> Identity:
        part = self.switch.identify()
        return Identity("rig", self.model, part.serial, f"switch {part.model} {part.firmware}")

    def _set_state(self, state: PilotState) -> None:
        wanted = RELAYS_FOR[state]
        # Open before closing: passing through a lighter load (a higher level) never signals
        # a state the EV did not ask for beyond the one it leaves.
        for role in ROLES:
            if role not in wanted:
                self.switch.open_channel(self.relays[role])
        for role in ROLES:
            if role in wanted:
                self.switch.close_channel(self.relays[role])
        self.state = state

    def measure(self) -> PilotMeasurement:
        self.scope.configure_channel(self.scope_channel, per_div=5.0, offset=0.0)
        self.scope.set_timebase(seconds_per_div=self.SECONDS_PER_DIV)
        waves = self.scope.capture([self.scope_channel])
        wave = waves[self.scope_channel]
        return analyze_pilot(wave.t, wave.y)

    def settings(self) -> Mapping[str, object]:
        return {
            "relays": dict(self.relays),
            "scope_channel": self.scope_channel,
            "state": str(self.state),
        }

    def safe_state(self) -> None:
        """State A: every pilot relay open (read back by the switch unit)."""
        first: Exception | None = None
        for role in ROLES:
            try:
                self.switch.open_channel(self.relays[role])
            except Exception as error:  # keep going: the next relay may still open
                first = first or error
        self.state = PilotState.A
        if first is not None:
            raise first
        closed = [r for r in ROLES if self.switch.channel_closed(self.relays[r])]
        if closed:
            raise RuntimeError(f"{self.label}: relays still closed: {closed}")

    def close(self) -> None:
        """The parts are closed by the station as instruments of their own."""
