"""EA Elektro-Automatik PSB 10000 bidirectional DC supply as the EV battery emulator.

SCPI per EA's programming guide for the 10000 series (SCPI over LAN port 5025, USB, ...):
`SYST:LOCK ON` takes remote control before any setpoint is accepted; `VOLT`, `CURR`, `POW`
are the source-side setpoints and `SINK:CURR`, `SINK:POW` the sink-side ones; `OUTP ON|OFF`
switches the DC terminals. `MEAS:ARR?` returns one coherent set of actual values (voltage,
current, power, with unit suffixes), where three separate MEAS queries would come from three
different moments; current and power read negative while the unit sinks.

The rig's sign is positive into the EV, which is when the PSB sinks: the driver negates the
PSB's current and power. Setpoints beyond the model's rating (bench options `voltage_rating`,
`current_rating`, `power_rating`; default a PSB 10750-120 4U) are refused before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from instruments import options as opt
from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import (
    AnyResource,
    DcReading,
    DCSource,
    Instrument,
    Limits,
    ModelRange,
)

_EA = "(?) EA 10000-series SCPI as open drivers use it (FACTS); EA guide not read here"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "lock": Cmd("SYST:LOCK ON", _EA),
    "unlock": Cmd("SYST:LOCK OFF", _EA),
    "voltage": Cmd("VOLT {v}", _EA),
    "current": Cmd("CURR {a}", _EA),
    "power": Cmd("POW {w}", _EA),
    "sink_current": Cmd("SINK:CURR {a}", _EA),
    "sink_power": Cmd("SINK:POW {w}", _EA),
    "output_on": Cmd("OUTP ON", _EA),
    "output_off": Cmd("OUTP OFF", _EA),
    "output_query": Cmd("OUTP?", _EA),
    "measure_all": Cmd("MEAS:ARR?", "(?) FACTS: EA's SCPI guide, one coherent U, I, P set"),
    "voltage_query": Cmd("VOLT?", _EA),
    "current_query": Cmd("CURR?", _EA),
    "power_query": Cmd("POW?", _EA),
    "sink_current_query": Cmd("SINK:CURR?", _EA),
    "sink_power_query": Cmd("SINK:POW?", _EA),
    "nominal_voltage": Cmd("SYST:NOM:VOLT?", "(?) EA nominal-value queries"),
    "nominal_current": Cmd("SYST:NOM:CURR?", "(?) EA nominal-value queries"),
    "nominal_power": Cmd("SYST:NOM:POW?", "(?) EA nominal-value queries"),
}


@dataclass(frozen=True)
class DcRating:
    """Nominal ratings of a DC source model (voltage, current and power magnitudes)."""

    voltage_v: float
    current_a: float
    power_w: float


#: The default when the bench names no ratings: PSB 10750-120 4U (?).
DEFAULT_RATING = DcRating(750.0, 120.0, 30_000.0)
#: (?) EA accepts set values up to 102 % of the nominal rating.
SETPOINT_HEADROOM = 1.02
RATING_OPTIONS = frozenset({"voltage_rating", "current_rating", "power_rating"})


def rating_from_options(options: Mapping[str, object], default: DcRating) -> DcRating:
    def get(name: str, dimension: str, fallback: float) -> float:
        value = options.get(name)
        return fallback if value is None else opt.quantity(name, value, dimension)

    return DcRating(
        get("voltage_rating", "voltage", default.voltage_v),
        get("current_rating", "current", default.current_a),
        get("power_rating", "power", default.power_w),
    )


class PSB10000(DCSource):
    maker = "EA Elektro-Automatik"
    model = "PSB 10000"

    def __init__(
        self,
        resource: AnyResource,
        *,
        limits: Limits | None = None,
        name: str | None = None,
        rating: DcRating = DEFAULT_RATING,
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        self._locked = False
        self.rating = rating
        self.ranges = {
            "voltage": ModelRange(0.0, rating.voltage_v * SETPOINT_HEADROOM, "V"),
            "current": ModelRange(0.0, rating.current_a * SETPOINT_HEADROOM, "A"),
            "power": ModelRange(0.0, rating.power_w * SETPOINT_HEADROOM, "W"),
        }

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
            raise ValueError(
                f"PSB 10000 options: unknown {unknown}; known: {sorted(RATING_OPTIONS)}"
            )
        return cls(
            resource, limits=limits, name=name, rating=rating_from_options(options, DEFAULT_RATING)
        )

    def _take_remote_control(self) -> None:
        # The PSB refuses setpoints from an interface that has not locked remote control.
        if not self._locked:
            self.write(COMMANDS["lock"]())
            self._locked = True

    def _check(self, quantity: str, limit: str, value: float) -> None:
        self.limits.check(limit, value)
        self.ranges[quantity].check(self.label, quantity, value)

    def set_voltage(self, v: float) -> None:
        self._check("voltage", "voltage_v", v)
        self._take_remote_control()
        self.write(COMMANDS["voltage"](v=format_nrf(v)))
        self.check_errors()

    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        self._check("current", "current_a", source_a)
        self._check("current", "current_a", sink_a)
        self._take_remote_control()
        self.write(COMMANDS["current"](a=format_nrf(source_a)))
        self.write(COMMANDS["sink_current"](a=format_nrf(sink_a)))
        self.check_errors()

    def set_power_limits(self, *, source_w: float, sink_w: float) -> None:
        self._check("power", "power_w", source_w)
        self._check("power", "power_w", sink_w)
        self._take_remote_control()
        self.write(COMMANDS["power"](w=format_nrf(source_w)))
        self.write(COMMANDS["sink_power"](w=format_nrf(sink_w)))
        self.check_errors()

    def set_output(self, on: bool) -> None:
        self._take_remote_control()
        self.write(COMMANDS["output_on" if on else "output_off"]())
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["output_query"]()))

    def measure(self) -> DcReading:
        fields = self.query(COMMANDS["measure_all"]()).split(",")
        if len(fields) != 3:
            raise ValueError(f"PSB 10000: MEAS:ARR? expected voltage, current, power: {fields!r}")
        v = parse_number(fields[0], "V")
        i = parse_number(fields[1], "A")
        p = parse_number(fields[2], "W")
        # PSB: negative while sinking; rig: positive into the EV (= while the PSB sinks).
        return DcReading(v=v, i=-i, p_w=-p)

    def settings(self) -> Mapping[str, object]:
        """Nominal ratings and the present setpoints, as the unit reports them."""
        number = {
            "rating_voltage_v": ("nominal_voltage", "V"),
            "rating_current_a": ("nominal_current", "A"),
            "rating_power_w": ("nominal_power", "W"),
            "voltage_v": ("voltage_query", "V"),
            "source_current_a": ("current_query", "A"),
            "source_power_w": ("power_query", "W"),
            "sink_current_a": ("sink_current_query", "A"),
            "sink_power_w": ("sink_power_query", "W"),
        }
        out: dict[str, object] = {
            key: parse_number(self.query(COMMANDS[cmd]()), unit)
            for key, (cmd, unit) in number.items()
        }
        out["output_on"] = self.output_enabled()
        return out

    def safe_state(self) -> None:
        """DC output off first, then every setpoint to zero, then read back that the output is
        off; remote control stays locked."""
        self._locked = True
        self._send_all(
            [
                COMMANDS["lock"](),
                COMMANDS["output_off"](),
                COMMANDS["voltage"](v=0),
                COMMANDS["current"](a=0),
                COMMANDS["sink_current"](a=0),
                COMMANDS["power"](w=0),
                COMMANDS["sink_power"](w=0),
            ]
        )
        self._confirm_off(COMMANDS["output_query"]())

    def close(self) -> None:
        """Hand remote control back to the front panel, then close the session."""
        try:
            if self._locked:
                self.write(COMMANDS["unlock"]())
                self._locked = False
        finally:
            super().close()
