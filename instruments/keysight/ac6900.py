"""Keysight AC6900 regenerative AC source as the rig's grid simulator (single-phase output).

SCPI per the Keysight AC6900 Operating and Programming Guide as open material describes it
(subsystems VOLTage, FREQuency, OUTPut, FETCh/MEASure), shared with the single-phase AC6800B:
`VOLT <Vrms>` (= [SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]), `FREQ <Hz>`,
`OUTP ON|OFF` and `OUTP?` (0|1). A MEASure query starts a fresh acquisition and FETCh queries
return other items of that same acquisition, so `MEAS:VOLT:AC?;:FETC:...` in one message is one
coherent reading. Ramps use the slew-rate settings (?) in COMMANDS; a step is the maximum rate.

The bench drives the source in single-phase output: per-phase selection and phase angles of
the three-phase configurations are refused rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import AcReading, GridSimulator, ModelRange, RangeError

_GUIDE = "(?) AC6900/AC6800B guide as open drivers use it; guide text not read here"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "voltage": Cmd("VOLT {v}", _GUIDE),
    "frequency": Cmd("FREQ {hz}", _GUIDE),
    "output_on": Cmd("OUTP ON", _GUIDE),
    "output_off": Cmd("OUTP OFF", _GUIDE),
    "output_query": Cmd("OUTP?", _GUIDE),
    "voltage_slew": Cmd("VOLT:SLEW {rate}", "(?) voltage slew rate in V/s; MAX = step"),
    "frequency_slew": Cmd("FREQ:SLEW {rate}", "(?) frequency slew rate in Hz/s; MAX = step"),
    "voltage_query": Cmd("VOLT?", _GUIDE),
    "frequency_query": Cmd("FREQ?", _GUIDE),
    "voltage_slew_query": Cmd("VOLT:SLEW?", "(?) query form of VOLT:SLEW"),
    "frequency_slew_query": Cmd("FREQ:SLEW?", "(?) query form of FREQ:SLEW"),
    # One acquisition, every AcReading field (order = AcReading order).
    "measure_all": Cmd(
        "MEAS:VOLT:AC?;:FETC:CURR:AC?;:FETC:POW:AC?;:FETC:POW:AC:REAC?;"
        ":FETC:POW:AC:APP?;:FETC:POW:AC:PFAC?;:FETC:FREQ?",
        "(?) MEASure starts an acquisition, FETCh reads the same one",
    ),
}


class AC6900(GridSimulator):
    maker = "Keysight Technologies"
    model = "AC6900"
    #: (?) H-range output: 0..322 V rms, 40..5000 Hz (the twin's defaults match).
    RANGES: Mapping[str, ModelRange] = {
        "voltage": ModelRange(0.0, 322.0, "V"),
        "frequency": ModelRange(40.0, 5000.0, "Hz"),
    }

    @property
    def phases(self) -> int:
        return 1

    def _single_phase(self, phase: int | None) -> None:
        if phase not in (None, 1):
            raise RangeError(f"{self.label} drives one phase; phase {phase} does not exist")

    def set_voltage(self, v_rms: float, *, phase: int | None = None) -> None:
        self._single_phase(phase)
        self.limits.check("voltage_v", v_rms)
        self.RANGES["voltage"].check(self.label, "voltage", v_rms)
        self.write(COMMANDS["voltage"](v=format_nrf(v_rms)))
        self.check_errors()

    def set_frequency(self, hz: float) -> None:
        self.limits.check("frequency_hz", hz)
        self.RANGES["frequency"].check(self.label, "frequency", hz)
        self.write(COMMANDS["frequency"](hz=format_nrf(hz)))
        self.check_errors()

    def set_phase_angle(self, phase: int, degrees: float) -> None:
        raise RangeError(f"{self.label} drives one phase: no phase angle to set")

    def set_slew_rates(
        self, *, voltage_v_per_s: float | None = None, frequency_hz_per_s: float | None = None
    ) -> None:
        for rate, limit in (
            (voltage_v_per_s, "voltage_slew_v_per_s"),
            (frequency_hz_per_s, "frequency_slew_hz_per_s"),
        ):
            if rate is not None and math.isfinite(rate):
                self.limits.check(limit, rate)
            if rate is not None and not rate > 0:
                raise RangeError(f"{self.label}: slew rates are positive, got {rate}")
        if voltage_v_per_s is not None:
            text = "MAX" if math.isinf(voltage_v_per_s) else format_nrf(voltage_v_per_s)
            self.write(COMMANDS["voltage_slew"](rate=text))
        if frequency_hz_per_s is not None:
            text = "MAX" if math.isinf(frequency_hz_per_s) else format_nrf(frequency_hz_per_s)
            self.write(COMMANDS["frequency_slew"](rate=text))
        self.check_errors()

    def set_output(self, on: bool) -> None:
        self.write(COMMANDS["output_on" if on else "output_off"]())
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["output_query"]()))

    def measure(self) -> AcReading:
        fields = self.query(COMMANDS["measure_all"]()).split(";")
        if len(fields) != 7:
            raise ValueError(f"AC6900: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def settings(self) -> Mapping[str, object]:
        return {
            "phases": 1,
            "voltage_v": parse_number(self.query(COMMANDS["voltage_query"]())),
            "frequency_hz": parse_number(self.query(COMMANDS["frequency_query"]())),
            "voltage_slew_v_per_s": parse_number(self.query(COMMANDS["voltage_slew_query"]())),
            "frequency_slew_hz_per_s": parse_number(self.query(COMMANDS["frequency_slew_query"]())),
            "output_on": self.output_enabled(),
        }

    def safe_state(self) -> None:
        """Output relay open first (the grid is gone), then the voltage setpoint to zero.
        Frequency stays: zero hertz is not a valid setting. Then the relay is read back."""
        self._send_all([COMMANDS["output_off"](), COMMANDS["voltage"](v=0)])
        self._confirm_off(COMMANDS["output_query"]())
