"""islanding: when the grid goes away, the EVSE ceases to energize, or carries the home as configured.

Grid-following (anti-islanding, IEEE 1547-2018 8.1 / IEEE 1547.1-2020 5.10, IEC 62116): after the
grid is disconnected, the EVSE's output voltage and current must fall below 0.05 p.u. and stay there
within the clearing time (2 s). Grid-forming (V2H backup, GeneratorMode GridForming): the home's
voltage must be back within ±10 % of nominal within the configured transfer time and stay there
until the grid returns. Both are judged from the power analyzer at the EVSE terminals and at the
home, never from the DUT's own "island detected" claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import REQUIRED_IF, Context, Marker, Param, Relation, Verdict, register
from rig.sim.points import MeasurementPoint
from rig.trace import BoolArray, FloatArray, StepMarker, Trace, analyzer_channel

EVSE_V = analyzer_channel(MeasurementPoint.EVSE_AC, "v_rms")
EVSE_I = analyzer_channel(MeasurementPoint.EVSE_AC, "i_rms")
HOME_V = analyzer_channel(MeasurementPoint.HOME, "v_rms")


def _grid_losses(trace: Trace) -> list[tuple[float, float]]:
    """(t_loss, t_end) of every grid outage: from a `grid: off` step to `grid: on` or the end."""
    out: list[tuple[float, float]] = []
    grid_steps: list[StepMarker] = [s for s in trace.steps if s.action == "grid" and "on" in s.args]
    for i, s in enumerate(grid_steps):
        if s.args["on"] is False:
            end = next((g.t for g in grid_steps[i + 1 :] if g.args["on"] is True), trace.end_t)
            out.append((s.t, end))
    return out


def stays_below_from(t: FloatArray, ok: BoolArray, t0: float, t_end: float) -> float | None:
    """Earliest time >= t0 from which `ok` holds for every sample up to t_end (None: never)."""
    idx = np.nonzero((t >= t0) & (t <= t_end))[0]
    if idx.size == 0:
        return None
    good = ok[idx]
    if not good[-1]:
        return None
    bad = np.nonzero(~good)[0]
    first_good = 0 if bad.size == 0 else int(bad[-1]) + 1
    return float(t[idx[first_good]])


def _aligned(trace: Trace, a: str, b: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Two channels of the same instrument reading (same timestamps), NaN-free."""
    ta, va = trace.series(a)
    tb, vb = trace.series(b)
    n = min(ta.size, tb.size)
    if n == 0 or not np.array_equal(ta[:n], tb[:n]):
        raise ValueError(f"{a} and {b} were not sampled together")
    ok = np.isfinite(va[:n]) & np.isfinite(vb[:n])
    return ta[:n][ok], va[:n][ok], vb[:n][ok]


@register(
    "islanding",
    summary="After grid loss: grid-following EVSE ceases to energize (V and I < 0.05 p.u. within "
    "2 s); grid-forming EVSE restores the home's voltage within ±10 % within the transfer time",
    clause="IEEE 1547-2018 8.1; IEEE 1547.1-2020 5.10; V2H backup (GeneratorMode GridForming)",
    params={
        "mode": Param("choice", "grid_following", choices=("grid_following", "grid_forming")),
        "within": Param("time", "2 s", help="grid-following clearing time limit", positive=True),
        "threshold": Param(
            "ratio",
            "0.05 p.u.",
            help="grid-following: V and I below this, per unit",
            high=1.0,
            positive=True,
        ),
        "transfer_within": Param(
            "time", None, help="grid-forming: the transfer time limit, e.g. 200 ms", positive=True
        ),
        "voltage_band": Param(
            "ratio",
            "10 %",
            help="grid-forming: the home's voltage band around nominal",
            high=1.0,
            positive=True,
        ),
    },
)
def islanding(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    losses = _grid_losses(trace)
    mode = params["mode"]
    name = f"islanding:{mode}"
    if not losses:
        return [
            Verdict(
                name, "error", None, None, "s", "the plan never disconnects the grid (grid: off)"
            )
        ]
    if mode == "grid_following":
        return [_cease_to_energize(trace, ctx, params, t0, t1) for t0, t1 in losses]
    return [_backup(trace, ctx, params, t0, t1) for t0, t1 in losses]


def _cease_to_energize(
    trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, t1: float
) -> Verdict:
    clause = "IEEE 1547-2018 8.1 / IEEE 1547.1-2020 5.10 (cease to energize)"
    limit = float(params["within"])
    thr = float(params["threshold"])
    i_base = ctx.evse_rated_w / ctx.v_nominal
    t, v, i = _aligned(trace, EVSE_V, EVSE_I)
    dead = (v < thr * ctx.v_nominal) & (i < thr * i_base)
    t_clear = stays_below_from(t, dead, t0, t1)
    markers = (
        Marker("time", "grid lost", t0, EVSE_V),
        Marker("threshold", f"{thr:g} p.u.", thr * ctx.v_nominal, EVSE_V),
        Marker("threshold", f"{thr:g} p.u.", thr * i_base, EVSE_I),
        *(
            (Marker("time", f"cleared {t_clear - t0:.3f} s", t_clear, EVSE_V),)
            if t_clear is not None
            else ()
        ),
        Marker("span", "limit", (t0, t0 + limit), EVSE_V),
        _zoom(t0, limit, t_clear, EVSE_V),
    )
    if t_clear is None:
        detail = (
            f"grid lost at t={t0:.2f} s; the EVSE still energized its terminals "
            f"(V or I ≥ {thr:g} p.u.) at the end of the {t1 - t0:.1f} s observed"
        )
        return Verdict(
            "islanding:grid_following",
            "fail",
            None,
            limit,
            "s",
            detail,
            clause,
            markers,
            relation=Relation.AT_MOST,
        )
    clearing = t_clear - t0
    detail = (
        f"grid lost at t={t0:.2f} s; EVSE V < {thr * ctx.v_nominal:.1f} V and I < "
        f"{thr * i_base:.2f} A from {clearing:.3f} s on (observed {t1 - t0:.1f} s)"
    )
    return Verdict(
        "islanding:grid_following",
        "pass" if clearing <= limit else "fail",
        clearing,
        limit,
        "s",
        detail,
        clause,
        markers,
        relation=Relation.AT_MOST,
    )


def _backup(trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, t1: float) -> Verdict:
    clause = "V2H backup: GeneratorMode GridForming (ISO 15118-20), transfer time per plan"
    limit = float(params["transfer_within"])
    band = float(params["voltage_band"])
    t, v = trace.series(HOME_V)
    ok = np.isfinite(v)
    t, v = t[ok], v[ok]
    inside = np.abs(v - ctx.v_nominal) <= band * ctx.v_nominal
    t_back = stays_below_from(t, inside, t0, t1)
    lo, hi = (1 - band) * ctx.v_nominal, (1 + band) * ctx.v_nominal
    markers = (
        Marker("time", "grid lost", t0, HOME_V),
        Marker("band", f"±{band * 100:g} %", (lo, hi), HOME_V),
        *(
            (Marker("time", f"back {t_back - t0:.3f} s", t_back, HOME_V),)
            if t_back is not None
            else ()
        ),
        Marker("span", "limit", (t0, t0 + limit), HOME_V),
        _zoom(t0, limit, t_back, HOME_V),
    )
    if t_back is None:
        detail = (
            f"grid lost at t={t0:.2f} s; the home's voltage was not held within ±{band * 100:g} % "
            f"of {ctx.v_nominal:.0f} V by the end of the {t1 - t0:.1f} s observed"
        )
        return Verdict(
            "islanding:grid_forming",
            "fail",
            None,
            limit,
            "s",
            detail,
            clause,
            markers,
            relation=Relation.AT_MOST,
        )
    transfer = t_back - t0
    idx = np.nonzero((t >= t0) & (t <= t1))[0]
    dip = float(np.min(v[idx])) if idx.size else float("nan")
    detail = (
        f"grid lost at t={t0:.2f} s; home voltage within ±{band * 100:g} % from {transfer * 1e3:.0f} ms "
        f"on and stayed there for the {t1 - t_back:.1f} s until the grid returned; lowest {dip:.0f} V"
    )
    return Verdict(
        "islanding:grid_forming",
        "pass" if transfer <= limit else "fail",
        transfer,
        limit,
        "s",
        detail,
        clause,
        markers,
        relation=Relation.AT_MOST,
    )


def _zoom(t0: float, limit: float, t_measured: float | None, channel: str) -> Marker:
    seen = max(limit, (t_measured - t0) if t_measured is not None else 2 * limit)
    return Marker("zoom", "grid loss", (t0 - 0.5 * seen, t0 + 2.0 * seen), channel)


REQUIRED_IF[("islanding", "transfer_within")] = lambda values: values.get("mode") == "grid_forming"
