"""Waveform criteria from captured instantaneous samples: clearing time and open-loop response time.

Pure numpy functions (no registered check, no I/O): the lead's checks call them on scope
captures. Both read long records (ten million samples and more) in bounded chunks, so that
memory stays a few times one chunk and the work stops as soon as the answer is known.

- Clearing time, IEEE 1547.1-2020 5.10 as SunSpec SVP's UI.py reads it: the time from the grid
  loss (S3 opening) until the instantaneous voltage and EUT current "drop and remain below
  0.05 p.u.". Instantaneous values cross zero twice a cycle, so "remain below" is judged from the
  end: the clearing instant is where the last excursion above the threshold ends (interpolated
  between samples), and the capture must then stay below for at least `min_hold_s` (rig's own
  choice: one cycle) to tell. The per-unit base of an instantaneous value is the nominal peak,
  sqrt(2) x the nominal RMS (rig's reading of "0.05 p.u." for instantaneous values).
- Open-loop response time (IEEE 1547.1 style, FACTS "Criteria details"): the time after the step
  until the response Y reaches Y0 + 0.9 (Yfinal - Y0), with Y the per-cycle RMS of one signal or
  the per-cycle mean of v x i (active power), computed over a sliding one-cycle window centred on
  each sample (centred so that the window adds no delay of its own), Y0 the value over whole
  cycles before the step and Yfinal the value over the end of the capture. The crossing is
  interpolated between samples: the resolution is a fraction of the sample interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Samples handled at once (bounded memory for long captures).
CHUNK = 1 << 20
#: IEEE 1547.1-2020 5.10: voltage and current must fall below this, per unit.
CLEARING_THRESHOLD_PU = 0.05
#: The share of the step the open-loop response time is measured at (IEEE 1547.1).
RESPONSE_SHARE = 0.9


@dataclass(frozen=True)
class ClearingTime:
    """When the island was cleared, if it was: `clearing_s` after `t_event`, or None when some
    signal is still above its threshold at the end of the capture (or came below too late to
    show it stays there)."""

    t_event: float
    clearing_s: float | None
    threshold_v: float
    threshold_i: float
    #: When each signal last left the band (None: never above it after the event).
    v_last_above: float | None
    i_last_above: float | None
    #: How long every signal stayed below after clearing, up to the end of the capture.
    held_s: float


def _as_2d(x: npt.ArrayLike) -> FloatArray:
    array = np.asarray(x, dtype=np.float64)
    return array.reshape(1, -1) if array.ndim == 1 else array


def _last_above(t: FloatArray, x: FloatArray, threshold: float, first: int) -> float | None:
    """The time x last passes from above `threshold` (in magnitude) to below, searching
    backwards from the end in chunks; None if it is never above from index `first` on;
    +inf if it is still above at the last sample."""
    n = x.size
    end = n
    while end > first:
        start = max(first, end - CHUNK)
        chunk = x[start:end]
        above = np.flatnonzero((chunk > threshold) | (chunk < -threshold))
        if above.size:
            k = start + int(above[-1])
            if k == n - 1:
                return math.inf
            a, b = abs(float(x[k])), abs(float(x[k + 1]))
            share = (a - threshold) / (a - b) if a != b else 0.0
            return float(t[k] + share * (t[k + 1] - t[k]))
        end = start
    return None


def clearing_time(
    t: npt.ArrayLike,
    v: npt.ArrayLike,
    i: npt.ArrayLike,
    *,
    t_event: float,
    v_nominal_rms: float,
    i_rated_rms: float,
    threshold_pu: float = CLEARING_THRESHOLD_PU,
    min_hold_s: float = 0.02,
) -> ClearingTime:
    """Clearing time after `t_event` from instantaneous voltages `v` and EUT currents `i` (one
    row per phase, or 1-D), sampled at `t` (ascending, seconds)."""
    times = np.asarray(t, dtype=np.float64)
    volts, amps = _as_2d(v), _as_2d(i)
    if volts.shape[1] != times.size or amps.shape[1] != times.size:
        raise ValueError("t, v and i must have the same number of samples")
    if times.size < 2:
        raise ValueError("a clearing time needs at least two samples")
    if v_nominal_rms <= 0 or i_rated_rms <= 0:
        raise ValueError("the per-unit bases must be positive")
    threshold_v = threshold_pu * math.sqrt(2.0) * v_nominal_rms
    threshold_i = threshold_pu * math.sqrt(2.0) * i_rated_rms
    first = int(np.searchsorted(times, t_event, side="left"))
    lasts: list[float | None] = []
    for rows, threshold in ((volts, threshold_v), (amps, threshold_i)):
        found = [_last_above(times, row, threshold, first) for row in rows]
        known = [x for x in found if x is not None]
        lasts.append(max(known) if known else None)
    v_last, i_last = lasts
    cleared = max((x for x in (v_last, i_last) if x is not None), default=t_event)
    cleared = max(cleared, t_event)
    end = float(times[-1])
    held = end - cleared if math.isfinite(cleared) else 0.0
    ok = math.isfinite(cleared) and held >= min_hold_s
    return ClearingTime(
        t_event=t_event,
        clearing_s=cleared - t_event if ok else None,
        threshold_v=threshold_v,
        threshold_i=threshold_i,
        v_last_above=v_last,
        i_last_above=i_last,
        held_s=held,
    )


class ResponseQuantity(StrEnum):
    RMS = "rms"  # per-cycle RMS of one signal
    POWER = "power"  # per-cycle mean of v x i


@dataclass(frozen=True)
class StepResponse:
    """A step's open-loop response: Y0, Yfinal, the 90 % target and when it was reached
    (`t90_s` after `t_step`; None if never within the capture)."""

    t_step: float
    quantity: ResponseQuantity
    y_initial: float
    y_final: float
    target: float
    t90_s: float | None


def _product(x: FloatArray, y: FloatArray | None, start: int, stop: int) -> FloatArray:
    part = x[start:stop]
    return part * part if y is None else part * y[start:stop]


def _window_mean(x: FloatArray, y: FloatArray | None, start: int, stop: int) -> float:
    """Mean of x² (or x·y) over [start, stop), in chunks."""
    start, stop = max(start, 0), min(stop, x.size)
    if stop <= start:
        raise ValueError("empty averaging window")
    total = 0.0
    for s in range(start, stop, CHUNK):
        total += float(_product(x, y, s, min(stop, s + CHUNK)).sum())
    return total / (stop - start)


def step_response(
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike | None = None,
    *,
    t_step: float,
    f_nominal: float,
    quantity: ResponseQuantity = ResponseQuantity.RMS,
    before_s: float | None = None,
    final_s: float | None = None,
    t_end: float | None = None,
) -> StepResponse:
    """The 90 % open-loop response time of a step at `t_step`: Y is the per-cycle RMS of `x`
    (quantity RMS) or the per-cycle mean of x·y (quantity POWER: x voltage, y current), over a
    sliding window of one nominal cycle centred on each sample. Y0 averages `before_s` (default
    five cycles) of whole cycles ending half a cycle before the step; Yfinal the last `final_s`
    (default five cycles) before `t_end` (default: the end of the capture), which also ends the
    search. Samples must be evenly spaced."""
    times = np.asarray(t, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    ys = None if y is None else np.asarray(y, dtype=np.float64)
    if quantity is ResponseQuantity.POWER and ys is None:
        raise ValueError("a power response needs voltage and current")
    if xs.shape != times.shape or (ys is not None and ys.shape != times.shape):
        raise ValueError("t and the signals must have the same number of samples")
    if times.size < 4:
        raise ValueError("a response needs samples")
    dt = float(times[1] - times[0])
    cycle = max(2, round(1.0 / (f_nominal * dt)))
    half = cycle // 2
    before = cycle * 5 if before_s is None else max(cycle, round(before_s / dt))
    final = cycle * 5 if final_s is None else max(cycle, round(final_s / dt))
    k_step = int(np.searchsorted(times, t_step, side="left"))
    k_end = times.size if t_end is None else int(np.searchsorted(times, t_end, side="right"))
    pre_stop = k_step - half
    if pre_stop - before < 0:
        raise ValueError("not enough samples before the step for Y0")
    if k_step >= k_end - final:
        raise ValueError("not enough samples after the step for Yfinal")

    def level(mean: float) -> float:
        return math.sqrt(max(mean, 0.0)) if quantity is ResponseQuantity.RMS else mean

    y0 = level(_window_mean(xs, ys, pre_stop - before, pre_stop))
    y_final = level(_window_mean(xs, ys, k_end - final, k_end))
    target = y0 + RESPONSE_SHARE * (y_final - y0)
    rising = y_final > y0
    if abs(y_final - y0) <= 1e-12 * max(abs(y0), abs(y_final), 1e-30):
        return StepResponse(t_step, quantity, y0, y_final, target, None)
    crossing = _first_crossing(times, xs, ys, quantity, k_step, k_end, cycle, target, rising)
    t90 = None if crossing is None else crossing - t_step
    return StepResponse(t_step, quantity, y0, y_final, target, t90)


def _first_crossing(
    times: FloatArray,
    xs: FloatArray,
    ys: FloatArray | None,
    quantity: ResponseQuantity,
    k_from: int,
    k_end: int,
    cycle: int,
    target: float,
    rising: bool,
) -> float | None:
    """The first time in samples [k_from, k_end) where the centred per-cycle value reaches
    target."""
    half = cycle // 2
    n = k_end
    first = max(k_from, half)
    last = n - (cycle - half)  # the last sample whose window fits the capture
    previous: tuple[float, float] | None = None
    for start in range(first, last + 1, CHUNK):
        stop = min(last + 1, start + CHUNK)
        # Window of sample k: [k - half, k - half + cycle).
        lo, hi = start - half, stop - half + cycle
        squares = _product(xs, ys, lo, hi)
        sums = np.concatenate(([0.0], np.cumsum(squares)))
        means = (sums[cycle:] - sums[:-cycle]) / cycle
        values = np.sqrt(np.maximum(means, 0.0)) if quantity is ResponseQuantity.RMS else means
        reached = values >= target if rising else values <= target
        hits = np.flatnonzero(reached)
        if hits.size:
            k = int(hits[0])
            t_hit, v_hit = float(times[start + k]), float(values[k])
            if k > 0:
                t_prev, v_prev = float(times[start + k - 1]), float(values[k - 1])
            elif previous is not None:
                t_prev, v_prev = previous
            else:
                return t_hit
            share = (target - v_prev) / (v_hit - v_prev) if v_hit != v_prev else 1.0
            return t_prev + share * (t_hit - t_prev)
        previous = (float(times[stop - 1]), float(values[-1]))
    return None


# ------------------------------------------------------------------------------ scope captures
#: The trace event the runner writes for each scope capture (rig.runner), and where the
#: in-memory arrays of a run's captures are kept on the Trace (its `meta`, never written out:
#: the arrays go to a .npz file beside the trace, which the event names).
CAPTURE_EVENT = "scope_capture"
_CAPTURES = "_captures"


@dataclass(frozen=True, eq=False)
class Capture:
    """A scope capture around a trigger: sample times relative to the trigger (s), the values of
    each probe ("evse_ac.v", "evse_ac.i": what the channel is wired to), and when the trigger
    fired on the run's clock."""

    t_trigger: float
    t: FloatArray
    probes: dict[str, FloatArray]
    units: dict[str, str]

    @property
    def sample_rate_hz(self) -> float:
        return float((self.t.size - 1) / (self.t[-1] - self.t[0])) if self.t.size > 1 else 0.0

    def save(self, path: str) -> None:
        arrays: dict[str, Any] = {"t": self.t}
        arrays.update({f"probe:{k}": v for k, v in self.probes.items()})
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str, t_trigger: float, units: dict[str, str]) -> Capture:
        with np.load(path) as data:
            probes = {k[6:]: np.asarray(data[k]) for k in data.files if k.startswith("probe:")}
            return cls(t_trigger, np.asarray(data["t"]), probes, dict(units))


def attach(meta: dict[str, object], key: str, capture: Capture) -> None:
    """Keep a capture with the in-memory trace under `key` (the event's `key`)."""
    held = meta.setdefault(_CAPTURES, {})
    assert isinstance(held, dict)
    held[key] = capture


def capture_for(meta: dict[str, object], data: dict[str, object], trace_dir: str | None) -> Capture:
    """The capture a scope_capture event names: from the run's memory, else from its .npz file
    (a trace read back from disk; `trace_dir` is where the trace file is)."""
    import os

    held = meta.get(_CAPTURES)
    key = str(data.get("key"))
    if isinstance(held, dict) and key in held:
        found = held[key]
        assert isinstance(found, Capture)
        return found
    name = data.get("file")
    full = data.get("path")
    if trace_dir is None and isinstance(full, str) and os.path.exists(full):
        name = full
    if not isinstance(name, str):
        raise FileNotFoundError("the capture was not written to a file")
    path = name if os.path.isabs(name) or trace_dir is None else os.path.join(trace_dir, name)
    units = data.get("units")
    t_trigger = data.get("t_trigger")
    if not isinstance(t_trigger, int | float):
        raise ValueError("the capture event has no trigger time")
    return Capture.load(path, float(t_trigger), dict(units) if isinstance(units, dict) else {})
