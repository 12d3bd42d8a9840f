"""Keysight RP7900 regenerative DC power supply as the EV battery emulator.

Two-quadrant operation in voltage priority (`FUNC VOLT`): the output holds `VOLT` while the
current stays between the negative limit `CURR:LIM:NEG` (the unit sinks and regenerates into
the mains) and the positive limit `CURR:LIM` (it sources). Measurements: a `MEAS:VOLT?`
starts a new acquisition and `FETC:...?` queries read other items of that same acquisition, so
one compound message is one coherent reading; current reads negative while sinking.

Sources: open drivers for the RP7900 and the Keysight N6900/N7900 APS family (same command
tree) use `FUNC VOLT`, `VOLT`, `CURR:LIM`, `CURR:LIM:NEG` with a negative value, `OUTP`,
`MEAS:VOLT?`, `MEAS:CURR?`; the RP7900 Operating and Programming Guide itself was not read
here, so every command is marked (?) in COMMANDS. Model ratings come from the bench options
(`voltage_rating`, `current_rating`, `power_rating`); the default is an RP7943A-class 500 V,
±80 A, 20 kW unit (?).
"""

from __future__ import annotations

from collections.abc import Mapping

from instruments.commands import Cmd
from instruments.ea.psb10000 import RATING_OPTIONS, DcRating, rating_from_options
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import (
    AnyResource,
    DcReading,
    DCSource,
    Instrument,
    Limits,
    ModelRange,
)

_APS = "(?) open RP7900 / N6900 APS drivers; RP7900 guide not read here"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "voltage_priority": Cmd("FUNC VOLT", _APS),
    "priority_query": Cmd("FUNC?", _APS),
    "voltage": Cmd("VOLT {v}", _APS),
    "current_limit": Cmd("CURR:LIM {a}", _APS),
    "current_limit_negative": Cmd("CURR:LIM:NEG {a}", _APS + "; the value is negative"),
    "power_limit": Cmd("POW:LIM {w}", "(?) RP7900 power limit, positive direction"),
    "power_limit_negative": Cmd("POW:LIM:NEG {w}", "(?) RP7900 power limit while sinking"),
    "output_on": Cmd("OUTP ON", _APS),
    "output_off": Cmd("OUTP OFF", _APS),
    "output_query": Cmd("OUTP?", _APS),
    "measure_all": Cmd(
        "MEAS:VOLT?;:FETC:CURR?;:FETC:POW?",
        "(?) Keysight MEASure/FETCh convention: FETCh reads the same acquisition",
    ),
    "voltage_query": Cmd("VOLT?", _APS),
    "current_limit_query": Cmd("CURR:LIM?", _APS),
    "current_limit_negative_query": Cmd("CURR:LIM:NEG?", _APS),
    "power_limit_query": Cmd("POW:LIM?", "(?) RP7900 power limit query"),
    "power_limit_negative_query": Cmd("POW:LIM:NEG?", "(?) RP7900 power limit query"),
}

#: (?) RP7943A-class ratings used when the bench file gives none.
DEFAULT_RATING = DcRating(500.0, 80.0, 20_000.0)


class RP7900(DCSource):
    maker = "Keysight Technologies"
    model = "RP7900"

    def __init__(
        self,
        resource: AnyResource,
        *,
        limits: Limits | None = None,
        name: str | None = None,
        rating: DcRating = DEFAULT_RATING,
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        self.rating = rating
        self.ranges = {
            "voltage": ModelRange(0.0, rating.voltage_v, "V"),
            "current": ModelRange(0.0, rating.current_a, "A"),
            "power": ModelRange(0.0, rating.power_w, "W"),
        }
        self._priority_set = False

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        unknown = sorted(set(options) - RATING_OPTIONS)
        if unknown:
            raise ValueError(f"RP7900 options: unknown {unknown}; known: {sorted(RATING_OPTIONS)}")
        return cls(
            resource, limits=limits, name=name, rating=rating_from_options(options, DEFAULT_RATING)
        )

    def _voltage_priority(self) -> None:
        # The battery emulator holds a voltage; current limits in both directions bound it.
        if not self._priority_set:
            self.write(COMMANDS["voltage_priority"]())
            self._priority_set = True

    def _check(self, quantity: str, limit: str, value: float) -> None:
        self.limits.check(limit, value)
        self.ranges[quantity].check(self.label, quantity, value)

    def set_voltage(self, v: float) -> None:
        self._check("voltage", "voltage_v", v)
        self._voltage_priority()
        self.write(COMMANDS["voltage"](v=format_nrf(v)))
        self.check_errors()

    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        self._check("current", "current_a", source_a)
        self._check("current", "current_a", sink_a)
        self._voltage_priority()
        self.write(COMMANDS["current_limit"](a=format_nrf(source_a)))
        self.write(COMMANDS["current_limit_negative"](a=format_nrf(-sink_a)))
        self.check_errors()

    def set_power_limits(self, *, source_w: float, sink_w: float) -> None:
        self._check("power", "power_w", source_w)
        self._check("power", "power_w", sink_w)
        self.write(COMMANDS["power_limit"](w=format_nrf(source_w)))
        self.write(COMMANDS["power_limit_negative"](w=format_nrf(-sink_w)))
        self.check_errors()

    def set_output(self, on: bool) -> None:
        self.write(COMMANDS["output_on" if on else "output_off"]())
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["output_query"]()))

    def measure(self) -> DcReading:
        fields = self.query(COMMANDS["measure_all"]()).split(";")
        if len(fields) != 3:
            raise ValueError(f"RP7900: expected voltage;current;power, got {fields!r}")
        v, i, p = (parse_number(field) for field in fields)
        # RP7900: negative while sinking; rig: positive into the EV (= while the unit sinks).
        return DcReading(v=v, i=-i, p_w=-p)

    def settings(self) -> Mapping[str, object]:
        return {
            "priority": self.query(COMMANDS["priority_query"]()),
            "voltage_v": parse_number(self.query(COMMANDS["voltage_query"]())),
            "source_current_a": parse_number(self.query(COMMANDS["current_limit_query"]())),
            "sink_current_a": -parse_number(self.query(COMMANDS["current_limit_negative_query"]())),
            "source_power_w": parse_number(self.query(COMMANDS["power_limit_query"]())),
            "sink_power_w": -parse_number(self.query(COMMANDS["power_limit_negative_query"]())),
            "output_on": self.output_enabled(),
            "rating": {
                "voltage_v": self.rating.voltage_v,
                "current_a": self.rating.current_a,
                "power_w": self.rating.power_w,
            },
        }

    def safe_state(self) -> None:
        """Output off first, then the voltage and both current limits to zero, then read back
        that the output is off."""
        self._send_all(
            [
                COMMANDS["output_off"](),
                COMMANDS["voltage"](v=0),
                COMMANDS["current_limit"](a=0),
                COMMANDS["current_limit_negative"](a=0),
            ]
        )
        self._confirm_off(COMMANDS["output_query"]())
