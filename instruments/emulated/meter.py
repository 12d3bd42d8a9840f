"""How an emulated instrument measures: update cycle, window averaging, accuracy, resolution.

A real meter does not read an instant: it averages over its update interval, publishes the
result at the end of that interval (a little late, by a jitter of its own), and every published
value carries the instrument's error: a fixed gain and offset per channel within the datasheet's
accuracy (reading + range terms), a slow drift, a random part, and the display resolution. This
module gives every twin that behaviour over the World's state history; the twin decides which
points and quantities it reads and in which update they land.

Defaults are the rig's own choices where no datasheet figure is named: the fixed error takes at
most half the accuracy band, the random part a tenth of it (one sigma), drift a tenth per hour.
Bench options override: `update_interval`, `timestamp_jitter`, `accuracy` ({quantity:
{reading: 0.03 %, range: 0.02 %}}), `noise` (false: an ideal instrument, exact values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from instruments import options as opt
from rig.sim.history import AcAverage, DcAverage, StateHistory

#: Bench options every measuring twin understands.
METER_OPTIONS = frozenset({"update_interval", "timestamp_jitter", "accuracy", "noise"})
QUANTITIES = ("voltage", "current", "power", "frequency")


@dataclass(frozen=True)
class Accuracy:
    """± (reading x |value| + range x full scale), as datasheets state it (fractions)."""

    reading: float
    range: float = 0.0

    def band(self, value: float, full_scale: float) -> float:
        return self.reading * abs(value) + self.range * full_scale


@dataclass(frozen=True)
class MeterSpec:
    """One instrument model's measuring behaviour (datasheet defaults, bench overrides)."""

    update_interval_s: float
    jitter_s: float
    accuracy: Mapping[str, Accuracy]
    #: Display resolution: full scale / counts is one step.
    counts: int = 600_000
    enabled: bool = True
    error_share: float = 0.5
    noise_share: float = 0.1
    drift_share_per_h: float = 0.1

    def with_options(self, options: Mapping[str, object]) -> MeterSpec:
        spec = self
        if "update_interval" in options:
            interval = opt.quantity("update_interval", options["update_interval"], "time")
            if not interval > 0:
                raise ValueError("option update_interval must be positive")
            spec = replace(spec, update_interval_s=interval)
        if "timestamp_jitter" in options:
            jitter = opt.quantity("timestamp_jitter", options["timestamp_jitter"], "time")
            if jitter < 0:
                raise ValueError("option timestamp_jitter must be >= 0")
            spec = replace(spec, jitter_s=jitter)
        if "accuracy" in options:
            spec = replace(spec, accuracy={**spec.accuracy, **_accuracies(options["accuracy"])})
        if "noise" in options:
            spec = replace(spec, enabled=opt.flag(options, "noise", True))
        return spec


def _accuracies(value: object) -> dict[str, Accuracy]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"option accuracy: expected {{quantity: {{reading, range}}}}, got {value!r}"
        )
    out: dict[str, Accuracy] = {}
    for quantity, terms in value.items():
        if quantity not in QUANTITIES:
            raise ValueError(f"option accuracy: unknown quantity {quantity!r}; known: {QUANTITIES}")
        if not isinstance(terms, Mapping) or set(terms) - {"reading", "range"}:
            raise ValueError(f"option accuracy.{quantity}: expected {{reading, range}}")
        reading = opt.quantity(f"accuracy.{quantity}.reading", terms.get("reading", 0.0), "ratio")
        full = opt.quantity(f"accuracy.{quantity}.range", terms.get("range", 0.0), "ratio")
        if reading < 0 or full < 0:
            raise ValueError(f"option accuracy.{quantity}: terms must be >= 0")
        out[str(quantity)] = Accuracy(reading, full)
    return out


def _unit_hash(*parts: int) -> float:
    """A uniform number in [0, 1) from integers, order-independent of any generator state
    (splitmix64), so update k's jitter is the same whoever asks first."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return (x >> 11) / float(1 << 53)


@dataclass
class UpdateClock:
    """When a meter's updates end: origin + k x interval + jitter_k, k any integer (the meter
    has been running before the run started). Changing the interval starts a new epoch at that
    moment, as an analyzer restarts its measurement cycle."""

    interval_s: float
    jitter_s: float
    seed: int
    origin: float = 0.0
    epoch: int = 0
    _ends: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ValueError(f"update interval must be positive, got {self.interval_s!r}")
        # A late update never passes the next one.
        self.jitter_s = min(max(self.jitter_s, 0.0), 0.5 * self.interval_s)

    def restart(self, interval_s: float, at: float) -> None:
        self.interval_s = interval_s
        self.origin = at
        self.epoch += 1
        self._check()
        self._ends.clear()

    def end(self, k: int) -> float:
        found = self._ends.get(k)
        if found is None:
            late = self.jitter_s * _unit_hash(self.seed, self.epoch, k) if self.jitter_s else 0.0
            if len(self._ends) > 64:
                self._ends.clear()
            found = self._ends[k] = self.origin + k * self.interval_s + late
        return found

    def latest(self, t: float) -> int:
        """Index of the last update ended at or before t."""
        k = math.floor((t - self.origin) / self.interval_s)
        ends = self._ends
        while True:
            end = ends.get(k)
            if end is None:
                end = self.end(k)
            if end <= t:
                return k
            k -= 1

    def next_end_after(self, t: float) -> float:
        return self.end(self.latest(t) + 1)

    def window(self, k: int) -> tuple[float, float]:
        """What update k averaged: the interval before its (nominal) end."""
        end = self.origin + k * self.interval_s
        return end - self.interval_s, end


@dataclass
class _ChannelError:
    gain: float
    offset: float  # fraction of full scale
    drift_per_s: float


@dataclass
class Meter:
    """Applies one instrument's errors to exact values; one fixed error per (channel, quantity)."""

    spec: MeterSpec
    rng: np.random.Generator
    _errors: dict[tuple[str, str], _ChannelError] = field(default_factory=dict)
    #: Standard normal draws, taken from the generator in blocks (one numpy call per block).
    _normals: list[float] = field(default_factory=list)
    _terms: dict[tuple[str, str], tuple[float, float, float, float, float, float, int]] = field(
        default_factory=dict
    )

    def _normal(self) -> float:
        if not self._normals:
            self._normals = self.rng.standard_normal(4096).tolist()
            self._normals.reverse()
        return self._normals.pop()

    def _error(self, channel: str, quantity: str) -> _ChannelError:
        key = (channel, quantity)
        found = self._errors.get(key)
        if found is None:
            acc = self.spec.accuracy.get(quantity, Accuracy(0.0))
            share = self.spec.error_share
            gain, offset, drift = self.rng.uniform(-1.0, 1.0, 3)
            found = self._errors[key] = _ChannelError(
                gain=float(gain) * share * acc.reading,
                offset=float(offset) * share * acc.range,
                drift_per_s=float(drift) * self.spec.drift_share_per_h * acc.reading / 3600.0,
            )
        return found

    def reading(
        self, channel: str, quantity: str, value: float, t: float, full_scale: float | None = None
    ) -> float:
        """`value` as the instrument shows it at time t (NaN and inf pass through)."""
        if not self.spec.enabled or not math.isfinite(value):
            return value
        scale = abs(value) if full_scale is None else full_scale
        terms = self._terms.get((channel, quantity))
        if terms is None:
            terms = self._terms[(channel, quantity)] = self._terms_of(channel, quantity)
        gain, offset, drift_per_s, share, reading, range_, counts = terms
        sigma = share * (reading * abs(value) + range_ * scale)
        noisy = value * (1.0 + gain + drift_per_s * t) + offset * scale
        if sigma > 0:
            noisy += self._normal() * sigma
        if scale <= 0 or not math.isfinite(noisy):
            return noisy
        step = scale / counts
        return round(noisy / step) * step

    def _terms_of(
        self, channel: str, quantity: str
    ) -> tuple[float, float, float, float, float, float, int]:
        """One channel's error and noise terms, flat (reading() runs ~20 times per sample)."""
        acc = self.spec.accuracy.get(quantity, Accuracy(0.0))
        error = self._error(channel, quantity)
        return (
            error.gain,
            error.offset,
            error.drift_per_s,
            self.spec.noise_share,
            acc.reading,
            acc.range,
            self.spec.counts,
        )

    def quantize(self, value: float, full_scale: float) -> float:
        if full_scale <= 0 or not math.isfinite(value):
            return value
        step = full_scale / self.spec.counts
        return round(value / step) * step


@dataclass(frozen=True)
class AcValues:
    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float


@dataclass(frozen=True)
class DcValues:
    v: float
    i: float
    p_w: float


def measure_ac(
    meter: Meter,
    history: StateHistory,
    channel: str,
    point: str,
    window: tuple[float, float],
    *,
    phases: int,
    voltage_range: float | None = None,
    current_range: float | None = None,
    power_range: float | None = None,
    exact: AcAverage | None = None,
) -> AcValues:
    """The window's RMS averages at `point` (or `exact`, already averaged), with the
    instrument's errors on V, I, P, Q, f; S and PF computed from the shown values as an
    analyzer computes them."""
    t0, t1 = window
    if exact is None:
        exact = history.average_ac(point, t0, t1)
    v = meter.reading(channel, "voltage", exact.v_rms, t1, voltage_range)
    i = meter.reading(channel, "current", exact.i_rms, t1, current_range)
    power_scale = power_range
    if power_scale is None and voltage_range is not None and current_range is not None:
        power_scale = phases * voltage_range * current_range
    p = meter.reading(channel, "power", exact.p_w, t1, power_scale)
    q = meter.reading(channel, "power", exact.q_var, t1, power_scale)
    f = meter.reading(channel, "frequency", exact.f_hz, t1)
    v, i = abs(v), abs(i)  # RMS values read positive
    s = phases * v * i
    pf = max(-1.0, min(1.0, p / s)) if s > 0 else math.nan
    return AcValues(v, i, p, q, s, pf, f)


def measure_dc(
    meter: Meter,
    history: StateHistory,
    channel: str,
    point: str,
    window: tuple[float, float],
    *,
    voltage_range: float | None = None,
    current_range: float | None = None,
    power_range: float | None = None,
    exact: DcAverage | None = None,
) -> DcValues:
    t0, t1 = window
    if exact is None:
        exact = history.average_dc(point, t0, t1)
    v = meter.reading(channel, "voltage", exact.v, t1, voltage_range)
    i = meter.reading(channel, "current", exact.i, t1, current_range)
    power_scale = power_range
    if power_scale is None and voltage_range is not None and current_range is not None:
        power_scale = voltage_range * current_range
    p = meter.reading(channel, "power", exact.p_w, t1, power_scale)
    return DcValues(v, i, p)
