"""Emulated Chroma 61800 regenerative grid simulator: per-phase setpoints over the World's grid.

`INST:PHAS SINGLE|THREE` sets the output configuration; `INST:EDIT P1|P2|P3|ALL` selects the
phase(s) later voltage settings apply to. The World's grid is balanced: it gets the mean of the
phase voltages (an unbalanced setting is kept and reported, not modelled); angles `SOUR:PHAS:P12`
/ `P13` are kept and reported. Voltage and frequency step or ramp at `OUTP:SLEW:VOLT:AC` (V/ms)
and `OUTP:SLEW:FREQ` (Hz/ms) (?). The output reaches the site while the relay (`OUTP:REL`) and
the output (`OUTP:STAT`) are both on, in series with S3. MEASure queries of one message come
from one measurement window at the source terminals.

Ranges (?): 0..300 V phase to neutral, 30..100 Hz. Measurement accuracy (?): voltage ±(0.2 % +
0.2 % of range), current ±(0.4 % + 0.3 %), power ±(0.4 % + 0.4 %), frequency ±0.01 %, 100 ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from instruments.emulated.grid_source import GridSourceTwin
from instruments.emulated.meter import Accuracy, AcValues, MeterSpec
from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.options import number as option_float
from instruments.options import text as option_str

_MEASUREMENTS: Mapping[str, Callable[[AcValues], float]] = {
    "MEASure[:SCALar]:VOLTage:AC": lambda m: m.v_rms,
    "MEASure[:SCALar]:CURRent:AC": lambda m: m.i_rms,
    "MEASure[:SCALar]:POWer:AC[:REAL]": lambda m: m.p_w,
    "MEASure[:SCALar]:POWer:AC:REACtive": lambda m: m.q_var,
    "MEASure[:SCALar]:POWer:AC:APParent": lambda m: m.s_va,
    "MEASure[:SCALar]:POWer:AC:PFACtor": lambda m: m.pf,
    "MEASure[:SCALar]:FREQuency": lambda m: m.f_hz,
}


def _number(value: float) -> str:
    return "NAN" if math.isnan(value) else f"{value:.4f}"


class C61800Twin(GridSourceTwin):
    maker = "Chroma ATE"
    default_model = "61809"
    firmware = "1.20"  # (?)
    phase_count = 3
    option_names = frozenset({"current_rating", "point"})
    VOLTAGE_MAX_V = 300.0
    FREQUENCY_RANGE_HZ = (30.0, 100.0)
    meter_spec = MeterSpec(
        update_interval_s=0.1,
        jitter_s=0.001,
        accuracy={
            "voltage": Accuracy(0.002, 0.002),
            "current": Accuracy(0.004, 0.003),
            "power": Accuracy(0.004, 0.004),
            "frequency": Accuracy(0.0001),
        },
        counts=100_000,
    )

    def configure(self) -> None:
        self.current_rating_a = option_float(self.options, "current_rating", 30.0)  # (?) 61809
        self.init_source(option_str(self.options, "point", "grid"))
        self.phase_mode = "SINGLE"
        self.editing = "ALL"
        self.relay_on = self.output_on
        self.state_on = self.output_on
        self.angles = {2: 120.0, 3: 240.0}
        self.angles_independent = False
        self.voltage_limit = self.VOLTAGE_MAX_V
        self.current_limit = self.current_rating_a
        self.output_mode = "FIXED"
        self._acquired: AcValues | None = None

    def reset(self) -> None:
        self.stop_ramps()
        self.voltage_slew = self.frequency_slew = math.inf
        self.relay_on = self.state_on = False
        self.set_source_output(False)
        for phase in self.voltage_set:
            self.voltage_set[phase] = 0.0
        self.move("voltage", 0.0)
        self.editing = "ALL"

    def state(self) -> dict[str, bool | float | str]:
        return {
            "output_on": self.output_on,
            "relay_on": self.relay_on,
            "phase_mode": self.phase_mode,
            "voltage_p1_v": self.voltage_set[1],
            "voltage_p2_v": self.voltage_set[2],
            "voltage_p3_v": self.voltage_set[3],
            "frequency_set_hz": self.frequency_set,
            "angle_p12_deg": self.angles[2],
            "angle_p13_deg": self.angles[3],
        }

    def handle(self, line: str) -> str | None:
        self._acquired = None  # one measurement window per message
        return super().handle(line)

    def commands(self) -> Sequence[Command]:
        table = [
            Command("INSTrument:PHASe", write=self._set_phase_mode, read=lambda p: self.phase_mode),
            Command("INSTrument:EDIT", write=self._set_edit, read=lambda p: self.editing),
            Command("INSTrument:COUPle", write=self._accept_choice({"ALL": "ALL", "NONE": "NONE"})),
            Command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]:AC", write=self._set_voltage, read=self._get_voltage),
            Command("[SOURce:]VOLTage:LIMit:AC", write=self._set_voltage_limit, read=lambda p: _number(self.voltage_limit)),
            Command("[SOURce:]VOLTage:RANGe", write=self._accept_choice({"HIGH": "HIGH", "HI": "HIGH", "LOW": "LOW"})),
            Command("[SOURce:]CURRent:LIMit", write=self._set_current_limit, read=lambda p: _number(self.current_limit)),
            Command("[SOURce:]FREQuency[:IMMediate]", write=self._set_frequency, read=lambda p: _number(self.frequency_set)),
            Command("[SOURce:]PHASe:THREe", write=self._set_three),
            Command("[SOURce:]PHASe:P<n>", write=self._set_angle, read=self._get_angle),
            Command("OUTPut:SLEW:VOLTage:AC", write=self._set_voltage_slew, read=lambda p: _number(self.voltage_slew / 1000.0)),
            Command("OUTPut:SLEW:FREQuency", write=self._set_frequency_slew, read=lambda p: _number(self.frequency_slew / 1000.0)),
            Command("OUTPut:RELay", write=self._set_relay, read=lambda p: str(int(self.relay_on))),
            Command("OUTPut[:STATe]", write=self._set_state, read=lambda p: str(int(self.state_on))),
            Command("OUTPut:MODE", write=self._set_output_mode, read=lambda p: self.output_mode),
            Command("TRIGger[:STATe]", write=self._set_trigger),
        ]  # fmt: skip
        for pattern, value in _MEASUREMENTS.items():
            table.append(Command(pattern, read=self._measure(value)))
        return table

    # --- settings -----------------------------------------------------------------------------

    def _accept_choice(self, options: Mapping[str, str]) -> Callable[[Params], None]:
        def write(params: Params) -> None:
            params.expect(1)
            if params.args[0].strip().upper() not in options:
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])

        return write

    def _set_phase_mode(self, params: Params) -> None:
        params.expect(1)
        self.phase_mode = params.choice(0, {"SINGle": "SINGLE", "THREe": "THREE"})

    def _set_edit(self, params: Params) -> None:
        params.expect(1)
        target = params.args[0].strip().upper()
        if target not in ("P1", "P2", "P3", "ALL"):
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])
        if target in ("P2", "P3") and self.phase_mode != "THREE":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "single-phase output has no P2/P3")
        self.editing = target

    def _phases_edited(self) -> list[int]:
        if self.editing == "ALL" or self.phase_mode == "SINGLE":
            return [1, 2, 3]
        return [int(self.editing[1])]

    def _set_voltage(self, params: Params) -> None:
        params.expect(1)
        value = params.number(
            0, unit="V", low=0.0, high=min(self.voltage_limit, self.VOLTAGE_MAX_V)
        )
        for phase in self._phases_edited():
            self.voltage_set[phase] = value
        self.move("voltage", self.voltage_target() if self.phase_mode == "THREE" else value)

    def _get_voltage(self, params: Params) -> str:
        params.expect(0)
        return _number(self.voltage_set[self._phases_edited()[0]])

    def _set_voltage_limit(self, params: Params) -> None:
        params.expect(1)
        self.voltage_limit = params.number(0, unit="V", low=0.0, high=self.VOLTAGE_MAX_V)

    def _set_current_limit(self, params: Params) -> None:
        params.expect(1)
        self.current_limit = params.number(0, unit="A", low=0.0, high=self.current_rating_a)

    def _set_frequency(self, params: Params) -> None:
        params.expect(1)
        low, high = self.FREQUENCY_RANGE_HZ
        self.frequency_set = params.number(0, unit="HZ", low=low, high=high)
        self.move("frequency", self.frequency_set)

    def _set_three(self, params: Params) -> None:
        params.expect(1)
        text = params.args[0].strip().upper()
        # "INDEPEND" as open drivers send it: any form from INDEP to INDEPENDENT.
        if text.startswith("INDEP") and "INDEPENDENT".startswith(text):
            self.angles_independent = True
        elif text in ("BALANCE", "BAL"):
            self.angles_independent = False
        else:
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])

    def _angle_phase(self, params: Params) -> int:
        pair = params.suffixes[0]
        if pair not in (12, 13):
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"P{pair}")
        return 2 if pair == 12 else 3

    def _set_angle(self, params: Params) -> None:
        params.expect(1)
        phase = self._angle_phase(params)
        if not self.angles_independent:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "set SOUR:PHAS:THREE INDEPEND first")
        self.angles[phase] = params.number(0, low=0.0, high=360.0)

    def _get_angle(self, params: Params) -> str:
        params.expect(0)
        return _number(self.angles[self._angle_phase(params)])

    def _slew(self, params: Params, unit: str) -> float:
        params.expect(1)
        if params.args[0].strip().upper() in ("MAX", "MAXIMUM"):
            return math.inf
        return params.number(0, unit=unit, low=1e-6) * 1000.0  # per ms -> per s

    def _set_voltage_slew(self, params: Params) -> None:
        self.voltage_slew = self._slew(params, "V")

    def _set_frequency_slew(self, params: Params) -> None:
        self.frequency_slew = self._slew(params, "HZ")

    def _energize(self) -> None:
        self.set_source_output(self.relay_on and self.state_on)

    def _set_relay(self, params: Params) -> None:
        params.expect(1)
        on = params.boolean(0)
        if not on and self.state_on:
            # (?) the relay opens only with the output off; the output goes off with it.
            self.state_on = False
        self.relay_on = on
        self._energize()

    def _set_state(self, params: Params) -> None:
        params.expect(1)
        self.state_on = params.boolean(0)
        self._energize()

    def _set_output_mode(self, params: Params) -> None:
        params.expect(1)
        mode = params.choice(
            0, {"FIXed": "FIXED", "LIST": "LIST", "PULSe": "PULSE", "STEP": "STEP"}
        )
        if mode != "FIXED":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"output mode {mode} not emulated")
        self.output_mode = mode

    def _set_trigger(self, params: Params) -> None:
        params.expect(1)
        if params.boolean(0):
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "LIST/STEP triggers not emulated")

    def _measure(self, value: Callable[[AcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self._acquired is None:
                self._acquired = self.terminal_reading(
                    "output", voltage_range=self.VOLTAGE_MAX_V, current_range=self.current_rating_a
                )
            return _number(value(self._acquired))

        return read
