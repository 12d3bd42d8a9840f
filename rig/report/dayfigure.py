"""The figure of a day plan: tariff, home load, the DUT's power and the optimum's, SoC against the
reserve and the departure need, on one time axis in hours of the day.

Three panels share the axis: the import and export prices (grid outages shaded on every panel);
the power at the home (the home's load, the grid import, the EVSE's AC power as measured, and the
optimum's EVSE power from rig.optimum as a step line); the battery's SoC as reconstructed from
the battery-side meters (rig.checks.reserve) beside the optimum's, with the reserve and the
departure need. The header carries the plan's verdict and the cost comparison of `tariff_cost`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from rig.checks import Context, Verdict
from rig.checks.reserve import SOURCES, soc_series
from rig.checks.tariff import ev_power_profile, optimum_for
from rig.optimum import OptimalDay, OptimumError
from rig.report.outcome import Outcome
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

WIDTH_IN = 15.0
DPI = 100
#: The optimum's efficiency when the plan has no tariff_cost check (tariff.py's default).
DEFAULT_EFFICIENCY = 0.95
_COLORS = {
    "import": "#cf222e",
    "export": "#1a7f37",
    "home": "#6e7781",
    "grid": "#0969da",
    "dut": "#bf8700",
    "optimum": "#8250df",
    "reserve": "#cf222e",
    "need": "#1a7f37",
}


def _hours(day_start_s: float, t: np.ndarray) -> np.ndarray:
    """Plan seconds -> hours of the day (continuing past 24 over midnight)."""
    out: np.ndarray = (day_start_s + t) / 3600.0
    return out


def _thin(t: np.ndarray, v: np.ndarray, most: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    if t.size <= most:
        return t, v
    step = int(np.ceil(t.size / most))
    return t[::step], v[::step]


def render_day_png(
    trace: Trace,
    ctx: Context,
    verdicts: Sequence[Verdict],
    title: str,
    *,
    outcome: Outcome = Outcome.NOT_JUDGED,
    headline: str = "",
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    day = ctx.day
    assert day is not None, "a day figure needs a day plan"
    start = day.start_tod_s
    fig = Figure(figsize=(WIDTH_IN, 10.5), dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 1, height_ratios=[1.4, 3.0, 2.2], left=0.06, right=0.80, top=0.88)
    ax_price = fig.add_subplot(grid[0])
    ax_p = fig.add_subplot(grid[1], sharex=ax_price)
    ax_soc = fig.add_subplot(grid[2], sharex=ax_price)

    # Prices (step), outages shaded everywhere.
    n = day.steps
    t_steps = np.arange(n + 1) * day.resolution_s
    imp, exp = day.tariff.sampled(day.resolution_s, n)
    hours = _hours(start, t_steps)
    ax_price.step(hours[:-1], imp, where="post", color=_COLORS["import"], label="import price")
    ax_price.step(hours[:-1], exp, where="post", color=_COLORS["export"], label="export price")
    ax_price.set_ylabel(f"{day.tariff.currency}/kWh")
    for o in day.outages:
        for ax in (ax_price, ax_p, ax_soc):
            ax.axvspan(
                (start + o.start_s) / 3600.0,
                (start + o.end_s) / 3600.0,
                color="#000000",
                alpha=0.08,
                label="grid outage" if ax is ax_price else None,
            )

    # Power: measured channels and the optimum's EVSE power.
    for channel, label, key in (
        (analyzer_channel(MeasurementPoint.HOME, "p_w"), "home load (measured)", "home"),
        (analyzer_channel(MeasurementPoint.GRID, "p_w"), "grid import (measured)", "grid"),
        (analyzer_channel(MeasurementPoint.EVSE_AC, "p_w"), "DUT: EVSE AC (+ charges)", "dut"),
    ):
        t, v = trace.series(channel)
        ok = np.isfinite(v) & (t <= day.length_s)
        t, v = _thin(t[ok], v[ok])
        if t.size:
            ax_p.plot(_hours(start, t), v / 1000.0, color=_COLORS[key], lw=0.9, label=label)
    efficiency = next(
        (float(v.params["efficiency"]) for v in verdicts if v.name == "tariff_cost" and v.params),
        DEFAULT_EFFICIENCY,
    )
    best: OptimalDay | None = None
    note = ""
    try:
        best = optimum_for(ctx, efficiency)
    except OptimumError as exc:
        note = f"no optimum: {exc}"
    if best is not None:
        ax_p.step(
            hours[:-1],
            best.ev_w / 1000.0,
            where="post",
            color=_COLORS["optimum"],
            lw=1.4,
            ls="--",
            label="optimum: EVSE AC",
        )
    profile = ev_power_profile(trace)
    if profile is not None:  # DUT = EV: the EVPowerProfile it chose, as it sent it
        starts, powers = profile
        ax_p.step(
            _hours(start, starts),
            powers / 1000.0,
            where="post",
            color="#e16f24",
            lw=1.2,
            label="DUT: chosen EVPowerProfile",
        )
    ax_p.axhline(0.0, color="#000000", lw=0.5)
    ax_p.set_ylabel("kW")

    # SoC: measured (battery-side meter), the optimum's, the reserve, the departure need.
    ev = ctx.ev
    for channel in SOURCES:
        t, _ = trace.series(channel)
        if t.size >= 2:
            ts, soc = soc_series(trace, ctx, channel)
            keep = ts <= day.length_s
            ts, soc = _thin(ts[keep], soc[keep])
            ax_soc.plot(_hours(start, ts), soc * 100.0, color=_COLORS["dut"], label="DUT: SoC")
            break
    if best is not None:
        ax_soc.plot(
            hours,
            best.energy_wh / ev.capacity_wh * 100.0,
            color=_COLORS["optimum"],
            ls="--",
            label="optimum: SoC",
        )
    ax_soc.axhline(
        ev.reserve_soc * 100.0, color=_COLORS["reserve"], lw=1.0, ls=":", label="reserve"
    )
    need = day.departure.energy_wh / ev.capacity_wh * 100.0
    dep_h = (start + day.departure.at_s) / 3600.0
    ax_soc.plot([dep_h], [need], marker="v", ms=10, color=_COLORS["need"], ls="none")
    ax_soc.axhline(need, color=_COLORS["need"], lw=0.8, ls=":", label="departure need")
    ax_soc.axvline(dep_h, color=_COLORS["need"], lw=0.8, ls="--", label="departure")
    ax_soc.set_ylabel("SoC %")
    ticks = np.arange(np.floor(start / 3600.0), np.ceil((start + day.length_s) / 3600.0) + 1)
    step = max(1, int(len(ticks) / 13))
    ax_soc.set_xticks(ticks[::step])
    ax_soc.set_xticklabels([f"{int(h) % 24:02d}:00" for h in ticks[::step]])
    ax_soc.set_xlabel("time of day")
    for ax in (ax_price, ax_p, ax_soc):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for ax in (ax_price, ax_p):
        ax.tick_params(labelbottom=False)

    cost = next((v for v in verdicts if v.name == "tariff_cost"), None)
    lines = [f"{title} — {outcome.value}"]
    if headline:
        lines.append(headline)
    if cost is not None:
        lines.append(f"tariff_cost {cost.verdict}: {cost.detail}")
    if note:
        lines.append(note)
    fig.text(0.06, 0.985, "\n".join(_wrap(x) for x in lines), va="top", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _wrap(text: str, width: int = 190) -> str:
    words, out, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            out.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    out.append(line)
    return "\n".join(out[:3])
