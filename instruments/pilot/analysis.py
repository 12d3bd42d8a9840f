"""A pilot waveform (a scope's capture of the CP line) turned into state, PWM frequency, duty and
levels: what the generic-parts pilot reads, and what tests hold the twin's answers against."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from instruments.roles.control_pilot import PilotMeasurement, state_of

FloatArray = npt.NDArray[np.float64]
#: Fewer samples than this cannot show a PWM period (rig's own choice).
MIN_SAMPLES = 16


def analyze_pilot(t: FloatArray, v: FloatArray) -> PilotMeasurement:
    """Levels from the two clusters around the midpoint, duty from the share of time above it,
    frequency from the rising edges. A steady line is one level and no PWM."""
    if t.size < MIN_SAMPLES or t.shape != v.shape or not np.all(np.isfinite(v)):
        raise ValueError(f"a pilot capture needs {MIN_SAMPLES}+ finite samples, got {t.size}")
    top, bottom = float(np.max(v)), float(np.min(v))
    if top - bottom < 2.0:  # steady (A to F without PWM): one level
        level = float(np.median(v))
        return PilotMeasurement(state_of(level, level), None, None, level, level)
    middle = (top + bottom) / 2.0
    high = v > middle
    high_v = float(np.median(v[high]))
    low_v = float(np.median(v[~high]))
    rising = np.flatnonzero(~high[:-1] & high[1:]) + 1
    frequency = None
    duty = None
    if rising.size >= 2:
        periods = np.diff(t[rising])
        frequency = float(1.0 / np.mean(periods))
        first, last = int(rising[0]), int(rising[-1])
        # Time above the midpoint over whole periods only: no partial period at either end.
        dt = np.diff(t[first : last + 1])
        above = high[first:last]
        duty = float(np.sum(dt[above]) / (t[last] - t[first]))
    return PilotMeasurement(state_of(high_v, low_v), frequency, duty, high_v, low_v)
