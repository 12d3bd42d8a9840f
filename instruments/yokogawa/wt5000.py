"""Yokogawa WT5000 precision power analyzer as the rig's power analyzer (one element per point).

SCPI per the WT5000 Communication Interface User's Manual (IM WT5000-17EN), NUMeric group:
`:NUMeric:FORMat ASCII`, `:NUMeric:NORMal:NUMber <n>`, `:NUMeric:NORMal:ITEM<k> <fn>,<element>`
and `:NUMeric:NORMal:VALue?`, which returns items 1..n in one comma-separated line, i.e. one
coherent update of every element. Query-only commands answer without a header, so VALue? needs
no `:COMMunicate:HEADer OFF`. Missing data reads `NAN` and overrange `INF` in ASCII format.
Errors are read with `:STATus:ERRor?` (Yokogawa WT series have no SYSTem:ERRor?).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

from instruments.numbers import parse_number
from instruments.roles import (
    AcReading,
    AnyResource,
    DcReading,
    Instrument,
    Limits,
    PowerAnalyzer,
)

#: Normal-measurement functions read per AC element, in AcReading field order
#: (Urms, Irms, P, Q, S, lambda = power factor, fU = voltage frequency).
AC_FUNCTIONS: tuple[str, ...] = ("URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU")
#: Per DC element: simple averages of voltage and current, and active power.
DC_FUNCTIONS: tuple[str, ...] = ("UDC", "IDC", "P")


class WT5000(PowerAnalyzer):
    maker = "YOKOGAWA"
    model = "WT5000"
    error_query = ":STATus:ERRor?"
    #: The WT5000 mainframe takes up to seven input elements (IM WT5000-01EN 3-2).
    ELEMENTS: ClassVar[range] = range(1, 8)

    def __init__(self, resource: AnyResource, *, limits: Limits | None = None) -> None:
        super().__init__(resource, limits=limits)
        # (point name, is DC, first item index, item count) in item order.
        self._layout: list[tuple[str, bool, int, int]] = []

    @classmethod
    def from_options(
        cls, resource: AnyResource, *, limits: Limits | None, options: Mapping[str, object]
    ) -> Instrument:
        """Options: `elements` {element: point name} and `dc_elements` [element, ...]."""
        unknown = sorted(set(options) - {"elements", "dc_elements"})
        if unknown:
            raise ValueError(f"WT5000 options: unknown {unknown}; known: elements, dc_elements")
        analyzer = cls(resource, limits=limits)
        elements = options.get("elements")
        if elements is not None:
            analyzer.configure(
                element_map(elements), dc_elements=element_list(options.get("dc_elements", ()))
            )
        return analyzer

    def configure(self, points: Mapping[int, str], *, dc_elements: Collection[int] = ()) -> None:
        """Assign the numeric items: seven AC functions per AC element, three per DC element."""
        if not points:
            raise ValueError("WT5000.configure: no elements given")
        for element in points:
            if element not in self.ELEMENTS:
                raise ValueError(f"WT5000 has elements 1..7, not {element}")
        stray = sorted(set(dc_elements) - set(points))
        if stray:
            raise ValueError(f"dc_elements {stray} are not among the configured elements")
        items: list[tuple[str, int]] = []
        layout: list[tuple[str, bool, int, int]] = []
        for element in sorted(points):
            is_dc = element in dc_elements
            functions = DC_FUNCTIONS if is_dc else AC_FUNCTIONS
            layout.append((points[element], is_dc, len(items), len(functions)))
            items.extend((function, element) for function in functions)
        self.write(":NUMeric:FORMat ASCII")
        self.write(f":NUMeric:NORMal:NUMber {len(items)}")
        for index, (function, element) in enumerate(items, start=1):
            self.write(f":NUMeric:NORMal:ITEM{index} {function},{element}")
        self.check_errors()
        self._layout = layout

    def read(self) -> Mapping[str, AcReading | DcReading]:
        if not self._layout:
            raise RuntimeError("WT5000.read: call configure() first")
        reply = self.query(":NUMeric:NORMal:VALue?")
        values = [parse_number(field) for field in reply.split(",")]
        expected = sum(count for *_, count in self._layout)
        if len(values) != expected:
            raise ValueError(f"WT5000 returned {len(values)} values, {expected} configured")
        readings: dict[str, AcReading | DcReading] = {}
        for point, is_dc, start, count in self._layout:
            chunk = values[start : start + count]
            readings[point] = DcReading(*chunk) if is_dc else AcReading(*chunk)
        return readings

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
        result[_element_number(key)] = point
    return result


def element_list(value: object) -> list[int]:
    if isinstance(value, str) or not isinstance(value, Collection):
        raise ValueError(f"dc_elements: expected a list of element numbers, got {value!r}")
    return [_element_number(element) for element in value]


def _element_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"element numbers are integers, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"element numbers are integers, got {value!r}") from None
