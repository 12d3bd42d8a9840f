"""Chroma 63800 series programmable AC/DC electronic load as the home load.

From the 63800 Series Operation & Programming Manual (chapter 8, remote operation):
`[LOAD:]MODE CURR|POW|VOLT|RES|RLC|RLCP|INRUSH|RECT`, `LOAD ON|OFF`, the constant-power level
`POW <W>`, the power factor `PFAC <-1..+1>` (negative leading, positive lagging), the
constant-resistance level `RES <ohm>`, and the RLC-mode elements `RLC:RL <ohm>`,
`RLC:LS <uH>`, `RLC:CAP <uF>`; `*IDN?` answers like `Chroma,63804,0,1.00`. Ratings of the
63804: 4500 W, 45 A rms, 50-350 V rms.

Facts marked (?) below could not be confirmed against the manual text and are kept in COMMANDS
so that a lab can correct them in one place.

Note on the RLC mode: the 63800 emulates a rectifier-input (capacitor-input) load with a series
inductance, which is not the parallel resonant RLC tank of IEEE 1547.1 5.10 / IEC 62116. The
role's `set_rlc` maps R, L, C onto RLC:RL, RLC:LS, RLC:CAP; a lab running the anti-islanding
procedure with real hardware needs a resonant RLC load bank instead.
"""

from __future__ import annotations

import math
from typing import ClassVar

from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import ACLoad, AcReading

#: Every command the driver sends, in one place. (?) = not confirmed against the manual.
COMMANDS: dict[str, str] = {
    "mode_power": "MODE POW",
    "mode_resistance": "MODE RES",
    "mode_rlc": "MODE RLC",
    "power": "POW {w}",
    "power_factor": "PFAC {pf}",
    "resistance": "RES {ohm}",
    "rlc_r": "RLC:RL {ohm}",
    "rlc_l": "RLC:LS {uh}",
    "rlc_c": "RLC:CAP {uf}",
    "input_on": "LOAD ON",
    "input_off": "LOAD OFF",
    "input_query": "LOAD?",  # (?) reply 1|0 or ON|OFF, both accepted
    # (?) one compound message, items in AcReading order.
    "measure": (
        "MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?;:MEAS:POW:REAC?;:MEAS:POW:APP?;"
        ":MEAS:POW:PFAC?;:MEAS:FREQ?"
    ),
}


class C63800(ACLoad):
    maker = "Chroma"
    model = "63800"
    error_query = "SYST:ERR?"  # (?)
    #: PFAC resolution (three decimals on the front panel).
    PF_DECIMALS: ClassVar[int] = 3

    def set_power(self, p_w: float, q_var: float = 0.0) -> None:
        """Constant power P with the power factor that gives Q (Q > 0 lagging, < 0 leading)."""
        self.limits.check("power_w", p_w)
        self.limits.check("reactive_power_var", abs(q_var))
        if p_w < 0:
            raise ValueError(f"an electronic load cannot deliver power: p_w={p_w}")
        if p_w == 0 and q_var != 0:
            raise ValueError("constant-power mode cannot draw reactive power with P = 0")
        pf = 1.0 if q_var == 0 else math.copysign(p_w / math.hypot(p_w, q_var), q_var)
        self.write(COMMANDS["mode_power"])
        self.write(COMMANDS["power"].format(w=format_nrf(p_w)))
        self.write(COMMANDS["power_factor"].format(pf=format_nrf(round(pf, self.PF_DECIMALS))))
        self.check_errors()

    def set_rlc(self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None) -> None:
        """Pure R uses constant-resistance mode; with C the RLC mode (L optional, 0 uH)."""
        if not r_ohm > 0:
            raise ValueError(f"r_ohm must be positive, got {r_ohm}")
        if c_f is None:
            if l_h is not None:
                raise ValueError("the 63800 RLC mode needs C; an R-L load alone is not available")
            self.write(COMMANDS["mode_resistance"])
            self.write(COMMANDS["resistance"].format(ohm=format_nrf(r_ohm)))
        else:
            self.write(COMMANDS["mode_rlc"])
            self.write(COMMANDS["rlc_r"].format(ohm=format_nrf(r_ohm)))
            self.write(COMMANDS["rlc_l"].format(uh=format_nrf((l_h or 0.0) * 1e6)))
            self.write(COMMANDS["rlc_c"].format(uf=format_nrf(c_f * 1e6)))
        self.check_errors()

    def set_input(self, on: bool) -> None:
        self.write(COMMANDS["input_on"] if on else COMMANDS["input_off"])
        self.check_errors()

    def input_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["input_query"]))

    def measure(self) -> AcReading:
        fields = self.query(COMMANDS["measure"]).split(";")
        if len(fields) != 7:
            raise ValueError(f"63800: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def safe_state(self) -> None:
        """Input off first, then the constant-power setpoint to zero, then read back."""
        self._send_all([COMMANDS["input_off"], COMMANDS["power"].format(w="0")])
        self._confirm_off(COMMANDS["input_query"])
