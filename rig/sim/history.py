"""A record of the bench's solved state over time, for instruments that average or capture it.

The World solves its bus at every change and every integration substep; each solve leaves one
row here, and a row holds from its time until the next row's (the bench is piecewise constant
between solves). A power analyzer averages a window of rows into its RMS readings; a scope turns
rows into instantaneous waveforms (waveform.py). Phase angles are integrated at record time, so
that a waveform's phase is continuous across rows and the same for every reader.

Bounded: rows older than `span_s` before the newest row are dropped (the row in force at the
start of the span is kept), and never more than `max_rows` are held (300,000 by default: five
minutes of the World's 1 ms substeps, about 140 MB at most).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: What each row holds, in order (after the time). Angles in radians, powers totals over the
#: phases, point signs as in World.measure_ac; grid_theta is the angle at the grid point (the
#: source's while it is on, the bus's while the island shows through), source_on 1/0 the grid
#: source's output, connected 1/0 whether the grid holds the home bus, decay_tau_s the time constant with which a dead bus's voltage rings down
#: (the RLC tank's 2RC; 0 for a load that stores no energy).
COLUMNS: tuple[str, ...] = (
    "bus_v",
    "bus_f",
    "bus_theta",
    "grid_v",
    "grid_f",
    "grid_theta",
    "grid_p",
    "grid_q",
    "home_p",
    "home_q",
    "evse_p",
    "evse_q",
    "dc_v",
    "dc_i",
    "source_on",
    "connected",
    "decay_tau_s",
)
_INDEX: Mapping[str, int] = {name: i for i, name in enumerate(COLUMNS)}
#: What record() is given: every column but the two angles, which are integrated here.
INPUTS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("bus_theta", "grid_theta"))
_BUS_THETA, _GRID_THETA = COLUMNS.index("bus_theta"), COLUMNS.index("grid_theta")
_IN_BUS_F, _IN_GRID_F = INPUTS.index("bus_f"), INPUTS.index("grid_f")
_IN_CONNECTED, _IN_SOURCE_ON = INPUTS.index("connected"), INPUTS.index("source_on")
assert _BUS_THETA < _GRID_THETA

#: Per AC point: (voltage, frequency, angle, P, Q) columns.
AC_POINT_COLUMNS: Mapping[str, tuple[str, str, str, str, str]] = {
    "grid": ("grid_v", "grid_f", "grid_theta", "grid_p", "grid_q"),
    "evse_ac": ("bus_v", "bus_f", "bus_theta", "evse_p", "evse_q"),
    "home": ("bus_v", "bus_f", "bus_theta", "home_p", "home_q"),
}
DC_POINTS: tuple[str, ...] = ("evse_dc",)

_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class AcAverage:
    """A point's AC quantities averaged over a window the way an RMS meter averages them:
    V and I are the root of the mean square, P and Q the mean, S = phases x V x I, f the mean
    over the time the point was energized (NaN if never)."""

    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float


@dataclass(frozen=True)
class DcAverage:
    v: float
    i: float
    p_w: float


@dataclass(frozen=True, eq=False)
class HistorySlice:
    """The rows covering a time window: `t[k]` is when row k starts; columns by name."""

    t: FloatArray
    columns: Mapping[str, FloatArray]

    def __getitem__(self, name: str) -> FloatArray:
        return self.columns[name]


class StateHistory:
    """Rows of (time, solved state); see the module docstring."""

    def __init__(self, span_s: float, *, phases: int = 1, max_rows: int = 300_000) -> None:
        if not (span_s > 0 and math.isfinite(span_s)):
            raise ValueError(f"history span must be a positive number of seconds, got {span_s!r}")
        if max_rows < 2:
            raise ValueError("a history needs room for at least two rows")
        self.span_s = float(span_s)
        self.phases = phases
        self.max_rows = max_rows
        self._times: list[float] = []
        self._rows: list[tuple[float, ...]] = []
        self._next_trim = 4096

    def extend_span(self, span_s: float) -> None:
        """Keep at least `span_s` seconds from now on (never shortens)."""
        self.span_s = max(self.span_s, float(span_s))

    def __len__(self) -> int:
        return len(self._times)

    @property
    def start(self) -> float:
        """Time of the oldest row held (NaN when empty)."""
        return self._times[0] if self._times else math.nan

    @property
    def end(self) -> float:
        """Time of the newest row (NaN when empty)."""
        return self._times[-1] if self._times else math.nan

    # --- recording ------------------------------------------------------------------------------

    def record(self, t: float, values: Sequence[float]) -> None:
        """Add the state from time t on (values in INPUTS order); a second row at the same time
        replaces the first (several solves at one instant: the last one holds)."""
        if len(values) != len(INPUTS):
            raise ValueError(f"a history row has {len(INPUTS)} values, got {len(values)}")
        times = self._times
        replace = bool(times) and t == times[-1]
        if times and t < times[-1]:
            raise ValueError(f"history rows go forward in time: {t} after {times[-1]}")
        base = len(times) - (2 if replace else 1)
        if base >= 0:
            bus, grid = self._angles(t - times[base], self._rows[base], values)
        else:  # the first row: angles as if the frequency had always been what it is now
            bus = _wrap(_TWO_PI * values[_IN_BUS_F] * t)
            grid = _wrap(_TWO_PI * values[_IN_GRID_F] * t)
            if values[_IN_CONNECTED] > 0.5:
                bus = grid
        # COLUMNS is INPUTS with the two angles inserted at their places (checked at import).
        row = (*values[:_BUS_THETA], bus, *values[_BUS_THETA : _GRID_THETA - 1], grid,
               *values[_GRID_THETA - 1 :])  # fmt: skip
        if replace:
            self._rows[-1] = row
            return
        times.append(t)
        self._rows.append(row)
        if len(times) >= self._next_trim or len(times) > self.max_rows:
            self._trim()

    @staticmethod
    def _angles(
        dt: float, previous: tuple[float, ...], values: Sequence[float]
    ) -> tuple[float, float]:
        bus = _wrap(previous[_BUS_THETA] + _TWO_PI * previous[_INDEX["bus_f"]] * dt)
        grid = _wrap(previous[_GRID_THETA] + _TWO_PI * previous[_INDEX["grid_f"]] * dt)
        if values[_IN_CONNECTED] > 0.5:
            # A bus held by the grid runs in the grid's phase (a reconnection resynchronizes).
            bus = grid
        elif values[_IN_SOURCE_ON] <= 0.5:
            # The grid point shows the island through the open source: the bus's angle.
            grid = bus
        return bus, grid

    def _trim(self) -> None:
        newest = self._times[-1]
        cut = bisect.bisect_right(self._times, newest - self.span_s) - 1
        cut = max(cut, len(self._times) - self.max_rows)
        if cut > 0:
            del self._times[:cut]
            del self._rows[:cut]
        self._next_trim = len(self._times) + max(4096, len(self._times))

    # --- reading ----------------------------------------------------------------------------------

    def _index_at(self, t: float) -> int:
        """Index of the row in force at t (the first row for times before it)."""
        if not self._times:
            raise LookupError("the history holds no rows yet")
        return max(bisect.bisect_right(self._times, t) - 1, 0)

    def state_at(self, t: float) -> Mapping[str, float]:
        row = self._rows[self._index_at(t)]
        return dict(zip(COLUMNS, row, strict=True))

    def slice(self, t0: float, t1: float, *, lead_s: float = 0.0) -> HistorySlice:
        """The rows in force anywhere in [t0 - lead_s, t1] (the first may start before)."""
        first = self._index_at(t0 - lead_s)
        last = max(bisect.bisect_right(self._times, t1), first + 1)
        times = np.asarray(self._times[first:last], dtype=np.float64)
        table = np.asarray(self._rows[first:last], dtype=np.float64)
        return HistorySlice(times, {name: table[:, i] for i, name in enumerate(COLUMNS)})

    def _spans(self, t0: float, t1: float) -> list[tuple[float, tuple[float, ...]]]:
        """(duration, row) for every row in force within [t0, t1] (the first row also stands
        for the time before it was recorded). Plain Python: windows hold a few rows, where
        numpy's per-call cost would dominate."""
        times, rows = self._times, self._rows
        k = self._index_at(t0)
        last = bisect.bisect_right(times, t1)
        out: list[tuple[float, tuple[float, ...]]] = []
        start = t0
        while True:
            end = times[k + 1] if k + 1 < len(times) else math.inf
            stop = min(end, t1)
            if stop > start:
                out.append((stop - start, rows[k]))
            k += 1
            if k >= last or end >= t1:
                break
            start = end
        return out

    def average_ac(self, point: str, t0: float, t1: float) -> AcAverage:
        """The window [t0, t1] of an AC point averaged like an RMS meter (see AcAverage)."""
        try:
            columns = AC_POINT_COLUMNS[point]
        except KeyError:
            raise ValueError(
                f"unknown AC point {point!r}; known: {sorted(AC_POINT_COLUMNS)}"
            ) from None
        iv, i_f, _, ip, iq = (_INDEX[c] for c in columns)
        if t1 <= t0:
            row = self._rows[self._index_at(t1)]
            return _ac_from(row[iv], row[i_f], row[ip], row[iq], self.phases)
        total = v2 = i2 = p_sum = q_sum = f_sum = live = 0.0
        phases = self.phases
        for w, row in self._spans(t0, t1):
            v, p, q = row[iv], row[ip], row[iq]
            total += w
            p_sum += w * p
            q_sum += w * q
            if v > 0:
                v2 += w * v * v
                i = math.hypot(p, q) / (phases * v)
                i2 += w * i * i
                f_sum += w * row[i_f]
                live += w
        v_rms = math.sqrt(v2 / total)
        i_rms = math.sqrt(i2 / total)
        p_mean, q_mean = p_sum / total, q_sum / total
        s_va = phases * v_rms * i_rms
        pf = max(-1.0, min(1.0, p_mean / s_va)) if s_va > 0 else math.nan
        return AcAverage(v_rms, i_rms, p_mean, q_mean, s_va, pf, f_sum / live if live else math.nan)

    def average_dc(self, point: str, t0: float, t1: float) -> DcAverage:
        """Mean DC voltage, current and power (p = mean of v x i) over [t0, t1]."""
        if point not in DC_POINTS:
            raise ValueError(f"unknown DC point {point!r}; known: {list(DC_POINTS)}")
        iv, ii = _INDEX["dc_v"], _INDEX["dc_i"]
        if t1 <= t0:
            row = self._rows[self._index_at(t1)]
            return DcAverage(row[iv], row[ii], row[iv] * row[ii])
        total = v_sum = i_sum = p_sum = 0.0
        for w, row in self._spans(t0, t1):
            v, i = row[iv], row[ii]
            total += w
            v_sum += w * v
            i_sum += w * i
            p_sum += w * v * i
        return DcAverage(v_sum / total, i_sum / total, p_sum / total)

    def changes(self, column: str, t0: float, t1: float) -> list[tuple[float, float, float]]:
        """(t, before, after) for every change of `column` in (t0, t1]."""
        index = _INDEX[column]
        first = self._index_at(t0)
        out: list[tuple[float, float, float]] = []
        before = self._rows[first][index]
        for k in range(first + 1, len(self._times)):
            t = self._times[k]
            if t > t1:
                break
            after = self._rows[k][index]
            if after != before and t > t0:
                out.append((t, before, after))
            before = after
        return out


def _ac_from(v: float, f: float, p: float, q: float, phases: int) -> AcAverage:
    s_total = math.hypot(p, q)
    i = s_total / (phases * v) if v > 0 else 0.0
    s_va = phases * v * i
    pf = max(-1.0, min(1.0, p / s_va)) if s_va > 0 else math.nan
    return AcAverage(v, i, p, q, s_va, pf, f if v > 0 else math.nan)


def _wrap(theta: float) -> float:
    return math.fmod(theta, _TWO_PI)
