"""Chroma 63800 series programmable AC/DC electronic load as the home load.

From the 63800 Series Operation & Programming Manual (chapter 8, remote operation):
`[LOAD:]MODE CURR|POW|VOLT|RES|RLC|RLCP|INRUSH|RECT`, `LOAD ON|OFF`, the constant-power level
`POW <W>`, the power factor `PFAC <-1..+1>` (negative leading, positive lagging), the
constant-resistance level `RES <ohm>`, and the RLC-mode elements `RLC:RL <ohm>`,
`RLC:LS <uH>`, `RLC:CAP <uF>`; `*IDN?` answers like `Chroma,63804,0,1.00`. Ratings of the
63804: 4500 W, 45 A rms, 50-350 V rms.

Commands marked (?) in COMMANDS could not be confirmed against the manual text; a lab corrects
them in that one table.

Note on the RLC mode: the 63800 emulates a rectifier-input (capacitor-input) load with a series
inductance, which is not the parallel resonant RLC tank of IEEE 1547.1 5.10 / IEC 62116. The
role's `set_rlc` maps R, L, C onto RLC:RL, RLC:LS, RLC:CAP; a lab running the anti-islanding
procedure with real hardware needs a resonant RLC load bank instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import ACLoad, AcReading, ModelRange

_MANUAL = "63800 Series Operation & Programming Manual ch. 8 ([LOAD:]MODE page)"
_OPEN = "(?) 63800 remote commands as open drivers use them; manual page not read here"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "mode_power": Cmd("MODE POW", _MANUAL),
    "mode_resistance": Cmd("MODE RES", _MANUAL),
    "mode_rlc": Cmd("MODE RLC", _MANUAL),
    "mode_query": Cmd("MODE?", _MANUAL),
    "power": Cmd("POW {w}", _OPEN),
    "power_factor": Cmd("PFAC {pf}", _OPEN),
    "resistance": Cmd("RES {ohm}", _OPEN),
    "rlc_r": Cmd("RLC:RL {ohm}", _OPEN),
    "rlc_l": Cmd("RLC:LS {uh}", _OPEN),
    "rlc_c": Cmd("RLC:CAP {uf}", _OPEN),
    "input_on": Cmd("LOAD ON", _OPEN),
    "input_off": Cmd("LOAD OFF", _OPEN),
    "input_query": Cmd("LOAD?", _OPEN + "; reply 1|0 or ON|OFF, both accepted"),
    "power_query": Cmd("POW?", _OPEN),
    "power_factor_query": Cmd("PFAC?", _OPEN),
    # One compound message, items in AcReading order.
    "measure": Cmd(
        "MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?;:MEAS:POW:REAC?;:MEAS:POW:APP?;"
        ":MEAS:POW:PFAC?;:MEAS:FREQ?",
        "(?) 63800 MEASure queries in one message",
    ),
}


class C63800(ACLoad):
    maker = "Chroma"
    model = "63800"
    error_query = "SYST:ERR?"  # (?) the IEEE 488.2 / SCPI default
    #: Ratings of the 63804 (manual 8-13 names 4500 W and 45 A for the protection bits).
    RANGES: ClassVar[Mapping[str, ModelRange]] = {
        "power": ModelRange(0.0, 4500.0, "W"),
        "resistance": ModelRange(1.11, 2500.0, "ohm"),  # (?) CR range
    }
    #: PFAC resolution (three decimals on the front panel).
    PF_DECIMALS: ClassVar[int] = 3

    def set_power(self, p_w: float, q_var: float = 0.0) -> None:
        """Constant power P with the power factor that gives Q (Q > 0 lagging, < 0 leading)."""
        self.limits.check("power_w", p_w)
        self.limits.check("reactive_power_var", abs(q_var))
        if p_w < 0:
            raise ValueError(f"an electronic load cannot deliver power: p_w={p_w}")
        self.RANGES["power"].check(self.label, "power", p_w)
        if p_w == 0 and q_var != 0:
            raise ValueError("constant-power mode cannot draw reactive power with P = 0")
        pf = 1.0 if q_var == 0 else math.copysign(p_w / math.hypot(p_w, q_var), q_var)
        self.write(COMMANDS["mode_power"]())
        self.write(COMMANDS["power"](w=format_nrf(p_w)))
        self.write(COMMANDS["power_factor"](pf=format_nrf(round(pf, self.PF_DECIMALS))))
        self.check_errors()

    def set_rlc(self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None) -> None:
        """Pure R uses constant-resistance mode; with C the RLC mode (L optional, 0 uH)."""
        if not r_ohm > 0:
            raise ValueError(f"r_ohm must be positive, got {r_ohm}")
        if c_f is None:
            if l_h is not None:
                raise ValueError("the 63800 RLC mode needs C; an R-L load alone is not available")
            self.write(COMMANDS["mode_resistance"]())
            self.write(COMMANDS["resistance"](ohm=format_nrf(r_ohm)))
        else:
            self.write(COMMANDS["mode_rlc"]())
            self.write(COMMANDS["rlc_r"](ohm=format_nrf(r_ohm)))
            self.write(COMMANDS["rlc_l"](uh=format_nrf((l_h or 0.0) * 1e6)))
            self.write(COMMANDS["rlc_c"](uf=format_nrf(c_f * 1e6)))
        self.check_errors()

    def set_input(self, on: bool) -> None:
        self.write(COMMANDS["input_on"]() if on else COMMANDS["input_off"]())
        self.check_errors()

    def input_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["input_query"]()))

    def measure(self) -> AcReading:
        fields = self.query(COMMANDS["measure"]()).split(";")
        if len(fields) != 7:
            raise ValueError(f"63800: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def settings(self) -> Mapping[str, object]:
        return {
            "mode": self.query(COMMANDS["mode_query"]()),
            "power_w": parse_number(self.query(COMMANDS["power_query"]())),
            "power_factor": parse_number(self.query(COMMANDS["power_factor_query"]())),
            "input_on": self.input_enabled(),
        }

    def safe_state(self) -> None:
        """Input off first, then the constant-power setpoint to zero, then read back."""
        self._send_all([COMMANDS["input_off"](), COMMANDS["power"](w="0")])
        self._confirm_off(COMMANDS["input_query"]())
