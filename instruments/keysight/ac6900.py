"""Keysight AC6900 regenerative AC source as the rig's grid simulator.

SCPI per the Keysight AC6900 Operating and Programming Guide (subsystems VOLTage, FREQuency,
OUTPut, FETCh/MEASure), shared with the single-phase AC6800B: `VOLT <Vrms>` (= [SOURce:]
VOLTage[:LEVel][:IMMediate][:AMPLitude]), `FREQ <Hz>`, `OUTP ON|OFF` and `OUTP?` (0|1). A
MEASure query starts a fresh acquisition and FETCh queries return other items of that same
acquisition, so `MEAS:VOLT:AC?;:FETC:...` in one message is one coherent reading.

(?) The bench uses the source in single-phase output; per-phase selection of the three-phase
models is not driven here.
"""

from __future__ import annotations

from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import AcReading, GridSimulator

#: One acquisition, every AcReading field (order = AcReading order).
MEASURE_ALL = (
    "MEAS:VOLT:AC?;:FETC:CURR:AC?;:FETC:POW:AC?;:FETC:POW:AC:REAC?;"
    ":FETC:POW:AC:APP?;:FETC:POW:AC:PFAC?;:FETC:FREQ?"
)


class AC6900(GridSimulator):
    maker = "Keysight Technologies"
    model = "AC6900"

    def set_voltage(self, v_rms: float) -> None:
        self.limits.check("voltage_v", v_rms)
        self.write(f"VOLT {format_nrf(v_rms)}")
        self.check_errors()

    def set_frequency(self, hz: float) -> None:
        self.limits.check("frequency_hz", hz)
        self.write(f"FREQ {format_nrf(hz)}")
        self.check_errors()

    def set_output(self, on: bool) -> None:
        self.write("OUTP ON" if on else "OUTP OFF")
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query("OUTP?"))

    def measure(self) -> AcReading:
        fields = self.query(MEASURE_ALL).split(";")
        if len(fields) != 7:
            raise ValueError(f"AC6900: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def safe_state(self) -> None:
        """Output relay open first (the grid is gone), then the voltage setpoint to zero.
        Frequency stays: zero hertz is not a valid setting. Then the relay is read back."""
        self._send_all(["OUTP OFF", "VOLT 0"])
        self._confirm_off("OUTP?")
