"""The one source of time for a run, and the one scheduler under it.

A VirtualClock runs emulated benches deterministically and as fast as the CPU allows: its scheduler
is a bare heap, and time jumps from one due call to the next. A RealClock runs real hardware: its
scheduler is an asyncio event loop that the runner drives between deadlines, so sockets and TLS are
served during every wait (DESIGN.md "One clock, one scheduler"). Both offer the same calls:

    clock.now()                  seconds since the run started
    clock.call_at(t, fn)         fn() once the timeline reaches t; returns a handle with cancel()
    clock.run_until(t)           serve every call due up to t, in time order, then return at t

Nothing else in the rig reads time.time() or sleeps; wall time for reports comes from a Stopwatch.
rig.v2g does not import this module: it takes any object with now() and call_at() (its own small
Scheduler protocol), which both clocks satisfy.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol


class ClockError(RuntimeError):
    """A misuse of the clock: run_until from inside a scheduled call, a NaN deadline."""


class Handle:
    """A call scheduled on a VirtualClock; cancel() is idempotent and harmless after the call."""

    __slots__ = ("cancelled", "fn", "t")

    def __init__(self, t: float, fn: Callable[[], None]) -> None:
        self.t = t
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerHandle(Protocol):
    """What call_at returns on either clock (a Handle, or asyncio's TimerHandle)."""

    def cancel(self) -> None: ...


#: The wall-clock instant a virtual timeline starts at (2026-01-01 UTC): what time stamps written
#: for other tools (captures, -20 header TimeStamps) count from, the same for every run of a seed.
VIRTUAL_EPOCH_NS = 1_767_225_600 * 10**9


class Clock(ABC):
    """Seconds since the start of the run (monotonic), and calls at given times on that timeline."""

    #: True when waits cost no wall time (emulated benches only).
    virtual: bool
    #: Unix time (ns) of t = 0: the run's real start, or VIRTUAL_EPOCH_NS in virtual time.
    epoch_ns: int = VIRTUAL_EPOCH_NS

    @abstractmethod
    def now(self) -> float:
        """Seconds since the clock was created."""

    @abstractmethod
    def call_at(self, t: float, fn: Callable[[], None]) -> TimerHandle:
        """Run fn once when the timeline reaches t (at the next opportunity if t <= now)."""

    @abstractmethod
    def run_until(self, t: float) -> None:
        """Serve every call due up to t in time order, then return with now() >= t. An exception
        raised by a call (an instrument that failed, Ctrl-C) propagates out of run_until."""

    def call_later(self, dt: float, fn: Callable[[], None]) -> TimerHandle:
        return self.call_at(self.now() + dt, fn)

    def sleep_until(self, t: float) -> None:
        """Wait until t, serving scheduled calls meanwhile (the same as run_until)."""
        self.run_until(t)

    def sleep(self, dt: float) -> None:
        self.run_until(self.now() + dt)

    def close(self) -> None:  # noqa: B027 - optional hook; most clocks hold nothing
        """Release what the clock holds (the real clock's event loop); pending calls are dropped."""


def _check_time(t: float) -> float:
    if math.isnan(t):
        raise ClockError("a time on the clock must not be NaN")
    return float(t)


class VirtualClock(Clock):
    """Deterministic time that advances only through run_until; ties run in scheduling order."""

    virtual = True

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, Handle]] = []
        self._seq = itertools.count()
        self._running = False

    def now(self) -> float:
        return self._now

    def call_at(self, t: float, fn: Callable[[], None]) -> Handle:
        handle = Handle(_check_time(t), fn)
        heapq.heappush(self._heap, (handle.t, next(self._seq), handle))
        return handle

    def run_until(self, t: float) -> None:
        t = _check_time(t)
        if self._running:
            raise ClockError("run_until called from inside a scheduled call")
        self._running = True
        heap = self._heap
        try:
            while heap and heap[0][0] <= t:
                due, _, handle = heapq.heappop(heap)
                if handle.cancelled:
                    continue
                if due > self._now:
                    self._now = due
                handle.cancelled = True  # ran: a later cancel() is a no-op
                handle.fn()
        finally:
            self._running = False
        if t > self._now:
            self._now = t

    def pending(self) -> int:
        """Scheduled calls not yet run nor cancelled (for tests and diagnostics)."""
        return sum(1 for _, _, h in self._heap if not h.cancelled)

    def close(self) -> None:
        self._heap.clear()


class RealClock(Clock):
    """Wall time (time.monotonic through the loop); run_until runs an asyncio loop to the deadline.

    Sockets, servers and TLS layers created on `loop` are served whenever the runner waits. Signals
    interrupt the loop's select() at once, so Ctrl-C and SIGTERM handlers run promptly.
    """

    virtual = False

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._t0 = self.loop.time()
        self.epoch_ns = time.time_ns()
        self._error: BaseException | None = None

    def now(self) -> float:
        return self.loop.time() - self._t0

    def call_at(self, t: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_at(self._t0 + _check_time(t), self._guarded, fn)

    def _guarded(self, fn: Callable[[], None]) -> None:
        # asyncio would log and swallow an exception from a callback; the run must see it.
        try:
            fn()
        except BaseException as exc:
            if self._error is None:
                self._error = exc
            self.loop.stop()

    def run_until(self, t: float) -> None:
        t = _check_time(t)
        loop = self.loop
        if loop.is_running():
            raise ClockError("run_until called from inside a scheduled call")
        stop = loop.call_at(self._t0 + t, loop.stop)
        try:
            loop.run_forever()
        finally:
            stop.cancel()
        error, self._error = self._error, None
        if error is not None:
            raise error
        # loop.stop() runs on the iteration at or after the deadline; asyncio may wake a little
        # early for a timer (its clock resolution), so finish the last fraction here.
        remaining = t - self.now()
        if remaining > 0:
            time.sleep(remaining)

    def block_until(self, t: float) -> None:
        """Block the calling thread until t, serving nothing: for worker threads (an emulated
        instrument's server thread waiting for its next update), never for the run's own."""
        remaining = t - self.now()
        if remaining > 0:
            time.sleep(remaining)

    def close(self) -> None:
        if not self.loop.is_closed() and not self.loop.is_running():
            self.loop.close()


class Stopwatch:
    """Wall time spent on something (a run's wall_s, a teardown step), for reports only: it never
    decides anything on the run's timeline, which belongs to the Clock."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0
