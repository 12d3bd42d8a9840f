"""Yokogawa WT-series precision power analyzers (WT5000, WT1800): what the models share.

Numeric data: `:NUMeric:FORMat ASCII`, `:NUMeric:NORMal:NUMber <n>`, `:NUMeric:NORMal:ITEM<k>
<function>,<element>` and `:NUMeric:NORMal:VALue?`, which returns items 1..n of one update in one
comma-separated line. Missing data reads `NAN` and overrange `INF` in ASCII format.

Fresh data only: VALue? returns the latest update whenever it is asked, so a poll faster than
the update interval reads the same update again with a new timestamp. The driver waits for the
end of an update the way Yokogawa's manuals describe it (WT110/WT310 "Synchronization with the
controller", WT3000 `:COMMunicate:WAIT`): the transition filter `:STATus:FILTer1 FALL` turns the
end of an update (bit 0 of the condition register falling) into bit 0 of the extended event
register; `:COMMunicate:WAIT 1` blocks until that bit is set; after reading, `:STATus:EESR?`
clears it, all three in one program message. An update that ends between VALue? and EESR? is
skipped, never read twice.

The update interval is always set (`:RATE`) so that a run does not depend on the front panel.
Errors are read with `:STATus:ERRor?` (the WT series have no SYSTem:ERRor?).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

from instruments import options as opt
from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import (
    AcReading,
    AnyResource,
    DcReading,
    Instrument,
    Limits,
    PowerAnalyzer,
    RangeError,
)

_FAMILY = "(?) family convention: WT3000 communication manual ch. 6 and open WT drivers"

#: Every command the WT drivers send. (?) = not confirmed against the model's own manual text.
COMMANDS: Mapping[str, Cmd] = {
    "header_off": Cmd(":COMMunicate:HEADer OFF", _FAMILY),
    "numeric_format": Cmd(":NUMeric:FORMat ASCII", _FAMILY),
    "item_count": Cmd(":NUMeric:NORMal:NUMber {n}", _FAMILY),
    "item": Cmd(":NUMeric:NORMal:ITEM{index} {function},{element}", _FAMILY),
    "values": Cmd(":NUMeric:NORMal:VALue?", _FAMILY),
    "rate": Cmd(":RATE {interval}", "(?) Yokogawa sample code sends ':RATE 500MS'"),
    "rate_query": Cmd(":RATE?", "(?) query form of :RATE"),
    "update_filter": Cmd(
        ":STATus:FILTer1 FALL",
        "(?) WT110 manual App. 2.2.6 'Synchronization with the controller'; same scheme on WT",
    ),
    "event_register": Cmd(":STATus:EESR?", "(?) WT110 manual App. 2.2.6; WT3000 ch. 6"),
    "wait_update": Cmd(":COMMunicate:WAIT 1", "(?) WT3000 manual 6-25; Yokogawa sample code"),
    "voltage_range": Cmd(":INPut:VOLTage:RANGe:ELEMent{element} {volts}", _FAMILY),
    "voltage_range_query": Cmd(":INPut:VOLTage:RANGe:ELEMent{element}?", _FAMILY),
    "voltage_auto": Cmd(":INPut:VOLTage:AUTO:ELEMent{element} {state}", _FAMILY),
    "voltage_auto_query": Cmd(":INPut:VOLTage:AUTO:ELEMent{element}?", _FAMILY),
    "current_range": Cmd(":INPut:CURRent:RANGe:ELEMent{element} {amps}", _FAMILY),
    "current_range_query": Cmd(":INPut:CURRent:RANGe:ELEMent{element}?", _FAMILY),
    "current_auto": Cmd(":INPut:CURRent:AUTO:ELEMent{element} {state}", _FAMILY),
    "current_auto_query": Cmd(":INPut:CURRent:AUTO:ELEMent{element}?", _FAMILY),
    "line_filter": Cmd(":INPut:FILTer:LINE:ELEMent{element} {setting}", _FAMILY),
    "line_filter_query": Cmd(":INPut:FILTer:LINE:ELEMent{element}?", _FAMILY),
    "wiring_query": Cmd(":INPut:WIRing?", _FAMILY),
}

#: Normal-measurement functions read per AC element, in AcReading field order
#: (Urms, Irms, P, Q, S, lambda = power factor, fU = voltage frequency).
AC_FUNCTIONS: tuple[str, ...] = ("URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU")
#: Per DC element: simple averages of voltage and current, and active power.
DC_FUNCTIONS: tuple[str, ...] = ("UDC", "IDC", "P")

#: Options a WT driver reads from the bench file.
DRIVER_OPTIONS = frozenset(
    {"elements", "dc_elements", "update_interval", "voltage_range", "current_range", "line_filter"}
)

#: The update interval the driver sets when the bench file names none (rig's own choice:
#: 2.5 cycles at 50 Hz, the fastest interval that still averages over whole cycles at 50 Hz).
DEFAULT_UPDATE_INTERVAL_S = 0.05


def rate_text(seconds: float) -> str:
    """`:RATE` parameter with Yokogawa's time units: 0.05 -> '50MS', 2 -> '2S'."""
    if seconds < 1.0:
        return f"{format_nrf(round(seconds * 1000.0, 6))}MS"
    return f"{format_nrf(seconds)}S"


class WTSeries(PowerAnalyzer):
    """A WT analyzer: one element per measurement point, read as one coherent fresh update."""

    maker = "YOKOGAWA"
    error_query = ":STATus:ERRor?"
    #: The model's input elements.
    ELEMENTS: ClassVar[range]
    #: Selectable update intervals (s).
    UPDATE_INTERVALS_S: ClassVar[tuple[float, ...]]
    #: Voltage and current ranges of the model's standard input element (V, A).
    VOLTAGE_RANGES_V: ClassVar[tuple[float, ...]]
    CURRENT_RANGES_A: ClassVar[tuple[float, ...]]
    #: Line-filter cut-offs the model offers (Hz).
    LINE_FILTERS_HZ: ClassVar[tuple[float, ...]]

    def __init__(
        self, resource: AnyResource, *, limits: Limits | None = None, name: str | None = None
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        # (point name, is DC, first item index, item count) in item order.
        self._layout: list[tuple[str, bool, int, int]] = []
        self._elements: tuple[int, ...] = ()
        self.update_interval_s: float | None = None

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Options: `elements` {element: point}, `dc_elements` [element, ...],
        `update_interval` ("50 ms"), `voltage_range` / `current_range` ({element: "300 V"} or
        one value for all; "auto" for auto-ranging), `line_filter` ("off" or "500 Hz")."""
        unknown = sorted(set(options) - DRIVER_OPTIONS)
        if unknown:
            raise ValueError(
                f"{cls.model} options: unknown {unknown}; known: {sorted(DRIVER_OPTIONS)}"
            )
        analyzer = cls(resource, limits=limits, name=name)
        elements = options.get("elements")
        if elements is not None:
            points = element_map(elements)
            interval = options.get("update_interval")
            analyzer.configure(
                points,
                dc_elements=element_list(options.get("dc_elements", ())),
                update_interval_s=None
                if interval is None
                else opt.quantity("update_interval", interval, "time"),
                voltage_ranges=_per_element(
                    "voltage_range", options.get("voltage_range"), points, "voltage"
                ),
                current_ranges=_per_element(
                    "current_range", options.get("current_range"), points, "current"
                ),
                line_filter_hz=_line_filter(options.get("line_filter")),
            )
        elif set(options) - {"elements"}:
            raise ValueError(f"{cls.model} options need `elements` to wire the other settings")
        return analyzer

    # --- configuration ---------------------------------------------------------------------------

    def configure(
        self,
        points: Mapping[int, str],
        *,
        dc_elements: Collection[int] = (),
        update_interval_s: float | None = None,
        voltage_ranges: Mapping[int, float | None] | None = None,
        current_ranges: Mapping[int, float | None] | None = None,
        line_filter_hz: float | None = None,
    ) -> None:
        """Assign the numeric items (seven AC functions per AC element, three per DC element),
        set the update interval, the ranges (None = auto) and the line filter (None = off),
        and arm the end-of-update event. Everything is validated before anything is sent."""
        interval = DEFAULT_UPDATE_INTERVAL_S if update_interval_s is None else update_interval_s
        self._validate(
            points, dc_elements, interval, voltage_ranges, current_ranges, line_filter_hz
        )
        items: list[tuple[str, int]] = []
        layout: list[tuple[str, bool, int, int]] = []
        for element in sorted(points):
            is_dc = element in dc_elements
            functions = DC_FUNCTIONS if is_dc else AC_FUNCTIONS
            layout.append((points[element], is_dc, len(items), len(functions)))
            items.extend((function, element) for function in functions)
        self.write(COMMANDS["header_off"]())
        self.write(COMMANDS["numeric_format"]())
        self.write(COMMANDS["item_count"](n=len(items)))
        for index, (function, element) in enumerate(items, start=1):
            self.write(COMMANDS["item"](index=index, function=function, element=element))
        self.write(COMMANDS["rate"](interval=rate_text(interval)))
        for element in sorted(points):
            self._set_range("voltage", element, (voltage_ranges or {}).get(element))
            self._set_range("current", element, (current_ranges or {}).get(element))
            setting = "OFF" if line_filter_hz is None else f"{format_nrf(line_filter_hz)}HZ"
            self.write(COMMANDS["line_filter"](element=element, setting=setting))
        self.write(COMMANDS["update_filter"]())
        self.query(COMMANDS["event_register"]())  # reading clears: wait for the next update
        self.check_errors()
        self._layout = layout
        self._elements = tuple(sorted(points))
        self.update_interval_s = interval
        self._fit_timeout(interval)

    def _set_range(self, quantity: str, element: int, value: float | None) -> None:
        if value is None:
            self.write(COMMANDS[f"{quantity}_auto"](element=element, state="ON"))
            return
        self.write(COMMANDS[f"{quantity}_auto"](element=element, state="OFF"))
        if quantity == "voltage":
            self.write(COMMANDS["voltage_range"](element=element, volts=f"{format_nrf(value)}V"))
        else:
            self.write(COMMANDS["current_range"](element=element, amps=f"{format_nrf(value)}A"))

    def _validate(
        self,
        points: Mapping[int, str],
        dc_elements: Collection[int],
        interval: float,
        voltage_ranges: Mapping[int, float | None] | None,
        current_ranges: Mapping[int, float | None] | None,
        line_filter_hz: float | None,
    ) -> None:
        if not points:
            raise ValueError(f"{self.model}.configure: no elements given")
        first, last = self.ELEMENTS.start, self.ELEMENTS.stop - 1
        for element in points:
            if element not in self.ELEMENTS:
                raise ValueError(f"{self.model} has elements {first}..{last}, not {element}")
        stray = sorted(set(dc_elements) - set(points))
        if stray:
            raise ValueError(f"dc_elements {stray} are not among the configured elements")
        if not any(abs(interval - choice) < 1e-9 for choice in self.UPDATE_INTERVALS_S):
            choices = ", ".join(rate_text(s) for s in self.UPDATE_INTERVALS_S)
            raise RangeError(f"{self.label}: update interval {interval} s is not one of {choices}")
        for label, ranges, allowed in (
            ("voltage", voltage_ranges, self.VOLTAGE_RANGES_V),
            ("current", current_ranges, self.CURRENT_RANGES_A),
        ):
            for element, value in (ranges or {}).items():
                if element not in points:
                    raise ValueError(f"{label} range given for unwired element {element}")
                if value is not None and not any(abs(value - r) < 1e-9 for r in allowed):
                    raise RangeError(
                        f"{self.label}: {label} range {format_nrf(value)} is not one of "
                        f"{', '.join(format_nrf(r) for r in allowed)}"
                    )
        if line_filter_hz is not None and not any(
            abs(line_filter_hz - f) < 1e-9 for f in self.LINE_FILTERS_HZ
        ):
            raise RangeError(
                f"{self.label}: line filter {format_nrf(line_filter_hz)} Hz is not one of "
                f"{', '.join(format_nrf(f) for f in self.LINE_FILTERS_HZ)}"
            )

    def _fit_timeout(self, interval: float) -> None:
        """A read waits for the end of an update: the session timeout must cover two of them."""
        needed_ms = int(2000.0 * interval) + 1000
        current = getattr(self.resource, "timeout", None)
        if isinstance(current, int | float) and current < needed_ms:
            self.resource.timeout = needed_ms  # type: ignore[attr-defined]

    # --- reading --------------------------------------------------------------------------------

    def read(self) -> Mapping[str, AcReading | DcReading]:
        if not self._layout:
            raise RuntimeError(f"{self.model}.read: call configure() first")
        # One program message, executed in order: wait for the end of an update, read it,
        # clear the event (IEEE 488.2 message units; one round trip instead of three).
        message = ";".join(
            (COMMANDS["wait_update"](), COMMANDS["values"](), COMMANDS["event_register"]())
        )
        reply = self.query(message)
        values_text, _, _events = reply.partition(";")
        values = [parse_number(field) for field in values_text.split(",")]
        expected = sum(count for *_, count in self._layout)
        if len(values) != expected:
            raise ValueError(f"{self.model} returned {len(values)} values, {expected} configured")
        readings: dict[str, AcReading | DcReading] = {}
        for point, is_dc, start, count in self._layout:
            chunk = values[start : start + count]
            readings[point] = DcReading(*chunk) if is_dc else AcReading(*chunk)
        return readings

    def settings(self) -> Mapping[str, object]:
        """Update interval, wiring, and per configured element its ranges and line filter, as
        the analyzer reports them."""
        out: dict[str, object] = {
            "update_interval_s": parse_number(self.query(COMMANDS["rate_query"]())),
            "wiring": self.query(COMMANDS["wiring_query"]()),
        }
        for element in self._elements:
            auto_v = parse_boolean(self.query(COMMANDS["voltage_auto_query"](element=element)))
            range_v = parse_number(self.query(COMMANDS["voltage_range_query"](element=element)))
            auto_i = parse_boolean(self.query(COMMANDS["current_auto_query"](element=element)))
            range_i = parse_number(self.query(COMMANDS["current_range_query"](element=element)))
            line = self.query(COMMANDS["line_filter_query"](element=element))
            out[f"element{element}"] = {
                "point": self._layout[self._elements.index(element)][0],
                "voltage_range_v": range_v,
                "voltage_auto": auto_v,
                "current_range_a": range_i,
                "current_auto": auto_i,
                "line_filter": line,
            }
        return out

    def safe_state(self) -> None:
        """A power analyzer has no output, contactor or setpoint to drive: nothing to send."""


def element_map(value: object) -> dict[int, str]:
    """{element: point} from a bench file (keys may arrive as strings from YAML)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"elements: expected a mapping element -> point, got {value!r}")
    result: dict[int, str] = {}
    for key, point in value.items():
        if not isinstance(point, str):
            raise ValueError(f"elements: point name for element {key!r} must be a string")
        result[opt.index("element numbers", key)] = point
    return result


def element_list(value: object) -> list[int]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise ValueError(f"dc_elements: expected a list of element numbers, got {value!r}")
    return [opt.index("element numbers", element) for element in value]


def _per_element(
    name: str, value: object, points: Mapping[int, str], dimension: str
) -> dict[int, float | None] | None:
    """One range for every element, or {element: range}; "auto" means auto-ranging."""
    if value is None:
        return None

    def one(item: object) -> float | None:
        if isinstance(item, str) and item.strip().lower() == "auto":
            return None
        return opt.quantity(name, item, dimension)

    if isinstance(value, Mapping):
        return {element: one(item) for element, item in opt.indexed(name, value).items()}
    return dict.fromkeys(points, one(value))


def _line_filter(value: object) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    return opt.quantity("line_filter", value, "frequency")
