"""Role: an oscilloscope capturing instantaneous voltage and current around a trigger."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from enum import StrEnum

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import Waveform


class TriggerSlope(StrEnum):
    RISING = "rising"
    FALLING = "falling"
    EITHER = "either"


class Coupling(StrEnum):
    DC = "dc"
    AC = "ac"


class Oscilloscope(Instrument):
    """Channels, a timebase, an edge or software trigger, and waveforms as numpy arrays.

    The usual capture: configure, `arm()` (a single acquisition waiting for its trigger), do
    what should trigger it (or `force_trigger()` at the moment of interest), let time pass,
    then `fetch()` once `acquisition_complete()`; `capture()` does arm-wait-fetch in one go.
    """

    role = Role.SCOPE

    @property
    @abstractmethod
    def channel_count(self) -> int: ...

    @abstractmethod
    def configure_channel(
        self,
        channel: int,
        *,
        per_div: float,
        offset: float = 0.0,
        probe: float = 1.0,
        unit: str = "V",
        coupling: Coupling = Coupling.DC,
    ) -> None:
        """Vertical scale in `unit` per division, offset in `unit`, probe attenuation ratio;
        `unit` "V" or "A" (a current probe)."""

    @abstractmethod
    def set_timebase(self, *, seconds_per_div: float, delay_s: float = 0.0) -> None:
        """Horizontal scale; `delay_s` moves the screen centre that far after the trigger."""

    @abstractmethod
    def set_edge_trigger(
        self, source: str, *, level: float, slope: TriggerSlope = TriggerSlope.RISING
    ) -> None:
        """Edge trigger on `source` ("CHAN1".. or "EXT") crossing `level` (in its unit)."""

    @abstractmethod
    def arm(self) -> None:
        """Start one acquisition; it completes after its trigger and the post-trigger time."""

    @abstractmethod
    def force_trigger(self) -> None:
        """Trigger now (a software trigger at the moment of the call)."""

    @abstractmethod
    def acquisition_complete(self) -> bool: ...

    @abstractmethod
    def fetch(self, channel: int) -> Waveform:
        """The last acquisition of `channel`, scaled to its unit, t = 0 at the trigger."""

    @abstractmethod
    def capture(self, channels: Iterable[int]) -> Mapping[int, Waveform]:
        """Acquire once (blocking until triggered and complete) and fetch `channels`."""
