"""Chroma 61800 regenerative grid simulator (61809 ... 61860) as the rig's grid simulator.

Commands as SunSpec/Sandia SVP's open 61845 driver sends them: `INST:PHAS SINGLE|THREE`
selects the output configuration, `INST:EDIT P1|P2|P3|ALL` which phase later settings apply
to, `SOUR:VOLT:LEV:IMM:AMPL:AC <V>` the phase voltage, `SOUR:FREQ <Hz>`, `SOUR:PHAS:P12` and
`SOUR:PHAS:P13` the angles of phases 2 and 3 after `SOUR:PHAS:THREE INDEPEND`,
`OUTP:SLEW:VOLT:AC` and `OUTP:SLEW:FREQ` the ramps, `OUTP:REL` the output relay and
`OUTP:STAT` the output. The relay is closed before the output is switched on and opened after
it is switched off. The 61800 programming manual itself was not read here: every command is (?)
in COMMANDS, and so are the slew units (V/ms, Hz/ms as Chroma's AC sources use them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from instruments import options as opt
from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import (
    AcReading,
    AnyResource,
    GridSimulator,
    Instrument,
    Limits,
    ModelRange,
    RangeError,
)

_SVP = "(?) SunSpec SVP chroma_61845 open driver"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "phase_mode": Cmd("INST:PHAS {mode}", _SVP),
    "edit": Cmd("INST:EDIT {phase}", _SVP),
    "voltage": Cmd("SOUR:VOLT:LEV:IMM:AMPL:AC {v}", _SVP),
    "frequency": Cmd("SOUR:FREQ {hz}", _SVP),
    "independent_angles": Cmd("SOUR:PHAS:THREE INDEPEND", _SVP),
    "angle_p12": Cmd("SOUR:PHAS:P12 {degrees}", _SVP),
    "angle_p13": Cmd("SOUR:PHAS:P13 {degrees}", _SVP),
    "voltage_slew": Cmd("OUTP:SLEW:VOLT:AC {v_per_ms}", _SVP + "; unit V/ms (?)"),
    "frequency_slew": Cmd("OUTP:SLEW:FREQ {hz_per_ms}", _SVP + "; unit Hz/ms (?)"),
    "relay_on": Cmd("OUTP:REL ON", _SVP),
    "relay_off": Cmd("OUTP:REL OFF", _SVP),
    "output_on": Cmd("OUTP:STAT ON", _SVP),
    "output_off": Cmd("OUTP:STAT OFF", _SVP),
    "output_query": Cmd("OUTP:STAT?", _SVP),
    "relay_query": Cmd("OUTP:REL?", _SVP),
    "voltage_query": Cmd("SOUR:VOLT:LEV:IMM:AMPL:AC?", _SVP),
    "frequency_query": Cmd("SOUR:FREQ?", _SVP),
    "phase_mode_query": Cmd("INST:PHAS?", "(?) query form of INST:PHAS"),
    "measure_all": Cmd(
        "MEAS:VOLT:AC?;:MEAS:CURR:AC?;:MEAS:POW:AC?;:MEAS:POW:AC:REAC?;"
        ":MEAS:POW:AC:APP?;:MEAS:POW:AC:PFAC?;:MEAS:FREQ?",
        "(?) Chroma AC-source MEASure tree, phase selected by INST:EDIT",
    ),
}


class C61800(GridSimulator):
    maker = "Chroma ATE"
    model = "61800"
    #: (?) 0..300 V phase to neutral (high range), 30..100 Hz output.
    RANGES: Mapping[str, ModelRange] = {
        "voltage": ModelRange(0.0, 300.0, "V"),
        "frequency": ModelRange(30.0, 100.0, "Hz"),
        "angle": ModelRange(0.0, 360.0, "deg"),
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
            raise ValueError(f"61800: phases must be 1 or 3, got {phases}")
        self._phases = phases
        self._editing: str | None = None
        self._mode_sent = False

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Option `phases`: 1 (single-phase output, the default) or 3."""
        unknown = sorted(set(options) - {"phases"})
        if unknown:
            raise ValueError(f"61800 options: unknown {unknown}; known: ['phases']")
        phases = opt.index("phases", options.get("phases", 1))
        return cls(resource, limits=limits, name=name, phases=phases)

    @property
    def phases(self) -> int:
        return self._phases

    def _mode(self) -> None:
        if not self._mode_sent:
            self.write(COMMANDS["phase_mode"](mode="THREE" if self._phases == 3 else "SINGLE"))
            self._mode_sent = True

    def _edit(self, phase: int | None) -> None:
        self._mode()
        if phase is not None and not 1 <= phase <= self._phases:
            raise RangeError(f"{self.label} drives {self._phases} phase(s); no phase {phase}")
        target = "ALL" if phase is None or self._phases == 1 else f"P{phase}"
        if target != self._editing:
            self.write(COMMANDS["edit"](phase=target))
            self._editing = target

    def set_voltage(self, v_rms: float, *, phase: int | None = None) -> None:
        self.limits.check("voltage_v", v_rms)
        self.RANGES["voltage"].check(self.label, "voltage", v_rms)
        self._edit(phase)
        self.write(COMMANDS["voltage"](v=format_nrf(v_rms)))
        self.check_errors()

    def set_frequency(self, hz: float) -> None:
        self.limits.check("frequency_hz", hz)
        self.RANGES["frequency"].check(self.label, "frequency", hz)
        self._edit(None)
        self.write(COMMANDS["frequency"](hz=format_nrf(hz)))
        self.check_errors()

    def set_phase_angle(self, phase: int, degrees: float) -> None:
        if self._phases != 3 or phase not in (2, 3):
            raise RangeError(f"{self.label}: angles exist for phases 2 and 3 of a 3-phase output")
        self.RANGES["angle"].check(self.label, "angle", degrees)
        self._mode()
        self.write(COMMANDS["independent_angles"]())
        key = "angle_p12" if phase == 2 else "angle_p13"
        self.write(COMMANDS[key](degrees=format_nrf(degrees)))
        self.check_errors()

    def set_slew_rates(
        self, *, voltage_v_per_s: float | None = None, frequency_hz_per_s: float | None = None
    ) -> None:
        for rate, limit in (
            (voltage_v_per_s, "voltage_slew_v_per_s"),
            (frequency_hz_per_s, "frequency_slew_hz_per_s"),
        ):
            if rate is not None and not rate > 0:
                raise RangeError(f"{self.label}: slew rates are positive, got {rate}")
            if rate is not None and math.isfinite(rate):
                self.limits.check(limit, rate)
        self._edit(None)
        if voltage_v_per_s is not None:
            text = "MAX" if math.isinf(voltage_v_per_s) else format_nrf(voltage_v_per_s / 1000.0)
            self.write(COMMANDS["voltage_slew"](v_per_ms=text))
        if frequency_hz_per_s is not None:
            per_ms = frequency_hz_per_s / 1000.0
            text = "MAX" if math.isinf(frequency_hz_per_s) else format_nrf(per_ms)
            self.write(COMMANDS["frequency_slew"](hz_per_ms=text))
        self.check_errors()

    def set_output(self, on: bool) -> None:
        if on:
            self.write(COMMANDS["relay_on"]())
            self.write(COMMANDS["output_on"]())
        else:
            self.write(COMMANDS["output_off"]())
            self.write(COMMANDS["relay_off"]())
        self.check_errors()

    def output_enabled(self) -> bool:
        return parse_boolean(self.query(COMMANDS["output_query"]()))

    def measure(self) -> AcReading:
        """Phase 1 (or the single-phase output)."""
        self._edit(1)
        fields = self.query(COMMANDS["measure_all"]()).split(";")
        if len(fields) != 7:
            raise ValueError(f"61800: expected 7 measurements, got {fields!r}")
        v, i, p, q, s, pf, f = (parse_number(field) for field in fields)
        return AcReading(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def settings(self) -> Mapping[str, object]:
        self._edit(1)
        return {
            "phase_mode": self.query(COMMANDS["phase_mode_query"]()),
            "voltage_v": parse_number(self.query(COMMANDS["voltage_query"]())),
            "frequency_hz": parse_number(self.query(COMMANDS["frequency_query"]())),
            "relay_closed": parse_boolean(self.query(COMMANDS["relay_query"]())),
            "output_on": self.output_enabled(),
        }

    def safe_state(self) -> None:
        """Output off, relay open, every phase's voltage to zero; then read the output back."""
        self._editing = "ALL"
        self._send_all(
            [
                COMMANDS["output_off"](),
                COMMANDS["relay_off"](),
                COMMANDS["edit"](phase="ALL"),
                COMMANDS["voltage"](v=0),
            ]
        )
        self._confirm_off(COMMANDS["output_query"]())
