"""Emulated Chroma 63800 AC/DC load: the home load of the World.

Constant-power mode (`MODE POW`, `POW`, `PFAC`) becomes a home load of (P, Q) with
Q = P·tan(acos|PF|), positive for a lagging (positive) PF; constant-resistance mode (`RES`) and
RLC mode (`RLC:RL`, `RLC:LS` in uH, `RLC:CAP` in uF) an impedance; `LOAD ON|OFF` switches it;
all through the SiteWiring (the World's home load, joined with an RLC bank if one is on).
Measurements average the "home" point over the load's measurement window (?: 100 ms) with its
accuracy (?: voltage ±(0.1 % + 0.1 % of range), current ±(0.2 % + 0.2 %), power ±(0.3 % +
0.3 %), frequency ±0.1 %).

Ratings of a 63804: 4500 W, 45 A, 350 V; RLC:CAP 100..9999 uF, RLC:LS 0..9999 uH, RLC:RL
1.11..9999.99 ohm, RES 1.11..2500 ohm (?). Modes the World cannot represent (CC, CV, inrush,
rectified, RLC constant power) are refused with -221 "Settings conflict".

The World's RLC load is the parallel resonant tank of IEEE 1547.1 5.10, while the 63800's RLC
mode is a rectifier load with a series inductance: the twin maps RL, LS, CAP onto R, L, C as an
emulation convenience. A balanced tank at household power needs tens of millihenry (3 kW,
230 V, 50 Hz, Qf 1: 56 mH), beyond RLC:LS; like the real unit the twin refuses that with -222.
A bench that stands for a 63800 plus an external resonant RLC bank may widen the ranges with the
options `rlc_inductance_max_uh`, `rlc_capacitance_min_uf`, `rlc_capacitance_max_uf`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from instruments.emulated.meter import Accuracy, AcValues, MeterSpec, measure_ac
from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.site import Impedance, PowerSetting
from instruments.emulated.twin import Twin
from instruments.options import number as option_float
from instruments.options import text as option_str

#: MODE parameters (name or number) -> the name MODE? answers.
_MODES: Mapping[str, str] = {
    "CURR": "CURR", "0": "CURR", "POW": "POW", "1": "POW", "VOLT": "VOLT", "2": "VOLT",
    "RES": "RES", "3": "RES", "RLC": "RLC", "4": "RLC", "RLCP": "RLCPOW", "5": "RLCPOW",
    "INRUSH": "INRUSH", "6": "INRUSH", "RECT": "RECT", "7": "RECT",
}  # fmt: skip
_EMULATED_MODES = frozenset({"POW", "RES", "RLC"})

_MEASUREMENTS: Mapping[str, Callable[[AcValues], float]] = {
    "MEASure:VOLTage": lambda m: m.v_rms,
    "MEASure:CURRent": lambda m: m.i_rms,
    "MEASure:POWer": lambda m: m.p_w,
    "MEASure:POWer:REACtive": lambda m: m.q_var,
    "MEASure:POWer:APParent": lambda m: m.s_va,
    "MEASure:POWer:PFACtor": lambda m: m.pf,
    "MEASure:FREQuency": lambda m: m.f_hz,
}


class C63800Twin(Twin):
    maker = "Chroma"
    default_model = "63804"
    firmware = "1.00"
    option_names = frozenset(
        {
            "power_rating_w",
            "point",
            "rlc_inductance_max_uh",
            "rlc_capacitance_min_uf",
            "rlc_capacitance_max_uf",
        }
    )
    meter_spec = MeterSpec(
        update_interval_s=0.1,
        jitter_s=0.001,
        accuracy={
            "voltage": Accuracy(0.001, 0.001),
            "current": Accuracy(0.002, 0.002),
            "power": Accuracy(0.003, 0.003),
            "frequency": Accuracy(0.001),
        },
        counts=100_000,
    )
    #: Measurement ranges of a 63804 (V, A).
    VOLTAGE_RANGE_V = 350.0
    CURRENT_RANGE_A = 45.0

    def configure(self) -> None:
        """Ratings and initial state from the options and the world."""
        self.power_rating_w = option_float(self.options, "power_rating_w", 4500.0)
        self.rlc_inductance_max_uh = option_float(self.options, "rlc_inductance_max_uh", 9999.0)
        self.rlc_capacitance_min_uf = option_float(self.options, "rlc_capacitance_min_uf", 100.0)
        self.rlc_capacitance_max_uf = option_float(self.options, "rlc_capacitance_max_uf", 9999.0)
        self.point = option_str(self.options, "point", "home")
        self.load_on = False
        self.mode = "POW"
        self.power_set = 0.0
        self.power_factor_set = 1.0
        self.resistance_set = 2500.0
        self.rlc_r_ohm = 100.0
        self.rlc_l_uh = 0.0
        self.rlc_c_uf = 100.0
        self._acquired: AcValues | None = None

    def reset(self) -> None:
        self.load_on = False
        self.site.set_ac_load_on(False)
        self.mode = "POW"
        self.power_set = 0.0
        self.power_factor_set = 1.0
        self._apply()

    def state(self) -> dict[str, bool | float | str]:
        return {
            "input_on": self.load_on,
            "mode": self.mode,
            "power_set_w": self.power_set,
            "power_factor": self.power_factor_set,
        }

    def commands(self) -> Sequence[Command]:
        table = [
            Command("[LOAD:]MODE", write=self._set_mode, read=lambda p: self.mode),
            Command("LOAD[:STATe]", write=self._set_load, read=lambda p: str(int(self.load_on))),
            Command("POWer", write=self._number("power_set", "W", 0.0, self.power_rating_w), read=self._get("power_set")),
            Command("PFACtor", write=self._number("power_factor_set", "", -1.0, 1.0), read=self._get("power_factor_set")),
            Command("RESistance", write=self._number("resistance_set", "OHM", 1.11, 2500.0), read=self._get("resistance_set")),
            Command("RLC:RL", write=self._number("rlc_r_ohm", "OHM", 1.11, 9999.99), read=self._get("rlc_r_ohm")),
            Command("RLC:LS", write=self._number("rlc_l_uh", "", 0.0, self.rlc_inductance_max_uh), read=self._get("rlc_l_uh")),
            Command("RLC:CAP", write=self._number("rlc_c_uf", "", self.rlc_capacitance_min_uf, self.rlc_capacitance_max_uf), read=self._get("rlc_c_uf")),
        ]  # fmt: skip
        for pattern, value in _MEASUREMENTS.items():
            table.append(Command(pattern, read=self._measure(value)))
        return table

    def _set_mode(self, params: Params) -> None:
        params.expect(1)
        mode = _MODES.get(params.args[0].strip().upper())
        if mode is None:
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])
        if mode not in _EMULATED_MODES:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"mode {mode} not emulated")
        self.mode = mode
        self._apply()

    def _set_load(self, params: Params) -> None:
        params.expect(1)
        self.load_on = params.boolean(0)
        self.site.set_ac_load_on(self.load_on)

    def _number(
        self, attribute: str, unit: str, low: float, high: float
    ) -> Callable[[Params], None]:
        def write(params: Params) -> None:
            params.expect(1)
            setattr(self, attribute, params.number(0, unit=unit, low=low, high=high))
            self._apply()

        return write

    def _get(self, attribute: str) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            value: float = getattr(self, attribute)
            return f"{value:.4f}"

        return read

    def _apply(self) -> None:
        """Forward the active mode's setpoints to the home load (through the SiteWiring)."""
        if self.mode == "POW":
            pf = self.power_factor_set
            if pf == 0:
                q = 0.0  # PF 0 with finite P is not a real load; treated as unity (?)
            else:
                q = math.copysign(self.power_set * math.tan(math.acos(min(1.0, abs(pf)))), pf)
            self.site.set_ac_load(PowerSetting(self.power_set, q))
        elif self.mode == "RES":
            self.site.set_ac_load(Impedance(self.resistance_set))
        elif self.mode == "RLC":
            self.site.set_ac_load(
                Impedance(
                    self.rlc_r_ohm,
                    l_h=self.rlc_l_uh * 1e-6 if self.rlc_l_uh > 0 else None,
                    c_f=self.rlc_c_uf * 1e-6,
                )
            )

    def handle(self, line: str) -> str | None:
        self._acquired = None  # the MEASure queries of one message share one window
        return super().handle(line)

    def _measure(self, value: Callable[[AcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self._acquired is None:
                assert self.meter is not None and self.history is not None
                _, window = self.latest_window()
                self._acquired = measure_ac(
                    self.meter,
                    self.history,
                    "input",
                    self.point,
                    window,
                    phases=self.history.phases,
                    voltage_range=self.VOLTAGE_RANGE_V,
                    current_range=self.CURRENT_RANGE_A,
                    power_range=self.power_rating_w,
                )
            reading = value(self._acquired)
            return "NAN" if math.isnan(reading) else f"{reading:.4f}"

        return read
