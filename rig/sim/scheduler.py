"""Timers on simulated time: the world fires each at its exact time while advancing."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable


class Timer:
    """A pending call; cancel() makes the world skip it."""

    __slots__ = ("callback", "cancelled", "t")

    def __init__(self, t: float, callback: Callable[[], None]) -> None:
        self.t = t
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A heap of timers ordered by time, then by the order they were set (deterministic)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def call_at(self, t: float, callback: Callable[[], None]) -> Timer:
        if math.isnan(t):
            raise ValueError("timer time is NaN")
        timer = Timer(t, callback)
        heapq.heappush(self._heap, (t, next(self._seq), timer))
        return timer

    def next_time(self) -> float:
        """Time of the earliest live timer, +inf if none."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def pop_due(self, now: float) -> Timer | None:
        """The earliest live timer due at or before `now`, removed from the heap; else None."""
        if self.next_time() <= now:
            return heapq.heappop(self._heap)[2]
        return None
