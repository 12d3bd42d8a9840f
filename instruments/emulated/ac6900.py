"""Emulated Keysight AC6900: the grid source and its output relay, in front of the World's grid.

`VOLT` / `FREQ` go to `World.set_grid`, `OUTP` to `World.set_grid_output` (off = the grid is
gone). A MEASure query takes a new acquisition of the "grid" point and FETCh queries read other
items of that acquisition; FETCh before any acquisition is -230 "Data corrupt or stale", as the
AC6800B/AC6900 guides document. Replies are <NR3> (`+2.30000E+02`).

Ranges (?): 0..322 V rms and 40..5000 Hz for the H models; options override them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin, option_float, option_str
from instruments.emulated.world import AcMeasurementLike

#: FETCh/MEASure items and how each is read from an acquisition.
_ITEMS: Mapping[str, Callable[[AcMeasurementLike], float]] = {
    "VOLTage:AC": lambda m: m.v_rms,
    "VOLTage[:DC]": lambda m: 0.0,
    "CURRent:AC": lambda m: m.i_rms,
    "CURRent[:DC]": lambda m: 0.0,
    "POWer:AC[:REAL]": lambda m: m.p_w,
    "POWer:AC:REACtive": lambda m: m.q_var,
    "POWer:AC:APParent": lambda m: m.s_va,
    "POWer:AC:PFACtor": lambda m: m.pf,
    "FREQuency": lambda m: m.f_hz,
}


def _nr3(value: float) -> str:
    return f"{value:+.5E}"


class AC6900Twin(Twin):
    maker = "Keysight Technologies"
    default_model = "AC6918H"
    firmware = "A.01.00"  # (?)
    option_names = frozenset({"voltage_max_v", "frequency_min_hz", "frequency_max_hz", "point"})

    def configure(self) -> None:
        """Ratings and initial state from the options and the world."""
        self.voltage_max_v = option_float(self.options, "voltage_max_v", 322.0)
        self.frequency_min_hz = option_float(self.options, "frequency_min_hz", 40.0)
        self.frequency_max_hz = option_float(self.options, "frequency_max_hz", 5000.0)
        self.point = option_str(self.options, "point", "grid")
        # The source mirrors the World's initial grid state (it may start energized).
        self.output_on = self.world.grid_output
        self.voltage_set = self.world.grid_voltage_setpoint
        self.frequency_set = self.world.grid_frequency_setpoint
        self.acquisition: AcMeasurementLike | None = None

    def reset(self) -> None:
        """*RST: output off, voltage zero (frequency keeps its value; 0 Hz is no setting)."""
        self.output_on = False
        self.world.set_grid_output(False)
        self.voltage_set = 0.0
        self.world.set_grid(voltage_v=0.0)
        self.acquisition = None

    def state(self) -> dict[str, bool | float | str]:
        return {
            "output_on": self.output_on,
            "voltage_set_v": self.voltage_set,
            "frequency_set_hz": self.frequency_set,
        }

    def commands(self) -> Sequence[Command]:
        table = [
            Command(
                "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                write=self._set_voltage,
                read=lambda p: _nr3(self.voltage_set),
            ),
            Command("[SOURce:]FREQuency[:CW]", write=self._set_frequency, read=self._get_frequency),
            Command(
                "[SOURce:]FREQuency:IMMediate",
                write=self._set_frequency,
                read=self._get_frequency,
            ),
            Command(
                "OUTPut[:STATe]",
                write=self._set_output,
                read=lambda p: "1" if self.output_on else "0",
            ),
        ]
        for item, value in _ITEMS.items():
            table.append(Command(f"MEASure[:SCALar]:{item}", read=self._measure(value)))
            table.append(Command(f"FETCh[:SCALar]:{item}", read=self._fetch(value)))
        return table

    def _set_voltage(self, params: Params) -> None:
        params.expect(1)
        self.voltage_set = params.number(0, unit="V", low=0.0, high=self.voltage_max_v)
        self.world.set_grid(voltage_v=self.voltage_set)

    def _set_frequency(self, params: Params) -> None:
        params.expect(1)
        self.frequency_set = params.number(
            0, unit="HZ", low=self.frequency_min_hz, high=self.frequency_max_hz
        )
        self.world.set_grid(frequency_hz=self.frequency_set)

    def _get_frequency(self, params: Params) -> str:
        params.expect(0)
        return _nr3(self.frequency_set)

    def _set_output(self, params: Params) -> None:
        params.expect(1)
        self.output_on = params.boolean(0)
        self.world.set_grid_output(self.output_on)

    def _measure(self, value: Callable[[AcMeasurementLike], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            self.acquisition = self.world.measure_ac(self.point)
            return _nr3(value(self.acquisition))

        return read

    def _fetch(self, value: Callable[[AcMeasurementLike], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self.acquisition is None:
                raise ScpiError(ErrorCode.DATA_CORRUPT_OR_STALE)
            return _nr3(value(self.acquisition))

        return read
