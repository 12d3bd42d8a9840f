"""The bench's measurement points: declared once, used by the bench file, the physics and checks.

A point is a place in the bench's one-line diagram where a power analyzer element can sit: the
grid connection (import positive), the EVSE's AC terminals and the home (both consumption
positive; the EVSE's power positive when it charges the EV) and the EVSE's DC side (positive into
the EV battery). Trace channels are named `<instrument role>.<point>.<quantity>`.
"""

from __future__ import annotations

from enum import StrEnum


class MeasurementPoint(StrEnum):
    GRID = "grid"
    EVSE_AC = "evse_ac"
    HOME = "home"
    EVSE_DC = "evse_dc"

    @property
    def is_dc(self) -> bool:
        return self is MeasurementPoint.EVSE_DC

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(p.value for p in cls)


AC_POINTS: tuple[str, ...] = tuple(p.value for p in MeasurementPoint if not p.is_dc)
DC_POINTS: tuple[str, ...] = tuple(p.value for p in MeasurementPoint if p.is_dc)
