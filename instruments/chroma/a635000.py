"""A programmable anti-islanding RLC load bank (in the manner of Chroma's A635000 series) as the
rig's RLC load.

The bank is a parallel tank per phase: a resistive branch set in watts, an inductive and a
capacitive branch set in vars, all at the bank's nominal voltage and frequency, switched in and
out together. No programming manual for such a bank was found in open material: every command
below is the rig's best reading of how these banks are driven and is marked (?); a lab with the
real bank corrects the COMMANDS table (one line per command) and the RANGES. The driver refuses a
setting beyond the bank's ratings before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from instruments import options as opt
from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import (
    AcReading,
    AnyResource,
    Instrument,
    Limits,
    ModelRange,
    RangeError,
    RlcLoadBank,
    RlcTank,
)

_NONE_FOUND = "(?) no manual found; the rig's reading of RLC-bank programming"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "nominal_voltage": Cmd("CONF:VOLT:NOM {v}", _NONE_FOUND),
    "nominal_frequency": Cmd("CONF:FREQ:NOM {hz}", _NONE_FOUND),
    "resistive_power": Cmd("LOAD:RES:POW {w}", _NONE_FOUND),
    "inductive_power": Cmd("LOAD:IND:POW {var}", _NONE_FOUND),
    "capacitive_power": Cmd("LOAD:CAP:POW {var}", _NONE_FOUND),
    "input_on": Cmd("LOAD ON", _NONE_FOUND),
    "input_off": Cmd("LOAD OFF", _NONE_FOUND),
    "input_query": Cmd("LOAD?", _NONE_FOUND),
    "nominal_voltage_query": Cmd("CONF:VOLT:NOM?", _NONE_FOUND),
    "nominal_frequency_query": Cmd("CONF:FREQ:NOM?", _NONE_FOUND),
    "resistive_power_query": Cmd("LOAD:RES:POW?", _NONE_FOUND),
    "inductive_power_query": Cmd("LOAD:IND:POW?", _NONE_FOUND),
    "capacitive_power_query": Cmd("LOAD:CAP:POW?", _NONE_FOUND),
    "measure": Cmd(
        "MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?;:MEAS:POW:REAC?;:MEAS:POW:APP?;"
        ":MEAS:POW:PFAC?;:MEAS:FREQ?",
        _NONE_FOUND,
    ),
}


class A635000(RlcLoadBank):
    maker = "Chroma ATE"
    model = "A635000"
    #: (?) ratings of a 15 kW bank: totals over the phases.
    RANGES: ClassVar[Mapping[str, ModelRange]] = {
        "p_w": ModelRange(0.0, 15_000.0, "W"),
        "q_l_var": ModelRange(0.0, 15_000.0, "var"),
        "q_c_var": ModelRange(0.0, 15_000.0, "var"),
        "v_nominal": ModelRange(100.0, 277.0, "V"),
        "f_nominal": ModelRange(45.0, 65.0, "Hz"),
    }

    def __init__(
        self,
        resource: AnyResource,
        *,
        limits: Limits | None = None,
        name: str | None = None,
        phases: int = 1,
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        if phases not in (1, 3):
            raise ValueError(f"A635000: phases must be 1 or 3, got {phases}")
        self.phases = phases
        self.tank: RlcTank | None = None

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Option `phases`: 1 (default) or 3."""
        unknown = sorted(set(options) - {"phases"})
        if unknown:
            raise ValueError(f"A635000 options: unknown {unknown}; known: ['phases']")
        phases = opt.index("phases", options.get("phases", 1))
        return cls(resource, limits=limits, name=name, phases=phases)

    def set_tank(self, tank: RlcTank) -> None:
        if tank.phases != self.phases:
            raise RangeError(
                f"{self.label} is wired for {self.phases} phase(s), tank has {tank.phases}"
            )
        for quantity in ("p_w", "q_l_var", "q_c_var", "v_nominal", "f_nominal"):
            self.RANGES[quantity].check(self.label, quantity, getattr(tank, quantity))
        self.limits.check("power_w", tank.p_w)
        self.limits.check("reactive_power_var", tank.q_l_var)
        self.limits.check("reactive_power_var", tank.q_c_var)
        self.write(COMMANDS["nominal_voltage"](v=format_nrf(tank.v_nominal)))
        self.write(COMMANDS["nominal_frequency"](hz=format_nrf(tank.f_nominal)))
        self.write(COMMANDS["resistive_power"](w=format_nrf(tank.p_w)))
        self.write(COMMANDS["inductive_power"](var=format_nrf(tank.q_l_var)))
        self.write(COMMANDS["capacitive_power"](var=format_nrf(tank.q_c_var)))
        self.check_errors()
        self.tank = tank

    def set_input(self, on: bool) -> None:
        self.write(COMMANDS["input_on" if on else "input_off"]())
        self.check_errors()

    def input_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["input_query"]()))

    def measure(self) -> AcReading:
        fields = self.query(COMMANDS["measure"]()).split(";")
        if len(fields) != 7:
            raise ValueError(f"A635000: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def settings(self) -> Mapping[str, object]:
        keys = {
            "v_nominal": "nominal_voltage_query",
            "f_nominal": "nominal_frequency_query",
            "p_w": "resistive_power_query",
            "q_l_var": "inductive_power_query",
            "q_c_var": "capacitive_power_query",
        }
        out: dict[str, object] = {
            key: parse_number(self.query(COMMANDS[cmd]())) for key, cmd in keys.items()
        }
        out["phases"] = self.phases
        out["input_on"] = self.input_enabled()
        return out

    def safe_state(self) -> None:
        """Every branch out (input off), then each branch to zero, then read back."""
        self._send_all(
            [
                COMMANDS["input_off"](),
                COMMANDS["resistive_power"](w=0),
                COMMANDS["inductive_power"](var=0),
                COMMANDS["capacitive_power"](var=0),
            ]
        )
        self._confirm_off(COMMANDS["input_query"]())
