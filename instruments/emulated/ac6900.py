"""Emulated Keysight AC6900: the grid source and its output relay, in front of the World's grid.

`VOLT` / `FREQ` move the World's grid (stepping, or ramping at `VOLT:SLEW` / `FREQ:SLEW` (?),
V/s and Hz/s, `MAX` = step), `OUTP` is the source's output relay, in series with S3 through the
SiteWiring (off = the grid is gone). A MEASure query takes a new acquisition at the source
terminals (the last completed measurement window) and FETCh queries read other items of that
acquisition; FETCh before any acquisition is -230 "Data corrupt or stale", as the AC6800B/AC6900
guides document. Replies are <NR3> (`+2.30000E+02`).

Ranges (?): 0..322 V rms and 40..5000 Hz for the H models; options override them. Measurement
accuracy (?): voltage ±(0.3 % + 0.2 % of range), current and power ±(0.5 % + 0.5 % of range),
frequency ±0.01 %, over a 100 ms window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from instruments.emulated.grid_source import GridSourceTwin
from instruments.emulated.meter import Accuracy, AcValues, MeterSpec
from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.options import number as option_float
from instruments.options import text as option_str

#: FETCh/MEASure items and how each is read from an acquisition.
_ITEMS: Mapping[str, Callable[[AcValues], float]] = {
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
    if math.isnan(value):
        return "NAN"
    return f"{value:+.5E}"


class AC6900Twin(GridSourceTwin):
    maker = "Keysight Technologies"
    default_model = "AC6918H"
    firmware = "A.01.00"  # (?)
    option_names = frozenset(
        {"voltage_max_v", "frequency_min_hz", "frequency_max_hz", "current_rating", "point"}
    )
    meter_spec = MeterSpec(
        update_interval_s=0.1,
        jitter_s=0.001,
        accuracy={
            "voltage": Accuracy(0.003, 0.002),
            "current": Accuracy(0.005, 0.005),
            "power": Accuracy(0.005, 0.005),
            "frequency": Accuracy(0.0001),
        },
        counts=100_000,
    )

    def configure(self) -> None:
        """Ratings and initial state from the options and the world."""
        self.voltage_max_v = option_float(self.options, "voltage_max_v", 322.0)
        self.frequency_min_hz = option_float(self.options, "frequency_min_hz", 40.0)
        self.frequency_max_hz = option_float(self.options, "frequency_max_hz", 5000.0)
        self.current_rating_a = option_float(self.options, "current_rating", 54.0)  # (?)
        # The source mirrors the World's initial grid state (it may start energized).
        self.init_source(option_str(self.options, "point", "grid"))
        self.acquisition: AcValues | None = None

    def reset(self) -> None:
        """*RST: output off, voltage zero, steps (frequency keeps its value; 0 Hz is no setting)."""
        self.stop_ramps()
        self.voltage_slew = self.frequency_slew = math.inf
        self.set_source_output(False)
        self.voltage_set[1] = 0.0
        self.move("voltage", 0.0)
        self.acquisition = None

    def state(self) -> dict[str, bool | float | str]:
        return {
            "output_on": self.output_on,
            "voltage_set_v": self.voltage_set[1],
            "frequency_set_hz": self.frequency_set,
            "voltage_slew_v_per_s": self.voltage_slew,
            "frequency_slew_hz_per_s": self.frequency_slew,
        }

    # --- compatibility with the single-phase view ----------------------------------------------

    @property
    def voltage_setpoint(self) -> float:
        return self.voltage_set[1]

    def commands(self) -> Sequence[Command]:
        table = [
            Command(
                "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                write=self._set_voltage,
                read=lambda p: _nr3(self.voltage_set[1]),
            ),
            Command("[SOURce:]VOLTage:SLEW[:RATE]", write=self._set_voltage_slew, read=lambda p: _nr3(self.voltage_slew if math.isfinite(self.voltage_slew) else 9.9e37)),
            Command("[SOURce:]FREQuency[:CW]", write=self._set_frequency, read=self._get_frequency),
            Command(
                "[SOURce:]FREQuency:IMMediate",
                write=self._set_frequency,
                read=self._get_frequency,
            ),
            Command("[SOURce:]FREQuency:SLEW[:RATE]", write=self._set_frequency_slew, read=lambda p: _nr3(self.frequency_slew if math.isfinite(self.frequency_slew) else 9.9e37)),
            Command(
                "OUTPut[:STATe]",
                write=self._set_output,
                read=lambda p: "1" if self.output_on else "0",
            ),
        ]  # fmt: skip
        for item, value in _ITEMS.items():
            table.append(Command(f"MEASure[:SCALar]:{item}", read=self._measure(value)))
            table.append(Command(f"FETCh[:SCALar]:{item}", read=self._fetch(value)))
        return table

    def _set_voltage(self, params: Params) -> None:
        params.expect(1)
        self.voltage_set[1] = params.number(0, unit="V", low=0.0, high=self.voltage_max_v)
        self.move("voltage", self.voltage_set[1])

    def _slew(self, params: Params, unit: str) -> float:
        params.expect(1)
        if params.args[0].strip().upper() in ("MAX", "MAXIMUM", "INF"):
            return math.inf
        return params.number(0, unit=unit, low=1e-6)

    def _set_voltage_slew(self, params: Params) -> None:
        self.voltage_slew = self._slew(params, "V")

    def _set_frequency_slew(self, params: Params) -> None:
        self.frequency_slew = self._slew(params, "HZ")

    def _set_frequency(self, params: Params) -> None:
        params.expect(1)
        self.frequency_set = params.number(
            0, unit="HZ", low=self.frequency_min_hz, high=self.frequency_max_hz
        )
        self.move("frequency", self.frequency_set)

    def _get_frequency(self, params: Params) -> str:
        params.expect(0)
        return _nr3(self.frequency_set)

    def _set_output(self, params: Params) -> None:
        params.expect(1)
        self.set_source_output(params.boolean(0))

    def _measure(self, value: Callable[[AcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            self.acquisition = self.terminal_reading(
                "output", voltage_range=self.voltage_max_v, current_range=self.current_rating_a
            )
            return _nr3(value(self.acquisition))

        return read

    def _fetch(self, value: Callable[[AcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self.acquisition is None:
                raise ScpiError(ErrorCode.DATA_CORRUPT_OR_STALE)
            return _nr3(value(self.acquisition))

        return read
