"""reserve_floor: the battery never goes below the EV's reserve, in SoC and in energy.

The reserve is what the EV announces as the energy below which it gives nothing back
(EVMinimumV2XEnergyRequest in ISO 15118-20 Dynamic mode; FACTS.md "Who decides discharge"). The
battery's state is reconstructed from the bench's own meters: the battery emulator's DC power and
the power analyzer's DC element, each integrated from the known starting SoC. The DUT's claims
(its reported SoC, its "reserve reached" events) play no part. Where both meters exist the lower
(pessimistic) reconstruction is judged, and their disagreement is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import Context, Marker, Outcome, Param, Relation, Verdict, register
from rig.ev import EVSpec
from rig.sim.points import MeasurementPoint
from rig.trace import FloatArray, Trace, analyzer_channel

#: Battery-side power channels, in order of preference (rig sign: + into the EV).
SOURCES = ("dc_source.p_w", analyzer_channel(MeasurementPoint.EVSE_DC, "p_w"))


def energy_wh(t: FloatArray, p_w: FloatArray) -> FloatArray:
    """Cumulative energy into the battery (Wh) by trapezoidal integration; NaN samples skipped."""
    ok = np.isfinite(p_w)
    t, p_w = t[ok], p_w[ok]
    if t.size == 0:
        return np.zeros(0)
    out = np.zeros_like(t)
    out[1:] = np.cumsum(np.diff(t) * (p_w[1:] + p_w[:-1]) / 2.0) / 3600.0
    return out


def soc_series(trace: Trace, ctx: Context, channel: str) -> tuple[FloatArray, FloatArray]:
    """SoC (fraction) over time reconstructed from one battery-side power channel."""
    t, p = trace.series(channel)
    ok = np.isfinite(p)
    t = t[ok]
    return t, ctx.ev.soc + energy_wh(t, p[ok]) / ctx.ev.capacity_wh


class OnlineSoC:
    """The same reconstruction, sample by sample, for the runner's `wait_for: soc_below`."""

    def __init__(self, ev: EVSpec) -> None:
        self.capacity_wh = ev.capacity_wh
        self.soc = ev.soc
        self._last: tuple[float, float] | None = None

    def update(self, t: float, p_w: float) -> float:
        if np.isfinite(p_w):
            if self._last is not None:
                t0, p0 = self._last
                self.soc += (t - t0) * (p0 + p_w) / 2.0 / 3600.0 / self.capacity_wh
            self._last = (t, p_w)
        return self.soc


@register(
    "reserve_floor",
    summary="The battery never goes below the EV's reserve (SoC and energy), judged from the "
    "battery emulator's and the power analyzer's readings",
    clause="ISO 15118-20 EVMinimumV2XEnergyRequest (V2X reserve); V2H energy management",
    params={
        "tolerance": Param(
            "ratio",
            "0.1 %",
            help="measurement uncertainty allowed below the reserve, in SoC",
            high=1.0,
        ),
    },
)
def reserve_floor(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    clause = "ISO 15118-20 EVMinimumV2XEnergyRequest"
    tol = float(params["tolerance"])
    series = {ch: soc_series(trace, ctx, ch) for ch in SOURCES if trace.has(ch)}
    series = {ch: s for ch, s in series.items() if s[0].size >= 2}
    if not series:
        msg = f"no battery-side power was measured (need one of {', '.join(SOURCES)})"
        return [
            Verdict(
                "reserve_floor:soc",
                "error",
                None,
                ctx.ev.reserve_soc * 100,
                "%",
                msg,
                clause,
                relation=Relation.AT_LEAST,
            )
        ]
    mins = {ch: float(np.min(soc)) for ch, (_, soc) in series.items()}
    worst_ch = min(mins, key=lambda ch: mins[ch])
    t_worst, soc_worst = series[worst_ch]
    i_min = int(np.argmin(soc_worst))
    min_soc = mins[worst_ch]
    min_wh = min_soc * ctx.ev.capacity_wh
    reserve_wh = ctx.ev.reserve_soc * ctx.ev.capacity_wh
    spread = ""
    if len(mins) > 1:
        diff = max(mins.values()) - min(mins.values())
        spread = f"; meters disagree by {diff * 100:.3f} % SoC ({diff * ctx.ev.capacity_wh:.1f} Wh)"
    ok = min_soc >= ctx.ev.reserve_soc - tol
    below = (ctx.ev.reserve_soc - min_soc) * ctx.ev.capacity_wh
    detail = (
        f"lowest SoC {min_soc * 100:.3f} % ({min_wh:.0f} Wh) at t={t_worst[i_min]:.1f} s from "
        f"{worst_ch}; reserve {ctx.ev.reserve_soc * 100:.2f} % ({reserve_wh:.0f} Wh), tolerance "
        f"{tol * 100:.2f} %" + (f"; {below:.0f} Wh below the reserve" if not ok else "") + spread
    )
    outcome: Outcome = "pass" if ok else "fail"
    markers = (
        Marker("threshold", "reserve", ctx.ev.reserve_soc, "soc"),
        Marker("time", "lowest SoC", float(t_worst[i_min]), "soc"),
    )
    return [
        Verdict(
            "reserve_floor:soc",
            outcome,
            min_soc * 100,
            ctx.ev.reserve_soc * 100,
            "%",
            detail,
            clause,
            markers,
            relation=Relation.AT_LEAST,
        ),
        Verdict(
            "reserve_floor:energy",
            outcome,
            min_wh,
            reserve_wh,
            "Wh",
            detail,
            clause,
            relation=Relation.AT_LEAST,
        ),
    ]
