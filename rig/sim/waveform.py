"""Instantaneous voltage and current waveforms from the bench's recorded phasor state.

The World is a phasor model: between solves each point has an RMS voltage, a frequency, an angle
and P, Q. A scope needs what a probe would see: v(t) = sqrt(2) V sin(theta(t) - 2 pi k / 3) on
phase k, and the current sqrt(2) I sin(theta(t) - 2 pi k / 3 - phi) with phi = atan2(Q, P)
(lagging for inductive Q; P < 0 turns the current round). theta integrates the frequency, so the
waveform's phase is continuous when the frequency drifts in an island.

Transients: a step in the phasor state is a step in amplitude at that instant (an island forming
or a grid-forming inverter taking over). When an energized bus loses its last source and the
load is a parallel RLC tank, the tank's stored energy rings down at its last frequency with the
envelope exp(-t / 2RC) (the natural response of a parallel RLC); a load without storage drops at
once. Everything here is numpy on the recorded rows; nothing is integrated per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from rig.sim.history import AC_POINT_COLUMNS, HistorySlice, StateHistory

FloatArray = npt.NDArray[np.float64]

_SQRT2 = math.sqrt(2.0)
#: A ring-down is followed for this many time constants, then the bus reads exactly zero.
RING_DOWN_TAUS = 12.0
#: How far before a capture the rows are read, so that a ring-down that began before it is
#: followed (12 time constants of a Qf 3 tank at 50 Hz: about 0.23 s).
LEAD_S = 0.5


class Quantity(StrEnum):
    VOLTAGE = "v"
    CURRENT = "i"


@dataclass(frozen=True)
class Probe:
    """What one scope channel sees: a point's voltage or current on one phase (1-based)."""

    point: str
    quantity: Quantity
    phase: int = 1

    @classmethod
    def parse(cls, text: str) -> Probe:
        """`grid.v`, `evse_ac.i`, `home.v2` (phase 2)."""
        point, _, rest = text.strip().partition(".")
        if point not in AC_POINT_COLUMNS or not rest or rest[0] not in "vi":
            raise ValueError(
                f"probe {text!r}: expected <point>.v or <point>.i[<phase>] with point one of "
                f"{sorted(AC_POINT_COLUMNS)}"
            )
        phase = int(rest[1:]) if rest[1:] else 1
        if phase not in (1, 2, 3):
            raise ValueError(f"probe {text!r}: phase must be 1, 2 or 3")
        return cls(point, Quantity(rest[0]), phase)

    def __str__(self) -> str:
        return f"{self.point}.{self.quantity.value}{'' if self.phase == 1 else self.phase}"


def sample_times(t_start: float, sample_rate_hz: float, samples: int) -> FloatArray:
    if not (sample_rate_hz > 0 and math.isfinite(sample_rate_hz)) or samples < 0:
        raise ValueError("a capture needs a positive sample rate and a sample count >= 0")
    return t_start + np.arange(samples, dtype=np.float64) / sample_rate_hz


def synthesize(history: StateHistory, probe: Probe, t: FloatArray) -> FloatArray:
    """The instantaneous value `probe` sees at times `t` (ascending), in V or A."""
    if t.size == 0:
        return np.zeros(0)
    if probe.phase > history.phases:
        raise ValueError(f"probe {probe}: the bench has {history.phases} phase(s)")
    rows = history.slice(float(t[0]), float(t[-1]), lead_s=LEAD_S)
    return evaluate(rows, probe, t, history.phases)


def evaluate(rows: HistorySlice, probe: Probe, t: FloatArray, phases: int) -> FloatArray:
    """What `probe` sees at times `t` (ascending, inside `rows`), for a bench of `phases`."""
    v_col, f_col, theta_col, p_col, q_col = AC_POINT_COLUMNS[probe.point]
    v, f, theta = rows[v_col], rows[f_col], rows[theta_col]
    p, q, tau = rows[p_col], rows[q_col], rows["decay_tau_s"]
    starts = rows.t
    amplitude = _SQRT2 * v
    frequency = f.copy()
    phase0 = theta.copy()
    decay = np.full(v.shape, np.inf)
    s = np.hypot(p, q)
    live = v > 0
    current_peak = np.zeros_like(v)
    current_peak[live] = _SQRT2 * s[live] / (phases * v[live])
    phi = np.arctan2(q, p)
    # A bus that dies with an RLC tank on it rings down: from the first dead row after a live
    # one, through every dead row that follows, at the last live row's amplitude and
    # frequency, fading with exp(-t / tau) from the moment of death. The home's current falls
    # with the voltage; the EVSE's (and the open grid point's) is gone.
    dead_after_live = np.flatnonzero((~live[1:]) & live[:-1] & (tau[1:] > 0.0)) + 1
    ring_from = starts.copy()
    for k in dead_after_live:
        j = k - 1
        m = k
        while m < v.size and not live[m] and tau[m] > 0.0:
            amplitude[m] = _SQRT2 * v[j]
            frequency[m] = f[j]
            decay[m] = tau[k]
            ring_from[m] = starts[k]
            phase0[m] = theta[j] + 2.0 * math.pi * f[j] * (starts[m] - starts[j])
            if probe.point == "home":
                current_peak[m] = current_peak[j]
                phi[m] = phi[j]
            m += 1
    index = np.searchsorted(starts, t, side="right") - 1
    np.clip(index, 0, None, out=index)
    dt = t - starts[index]
    angle = phase0[index] + (2.0 * math.pi) * frequency[index] * dt
    angle -= (2.0 * math.pi / 3.0) * (probe.phase - 1)
    if probe.quantity is Quantity.VOLTAGE:
        envelope = amplitude[index]
    else:
        envelope = current_peak[index]
        angle -= phi[index]
    tau_k = decay[index]
    ringing = np.isfinite(tau_k)
    if ringing.any():
        since = t[ringing] - ring_from[index][ringing]
        fade = np.exp(-since / tau_k[ringing])
        fade[since > RING_DOWN_TAUS * tau_k[ringing]] = 0.0
        envelope = envelope * 1.0
        envelope[ringing] *= fade
    return envelope * np.sin(angle)
