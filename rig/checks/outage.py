"""outage_supply: through each of the day's grid outages the battery carries the home.

A day plan's outages (rig.day) are windows where the grid goes away; the DUT knew them as a
forecast (a grid outage warning through its control interface). A V2H system in grid-forming
mode must carry the home through them: the home's voltage stays within a band of nominal from a
transfer allowance after the loss until the grid returns, as long as the EV is above its reserve
at the outage's start (a manager that spent the reserve's margin before a forecast outage fails).
Judged from the analyzer's home element; the precondition is that the grid really went away (the
grid source's output state as the runner records it).

The measured value is the total time the home was outside the band over all outages; each dark
interval is known to the sample spacing (its uncertainty).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import Context, Param, Relation, Verdict, judged, not_judged, problem, register
from rig.checks.evidence import longest_gap, too_sparse
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

CLAUSE = "V2H backup: the home carried through a grid outage (rig's own criterion)"
HOME_V = analyzer_channel(MeasurementPoint.HOME, "v_rms")
GRID_ON = "grid_simulator.output_on"


@register(
    "outage_supply",
    summary="Through each of the day's grid outages the home's voltage stays within a band of "
    "nominal (after a transfer allowance): the battery carries the home",
    clause=CLAUSE,
    params={
        "band": Param(
            "ratio",
            "10 %",
            help="the home's voltage within ± this of nominal (rig's choice, the usual supply "
            "tolerance)",
            high=1.0,
            positive=True,
        ),
        "transfer": Param(
            "time",
            "2 s",
            help="the time the backup may take to form the island after the loss (plan's value: "
            "no public figure for V2H products, FACTS.md)",
        ),
        "dark_for": Param(
            "time", "0 s", help="the total time the home may be outside the band over the outages"
        ),
        "max_gap": Param(
            "time", "30 s", help="longest gap in home-voltage readings", positive=True
        ),
    },
)
def outage_supply(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    day = ctx.day
    limit = float(params["dark_for"])
    if day is None or not day.outages:
        return [not_judged("outage_supply", "the plan's day has no grid outage", CLAUSE)]
    band = float(params["band"]) * ctx.v_nominal
    allow = float(params["transfer"])
    max_gap = float(params["max_gap"])
    t, v = trace.series(HOME_V)
    ok = np.isfinite(v)
    t, v = t[ok], v[ok]
    g_t, g_on = trace.series(GRID_ON)
    dark = 0.0
    spacing = 0.0
    notes: list[str] = []
    for i, o in enumerate(day.outages):
        lost = g_t[(g_t >= o.start_s - 1.0) & (g_t < o.end_s) & (g_on == 0.0)]
        if lost.size == 0:
            return [
                not_judged(
                    "outage_supply",
                    f"outage {i + 1} ({day.clock_of(o.start_s)}-{day.clock_of(o.end_s)}): the grid "
                    "source never reported its output off: the outage did not happen",
                    CLAUSE,
                    unit="s",
                    limit=limit,
                    relation=Relation.AT_MOST,
                )
            ]
        t0, t1 = o.start_s + allow, o.end_s
        if not t.size or float(t[-1]) < t1 - max_gap:
            return [
                not_judged(
                    "outage_supply",
                    f"the home-voltage readings end before outage {i + 1} does (t={t1:.0f} s)",
                    CLAUSE,
                    unit="s",
                    limit=limit,
                    relation=Relation.AT_MOST,
                )
            ]
        length, a, b = longest_gap(trace, HOME_V, t0, t1)
        if too_sparse(length, max_gap):
            return [
                problem(
                    "outage_supply",
                    f"{HOME_V}: no valid reading for {length:.1f} s (t={a:.1f} s to t={b:.1f} s) "
                    f"in outage {i + 1}; at most {max_gap:g} s allowed",
                    CLAUSE,
                    unit="s",
                    limit=limit,
                    relation=Relation.AT_MOST,
                )
            ]
        inside = (t >= t0) & (t <= t1)
        tw, vw = t[inside], v[inside]
        if tw.size < 2:
            continue
        out = np.abs(vw - ctx.v_nominal) > band
        dt = np.diff(tw)
        spent = float(np.sum(dt * (out[1:] | out[:-1])))
        dark += spent
        spacing = max(spacing, float(np.max(dt)))
        if spent > 0.0:
            first = float(tw[np.argmax(out)])
            notes.append(
                f"outage {i + 1} ({day.clock_of(o.start_s)}-{day.clock_of(o.end_s)}): the home "
                f"left the band at t={first:.0f} s ({day.clock_of(first)}), {spent:.0f} s in all"
            )
        else:
            notes.append(
                f"outage {i + 1} ({day.clock_of(o.start_s)}-{day.clock_of(o.end_s)}): carried"
            )
    detail = (
        f"the home outside {ctx.v_nominal:g} V ± {band:.0f} V for {dark:.0f} s over "
        f"{len(day.outages)} outage(s) (after {allow:g} s to transfer); " + "; ".join(notes)
    )
    return [
        judged(
            "outage_supply",
            dark,
            limit,
            Relation.AT_MOST,
            "s",
            spacing if dark > 0 else 0.0,
            params,
            detail,
            CLAUSE,
        )
    ]
