"""The per-plan figure: power, state of charge and voltages on one time axis with the verdict on it,
what the checks measured (thresholds, bands, measured instants, each in the legend), the DUT's own
events as labelled markers, and zoom panels on the decisive transients (up to MAX_ZOOMS).

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no GUI), at full report
width; long series are reduced to a min/max envelope so that a 12-hour plan draws as fast as a
minute and no spike disappears.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rig.checks import Context, Marker, Verdict
from rig.checks.reserve import SOURCES, soc_series
from rig.report.dutevents import DutMark, Kind
from rig.report.outcome import Outcome
from rig.sim.points import MeasurementPoint
from rig.trace import FloatArray, Trace, analyzer_channel

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_POWER = (
    (analyzer_channel(MeasurementPoint.EVSE_AC, "p_w"), "EVSE AC (+ charges the EV)"),
    (analyzer_channel(MeasurementPoint.GRID, "p_w"), "grid import"),
    (analyzer_channel(MeasurementPoint.HOME, "p_w"), "home load"),
)
_VOLTS = (
    (analyzer_channel(MeasurementPoint.GRID, "v_rms"), "grid point"),
    (analyzer_channel(MeasurementPoint.HOME, "v_rms"), "home"),
    (analyzer_channel(MeasurementPoint.EVSE_AC, "v_rms"), "EVSE terminals"),
)
#: Zoom panels drawn at most (one per distinct window a check asked for).
MAX_ZOOMS = 3
#: Points per series above which the overview draws a min/max envelope instead.
MAX_POINTS = 6000
WIDTH_IN = 15.0
DPI = 100
_MARK_COLOR = {
    Kind.STATE: "#6e7781",
    Kind.GRID: "#0969da",
    Kind.ENERGY: "#1a7f37",
    Kind.PROTOCOL: "#8250df",
    Kind.RIG: "#cf222e",
}


@dataclass(frozen=True)
class Quantity:
    """How a channel is drawn: scale from SI and the axis label with its unit."""

    scale: float
    axis: str
    unit: str


def quantity(channel: str) -> Quantity:
    """The quantity a trace channel carries, from its name's last part."""
    key = channel.rsplit(".", 1)[-1]
    if channel == "soc":
        return Quantity(100.0, "SoC", "%")
    if key == "p_w":
        return Quantity(1e-3, "power", "kW")
    if key in ("q_var",):
        return Quantity(1e-3, "reactive power", "kvar")
    if key in ("v_rms", "v"):
        return Quantity(1.0, "voltage", "V rms" if key == "v_rms" else "V")
    if key in ("i_rms", "i"):
        return Quantity(1.0, "current", "A rms" if key == "i_rms" else "A")
    if key in ("f_hz", "frequency_hz"):
        return Quantity(1.0, "frequency", "Hz")
    return Quantity(1.0, key, "")


def channel_label(channel: str) -> str:
    """ "home V rms (power analyzer)" for power_analyzer.home.v_rms."""
    for ch, label in (*_POWER, *_VOLTS):
        if ch == channel:
            return f"{label} ({quantity(ch).unit})"
    parts = channel.split(".")
    q = quantity(channel)
    if len(parts) == 3:
        return f"{parts[1].replace('_', ' ')} {q.axis} ({q.unit})"
    return channel


def _axis_label(q: Quantity) -> str:
    return f"{q.axis} ({q.unit})" if q.unit else q.axis


def _time_axis(trace: Trace) -> tuple[float, str]:
    span = max(trace.end_t, 1e-9)
    if span > 2 * 3600:
        return 3600.0, "h"
    if span > 600:
        return 60.0, "min"
    return 1.0, "s"


def envelope(
    t: FloatArray, y: FloatArray, max_points: int = MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """At most about max_points points that keep every bin's minimum and maximum (in time order),
    so that a short spike in a long series is still drawn."""
    if t.size <= max_points:
        return t, y
    bins = max_points // 2
    per = t.size // bins
    n = bins * per
    tb, yb = t[:n].reshape(bins, per), y[:n].reshape(bins, per)
    with np.errstate(invalid="ignore"):
        lo = np.nanargmin(np.where(np.isnan(yb), np.inf, yb), axis=1)
        hi = np.nanargmax(np.where(np.isnan(yb), -np.inf, yb), axis=1)
    first = np.minimum(lo, hi)
    second = np.maximum(lo, hi)
    rows = np.arange(bins)
    tt = np.stack([tb[rows, first], tb[rows, second]], axis=1).ravel()
    yy = np.stack([yb[rows, first], yb[rows, second]], axis=1).ravel()
    return np.concatenate([tt, t[n:]]), np.concatenate([yy, y[n:]])


def _grid_off_spans(trace: Trace) -> list[tuple[float, float]]:
    spans, start = [], None
    for s in trace.steps:
        if s.action == "grid" and "on" in s.args:
            if s.args["on"] is False and start is None:
                start = s.t
            elif s.args["on"] is True and start is not None:
                spans.append((start, s.t))
                start = None
    if start is not None:
        spans.append((start, trace.end_t))
    return spans


def zoom_windows(verdicts: Sequence[Verdict]) -> list[tuple[float, float, str, str]]:
    """(t0, t1, channel, what) of each distinct window a check asked to be zoomed on, failed checks
    first: where the milliseconds decide."""
    order = sorted(verdicts, key=lambda v: -Outcome.of(v.verdict).severity)
    out: list[tuple[float, float, str, str]] = []
    for v in order:
        for m in v.markers:
            if m.kind == "zoom" and isinstance(m.value, tuple):
                window = (float(m.value[0]), float(m.value[1]), m.channel, f"{v.name}: {m.label}")
                if not any(abs(w[0] - window[0]) < 1e-9 and w[2] == window[2] for w in out):
                    out.append(window)
    return out[:MAX_ZOOMS]


class _Legend:
    """One legend entry per distinct label, however many lines share it."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, str]] = set()

    def label(self, ax: Axes, text: str) -> str:
        key = (id(ax), text)
        if key in self.seen:
            return "_nolegend_"
        self.seen.add(key)
        return text


def render_png(
    trace: Trace,
    ctx: Context,
    verdicts: Sequence[Verdict],
    title: str,
    *,
    outcome: Outcome = Outcome.NOT_JUDGED,
    headline: str = "",
    marks: Sequence[DutMark] = (),
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ctx.day is not None:  # a day plan: tariff, home, the DUT against the optimum (issue 13)
        from rig.report.dayfigure import render_day_png

        return render_day_png(trace, ctx, verdicts, title, outcome=outcome, headline=headline)
    scale, unit = _time_axis(trace)
    zooms = zoom_windows(verdicts)
    heights = [3.0, 1.6, 2.0] + ([2.6] if zooms else [])
    # Below several zooms their legends need room; a single zoom has its legend at its right.
    top_in, bottom_in = 0.85, 1.3 if len(zooms) > 1 else 0.55
    gaps_in = 0.45 * len(heights) + (0.35 if zooms else 0.0)  # room for the zoom's title
    height = sum(heights) + top_in + bottom_in + gaps_in
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        len(heights),
        max(len(zooms), 1),
        height_ratios=heights,
        left=0.055,
        right=0.80,
        top=1 - top_in / height,
        bottom=bottom_in / height,
        hspace=gaps_in / sum(heights),
        wspace=0.35,
    )
    ax_p = fig.add_subplot(grid[0, :])
    ax_soc = fig.add_subplot(grid[1, :], sharex=ax_p)
    ax_v = fig.add_subplot(grid[2, :], sharex=ax_p)
    legend = _Legend()
    _header(fig, outcome, title, headline)

    for ax in (ax_p, ax_soc, ax_v):
        for a, b in _grid_off_spans(trace):
            ax.axvspan(a / scale, b / scale, color="0.88", lw=0, label=legend.label(ax, "grid off"))
    for ch, label in _POWER:
        t, y = trace.series(ch)
        if t.size:
            t, y = envelope(t, y)
            ax_p.plot(t / scale, y / 1e3, lw=1, label=label)
    sp = trace.steps_of("setpoint")
    if sp:
        ts = [s.t / scale for s in sp] + [trace.end_t / scale]
        ys = [float(s.args["p_w"]) / 1e3 for s in sp]
        ax_p.step(ts, [*ys, ys[-1]], where="post", ls="--", lw=1, color="k", label="setpoint")
    ax_p.axhline(0, color="0.5", lw=0.5)
    ax_p.set_ylabel("power (kW)")

    for ch in SOURCES:
        if trace.has(ch):
            t, soc = soc_series(trace, ctx, ch)
            if t.size:
                t, soc = envelope(t, soc)
                ax_soc.plot(t / scale, soc * 100, lw=1, label=f"SoC from {ch.rsplit('.', 1)[0]}")
    if not any(m.channel == "soc" and m.kind == "threshold" for v in verdicts for m in v.markers):
        ax_soc.axhline(
            ctx.ev.reserve_soc * 100,
            color="r",
            ls="--",
            lw=1,
            label=f"EV reserve {ctx.ev.reserve_soc * 100:g} %",
        )
    ax_soc.set_ylabel("SoC (%)")

    for ch, label in _VOLTS:
        t, y = trace.series(ch)
        if t.size:
            t, y = envelope(t, y)
            ax_v.plot(t / scale, y, lw=1, label=label)
    ax_v.set_ylabel("voltage (V rms)")
    ax_v.set_xlabel(f"time ({unit})")

    for v in verdicts:
        for m in v.markers:
            _draw_marker(m, v.name, ax_p, ax_soc, ax_v, scale, legend)
    _draw_marks(marks, (ax_p, ax_soc, ax_v), scale, trace.end_t, legend, label_axis=ax_p)
    for ax in (ax_p, ax_soc, ax_v):
        ax.grid(True, color="0.92", lw=0.6)
        ax.set_xlim(0, max(trace.end_t, 1e-9) / scale)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for i, window in enumerate(zooms):
        _draw_zoom(
            fig.add_subplot(grid[3, i]),
            trace,
            verdicts,
            window,
            marks,
            legend,
            alone=len(zooms) == 1,
        )

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _header(fig: Figure, outcome: Outcome, title: str, headline: str) -> None:
    fig.text(
        0.006,
        0.995,
        f" {outcome.label} ",
        ha="left",
        va="top",
        fontsize=18,
        fontweight="bold",
        color="white",
        bbox={"boxstyle": "round,pad=0.3", "fc": outcome.color, "ec": "none"},
    )
    x = 0.13 if len(outcome.label) > 6 else 0.075  # right of the badge
    fig.text(x, 0.993, title[:160], ha="left", va="top", fontsize=12)
    if headline:
        fig.text(
            x,
            0.993 - 0.3 / fig.get_figheight(),
            headline[:200],
            ha="left",
            va="top",
            fontsize=10,
            color=outcome.color if outcome is not Outcome.PASS else "0.25",
        )


def _axis_for(channel: str, ax_p: Axes, ax_soc: Axes, ax_v: Axes) -> Axes | None:
    if channel == "soc":
        return ax_soc
    if channel.endswith("v_rms"):
        return ax_v
    if channel.endswith("p_w"):
        return ax_p
    return None  # currents and other quantities have no overview axis; the zoom shows them


def _draw_marker(
    m: Marker, check: str, ax_p: Axes, ax_soc: Axes, ax_v: Axes, scale: float, legend: _Legend
) -> None:
    ax = _axis_for(m.channel, ax_p, ax_soc, ax_v)
    if ax is None:
        return
    factor = quantity(m.channel).scale
    if m.kind == "threshold" and isinstance(m.value, float):
        q = quantity(m.channel)
        ax.axhline(
            m.value * factor,
            color="#cf222e",
            ls=":",
            lw=1,
            label=legend.label(ax, f"{check}: {m.label} ({m.value * factor:.4g} {q.unit})"),
        )
    elif m.kind == "time" and isinstance(m.value, float):
        ax.axvline(
            m.value / scale,
            color="#8250df",
            ls=":",
            lw=0.9,
            label=legend.label(ax, f"{check}: measured instants"),
        )
    elif m.kind == "band" and isinstance(m.value, tuple):
        ax.axhspan(
            m.value[0] * factor,
            m.value[1] * factor,
            color="#1a7f37",
            alpha=0.08,
            label=legend.label(ax, f"{check}: band {m.label}"),
        )


def _draw_marks(
    marks: Sequence[DutMark],
    axes: Sequence[Axes],
    scale: float,
    t_end: float,
    legend: _Legend,
    *,
    label_axis: Axes,
    t_range: tuple[float, float] | None = None,
) -> None:
    """DUT events as vertical lines on every axis, labelled along the top of `label_axis`; a
    label that would overlap the previous one is left out (the table beside lists them all)."""
    lo, hi = t_range if t_range is not None else (0.0, max(t_end, 1e-9))
    min_gap = (hi - lo) * 0.012
    last_labelled = -np.inf
    for m in marks:
        if not lo <= m.t <= hi:
            continue
        color = _MARK_COLOR[m.kind]
        for ax in axes:
            ax.axvline(
                m.t / scale,
                color=color,
                ls="--",
                lw=0.8,
                alpha=0.8,
                label=legend.label(ax, f"DUT event: {m.kind.value}")
                if ax is label_axis
                else "_nolegend_",
            )
        if m.t - last_labelled >= min_gap:
            label_axis.annotate(
                m.label[:40],
                (m.t / scale, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -2),
                textcoords="offset points",
                fontsize=7,
                rotation=90,
                va="top",
                ha="left",
                color=color,
            )
            last_labelled = m.t


def _draw_zoom(
    ax: Axes,
    trace: Trace,
    verdicts: Sequence[Verdict],
    window: tuple[float, float, str, str],
    marks: Sequence[DutMark],
    legend: _Legend,
    *,
    alone: bool,
) -> None:
    t0, t1, channel, what = window
    axes: dict[str, Axes] = {channel: ax}
    # The EVSE's current beside its voltage (cease to energize is judged on both), on its own axis.
    if channel.endswith("v_rms") and MeasurementPoint.EVSE_AC.value in channel:
        current = analyzer_channel(MeasurementPoint.EVSE_AC, "i_rms")
        if trace.has(current):
            axes[current] = ax.twinx()
    colors = iter(("#0969da", "#bc4c00", "#1a7f37"))
    for ch, target in axes.items():
        cq = quantity(ch)
        t, y = trace.series(ch)
        sel = (t >= t0) & (t <= t1)
        color = next(colors)
        if np.any(sel):
            target.plot(
                t[sel],
                y[sel] * cq.scale,
                lw=1,
                marker=".",
                ms=2.5,
                color=color,
                label=channel_label(ch),
            )
        target.set_ylabel(_axis_label(cq), color=color if target is not ax else "black", fontsize=9)
    for v in verdicts:
        for m in v.markers:
            on = axes.get(m.channel)
            if on is None:
                continue
            target = on
            f = quantity(m.channel).scale
            if m.kind == "threshold" and isinstance(m.value, float):
                target.axhline(
                    m.value * f,
                    color="#cf222e",
                    ls=":",
                    lw=1,
                    label=legend.label(
                        target, f"{m.label} ({m.value * f:.4g} {quantity(m.channel).unit})"
                    ),
                )
            elif m.kind == "time" and isinstance(m.value, float) and t0 <= m.value <= t1:
                target.axvline(m.value, color="#8250df", ls=":", lw=1)
                target.annotate(
                    m.label,
                    (m.value, 0.02),
                    xycoords=("data", "axes fraction"),
                    xytext=(2, 0),
                    textcoords="offset points",
                    fontsize=7,
                    rotation=90,
                    va="bottom",
                    ha="left",
                    color="#8250df",
                )
            elif m.kind == "band" and isinstance(m.value, tuple):
                target.axhspan(
                    m.value[0] * f,
                    m.value[1] * f,
                    color="#1a7f37",
                    alpha=0.1,
                    label=legend.label(target, f"band {m.label}"),
                )
            elif m.kind == "span" and isinstance(m.value, tuple):
                target.axvspan(
                    m.value[0],
                    m.value[1],
                    color="orange",
                    alpha=0.15,
                    label=legend.label(target, f"{v.name}: {m.label} window"),
                )
    _draw_marks(marks, [ax], 1.0, trace.end_t, legend, label_axis=ax, t_range=(t0, t1))
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (s)")
    ax.set_title(f"zoom: {what}", fontsize=9, loc="left")
    ax.grid(True, color="0.92", lw=0.6)
    handles, labels = [], []
    for target in dict.fromkeys(axes.values()):
        h, lab = target.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        if alone:  # one zoom: its legend right of it, like the overview's
            anchor = (1.07 if len(axes) > 1 else 1.01, 1.0)
            ax.legend(
                handles, labels, loc="upper left", bbox_to_anchor=anchor, fontsize=8, frameon=False
            )
        else:
            ax.legend(
                handles,
                labels,
                loc="upper left",
                bbox_to_anchor=(0.0, -0.2),
                fontsize=7,
                frameon=False,
            )
