"""The per-plan figure: power, state of charge and voltages on one time axis, with what the checks
measured drawn on it (thresholds, bands, measured instants), plus a zoom on the worst transient."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rig.checks import Context, Marker, Verdict
from rig.checks.reserve import SOURCES, soc_series
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_POWER = (
    (analyzer_channel(MeasurementPoint.EVSE_AC, "p_w"), "EVSE AC (+ charges EV)"),
    (analyzer_channel(MeasurementPoint.GRID, "p_w"), "grid import"),
    (analyzer_channel(MeasurementPoint.HOME, "p_w"), "home load"),
)
_VOLTS = (
    (analyzer_channel(MeasurementPoint.GRID, "v_rms"), "grid point V"),
    (analyzer_channel(MeasurementPoint.HOME, "v_rms"), "home V"),
    (analyzer_channel(MeasurementPoint.EVSE_AC, "v_rms"), "EVSE terminals V"),
)


def _time_axis(trace: Trace) -> tuple[float, str]:
    span = max(trace.end_t, 1e-9)
    if span > 2 * 3600:
        return 3600.0, "h"
    if span > 600:
        return 60.0, "min"
    return 1.0, "s"


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


def _zoom_window(verdicts: Sequence[Verdict]) -> tuple[float, float, str] | None:
    """The first window a check asked to be zoomed on: where the milliseconds matter."""
    for v in verdicts:
        for m in v.markers:
            if m.kind == "zoom" and isinstance(m.value, tuple):
                return m.value[0], m.value[1], m.channel
    return None


def render_png(trace: Trace, ctx: Context, verdicts: Sequence[Verdict], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = _time_axis(trace)
    zoom = _zoom_window(verdicts)
    rows = 4 if zoom else 3
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.6 * rows), constrained_layout=True)
    ax_p, ax_soc, ax_v = axes[0], axes[1], axes[2]
    for ax in (ax_p, ax_soc, ax_v):
        for a, b in _grid_off_spans(trace):
            ax.axvspan(a / scale, b / scale, color="0.85", lw=0, label="_grid off")
    for ch, label in _POWER:
        t, y = trace.series(ch)
        if t.size:
            ax_p.plot(t / scale, y / 1e3, lw=1, label=label)
    sp = trace.steps_of("setpoint")
    if sp:
        ts = [s.t / scale for s in sp] + [trace.end_t / scale]
        ys = [float(s.args["p_w"]) / 1e3 for s in sp]
        ax_p.step(ts, [*ys, ys[-1]], where="post", ls="--", lw=1, color="k", label="setpoint")
    ax_p.axhline(0, color="0.5", lw=0.5)
    ax_p.set_ylabel("power (kW)")
    ax_p.legend(loc="upper right", fontsize=7)

    for ch in SOURCES:
        if trace.has(ch):
            t, soc = soc_series(trace, ctx, ch)
            if t.size:
                ax_soc.plot(t / scale, soc * 100, lw=1, label=f"SoC from {ch.split('.')[0]}")
    ax_soc.axhline(ctx.ev.reserve_soc * 100, color="r", ls="--", lw=1, label="reserve")
    ax_soc.set_ylabel("SoC (%)")
    ax_soc.legend(loc="upper right", fontsize=7)

    for ch, label in _VOLTS:
        t, y = trace.series(ch)
        if t.size:
            ax_v.plot(t / scale, y, lw=1, label=label)
    ax_v.set_ylabel("voltage (V rms)")
    ax_v.legend(loc="upper right", fontsize=7)
    ax_v.set_xlabel(f"time ({unit})")

    for v in verdicts:
        for m in v.markers:
            _draw_marker(m, ax_p, ax_soc, ax_v, scale)
    if zoom:
        _draw_zoom(axes[3], trace, verdicts, zoom)
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _draw_marker(m: Marker, ax_p: Axes, ax_soc: Axes, ax_v: Axes, scale: float) -> None:
    ax = {"soc": ax_soc}.get(m.channel) or (
        ax_v if m.channel.endswith(("v_rms", "i_rms")) else ax_p
    )
    factor = 100.0 if m.channel == "soc" else (1e-3 if m.channel.endswith("p_w") else 1.0)
    if m.channel.endswith("i_rms"):
        return  # currents are not on the overview's axes; the zoom shows them
    if m.kind == "threshold" and isinstance(m.value, float):
        ax.axhline(m.value * factor, color="r", ls=":", lw=0.8)
    elif m.kind == "time" and isinstance(m.value, float):
        ax.axvline(m.value / scale, color="tab:purple", ls=":", lw=0.8)
    elif m.kind == "band" and isinstance(m.value, tuple):
        ax.axhspan(m.value[0] * factor, m.value[1] * factor, color="g", alpha=0.08)


def _draw_zoom(
    ax: Axes, trace: Trace, verdicts: Sequence[Verdict], zoom: tuple[float, float, str]
) -> None:
    t0, t1, channel = zoom
    channels = [channel]
    if channel.endswith("v_rms") and "evse_ac" in channel:
        channels.append(analyzer_channel(MeasurementPoint.EVSE_AC, "i_rms"))
    for ch in channels:
        t, y = trace.series(ch)
        sel = (t >= t0) & (t <= t1)
        if np.any(sel):
            ax.plot(
                t[sel],
                y[sel] / (1e3 if ch.endswith("p_w") else 1.0),
                lw=1,
                marker=".",
                ms=2,
                label=ch,
            )
    for v in verdicts:
        for m in v.markers:
            if m.channel not in channels:
                continue
            f = 1e-3 if m.channel.endswith("p_w") else 1.0
            if m.kind == "threshold" and isinstance(m.value, float):
                ax.axhline(m.value * f, color="r", ls=":", lw=0.8)
            elif m.kind == "time" and isinstance(m.value, float) and t0 <= m.value <= t1:
                ax.axvline(m.value, color="tab:purple", ls=":", lw=0.8)
                ax.annotate(
                    m.label,
                    (m.value, 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    rotation=90,
                    va="top",
                    ha="right",
                )
            elif m.kind == "band" and isinstance(m.value, tuple):
                ax.axhspan(m.value[0] * f, m.value[1] * f, color="g", alpha=0.1)
            elif m.kind == "span" and isinstance(m.value, tuple):
                ax.axvspan(m.value[0], m.value[1], color="orange", alpha=0.12)
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (s), zoom on the measured transient")
    ax.legend(loc="upper right", fontsize=7)
