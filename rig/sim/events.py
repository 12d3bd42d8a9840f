"""Session events: what the emulated DUT claims happened, and the log the runner drains.

The events are the DUT's own claims (its session state, "island_detected", "reserve_reached"...);
the checks never rely on them, they judge from the instruments' readings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class SessionEvent:
    """One claim at simulated time t."""

    t: float
    name: str
    data: Mapping[str, object] = field(default_factory=dict)


Listener = Callable[[SessionEvent], None]


class EventLog:
    """Collects events until drained; listeners see each event as it is emitted."""

    def __init__(self) -> None:
        self._pending: list[SessionEvent] = []
        self._listeners: list[Listener] = []

    def emit(self, t: float, name: str, data: Mapping[str, object] | None = None) -> SessionEvent:
        event = SessionEvent(t, name, MappingProxyType(dict(data or {})))
        self._pending.append(event)
        for listener in tuple(self._listeners):
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def drain(self) -> list[SessionEvent]:
        """Everything emitted since the last drain, in order."""
        out, self._pending = self._pending, []
        return out
