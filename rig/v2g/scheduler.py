"""The scheduler the ISO 15118 stack runs on: its own small protocol, so rig.v2g imports no clock.

rig.clock's scheduler satisfies it structurally (virtual time: a bare heap; real time: an asyncio
loop served between deadlines). Tests may hand the stack any object with these two methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """A pending call; cancel() is idempotent and a no-op once the call has run."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Seconds on the run's one timeline, and calls at given times on it."""

    def now(self) -> float: ...

    def call_at(self, t: float, fn: Callable[[], None]) -> TimerHandle:
        """Run fn once when the timeline reaches t (at the next opportunity if t <= now)."""
        ...
