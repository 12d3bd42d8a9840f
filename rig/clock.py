"""The one source of time for a run: a VirtualClock for emulated benches, a RealClock for hardware.

Nothing else in the rig reads time.time() or calls sleep(). Everything that needs "now" is handed a
Clock; everything that waits calls Clock.sleep_until(). Under a VirtualClock a wait costs nothing:
the clock jumps to the deadline, so an hour of ChargeLoop runs as fast as the CPU can model it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod


class Clock(ABC):
    """Seconds since the start of the run, monotonic."""

    #: True when waits cost no wall time (emulated benches only).
    virtual: bool

    @abstractmethod
    def now(self) -> float:
        """Seconds since the clock was created."""

    @abstractmethod
    def sleep_until(self, t: float) -> None:
        """Return once now() >= t. A deadline in the past returns at once."""

    def sleep(self, dt: float) -> None:
        self.sleep_until(self.now() + dt)


class VirtualClock(Clock):
    """Deterministic time that advances only when someone waits."""

    virtual = True

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def sleep_until(self, t: float) -> None:
        if t > self._now:
            self._now = float(t)


class RealClock(Clock):
    """Wall time from time.monotonic(); waits really sleep (and stay interruptible by signals)."""

    virtual = False

    #: Longest single sleep, so that a Ctrl-C or SIGTERM handler runs promptly on every platform.
    _SLICE = 0.25

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, t: float) -> None:
        while True:
            remaining = t - self.now()
            if remaining <= 0:
                return
            time.sleep(min(remaining, self._SLICE))


class Stopwatch:
    """Wall time spent on something (a run's wall_s, a teardown step), for reports only: it never
    decides anything on the run's timeline, which belongs to the Clock."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
