"""Passive anti-islanding protection: the IEEE 1547-2018 voltage and frequency trip table.

A trip setting is violated while the bus voltage (per unit of nominal) or frequency (deviation from
nominal, in Hz) is beyond its threshold; a violation that lasts the setting's clearing time trips
the inverter. The relay is a pure tracker: the world feeds it the bus state after every step and
asks when the next trip falls due, so no timer needs cancelling when a violation clears.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class TripQuantity(StrEnum):
    """What a trip setting watches."""

    VOLTAGE = "voltage"
    FREQUENCY = "frequency"


class TripDirection(StrEnum):
    """Whether a setting trips above or below its threshold."""

    OVER = "over"
    UNDER = "under"


@dataclass(frozen=True)
class TripSetting:
    """One row of a trip table.

    threshold: per unit of nominal voltage for VOLTAGE, deviation from nominal frequency in Hz for
    FREQUENCY (IEEE 1547 gives absolute Hz for 60 Hz systems; the deviation carries them to 50 Hz,
    which is our reading, not the standard's text (?), hence configurable).
    """

    name: str
    quantity: TripQuantity
    direction: TripDirection
    threshold: float
    clearing_s: float

    def __post_init__(self) -> None:
        if self.clearing_s < 0 or not math.isfinite(self.clearing_s):
            raise ValueError(f"trip {self.name}: clearing time must be >= 0, got {self.clearing_s}")

    def violated(self, v_pu: float, df_hz: float | None) -> bool:
        """True while the bus is beyond this setting. df_hz None: no frequency (dead bus)."""
        if self.quantity is TripQuantity.VOLTAGE:
            value: float = v_pu
        elif df_hz is None:
            return False
        else:
            value = df_hz
        if self.direction is TripDirection.OVER:
            return value > self.threshold
        return value < self.threshold


V, F = TripQuantity.VOLTAGE, TripQuantity.FREQUENCY
OVER, UNDER = TripDirection.OVER, TripDirection.UNDER

#: IEEE 1547-2018 default trip settings, Category II voltage (Table 11) and the frequency defaults
#: common to all categories (Table 15): OF2 62.0 Hz, OF1 61.2 Hz, UF1 58.5 Hz, UF2 56.5 Hz on a
#: 60 Hz system, carried over as deviations of +2.0, +1.2, -1.5 and -3.5 Hz.
CATEGORY_II_TRIPS: tuple[TripSetting, ...] = (
    TripSetting("OV2", V, OVER, 1.20, 0.16),
    TripSetting("OV1", V, OVER, 1.10, 2.0),
    TripSetting("UV1", V, UNDER, 0.70, 10.0),
    TripSetting("UV2", V, UNDER, 0.45, 0.16),
    TripSetting("OF2", F, OVER, 2.0, 0.16),
    TripSetting("OF1", F, OVER, 1.2, 300.0),
    TripSetting("UF1", F, UNDER, -1.5, 300.0),
    TripSetting("UF2", F, UNDER, -3.5, 0.16),
)


class PassiveProtection:
    """Tracks since when each trip setting has been violated; the first to outlast its clearing
    time trips. min_clearing_s stretches every clearing time (a seeded slow-detection defect)."""

    def __init__(self, settings: Iterable[TripSetting], *, min_clearing_s: float = 0.0) -> None:
        self.settings = tuple(settings)
        self._clearing = {s.name: max(s.clearing_s, min_clearing_s) for s in self.settings}
        self._since: dict[str, float] = {}
        # The same test as TripSetting.violated, unrolled: this runs after every substep.
        self._rows = tuple(
            (
                s.name,
                s.quantity is TripQuantity.VOLTAGE,
                s.direction is TripDirection.OVER,
                s.threshold,
            )
            for s in self.settings
        )

    def update(self, now: float, v_pu: float, df_hz: float | None) -> None:
        """Feed the bus state at `now`: violations start or clear here."""
        since = self._since
        for name, is_voltage, over, threshold in self._rows:
            value = v_pu if is_voltage else df_hz
            if value is not None and (value > threshold if over else value < threshold):
                if name not in since:
                    since[name] = now
            elif since:
                since.pop(name, None)

    def reset(self) -> None:
        """Forget every pending violation (the relay is not watching)."""
        self._since.clear()

    def next_trip(self) -> tuple[float, TripSetting] | None:
        """When the earliest pending violation trips, and which setting it is."""
        if not self._since:
            return None
        best: tuple[float, TripSetting] | None = None
        for setting in self.settings:
            since = self._since.get(setting.name)
            if since is None:
                continue
            due = since + self._clearing[setting.name]
            if best is None or due < best[0]:
                best = (due, setting)
        return best

    @property
    def pending(self) -> dict[str, float]:
        """Violated settings and since when (a copy)."""
        return dict(self._since)
