"""Measurement uncertainty of the trace's channels, from the bench file's instruments.

Each measured channel of a trace (`power_analyzer.evse_ac.p_w`, `dc_source.i`, ...) comes from one
instrument of the bench. What its readings can be trusted to follows from that instrument's
datasheet accuracy, stated in the bench file as ± (reading + range) per quantity (`accuracy:
{power: {reading: 0.03 %, range: 0.05 %}}`), or, where the bench file states none, the model's
default (the emulated twin's datasheet figures, marked (?) in the twin modules); its update
interval (an RMS reading is an average over a window, not an instant); and the jitter of its
update ends (timestamp resolution). The checks combine these with the trace's own sampling
interval into the uncertainty each verdict carries.

One reading's uncertainty is the datasheet band itself, read as an expanded uncertainty (the rig's
own reading of a datasheet limit, no coverage factor applied): U = reading x |value| + range x
full scale. A time measured on a channel carries U_t = the sample spacing where it was taken + two
update intervals (a reading shows a change between one and two intervals after it, depending on
where the change falls in the averaging window) + the update-end jitter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rig.bench import BenchConfig, InstrumentConfig

#: Trace quantity key -> the instrument quantity its accuracy is stated for.
QUANTITY_OF_KEY: Mapping[str, str] = {
    "v_rms": "voltage",
    "v": "voltage",
    "i_rms": "current",
    "i": "current",
    "p_w": "power",
    "q_var": "power",
    "s_va": "power",
    "f_hz": "frequency",
}
#: The keys of an AC and of a DC element's reading (rig.trace channels).
AC_KEYS = frozenset({"v_rms", "i_rms", "p_w", "q_var", "s_va", "f_hz"})
DC_KEYS = frozenset({"v", "i", "p_w"})
#: The DC voltage the power ranges of a DC element are sized for (a 400 V-class pack).
DC_VOLTAGE_HINT_V = 450.0


@dataclass(frozen=True)
class Accuracy:
    """± (reading x |value| + range x full scale), fractions, as datasheets state it."""

    reading: float
    range: float = 0.0


@dataclass(frozen=True)
class ChannelAccuracy:
    """What one trace channel's readings can be trusted to."""

    instrument: str
    model: str
    quantity: str
    accuracy: Accuracy
    #: Full scales the instrument may use: one value for a fixed range, several for auto range
    #: (the smallest that holds the reading is taken), none for a reading-only accuracy.
    ranges: tuple[float, ...]
    update_interval_s: float
    jitter_s: float
    #: True when the bench file states the accuracy; False: the model's default (?).
    stated: bool

    def full_scale(self, value: float) -> float:
        if not self.ranges:
            return 0.0
        size = abs(value)
        return next((r for r in self.ranges if r >= size), self.ranges[-1])

    def band(self, value: float) -> float:
        """U of one reading of `value` (same unit)."""
        if not math.isfinite(value):
            return math.inf
        acc = self.accuracy
        return acc.reading * abs(value) + acc.range * self.full_scale(value)

    def offset(self, value: float = 0.0) -> float:
        """The range term alone: what the instrument cannot tell from zero near `value`."""
        return self.accuracy.range * self.full_scale(value)

    def time_u(self, spacing_s: float) -> float:
        """U of an instant found on this channel between samples `spacing_s` apart."""
        return max(spacing_s, 0.0) + 2.0 * self.update_interval_s + self.jitter_s

    def describe(self) -> str:
        acc = self.accuracy
        origin = "bench file" if self.stated else "model default (?)"
        return (
            f"{self.instrument} ({self.model}) {self.quantity}: ±({acc.reading * 100:g} % of "
            f"reading + {acc.range * 100:g} % of range), update {self.update_interval_s * 1e3:g} ms "
            f"[{origin}]"
        )


@dataclass(frozen=True)
class Instrumentation:
    """The accuracy of every channel the bench's instruments write into a trace."""

    channels: Mapping[str, ChannelAccuracy] = field(default_factory=dict)

    def of(self, channel: str) -> ChannelAccuracy | None:
        return self.channels.get(channel)

    def band(self, channel: str, value: float) -> float:
        """U of one reading on `channel`; 0 for a channel the bench does not describe (the
        verdict then says its uncertainty is unknown, see `known`)."""
        spec = self.channels.get(channel)
        return 0.0 if spec is None else spec.band(value)

    def offset(self, channel: str, value: float = 0.0) -> float:
        spec = self.channels.get(channel)
        return 0.0 if spec is None else spec.offset(value)

    def time_u(self, channel: str, spacing_s: float) -> float:
        spec = self.channels.get(channel)
        return max(spacing_s, 0.0) if spec is None else spec.time_u(spacing_s)

    def update_interval(self, channel: str) -> float | None:
        spec = self.channels.get(channel)
        return None if spec is None else spec.update_interval_s

    def known(self, channel: str) -> bool:
        return channel in self.channels


def _ranges(option: Any, element: int, table: tuple[float, ...], name: str) -> tuple[float, ...]:
    """An element's full scales from a `voltage_range`/`current_range` option: {element: range}
    or one value for all, "auto" or absent for the model's whole table."""
    from instruments import options as opt

    if option is None or option == "auto":
        return table
    value = option
    if isinstance(option, Mapping):
        value = opt.indexed(name, option).get(element, "auto")
        if value == "auto":
            return table
    dimension = "voltage" if name == "voltage_range" else "current"
    return (opt.quantity(name, value, dimension),)


def _meter_spec(inst: InstrumentConfig) -> Any:
    """The model's meter spec with the bench's options over it (None: the model measures
    nothing the checks read)."""
    from instruments.registry import MODELS

    entry = MODELS.get(inst.model)
    if entry is None or entry.twin.meter_spec is None:
        return None
    options = {k: v for k, v in inst.options.items() if k in ("update_interval", "accuracy")}
    return entry.twin.meter_spec.with_options(options)


def _analyzer_channels(
    inst: InstrumentConfig, v_nominal: float, out: dict[str, ChannelAccuracy]
) -> None:
    from instruments.registry import MODELS
    from rig.sim.points import MeasurementPoint
    from rig.trace import analyzer_channel

    spec = _meter_spec(inst)
    if spec is None:
        return
    driver = MODELS[inst.model].driver
    v_table: tuple[float, ...] = tuple(getattr(driver, "VOLTAGE_RANGES_V", ()))
    i_table: tuple[float, ...] = tuple(getattr(driver, "CURRENT_RANGES_A", ()))
    elements = inst.options.get("elements") or {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}
    stated = "accuracy" in inst.options
    for key, point in dict(elements).items():
        element = int(key)
        v_ranges = _ranges(inst.options.get("voltage_range"), element, v_table, "voltage_range")
        i_ranges = _ranges(inst.options.get("current_range"), element, i_table, "current_range")
        hint = DC_VOLTAGE_HINT_V if MeasurementPoint(point).is_dc else v_nominal
        v_fs = next((r for r in v_ranges if r >= hint), v_ranges[-1]) if v_ranges else 0.0
        p_ranges = tuple(v_fs * r for r in i_ranges)
        dc = MeasurementPoint(point).is_dc
        for key_name, quantity in QUANTITY_OF_KEY.items():
            acc = spec.accuracy.get(quantity)
            if acc is None or key_name not in (DC_KEYS if dc else AC_KEYS):
                continue
            ranges = {"voltage": v_ranges, "current": i_ranges, "power": p_ranges}.get(quantity, ())
            out[analyzer_channel(str(point), key_name)] = ChannelAccuracy(
                inst.name,
                inst.model,
                quantity,
                Accuracy(acc.reading, acc.range),
                ranges,
                spec.update_interval_s,
                spec.jitter_s,
                stated,
            )


def _dc_source_channels(inst: InstrumentConfig, out: dict[str, ChannelAccuracy]) -> None:
    from instruments.ea.psb10000 import DEFAULT_RATING, rating_from_options

    spec = _meter_spec(inst)
    if spec is None:
        return
    rating = rating_from_options(inst.options, DEFAULT_RATING)
    stated = "accuracy" in inst.options
    for key, quantity, full in (
        ("v", "voltage", rating.voltage_v),
        ("i", "current", rating.current_a),
        ("p_w", "power", rating.power_w),
    ):
        acc = spec.accuracy.get(quantity)
        if acc is None:
            continue
        out[f"dc_source.{key}"] = ChannelAccuracy(
            inst.name,
            inst.model,
            quantity,
            Accuracy(acc.reading, acc.range),
            (full,),
            spec.update_interval_s,
            spec.jitter_s,
            stated,
        )


def instrumentation_for(bench: BenchConfig, v_nominal: float = 230.0) -> Instrumentation:
    """The accuracy of the channels the runner writes for this bench's power analyzer and DC
    source (the channels the checks judge)."""
    out: dict[str, ChannelAccuracy] = {}
    for inst in bench.instruments:
        if inst.role == "power_analyzer":
            _analyzer_channels(inst, v_nominal, out)
        elif inst.role == "dc_source":
            _dc_source_channels(inst, out)
    return Instrumentation(out)
