"""Emulated Yokogawa WT-series analyzers: elements wired to World points, one update at a time.

Wiring comes from the `elements` option ({element: point}); elements listed in `dc_elements`
are wired to a DC point, the others to an AC point. An element with nothing wired reads zero
(and NAN for frequency, as nothing crosses zero).

Like the instrument, the twin updates its numeric data once per update interval (`:RATE`): an
update averages the interval before its end (RMS of V and I, mean of P and Q), ends a little
late by the model's timestamp jitter, and `VALue?` returns the latest update whenever it is
asked, the same numbers until the next update ends. The end of an update is the falling edge of
bit 0 of the condition register; with `:STATus:FILTer1 FALL` it sets bit 0 of the extended event
register (`:STATus:EESR?` reads and clears it) and `:COMMunicate:WAIT 1` waits for it. Readings
carry the model's accuracy (reading + range), drift and resolution; a reading beyond 140 % of a
fixed range is overrange (INF) (?).

Emulated of the communication manual: `:NUMeric:FORMat ASCII`, `:NUMeric[:NORMal]:NUMber`,
`:ITEM<x> {NONE|<function>,<element>}`, `:VALue? [<item>]`, `:CLEar`, `:RATE`, `[:INPut]:
VOLTage|CURRent:RANGe|AUTO[:ELEMent<x>|:ALL]`, `[:INPut]:FILTer[:LINE][:ELEMent<x>|:ALL]`,
`[:INPut]:WIRing`, `:STATus:FILTer<x>|EESR?|EESE|CONDition?|ERRor?`, `:COMMunicate:WAIT[?]|
REMote|HEADer|VERBose`. Not emulated (refused with -221): FLOat format (binary blocks) and
response headers (HEADer ON); functions beyond the basic set are refused with -224.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from instruments.emulated.meter import AcValues, DcValues, measure_ac, measure_dc
from instruments.emulated.scpi import (
    Blocked,
    Command,
    ErrorCode,
    Params,
    Read,
    ScpiError,
    Write,
    nr3,
)
from instruments.emulated.twin import Twin
from instruments.yokogawa.wt_series import element_list, element_map

#: The emulated bench's default wiring: the three AC points and the EVSE's DC output.
DEFAULT_ELEMENTS: Mapping[int, str] = {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}
DEFAULT_DC_ELEMENTS: tuple[int, ...] = (4,)

#: Function mnemonics (long form, lower case = optional) accepted in ITEM<x>.
FUNCTIONS: tuple[str, ...] = (
    "URMS", "UMN", "UDC", "URMN", "UAC",
    "IRMS", "IMN", "IDC", "IRMN", "IAC",
    "P", "S", "Q", "LAMBda", "PHI", "FU", "FI",
)  # fmt: skip

#: Rectified mean of a sine over its RMS value (2 sqrt 2 / pi), what URMN shows on AC.
_RECTIFIED_MEAN = 2.0 * math.sqrt(2.0) / math.pi
#: (?) A fixed range reads overrange beyond this share of the range.
OVERRANGE = 1.4


def _canonical(text: str) -> str | None:
    upper = text.strip().upper()
    for mnemonic in FUNCTIONS:
        short = "".join(c for c in mnemonic if not c.islower())
        if upper in (mnemonic.upper(), short):
            return mnemonic.upper()
    return None


class WTSeriesTwin(Twin):
    """The WT behaviour; models set their elements, intervals, ranges and meter spec."""

    maker = "YOKOGAWA"
    option_names = frozenset({"elements", "dc_elements"})
    error_query_pattern = ":STATus:ERRor"
    # IM WT5000-17EN 4-4 "Header Interpretation Rules": lower-case letters may be omitted.
    accept_truncations = True
    ELEMENTS: ClassVar[range]
    UPDATE_INTERVALS_S: ClassVar[tuple[float, ...]]
    VOLTAGE_RANGES_V: ClassVar[tuple[float, ...]]
    CURRENT_RANGES_A: ClassVar[tuple[float, ...]]
    #: (?) item count range for NUMber; the WT1600 manual documents 1 to 255.
    MAX_ITEMS: ClassVar[int] = 255

    def configure(self) -> None:
        """Wiring and initial state from the options and the world."""
        elements = self.options.get("elements", DEFAULT_ELEMENTS)
        self.wiring: dict[int, str] = element_map(elements)
        self.dc_elements = frozenset(
            element_list(self.options.get("dc_elements", DEFAULT_DC_ELEMENTS))
        )
        for element in [*self.wiring, *self.dc_elements]:
            if element not in self.ELEMENTS:
                last = self.ELEMENTS.stop - 1
                raise ValueError(f"{self.default_model} twin: no element {element} (1..{last})")
        self.remote = False
        self.filters: dict[int, str] = {}
        self.event_enable = 0
        self._events_cleared_at = -math.inf
        self._cache: dict[tuple[int, int, int], Mapping[str, float]] = {}
        self._texts: dict[tuple[int, int, int], dict[str, str]] = {}
        self._reset_settings()

    def reset(self) -> None:
        """*RST: settings to their defaults; the update cycle restarts at its default interval."""
        self._reset_settings()
        assert self.updates is not None and self.meter is not None
        self.updates.restart(self.meter.spec.update_interval_s, self.now())
        self._cache.clear()
        self._texts.clear()

    def clear_status(self) -> None:
        self._events_cleared_at = self.now()

    def _reset_settings(self) -> None:
        self.numeric_format = "ASCII"
        self.item_count = 15
        self.items: dict[int, tuple[str, int] | None] = {}
        self.voltage_range: dict[int, float | None] = dict.fromkeys(self.ELEMENTS)
        self.current_range: dict[int, float | None] = dict.fromkeys(self.ELEMENTS)
        self.line_filter: dict[int, float | None] = dict.fromkeys(self.ELEMENTS)
        self.wiring_systems = "P1W2"

    def state(self) -> dict[str, bool | float | str]:
        assert self.updates is not None
        return {
            "remote": self.remote,
            "numeric_format": self.numeric_format,
            "item_count": self.item_count,
            "update_interval_s": self.updates.interval_s,
        }

    def commands(self) -> Sequence[Command]:
        element_cmds: list[Command] = []
        for quantity, ranges in (
            ("VOLTage", self.VOLTAGE_RANGES_V),
            ("CURRent", self.CURRENT_RANGES_A),
        ):
            store = self.voltage_range if quantity == "VOLTage" else self.current_range
            unit = "V" if quantity == "VOLTage" else "A"
            element_cmds += [
                Command(
                    f"[:INPut]:{quantity}:RANGe:ELEMent<n>",
                    write=self._range_setter(store, ranges, unit, all_elements=False),
                    read=self._range_getter(store, ranges),
                ),
                Command(
                    f"[:INPut]:{quantity}:RANGe[:ALL]",
                    write=self._range_setter(store, ranges, unit, all_elements=True),
                ),
                Command(
                    f"[:INPut]:{quantity}:AUTO:ELEMent<n>",
                    write=self._auto_setter(store, ranges, all_elements=False),
                    read=self._auto_getter(store),
                ),
                Command(
                    f"[:INPut]:{quantity}:AUTO[:ALL]",
                    write=self._auto_setter(store, ranges, all_elements=True),
                ),
            ]
        return [
            Command(":NUMeric:FORMat", write=self._set_format, read=lambda p: self.numeric_format),
            Command(
                ":NUMeric[:NORMal]:NUMber",
                write=self._set_number,
                read=lambda p: str(self.item_count),
            ),
            Command(":NUMeric[:NORMal]:ITEM<n>", write=self._set_item, read=self._get_item),
            Command(":NUMeric[:NORMal]:VALue", read=self._values),
            Command(":NUMeric[:NORMal]:CLEar", write=self._clear),
            Command(":RATE", write=self._set_rate, read=self._get_rate),
            *element_cmds,
            Command(
                "[:INPut]:FILTer[:LINE]:ELEMent<n>",
                write=self._set_line_filter,
                read=self._get_line_filter,
            ),
            Command("[:INPut]:WIRing", write=self._set_wiring, read=lambda p: self.wiring_systems),
            Command(":STATus:FILTer<n>", write=self._set_filter, read=self._get_filter),
            Command(":STATus:EESR", read=self._read_events),
            Command(
                ":STATus:EESE", write=self._set_event_enable, read=lambda p: str(self.event_enable)
            ),
            Command(":STATus:CONDition", read=lambda p: "0"),
            Command(":COMMunicate:WAIT", write=self._wait, read=self._wait_query),
            Command(
                ":COMMunicate:REMote", write=self._set_remote, read=lambda p: str(int(self.remote))
            ),
            Command(":COMMunicate:HEADer", write=self._set_header, read=lambda p: "0"),
            Command(":COMMunicate:VERBose", write=self._set_verbose, read=lambda p: "0"),
        ]

    # --- settings ----------------------------------------------------------------------------

    def _set_format(self, params: Params) -> None:
        params.expect(1)
        chosen = params.choice(0, {"ASCii": "ASCII", "FLOat": "FLOAT"})
        if chosen != "ASCII":
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "FLOAT format not emulated")
        self.numeric_format = chosen

    def _set_number(self, params: Params) -> None:
        params.expect(1)
        self.item_count = params.integer(0, low=1, high=self.MAX_ITEMS)

    def _item_index(self, params: Params) -> int:
        index = params.suffixes[0]
        if not 1 <= index <= self.MAX_ITEMS:
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"ITEM{index}")
        return index

    def _element(self, params: Params) -> int:
        element = params.suffixes[0]
        if element not in self.ELEMENTS:
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"ELEMent{element}")
        return element

    def _set_item(self, params: Params) -> None:
        index = self._item_index(params)
        if len(params.args) == 1 and params.args[0].strip().upper() == "NONE":
            self.items[index] = None
            return
        params.expect(2, 3)  # a third parameter (harmonic order) is accepted and ignored
        function = _canonical(params.args[0])
        if function is None:
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])
        element = params.integer(1, low=self.ELEMENTS.start, high=self.ELEMENTS.stop - 1)
        self.items[index] = (function, element)

    def _get_item(self, params: Params) -> str:
        params.expect(0)
        item = self.items.get(self._item_index(params))
        return "NONE" if item is None else f"{item[0]},{item[1]}"

    def _clear(self, params: Params) -> None:
        params.expect(1, 2)
        if params.args[0].strip().upper() == "ALL":
            self.items.clear()
            return
        start = params.integer(0, low=1, high=self.MAX_ITEMS)
        end = params.integer(1, low=start, high=self.MAX_ITEMS) if len(params.args) > 1 else start
        for index in range(start, end + 1):
            self.items[index] = None

    def _set_rate(self, params: Params) -> None:
        params.expect(1)
        interval = params.number(0, unit="S")
        if not any(abs(interval - choice) < 1e-9 for choice in self.UPDATE_INTERVALS_S):
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])
        assert self.updates is not None and self.history is not None
        # Changing the interval restarts the measurement cycle now.
        self.updates.restart(interval, self.now())
        self.history.extend_span(4.0 * interval)
        self._cache.clear()
        self._texts.clear()

    def _get_rate(self, params: Params) -> str:
        params.expect(0)
        assert self.updates is not None
        return nr3(self.updates.interval_s, 3)

    def _range_setter(
        self,
        store: dict[int, float | None],
        ranges: tuple[float, ...],
        unit: str,
        *,
        all_elements: bool,
    ) -> Write:
        def write(params: Params) -> None:
            params.expect(1)
            value = params.number(0, unit=unit)
            if not any(abs(value - r) < 1e-9 for r in ranges):
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, params.args[0])
            targets = self.ELEMENTS if all_elements else (self._element(params),)
            for element in targets:
                store[element] = value

        return write

    def _range_getter(self, store: dict[int, float | None], ranges: tuple[float, ...]) -> Read:
        def read(params: Params) -> str:
            params.expect(0)
            element = self._element(params)
            value = store[element]
            return nr3(ranges[-1] if value is None else value, 3)

        return read

    def _auto_setter(
        self, store: dict[int, float | None], ranges: tuple[float, ...], *, all_elements: bool
    ) -> Write:
        def write(params: Params) -> None:
            params.expect(1)
            on = params.boolean(0)
            targets = self.ELEMENTS if all_elements else (self._element(params),)
            for element in targets:
                if on:
                    store[element] = None
                elif store[element] is None:
                    store[element] = ranges[-1]  # leaving auto holds the largest range (?)

        return write

    def _auto_getter(self, store: dict[int, float | None]) -> Read:
        def read(params: Params) -> str:
            params.expect(0)
            return str(int(store[self._element(params)] is None))

        return read

    def _set_line_filter(self, params: Params) -> None:
        params.expect(1)
        element = self._element(params)
        if params.args[0].strip().upper() == "OFF":
            self.line_filter[element] = None
        else:
            self.line_filter[element] = params.number(0, unit="HZ", low=1.0)

    def _get_line_filter(self, params: Params) -> str:
        params.expect(0)
        value = self.line_filter[self._element(params)]
        return "OFF" if value is None else nr3(value, 1)

    def _set_wiring(self, params: Params) -> None:
        if not params.args:
            raise ScpiError(ErrorCode.MISSING_PARAMETER)
        allowed = {"P1W2", "P1W3", "P3W3", "P3W4", "V3A3"}
        systems = [arg.strip().upper() for arg in params.args]
        if any(system not in allowed for system in systems):
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, ",".join(params.args))
        self.wiring_systems = ",".join(systems)

    def _set_filter(self, params: Params) -> None:
        params.expect(1)
        index = params.suffixes[0]
        if not 1 <= index <= 16:
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"FILTer{index}")
        self.filters[index] = params.choice(
            0, {"RISE": "RISE", "FALL": "FALL", "BOTH": "BOTH", "NEVer": "NEVER"}
        )

    def _get_filter(self, params: Params) -> str:
        params.expect(0)
        return self.filters.get(params.suffixes[0], "NEVER")

    def _set_event_enable(self, params: Params) -> None:
        params.expect(1)
        self.event_enable = params.integer(0, low=0, high=65535)

    def _set_remote(self, params: Params) -> None:
        params.expect(1)
        self.remote = params.boolean(0)

    def _set_header(self, params: Params) -> None:
        params.expect(1)
        if params.boolean(0):
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "response headers not emulated")

    def _set_verbose(self, params: Params) -> None:
        params.expect(1)
        params.boolean(0)

    # --- update events ----------------------------------------------------------------------

    def _event_register(self) -> int:
        """Bit 0 (UPD): an update ended since the register was last read, if FILTer1 passes
        the end of an update (FALL or BOTH; RISE, the start, follows it at once)."""
        assert self.updates is not None
        if self.filters.get(1, "NEVER") == "NEVER":
            return 0
        now = self.now()
        last_end = self.updates.end(self.updates.latest(now))
        return 1 if last_end > self._events_cleared_at else 0

    def _read_events(self, params: Params) -> str:
        params.expect(0)
        value = self._event_register()
        self._events_cleared_at = self.now()
        return str(value)

    def _wait_for(self, params: Params) -> None:
        params.expect(1)
        mask = params.integer(0, low=0, high=65535)
        if self._event_register() & mask or self.forced:
            return
        assert self.updates is not None
        now = self.now()
        # Nothing pending yet: check again when the next update ends (or in one interval when
        # the mask waits for an event this twin never raises: the client's timeout ends it).
        raise Blocked(
            self.updates.next_end_after(now) if mask & 1 else now + self.updates.interval_s
        )

    def _wait(self, params: Params) -> None:
        self._wait_for(params)

    def _wait_query(self, params: Params) -> str:
        self._wait_for(params)
        return "1"

    # --- numeric data ------------------------------------------------------------------------

    def _values(self, params: Params) -> str:
        params.expect(0, 1)
        if params.args:
            wanted = [params.integer(0, low=1, high=self.MAX_ITEMS)]
        else:
            wanted = list(range(1, self.item_count + 1))
        assert self.updates is not None
        k = self.updates.latest(self.now())
        if len(wanted) == 1:
            return self._item_value(wanted[0], k)
        # One pass per element of the update (not per item): a full list is ~24 items over
        # 4 elements, read every sampling period.
        epoch, items, out = self.updates.epoch, self.items, []
        seen: dict[int, tuple[dict[str, str], Mapping[str, float]]] = {}
        for index in wanted:
            item = items.get(index)
            if item is None:
                out.append("NAN")
                continue
            function, element = item
            found = seen.get(element)
            if found is None:
                found = seen[element] = (
                    self._element_texts(epoch, k, element),
                    self._element_values(element, k),
                )
            texts = found[0]
            text = texts.get(function)
            if text is None:
                text = texts[function] = nr3(found[1][function])
            out.append(text)
        return ",".join(out)

    def _element_texts(self, epoch: int, k: int, element: int) -> dict[str, str]:
        key = (epoch, k, element)
        texts = self._texts.get(key)
        if texts is None:
            if len(self._texts) > 512:
                self._texts.clear()
            texts = self._texts[key] = {}
        return texts

    def _item_value(self, index: int, k: int) -> str:
        item = self.items.get(index)
        if item is None:
            return "NAN"
        function, element = item
        assert self.updates is not None
        texts = self._element_texts(self.updates.epoch, k, element)
        text = texts.get(function)
        if text is None:
            text = texts[function] = nr3(self._element_values(element, k)[function])
        return text

    def _element_values(self, element: int, k: int) -> Mapping[str, float]:
        """Every function's value at one element for update k (the same numbers however often
        update k is read)."""
        assert self.updates is not None and self.meter is not None and self.history is not None
        key = (self.updates.epoch, k, element)
        found = self._cache.get(key)
        if found is not None:
            return found
        if len(self._cache) > 512:
            self._cache.clear()
        point = self.wiring.get(element)
        window = self.updates.window(k)
        values: Mapping[str, float]
        if point is None:
            unwired = dict.fromkeys((f.upper() for f in FUNCTIONS), 0.0)
            unwired.update(FU=math.nan, FI=math.nan, LAMBDA=math.nan, PHI=math.nan)
            values = unwired
        elif element in self.dc_elements:
            exact_dc = self.history.average_dc(point, *window)
            dc = measure_dc(
                self.meter,
                self.history,
                f"element{element}",
                point,
                window,
                voltage_range=self._full_scale(
                    self.voltage_range, element, self.VOLTAGE_RANGES_V, exact_dc.v
                ),
                current_range=self._full_scale(
                    self.current_range, element, self.CURRENT_RANGES_A, exact_dc.i
                ),
                exact=exact_dc,
            )
            values = self._dc_functions(dc, element)
        else:
            exact = self.history.average_ac(point, *window)
            ac = measure_ac(
                self.meter,
                self.history,
                f"element{element}",
                point,
                window,
                phases=self.history.phases,
                voltage_range=self._full_scale(
                    self.voltage_range, element, self.VOLTAGE_RANGES_V, exact.v_rms
                ),
                current_range=self._full_scale(
                    self.current_range, element, self.CURRENT_RANGES_A, exact.i_rms
                ),
                exact=exact,
            )
            values = self._ac_functions(ac, element)
        self._cache[key] = values
        return values

    def _full_scale(
        self,
        store: dict[int, float | None],
        element: int,
        ranges: tuple[float, ...],
        value: float | None,
    ) -> float | None:
        fixed = store[element]
        if fixed is not None:
            return fixed
        if value is None or not math.isfinite(value):
            return None
        # Auto range: the smallest range that holds the value.
        magnitude = abs(value)
        for r in ranges:
            if r >= magnitude:
                return r
        return ranges[-1]

    def _overrange(self, value: float, store: dict[int, float | None], element: int) -> float:
        fixed = store[element]
        if fixed is not None and abs(value) > OVERRANGE * fixed:
            return math.copysign(math.inf, value)
        return value

    def _ac_functions(self, ac: AcValues, element: int) -> Mapping[str, float]:
        u = self._overrange(ac.v_rms, self.voltage_range, element)
        i = self._overrange(ac.i_rms, self.current_range, element)
        phi = math.degrees(math.acos(max(-1.0, min(1.0, ac.pf)))) if ac.s_va > 0 else 0.0
        return {
            "URMS": u, "UMN": u, "URMN": u * _RECTIFIED_MEAN, "UAC": u, "UDC": 0.0,
            "IRMS": i, "IMN": i, "IRMN": i * _RECTIFIED_MEAN, "IAC": i, "IDC": 0.0,
            "P": ac.p_w, "S": ac.s_va, "Q": ac.q_var, "LAMBDA": ac.pf,
            "PHI": math.copysign(phi, ac.q_var), "FU": ac.f_hz, "FI": ac.f_hz,
        }  # fmt: skip

    def _dc_functions(self, dc: DcValues, element: int) -> Mapping[str, float]:
        v = self._overrange(dc.v, self.voltage_range, element)
        i = self._overrange(dc.i, self.current_range, element)
        magnitude_v, magnitude_i = abs(v), abs(i)
        s = magnitude_v * magnitude_i
        return {
            "URMS": magnitude_v, "UMN": magnitude_v, "URMN": magnitude_v, "UDC": v,
            "UAC": 0.0, "IRMS": magnitude_i, "IMN": magnitude_i, "IRMN": magnitude_i,
            "IDC": i, "IAC": 0.0, "P": dc.p_w, "S": s, "Q": 0.0,
            "LAMBDA": dc.p_w / s if s > 0 else math.nan, "PHI": 0.0,
            "FU": math.nan, "FI": math.nan,
        }  # fmt: skip
