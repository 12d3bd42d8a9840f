"""EA Elektro-Automatik PSB 10000 bidirectional DC supply as the EV battery emulator.

SCPI per EA's programming guide for the 10000 series (SCPI over LAN port 5025, USB, ...):
`SYST:LOCK ON` takes remote control before any setpoint is accepted; `VOLT`, `CURR`, `POW`
are the source-side setpoints and `SINK:CURR`, `SINK:POW` the sink-side ones; `OUTP ON|OFF`
switches the DC terminals; `MEAS:VOLT?`, `MEAS:CURR?`, `MEAS:POW?` answer with a unit suffix
(`48.00V`), and current and power read negative while the unit sinks.

The rig's sign is positive into the EV, which is when the PSB sinks: the driver negates the
PSB's current and power.
"""

from __future__ import annotations

from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import AnyResource, DcReading, DCSource, Limits

#: The three readings in one program message (IEEE 488.2 compound query), so that they come
#: from one update. (?) EA documents each query; the `;` reply separator is IEEE 488.2's.
MEASURE_ALL = "MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?"


class PSB10000(DCSource):
    maker = "EA Elektro-Automatik"
    model = "PSB 10000"

    def __init__(self, resource: AnyResource, *, limits: Limits | None = None) -> None:
        super().__init__(resource, limits=limits)
        self._locked = False

    def _take_remote_control(self) -> None:
        # The PSB refuses setpoints from an interface that has not locked remote control.
        if not self._locked:
            self.write("SYST:LOCK ON")
            self._locked = True

    def set_voltage(self, v: float) -> None:
        self.limits.check("voltage_v", v)
        self._take_remote_control()
        self.write(f"VOLT {format_nrf(v)}")
        self.check_errors()

    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        self.limits.check("current_a", source_a)
        self.limits.check("current_a", sink_a)
        self._take_remote_control()
        self.write(f"CURR {format_nrf(source_a)}")
        self.write(f"SINK:CURR {format_nrf(sink_a)}")
        self.check_errors()

    def set_power_limits(self, *, source_w: float, sink_w: float) -> None:
        self.limits.check("power_w", source_w)
        self.limits.check("power_w", sink_w)
        self._take_remote_control()
        self.write(f"POW {format_nrf(source_w)}")
        self.write(f"SINK:POW {format_nrf(sink_w)}")
        self.check_errors()

    def set_output(self, on: bool) -> None:
        self._take_remote_control()
        self.write("OUTP ON" if on else "OUTP OFF")
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query("OUTP?"))

    def measure(self) -> DcReading:
        fields = self.query(MEASURE_ALL).split(";")
        if len(fields) != 3:
            raise ValueError(f"PSB 10000: expected voltage;current;power, got {fields!r}")
        v = parse_number(fields[0], "V")
        i = parse_number(fields[1], "A")
        p = parse_number(fields[2], "W")
        # PSB: negative while sinking; rig: positive into the EV (= while the PSB sinks).
        return DcReading(v=v, i=-i, p_w=-p)

    def safe_state(self) -> None:
        """DC output off first, then every setpoint to zero, then read back that the output is
        off; remote control stays locked."""
        self._locked = True
        self._send_all(
            [
                "SYST:LOCK ON",
                "OUTP OFF",
                "VOLT 0",
                "CURR 0",
                "SINK:CURR 0",
                "POW 0",
                "SINK:POW 0",
            ]
        )
        self._confirm_off("OUTP?")

    def close(self) -> None:
        """Hand remote control back to the front panel, then close the session."""
        try:
            if self._locked:
                self.write("SYST:LOCK OFF")
                self._locked = False
        finally:
            super().close()
