"""Emulated Keysight RP7900 regenerative DC supply in front of the World's EV battery.

Voltage priority only (`FUNC VOLT`; current priority is refused with -221): `VOLT` is the
charge-voltage ceiling of the battery emulation, `CURR:LIM` the source (positive) limit and
`CURR:LIM:NEG` the sink limit as a negative number, `POW:LIM` / `POW:LIM:NEG` the power limits
(?), all forwarded to `World.set_dc_limits` as magnitudes; `OUTP` switches the DC bus. A
`MEAS:...?` takes a new acquisition (the last completed measurement window, 20 ms (?)) and
`FETC:...?` reads that acquisition (-230 before the first). Current reads negative while the
unit sinks. Ratings from the options `voltage_rating`, `current_rating`, `power_rating` (default
500 V, 80 A, 20 kW (?)). Accuracy (?): voltage ±(0.02 % + 0.02 % of rating), current ±(0.04 % +
0.1 %), power ±(0.1 % + 0.1 %).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from instruments.emulated.meter import Accuracy, DcValues, MeterSpec, measure_dc
from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin
from instruments.options import quantity
from instruments.options import text as option_str


def _nr3(value: float) -> str:
    return f"{value:+.6E}"


class RP7900Twin(Twin):
    maker = "Keysight Technologies"
    default_model = "RP7943A"
    firmware = "A.02.01"  # (?)
    option_names = frozenset({"voltage_rating", "current_rating", "power_rating", "point"})
    meter_spec = MeterSpec(
        update_interval_s=0.02,
        jitter_s=0.0002,
        accuracy={
            "voltage": Accuracy(0.0002, 0.0002),
            "current": Accuracy(0.0004, 0.001),
            "power": Accuracy(0.001, 0.001),
        },
        counts=1_000_000,
    )

    def configure(self) -> None:
        def rating(name: str, dimension: str, default: float) -> float:
            value = self.options.get(name)
            return default if value is None else quantity(name, value, dimension)

        self.voltage_rating_v = rating("voltage_rating", "voltage", 500.0)
        self.current_rating_a = rating("current_rating", "current", 80.0)
        self.power_rating_w = rating("power_rating", "power", 20000.0)
        self.point = option_str(self.options, "point", "evse_dc")
        self.output_on = self.world.dc_output
        self.priority = "VOLT"
        self.voltage_set = 0.0
        self.current_limit = self.current_rating_a
        self.current_limit_negative = -self.current_rating_a
        self.power_limit = self.power_rating_w
        self.power_limit_negative = -self.power_rating_w
        self.acquisition: DcValues | None = None

    def reset(self) -> None:
        self.output_on = False
        self.world.set_dc_output(False)
        self.priority = "VOLT"
        self.voltage_set = 0.0
        self.world.set_dc_limits(voltage_v=0.0)
        self.acquisition = None

    def state(self) -> dict[str, bool | float | str]:
        return {
            "output_on": self.output_on,
            "priority": self.priority,
            "voltage_set_v": self.voltage_set,
            "source_current_a": self.current_limit,
            "sink_current_a": -self.current_limit_negative,
            "source_power_w": self.power_limit,
            "sink_power_w": -self.power_limit_negative,
        }

    def commands(self) -> Sequence[Command]:
        table = [
            Command("[SOURce:]FUNCtion", write=self._set_priority, read=lambda p: self.priority),
            Command("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", write=self._set_voltage, read=lambda p: _nr3(self.voltage_set)),
            Command("[SOURce:]CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]", write=self._set_current_limit, read=lambda p: _nr3(self.current_limit)),
            Command("[SOURce:]CURRent:LIMit:NEGative[:IMMediate][:AMPLitude]", write=self._set_current_limit_negative, read=lambda p: _nr3(self.current_limit_negative)),
            Command("[SOURce:]POWer:LIMit[:POSitive][:IMMediate][:AMPLitude]", write=self._set_power_limit, read=lambda p: _nr3(self.power_limit)),
            Command("[SOURce:]POWer:LIMit:NEGative[:IMMediate][:AMPLitude]", write=self._set_power_limit_negative, read=lambda p: _nr3(self.power_limit_negative)),
            Command("OUTPut[:STATe]", write=self._set_output, read=lambda p: str(int(self.output_on))),
        ]  # fmt: skip
        items: dict[str, Callable[[DcValues], float]] = {
            "VOLTage[:DC]": lambda m: m.v,
            # The unit's sign: negative while it sinks (World: positive into the EV = sinking).
            "CURRent[:DC]": lambda m: 0.0 - m.i,
            "POWer[:DC]": lambda m: 0.0 - m.p_w,
        }
        for item, value in items.items():
            table.append(Command(f"MEASure[:SCALar]:{item}", read=self._measure(value)))
            table.append(Command(f"FETCh[:SCALar]:{item}", read=self._fetch(value)))
        return table

    def _set_priority(self, params: Params) -> None:
        params.expect(1)
        priority = params.choice(0, {"VOLTage": "VOLT", "CURRent": "CURR"})
        if priority != "VOLT":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "current priority not emulated")
        self.priority = priority

    def _set_voltage(self, params: Params) -> None:
        params.expect(1)
        self.voltage_set = params.number(0, unit="V", low=0.0, high=self.voltage_rating_v)
        self.world.set_dc_limits(voltage_v=self.voltage_set)

    def _set_current_limit(self, params: Params) -> None:
        params.expect(1)
        self.current_limit = params.number(0, unit="A", low=0.0, high=self.current_rating_a)
        self.world.set_dc_limits(source_current_a=self.current_limit)

    def _set_current_limit_negative(self, params: Params) -> None:
        params.expect(1)
        self.current_limit_negative = params.number(
            0, unit="A", low=-self.current_rating_a, high=0.0
        )
        self.world.set_dc_limits(sink_current_a=-self.current_limit_negative)

    def _set_power_limit(self, params: Params) -> None:
        params.expect(1)
        self.power_limit = params.number(0, unit="W", low=0.0, high=self.power_rating_w)
        self.world.set_dc_limits(source_power_w=self.power_limit)

    def _set_power_limit_negative(self, params: Params) -> None:
        params.expect(1)
        self.power_limit_negative = params.number(0, unit="W", low=-self.power_rating_w, high=0.0)
        self.world.set_dc_limits(sink_power_w=-self.power_limit_negative)

    def _set_output(self, params: Params) -> None:
        params.expect(1)
        self.output_on = params.boolean(0)
        self.world.set_dc_output(self.output_on)

    def _acquire(self) -> DcValues:
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

    def _measure(self, value: Callable[[DcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            self.acquisition = self._acquire()
            return _nr3(value(self.acquisition))

        return read

    def _fetch(self, value: Callable[[DcValues], float]) -> Callable[[Params], str]:
        def read(params: Params) -> str:
            params.expect(0)
            if self.acquisition is None:
                raise ScpiError(ErrorCode.DATA_CORRUPT_OR_STALE)
            reading = value(self.acquisition)
            return "NAN" if math.isnan(reading) else _nr3(reading)

        return read
