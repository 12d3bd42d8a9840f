"""Emulated anti-islanding RLC load bank (the A635000 driver's commands, all (?)).

The bank holds P (resistive branch, W), QL (inductive, var) and QC (capacitive, var) at its
nominal voltage and frequency (`CONF:VOLT:NOM`, `CONF:FREQ:NOM`), as totals over its phases,
each rounded to the bank's step (option `step`, default 1 W / var (?)); with the input on it is
the parallel R, L, C per phase on the home bus (through the SiteWiring, so that it joins the
electronic AC load when both are on). The bank measures its own branch currents: P and Q follow
from the bus voltage and frequency averaged over its 100 ms window (?) and its R, L, C.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from instruments.emulated.meter import Accuracy, AcValues, MeterSpec
from instruments.emulated.scpi import Command, Params
from instruments.emulated.site import Impedance
from instruments.emulated.twin import Twin
from instruments.options import index, quantity

_MEASUREMENTS: Mapping[str, Callable[[AcValues], float]] = {
    "MEASure:VOLTage": lambda m: m.v_rms,
    "MEASure:CURRent": lambda m: m.i_rms,
    "MEASure:POWer": lambda m: m.p_w,
    "MEASure:POWer:REACtive": lambda m: m.q_var,
    "MEASure:POWer:APParent": lambda m: m.s_va,
    "MEASure:POWer:PFACtor": lambda m: m.pf,
    "MEASure:FREQuency": lambda m: m.f_hz,
}


def _number(value: float) -> str:
    return "NAN" if math.isnan(value) else f"{value:.4f}"


class A635000Twin(Twin):
    maker = "Chroma ATE"
    default_model = "A635000"
    firmware = "1.00"  # (?)
    option_names = frozenset({"phases", "step", "power_rating"})
    meter_spec = MeterSpec(
        update_interval_s=0.1,
        jitter_s=0.001,
        accuracy={
            "voltage": Accuracy(0.002, 0.002),
            "current": Accuracy(0.005, 0.005),
            "power": Accuracy(0.005, 0.005),
            "frequency": Accuracy(0.001),
        },
        counts=100_000,
    )

    def configure(self) -> None:
        self.phases = index("phases", self.options.get("phases", 1))
        if self.phases not in (1, 3):
            raise ValueError("option phases must be 1 or 3")
        self.step = quantity("step", self.options.get("step", 1.0), "power")
        self.power_rating_w = quantity(
            "power_rating", self.options.get("power_rating", 15000.0), "power"
        )
        self.v_nominal = 230.0
        self.f_nominal = 50.0
        self.p_w = self.q_l_var = self.q_c_var = 0.0
        self.input_on = False
        self._acquired: AcValues | None = None

    def reset(self) -> None:
        self.input_on = False
        self.p_w = self.q_l_var = self.q_c_var = 0.0
        self._apply()

    def state(self) -> dict[str, bool | float | str]:
        return {
            "input_on": self.input_on,
            "p_w": self.p_w,
            "q_l_var": self.q_l_var,
            "q_c_var": self.q_c_var,
            "v_nominal": self.v_nominal,
            "f_nominal": self.f_nominal,
        }

    def handle(self, line: str) -> str | None:
        self._acquired = None
        return super().handle(line)

    def commands(self) -> Sequence[Command]:
        table = [
            Command("CONFigure:VOLTage:NOMinal", write=self._setter("v_nominal", "V", 50.0, 480.0), read=lambda p: _number(self.v_nominal)),
            Command("CONFigure:FREQuency:NOMinal", write=self._setter("f_nominal", "HZ", 45.0, 65.0), read=lambda p: _number(self.f_nominal)),
            Command("LOAD:RESistive:POWer", write=self._setter("p_w", "W", 0.0, self.power_rating_w), read=lambda p: _number(self.p_w)),
            Command("LOAD:INDuctive:POWer", write=self._setter("q_l_var", "VAR", 0.0, self.power_rating_w), read=lambda p: _number(self.q_l_var)),
            Command("LOAD:CAPacitive:POWer", write=self._setter("q_c_var", "VAR", 0.0, self.power_rating_w), read=lambda p: _number(self.q_c_var)),
            Command("LOAD[:STATe]", write=self._set_input, read=lambda p: str(int(self.input_on))),
        ]  # fmt: skip
        for pattern, value in _MEASUREMENTS.items():
            table.append(Command(pattern, read=self._measure(value)))
        return table

    def _setter(
        self, attribute: str, unit: str, low: float, high: float
    ) -> Callable[[Params], None]:
        def write(params: Params) -> None:
            params.expect(1)
            value = params.number(0, unit=unit, low=low, high=high)
            if attribute in ("p_w", "q_l_var", "q_c_var"):
                value = round(value / self.step) * self.step  # the bank switches in steps
            setattr(self, attribute, value)
            self._apply()

        return write

    def _set_input(self, params: Params) -> None:
        params.expect(1)
        self.input_on = params.boolean(0)
        self._apply()

    def impedance(self) -> Impedance | None:
        """Per-phase R, L, C of the present setting (None: nothing switched in)."""
        if self.p_w == 0 and self.q_l_var == 0 and self.q_c_var == 0:
            return None
        v2 = self.v_nominal**2 * self.phases
        omega = 2.0 * math.pi * self.f_nominal
        return Impedance(
            v2 / self.p_w if self.p_w > 0 else math.inf,
            l_h=v2 / (omega * self.q_l_var) if self.q_l_var > 0 else None,
            c_f=self.q_c_var / (self.phases * omega * self.v_nominal**2)
            if self.q_c_var > 0
            else None,
        )

    def _apply(self) -> None:
        self.site.set_rlc_bank(self.impedance())
        self.site.set_rlc_bank_on(self.input_on and self.impedance() is not None)

    def _measure(self, value: Callable[[AcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self._acquired is None:
                self._acquired = self._branch_reading()
            return _number(value(self._acquired))

        return read

    def _branch_reading(self) -> AcValues:
        assert self.meter is not None and self.history is not None
        _, (t0, t1) = self.latest_window()
        bus = self.history.average_ac("home", t0, t1)
        tank = self.impedance() if self.input_on else None
        v = bus.v_rms
        if tank is None or v == 0 or math.isnan(bus.f_hz):
            p = q = 0.0
        else:
            v2 = v * v * self.phases
            omega = 2.0 * math.pi * bus.f_hz
            p = v2 / tank.r_ohm
            q = (v2 / (omega * tank.l_h) if tank.l_h else 0.0) - (
                v2 * omega * tank.c_f if tank.c_f else 0.0
            )
        s = math.hypot(p, q)
        i = s / (self.phases * v) if v > 0 else 0.0
        meter = self.meter
        v_m = abs(meter.reading("bank", "voltage", v, t1, 480.0))
        i_m = abs(meter.reading("bank", "current", i, t1, self.power_rating_w / 230.0))
        p_m = meter.reading("bank", "power", p, t1, self.power_rating_w)
        q_m = meter.reading("bank", "power", q, t1, self.power_rating_w)
        f_m = meter.reading("bank", "frequency", bus.f_hz, t1)
        s_m = self.phases * v_m * i_m
        pf = max(-1.0, min(1.0, p_m / s_m)) if s_m > 0 else math.nan
        return AcValues(v_m, i_m, p_m, q_m, s_m, pf, f_m)
