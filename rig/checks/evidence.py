"""What a check may conclude from a channel: its valid readings, and the gaps it must not judge over.

A missing reading (NaN: an instrument that did not answer, a value the trace could not hold) is
never dropped silently. A check asks for the readings of a channel over the window it judges,
with the longest gap it can accept there; a longer gap (between two valid readings, or between
the window's edges and the nearest reading) is a `Gap` naming the channel and the times, which the
check turns into an error verdict. Infinite readings (an analyzer's overrange) are readings: they
say "more than the range", which a threshold can judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.trace import FloatArray, Trace


@dataclass(frozen=True)
class Gap:
    """A stretch of a judged window without a valid reading."""

    channel: str
    start: float
    end: float
    allowed: float

    @property
    def length(self) -> float:
        return self.end - self.start

    def describe(self) -> str:
        return (
            f"{self.channel}: no valid reading for {self.length:.3f} s (t={self.start:.3f} s to "
            f"t={self.end:.3f} s) inside the judged window; at most {self.allowed:g} s allowed"
        )


@dataclass(frozen=True, eq=False)
class Readings:
    """The valid readings of one channel (NaN removed), times ascending."""

    channel: str
    t: FloatArray
    v: FloatArray

    @property
    def empty(self) -> bool:
        return self.t.size == 0

    def between(self, t0: float, t1: float) -> Readings:
        keep = (self.t >= t0) & (self.t <= t1)
        return Readings(self.channel, self.t[keep], self.v[keep])

    def spacing_at(self, t: float) -> float:
        """The spacing of the readings around time t (the larger of the two neighbouring
        intervals): the time resolution of an instant found there."""
        n = self.t.size
        if n < 2:
            return math.inf
        k = min(max(int(np.searchsorted(self.t, t)), 1), n - 1)
        left = float(self.t[k] - self.t[k - 1])
        right = float(self.t[k + 1] - self.t[k]) if k + 1 < n else left
        return max(left, right)

    def max_spacing(self, t0: float, t1: float) -> float:
        """The longest interval between readings inside [t0, t1], counting the edges."""
        inner = self.t[(self.t >= t0) & (self.t <= t1)]
        if inner.size == 0:
            return t1 - t0
        edges = np.concatenate(([t0], inner, [t1]))
        return float(np.max(np.diff(edges)))

    def last_before(self, t: float) -> tuple[float, float] | None:
        """(time, value) of the last reading at or before t."""
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        return None if k < 0 else (float(self.t[k]), float(self.v[k]))

    def mean(self, t0: float, t1: float) -> float | None:
        """Time-weighted mean over [t0, t1] (each reading holds until the next); None if no
        reading falls in the window."""
        inside = self.between(t0, t1)
        if inside.t.size == 0:
            return None
        if inside.t.size == 1:
            return float(inside.v[0])
        edges = np.concatenate((inside.t, [t1]))
        weights = np.diff(edges)
        total = float(np.sum(weights))
        if total <= 0.0:
            return float(np.mean(inside.v))
        return float(np.sum(weights * inside.v) / total)


def too_sparse(spacing: float, allowed: float) -> bool:
    """True when readings `spacing` apart are further apart than `allowed` (sampling on a fixed
    period lands a hair either side of it: one part in a million is forgiven)."""
    return spacing > allowed * (1.0 + 1e-6) + 1e-9


def readings(trace: Trace, channel: str) -> Readings:
    t, v = trace.series(channel)
    ok = ~np.isnan(v)
    return Readings(channel, t[ok], v[ok])


def longest_gap(trace: Trace, channel: str, t0: float, t1: float) -> tuple[float, float, float]:
    """(length, start, end) of the longest stretch of [t0, t1] without a valid reading of
    `channel` (the window's edges count as the ends of a stretch)."""
    t, v = trace.series(channel)
    ok = ~np.isnan(v)
    inner = t[ok & (t >= t0) & (t <= t1)]
    edges = np.concatenate(([t0], inner, [t1]))
    gaps = np.diff(edges)
    if gaps.size == 0:
        return 0.0, t0, t1
    k = int(np.argmax(gaps))
    return float(gaps[k]), float(edges[k]), float(edges[k + 1])


def window(trace: Trace, channel: str, t0: float, t1: float, max_gap: float) -> Readings | Gap:
    """The valid readings of `channel` over [t0, t1], or the first Gap longer than `max_gap`."""
    length, start, end = longest_gap(trace, channel, t0, t1)
    if too_sparse(length, max_gap):
        return Gap(channel, start, end, max_gap)
    return readings(trace, channel).between(t0, t1)


def last_sample_time(trace: Trace, *channels: str) -> float:
    """The last time any of `channels` was sampled (the end of what was measured; the trace's
    own end may lie later, after the bench's teardown)."""
    ends = [float(trace.series(ch)[0][-1]) for ch in channels if trace.series(ch)[0].size]
    return max(ends) if ends else trace.end_t
