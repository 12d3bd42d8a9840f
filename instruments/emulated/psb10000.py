"""Emulated EA PSB 10000: the bidirectional DC supply in front of the World's EV battery.

Setpoints go to `World.set_dc_limits` (source = the PSB delivers = the EV discharges; sink =
the PSB absorbs = the EV charges), `OUTP` to `World.set_dc_output`. Actual values are the
battery terminals ("evse_dc") averaged over the unit's measurement interval with its accuracy
(voltage 0.1 %, current 0.2 %, power 0.3 % of the nominal rating (?)), converted to the PSB's
own sign: current and power negative while it sinks. `MEAS:ARR?` gives voltage, current and
power of one measurement interval; the three single MEAS queries of one message do too.

Like the real unit it refuses setpoints until an interface has taken remote control with
`SYST:LOCK ON` (the exact error number is (?); -203 "Command protected" here), and setpoints
beyond 102 % of the model's rating (?) with -222 "Data out of range". Ratings default to a
PSB 10750-120 4U (750 V, 120 A, 30 kW) (?) and can be set by options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

from instruments.emulated.meter import Accuracy, DcValues, MeterSpec, measure_dc
from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin
from instruments.options import quantity
from instruments.options import text as option_str
from rig.sim.power_stage import ac_power


class PSB10000Twin(Twin):
    maker = "EA Elektro-Automatik GmbH & Co. KG"
    default_model = "PSB 10750-120 4U"
    firmware = "V3.02"  # (?) EA reports several firmware versions in this field
    option_names = frozenset(
        {"voltage_rating", "current_rating", "power_rating", "point", "drives_charger_stage"}
    )
    #: (?) EA set values may go up to 102 % of the nominal rating.
    SETPOINT_HEADROOM: ClassVar[float] = 1.02
    #: (?) actual values refresh every 10 ms; accuracy in % of the nominal rating.
    meter_spec = MeterSpec(
        update_interval_s=0.01,
        jitter_s=0.0002,
        accuracy={
            "voltage": Accuracy(0.0, 0.001),
            "current": Accuracy(0.0, 0.002),
            "power": Accuracy(0.0, 0.003),
        },
        counts=100_000,
    )

    def configure(self) -> None:
        """Ratings and initial state from the options and the world."""

        def rating(name: str, dimension: str, default: float) -> float:
            value = self.options.get(name)
            return default if value is None else quantity(name, value, dimension)

        self.voltage_rating_v = rating("voltage_rating", "voltage", 750.0)
        self.current_rating_a = rating("current_rating", "current", 120.0)
        self.power_rating_w = rating("power_rating", "power", 30000.0)
        self.point = option_str(self.options, "point", "evse_dc")
        # The emulated bench with a (served) emulated EV as the DUT: this unit is the charger's
        # output stage, so what it is told to source or sink moves the World's power stage.
        self.drives_stage = bool(self.options.get("drives_charger_stage", False))
        self.locked = False
        self.output_on = self.world.dc_output
        self.voltage_set = 0.0
        self.current_set = 0.0
        self.power_set = 0.0
        self.sink_current_set = 0.0
        self.sink_power_set = 0.0
        self.sink_resistance_set = 0.0

    def reset(self) -> None:
        """*RST: output off, setpoints zero (the lock belongs to the interface, it stays)."""
        self.output_on = False
        self.world.set_dc_output(False)
        self.voltage_set = self.current_set = self.power_set = 0.0
        self.sink_current_set = self.sink_power_set = 0.0
        self.world.set_dc_limits(
            voltage_v=0.0,
            source_current_a=0.0,
            sink_current_a=0.0,
            source_power_w=0.0,
            sink_power_w=0.0,
        )

    def state(self) -> dict[str, bool | float | str]:
        return {
            "remote_locked": self.locked,
            "output_on": self.output_on,
            "voltage_set_v": self.voltage_set,
            "source_current_a": self.current_set,
            "sink_current_a": self.sink_current_set,
            "source_power_w": self.power_set,
            "sink_power_w": self.sink_power_set,
        }

    def commands(self) -> Sequence[Command]:
        source = "[SOURce:]{}[:LEVel][:IMMediate][:AMPLitude]"
        return [
            Command("SYSTem:LOCK[:OWNer]", write=self._set_lock, read=self._get_lock),
            Command(source.format("VOLTage"), write=self._set_voltage, read=self._reading("voltage_set", "V")),
            Command(source.format("CURRent"), write=self._set_current, read=self._reading("current_set", "A")),
            Command(source.format("POWer"), write=self._set_power, read=self._reading("power_set", "W")),
            Command("SINK:CURRent[:LEVel][:IMMediate][:AMPLitude]", write=self._set_sink_current, read=self._reading("sink_current_set", "A")),
            Command("SINK:POWer[:LEVel][:IMMediate][:AMPLitude]", write=self._set_sink_power, read=self._reading("sink_power_set", "W")),
            Command("SINK:RESistance[:LEVel][:IMMediate][:AMPLitude]", write=self._set_sink_resistance, read=self._reading("sink_resistance_set", "Ohm")),
            Command("OUTPut[:STATe]", write=self._set_output, read=lambda p: "ON" if self.output_on else "OFF"),
            Command("MEASure[:SCALar]:VOLTage[:DC]", read=lambda p: self._measure()[0]),
            Command("MEASure[:SCALar]:CURRent[:DC]", read=lambda p: self._measure()[1]),
            Command("MEASure[:SCALar]:POWer[:DC]", read=lambda p: self._measure()[2]),
            Command("MEASure[:SCALar]:ARRay", read=lambda p: ", ".join(self._measure())),
            Command("SYSTem:NOMinal:VOLTage", read=lambda p: f"{self.voltage_rating_v:.2f}V"),
            Command("SYSTem:NOMinal:CURRent", read=lambda p: f"{self.current_rating_a:.2f}A"),
            Command("SYSTem:NOMinal:POWer", read=lambda p: f"{self.power_rating_w:.2f}W"),
        ]  # fmt: skip

    # --- remote control ----------------------------------------------------------------------

    def _set_lock(self, params: Params) -> None:
        params.expect(1)
        self.locked = params.boolean(0)

    def _get_lock(self, params: Params) -> str:
        params.expect(0)
        return "REMOTE" if self.locked else "NONE"  # (?)

    def _require_lock(self) -> None:
        if not self.locked:
            raise ScpiError(ErrorCode.COMMAND_PROTECTED, "remote control not locked (SYST:LOCK ON)")

    def _setpoint(self, params: Params, unit: str, rating: float) -> float:
        params.expect(1)
        value = params.number(0, unit=unit, low=0.0, high=rating * self.SETPOINT_HEADROOM)
        self._require_lock()
        return value

    # --- setpoints ---------------------------------------------------------------------------

    def _set_voltage(self, params: Params) -> None:
        self.voltage_set = self._setpoint(params, "V", self.voltage_rating_v)
        if self.drives_stage:
            self._drive_stage()
        else:
            self.world.set_dc_limits(voltage_v=self.voltage_set)

    def _set_current(self, params: Params) -> None:
        self.current_set = self._setpoint(params, "A", self.current_rating_a)
        if self.drives_stage:
            self._drive_stage()
        else:
            self.world.set_dc_limits(source_current_a=self.current_set)

    def _set_power(self, params: Params) -> None:
        self.power_set = self._setpoint(params, "W", self.power_rating_w)
        if not self.drives_stage:
            self.world.set_dc_limits(source_power_w=self.power_set)

    def _set_sink_current(self, params: Params) -> None:
        self.sink_current_set = self._setpoint(params, "A", self.current_rating_a)
        if self.drives_stage:
            self._drive_stage()
        else:
            self.world.set_dc_limits(sink_current_a=self.sink_current_set)

    def _set_sink_power(self, params: Params) -> None:
        self.sink_power_set = self._setpoint(params, "W", self.power_rating_w)
        if not self.drives_stage:
            self.world.set_dc_limits(sink_power_w=self.sink_power_set)

    def _set_sink_resistance(self, params: Params) -> None:
        # Stored only: the battery model behind the PSB does not emulate resistance mode.
        params.expect(1)
        self.sink_resistance_set = params.number(0, unit="OHM", low=0.0)
        self._require_lock()

    def _set_output(self, params: Params) -> None:
        params.expect(1)
        on = params.boolean(0)
        self._require_lock()
        self.output_on = on
        if self.drives_stage:
            self._drive_stage()
        else:
            self.world.set_dc_output(on)

    def _drive_stage(self) -> None:
        """As the charger's output: sourcing I at the set voltage charges the EV with V·I, sinking
        discharges it; the World's power stage carries that (its AC side at the grid). The World's
        own battery-emulator limits stay wide open: this unit is not the battery here."""
        if not self.drives_stage:
            return
        self.world.set_dc_output(True)
        self.world.set_dc_limits(
            # No CV target: the EV's pack sets the DC voltage (OCV + I R), not this unit.
            voltage_v=math.inf,
            source_current_a=self.current_rating_a,
            sink_current_a=self.current_rating_a,
            source_power_w=self.power_rating_w,
            sink_power_w=self.power_rating_w,
        )
        p_dc = self.voltage_set * (self.current_set - self.sink_current_set)
        self.world.command_setpoint(ac_power(p_dc, self.world.evse_efficiency))
        self.world.enable_power_stage(self.output_on)

    # --- readings ----------------------------------------------------------------------------

    def _reading(self, attribute: str, unit: str) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            value: float = getattr(self, attribute)
            return f"{value:.2f}{unit}"

        return read

    def _measure(self) -> tuple[str, str, str]:
        dc = self._actual_values()
        if self.drives_stage:  # the charger's output: what it sources into the EV is positive
            return f"{dc.v:.2f}V", f"{dc.i:.2f}A", f"{dc.p_w:.2f}W"
        # World: positive into the EV = the PSB sinks; the PSB reports sinking as negative.
        return f"{dc.v:.2f}V", f"{0.0 - dc.i:.2f}A", f"{0.0 - dc.p_w:.2f}W"

    def _actual_values(self) -> DcValues:
        assert self.meter is not None and self.history is not None
        _, window = self.latest_window()
        return measure_dc(
            self.meter,
            self.history,
            "output",
            self.point,
            window,
            voltage_range=self.voltage_rating_v,
            current_range=self.current_rating_a,
            power_range=self.power_rating_w,
        )
