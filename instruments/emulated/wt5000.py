"""Emulated Yokogawa WT5000: input elements wired to World measurement points, NUMeric group.

Wiring comes from the `elements` option ({element: point}); elements listed in `dc_elements`
are wired to a DC point and read `measure_dc`, the others `measure_ac`. An element with nothing
wired reads zero (and NAN for frequency, as nothing crosses zero).

What is emulated of IM WT5000-17EN: `:NUMeric:FORMat ASCII`, `:NUMeric[:NORMal]:NUMber`,
`:ITEM<x> {NONE|<function>,<element>}`, `:VALue? [<item>]`, `:CLEar`, `:COMMunicate:REMote`,
`:COMMunicate:HEADer OFF`, `:STATus:ERRor?`. Not emulated (refused with -221): FLOat format
(binary blocks) and response headers (HEADer ON); functions beyond the basic set are refused
with -224.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError, nr3
from instruments.emulated.twin import Twin
from instruments.yokogawa.wt5000 import element_list, element_map

#: The emulated bench's default wiring: the three AC points and the EVSE's DC output.
DEFAULT_ELEMENTS: Mapping[int, str] = {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}
DEFAULT_DC_ELEMENTS: tuple[int, ...] = (4,)

#: Function mnemonics (long form, lower case = optional) accepted in ITEM<x>.
FUNCTIONS: tuple[str, ...] = (
    "URMS", "UMN", "UDC", "URMN", "UAC",
    "IRMS", "IMN", "IDC", "IRMN", "IAC",
    "P", "S", "Q", "LAMBda", "PHI", "FU", "FI",
)  # fmt: skip


def _canonical(text: str) -> str | None:
    upper = text.strip().upper()
    for mnemonic in FUNCTIONS:
        short = "".join(c for c in mnemonic if not c.islower())
        if upper in (mnemonic.upper(), short):
            return mnemonic.upper()
    return None


class WT5000Twin(Twin):
    maker = "YOKOGAWA"
    default_model = "WT5000"
    firmware = "F1.01"  # (?) format of the WT5000 firmware field not confirmed
    option_names = frozenset({"elements", "dc_elements"})
    error_query_pattern = ":STATus:ERRor"
    # IM WT5000-17EN 4.2 "Header Interpretation Rules": lower-case letters may be omitted.
    accept_truncations = True
    ELEMENTS: ClassVar[range] = range(1, 8)
    #: (?) item count range for NUMber; the WT1600 manual documents 1 to 255.
    MAX_ITEMS: ClassVar[int] = 255

    def configure(self) -> None:
        """Ratings and initial state from the options and the world."""
        elements = self.options.get("elements", DEFAULT_ELEMENTS)
        self.wiring: dict[int, str] = element_map(elements)
        self.dc_elements = frozenset(
            element_list(self.options.get("dc_elements", DEFAULT_DC_ELEMENTS))
        )
        for element in [*self.wiring, *self.dc_elements]:
            if element not in self.ELEMENTS:
                raise ValueError(f"WT5000 twin: no element {element} (1..7)")
        self.reset()
        self.remote = False

    def reset(self) -> None:
        self.numeric_format = "ASCII"
        self.item_count = 15
        self.items: dict[int, tuple[str, int] | None] = {}

    def state(self) -> dict[str, bool | float | str]:
        return {
            "remote": self.remote,
            "numeric_format": self.numeric_format,
            "item_count": self.item_count,
        }

    def commands(self) -> Sequence[Command]:
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
            Command(
                ":COMMunicate:REMote", write=self._set_remote, read=lambda p: str(int(self.remote))
            ),
            Command(":COMMunicate:HEADer", write=self._set_header, read=lambda p: "0"),
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

    def _set_remote(self, params: Params) -> None:
        params.expect(1)
        self.remote = params.boolean(0)

    def _set_header(self, params: Params) -> None:
        params.expect(1)
        if params.boolean(0):
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "response headers not emulated")

    # --- numeric data ------------------------------------------------------------------------

    def _values(self, params: Params) -> str:
        params.expect(0, 1)
        if params.args:
            wanted = [params.integer(0, low=1, high=self.MAX_ITEMS)]
        else:
            wanted = list(range(1, self.item_count + 1))
        cache: dict[int, Mapping[str, float]] = {}
        return ",".join(self._item_value(index, cache) for index in wanted)

    def _item_value(self, index: int, cache: dict[int, Mapping[str, float]]) -> str:
        item = self.items.get(index)
        if item is None:
            return "NAN"
        function, element = item
        if element not in cache:
            cache[element] = self._element_values(element)
        return nr3(cache[element][function])

    def _element_values(self, element: int) -> Mapping[str, float]:
        """Every function's value at one element, from one World measurement."""
        point = self.wiring.get(element)
        if point is None:
            zero = dict.fromkeys((f.upper() for f in FUNCTIONS), 0.0)
            zero.update(FU=math.nan, FI=math.nan, LAMBDA=math.nan, PHI=math.nan)
            return zero
        if element in self.dc_elements:
            dc = self.acquire_dc(point)
            magnitude_v, magnitude_i = abs(dc.v), abs(dc.i)
            s = magnitude_v * magnitude_i
            return {
                "URMS": magnitude_v, "UMN": magnitude_v, "URMN": magnitude_v, "UDC": dc.v,
                "UAC": 0.0, "IRMS": magnitude_i, "IMN": magnitude_i, "IRMN": magnitude_i,
                "IDC": dc.i, "IAC": 0.0, "P": dc.p_w, "S": s, "Q": 0.0,
                "LAMBDA": dc.p_w / s if s > 0 else math.nan, "PHI": 0.0,
                "FU": math.nan, "FI": math.nan,
            }  # fmt: skip
        ac = self.acquire_ac(point)
        phi = math.degrees(math.acos(max(-1.0, min(1.0, ac.pf)))) if ac.s_va > 0 else 0.0
        return {
            "URMS": ac.v_rms, "UMN": ac.v_rms, "URMN": ac.v_rms, "UAC": ac.v_rms, "UDC": 0.0,
            "IRMS": ac.i_rms, "IMN": ac.i_rms, "IRMN": ac.i_rms, "IAC": ac.i_rms, "IDC": 0.0,
            "P": ac.p_w, "S": ac.s_va, "Q": ac.q_var, "LAMBDA": ac.pf,
            "PHI": math.copysign(phi, ac.q_var), "FU": ac.f_hz, "FI": ac.f_hz,
        }  # fmt: skip
