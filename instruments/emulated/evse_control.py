"""The emulated EVSE's control interface: its energy manager's setpoint and follow-home, in SCPI.

Served beside the instruments by `rig emulate --serve`, so that a plan's `setpoint` and
`follow_home_load` reach the served emulated EVSE the way they reach a real one: through the
interface its bench file names (instruments.rig.evse_control).
"""

from __future__ import annotations

from collections.abc import Sequence

from instruments.emulated.scpi import Command, Params
from instruments.emulated.twin import Twin


class EvseControlTwin(Twin):
    maker = "V2H rig"
    default_model = "EVSE control (emulated)"
    firmware = "1.0"

    def configure(self) -> None:
        self.setpoint_w = 0.0
        self.follow = False

    def reset(self) -> None:
        self.setpoint_w = 0.0
        self.follow = False
        self._apply()

    def state(self) -> dict[str, bool | float | str]:
        return {"setpoint_w": self.setpoint_w, "follow_home": self.follow}

    def commands(self) -> Sequence[Command]:
        return [
            Command("CONTrol:SETPoint", write=self._set_setpoint, read=lambda p: f"{self.setpoint_w:.1f}"),
            Command("CONTrol:FOLLow", write=self._set_follow, read=lambda p: str(int(self.follow))),
        ]  # fmt: skip

    def _set_setpoint(self, params: Params) -> None:
        params.expect(1)
        self.setpoint_w = params.number(0, unit="W", low=-1e6, high=1e6)
        self.follow = False
        self._apply()

    def _set_follow(self, params: Params) -> None:
        params.expect(1)
        self.follow = params.boolean(0)
        self._apply()

    def _apply(self) -> None:
        self.world.command_setpoint(self.setpoint_w)
        if self.follow:
            self.world.command_follow_home(True)
