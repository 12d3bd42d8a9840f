"""home_supply and power_direction: whether the DUT did its V2H job at all.

- `home_supply`: while the plan has the DUT follow the home load on a live grid and the EV still
  has V2X energy to give, the EV carries the home: the import at the grid point stays within a
  band of what the EV's live limits leave to the grid (zero when the EV can cover the home).
  Judged at the grid point (the power analyzer's grid element), the way a site meter sees it.
- `power_direction`: in every commanded interval (a setpoint, or following the home), the EVSE's
  measured AC power flows the way it should given the EV's live limits (rig.checks.expected), at
  least `min_share` of what it should. A unit that charges when told to discharge fails here
  whatever else the plan judges.

Both skip `settle` after every step (the DUT's response is `transition_time`'s business) and the
time the grid is off (`islanding`'s), and say when nothing was left to judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.checks import (
    Context,
    Marker,
    Param,
    Relation,
    Verdict,
    judged,
    not_judged,
    problem,
    register,
)
from rig.checks.evidence import Gap, Readings, last_sample_time, readings, window
from rig.checks.expected import LiveLimits
from rig.sim.points import MeasurementPoint
from rig.trace import FloatArray, Trace, analyzer_channel

GRID_P = analyzer_channel(MeasurementPoint.GRID, "p_w")
HOME_P = analyzer_channel(MeasurementPoint.HOME, "p_w")
EVSE_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
_PHYSICAL = ("setpoint", "grid", "home_load", "follow_home_load", "session")
CLAUSE_SUPPLY = "V2H energy management: the EV carries the home above its reserve (rig's criterion)"
CLAUSE_DIRECTION = "Commanded power direction (ISO 15118-20 BPT; rig's criterion)"


@dataclass(frozen=True)
class Interval:
    """A stretch of the run with one command in force: a setpoint (W) or following the home."""

    t0: float
    t1: float
    setpoint_w: float | None  # None: follow the home


def intervals(trace: Trace, end: float, settle: float) -> list[Interval]:
    """The commanded intervals on a live grid, each starting `settle` after the last step."""
    out: list[Interval] = []
    command = 0.0
    following = False
    grid_on = True
    session_on = True
    start: float | None = None
    for s in trace.steps:
        if s.action not in _PHYSICAL:
            continue
        if start is not None and grid_on and session_on and s.t > start:
            out.append(Interval(start, s.t, None if following else command))
        if s.action == "setpoint":
            following, command = False, float(s.args["p_w"])
        elif s.action == "follow_home_load":
            following = bool(s.args.get("on"))
        elif s.action == "grid" and "on" in s.args:
            grid_on = bool(s.args["on"])
        elif s.action == "session":
            session_on = s.args.get("command") in ("start", "resume")
        start = s.t + settle
    if start is not None and grid_on and session_on and end > start:
        out.append(Interval(start, end, None if following else command))
    return out


def _expected_at(
    limits: LiveLimits,
    ctx: Context,
    interval: Interval,
    t: FloatArray,
    home: Readings,
    min_efficiency: float,
) -> tuple[FloatArray, FloatArray]:
    """(low, high) of what the DUT should do at each time t of the interval."""
    low = np.empty_like(t)
    high = np.empty_like(t)
    home_at = np.interp(t, home.t, home.v) if home.t.size else np.zeros_like(t)
    for k, (x, h) in enumerate(zip(t, home_at, strict=True)):
        command = interval.setpoint_w if interval.setpoint_w is not None else min(-h, 0.0)
        e = limits.expected(command, float(x), ctx.evse_rated_w, min_efficiency)
        low[k], high[k] = e.low, e.high
    return low, high


@register(
    "home_supply",
    summary="While the DUT follows the home load on a live grid and the EV has V2X energy to "
    "give, the grid point imports no more than the EV's limits leave to it",
    clause=CLAUSE_SUPPLY,
    params={
        "band": Param(
            "power",
            "250 W",
            help="import allowed beyond the expected, at the grid point (rig's choice)",
        ),
        "settle": Param(
            "time", "5 s", help="time after each step left to the DUT's response (rig's choice)"
        ),
        "reserve_margin": Param(
            "energy",
            "50 Wh",
            help="judge only while the EV announces at least this much V2X energy left",
        ),
        "min_efficiency": Param(
            "ratio",
            "90 %",
            help="the DUT's conversion efficiency the EV's DC limits are allowed (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "min_time": Param(
            "time", "10 s", help="judged time below which the check cannot say", positive=True
        ),
        "max_gap": Param("time", "5 s", help="longest gap in readings accepted", positive=True),
    },
)
def home_supply(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name = "home_supply"
    band = float(params["band"])
    end = last_sample_time(trace, GRID_P)
    following = [i for i in intervals(trace, end, float(params["settle"])) if i.setpoint_w is None]
    if not following:
        return [
            not_judged(
                name,
                "the plan never has the DUT follow the home load on a live grid",
                CLAUSE_SUPPLY,
                unit="W",
                limit=band,
                relation=Relation.AT_MOST,
            )
        ]
    limits = LiveLimits.of(trace)
    margin = float(params["reserve_margin"])
    home = readings(trace, HOME_P)
    worst: tuple[float, float, float, float] | None = None  # (deviation, t, import, expected)
    judged_s = 0.0
    for interval in following:
        seen = window(trace, GRID_P, interval.t0, interval.t1, float(params["max_gap"]))
        if isinstance(seen, Gap):
            return [problem(name, seen.describe(), CLAUSE_SUPPLY, unit="W")]
        t, p = seen.t, seen.v
        if t.size == 0:
            continue
        # Above the reserve as the EV announces it (EVMinimumV2XEnergyRequest < -margin).
        above = np.array(
            [
                (a := limits.at(float(x))) is None
                or a.minimum_v2x_energy is None
                or a.minimum_v2x_energy < -margin
                for x in t
            ],
            dtype=bool,
        )
        if not limits.announcements:
            above[:] = True
        if not np.any(above):
            continue
        t, p = t[above], p[above]
        low, high = _expected_at(limits, ctx, interval, t, home, float(params["min_efficiency"]))
        # The grid imports what the home draws beyond what the EVSE gives: expected import =
        # home + expected EVSE power (rig sign: the EVSE's discharge is negative).
        home_at = np.interp(t, home.t, home.v) if home.t.size else np.zeros_like(t)
        exp_low, exp_high = home_at + low, home_at + high
        deviation = np.maximum(p - exp_high, 0.0) + np.maximum(exp_low - p, 0.0)
        k = int(np.argmax(deviation))
        if worst is None or deviation[k] > worst[0]:
            worst = (float(deviation[k]), float(t[k]), float(p[k]), float(exp_high[k]))
        judged_s += float(np.sum(np.diff(t))) if t.size > 1 else 0.0
    min_time = float(params["min_time"])
    if worst is None or judged_s < min_time:
        return [
            not_judged(
                name,
                f"the DUT followed the home with V2X energy to give for {judged_s:.1f} s only "
                f"(at least {min_time:g} s needed)",
                CLAUSE_SUPPLY,
                unit="W",
                limit=band,
                relation=Relation.AT_MOST,
            )
        ]
    deviation, t_w, imported, expected = worst
    detail = (
        f"over {judged_s:.0f} s of following the home with V2X energy left, the grid point "
        f"imported at worst {imported:.0f} W at t={t_w:.1f} s where {max(expected, 0.0):.0f} W "
        f"was expected ({deviation:.0f} W beyond; band {band:.0f} W)"
    )
    return [
        judged(
            name,
            deviation,
            band,
            Relation.AT_MOST,
            "W",
            ctx.instrumentation.band(GRID_P, imported),
            params,
            detail,
            CLAUSE_SUPPLY,
            (Marker("time", "worst import", t_w, GRID_P),),
        )
    ]


@register(
    "power_direction",
    summary="In every commanded interval the EVSE's AC power flows the way the command and the "
    "EV's live limits say, at least `min_share` of what it should",
    clause=CLAUSE_DIRECTION,
    params={
        "settle": Param(
            "time", "5 s", help="time after each step left to the DUT's response (rig's choice)"
        ),
        "min_power": Param(
            "power", "500 W", help="intervals expecting less judge no direction (rig's choice)"
        ),
        "min_share": Param(
            "ratio",
            "50 %",
            help="the least share of the expected power that must flow (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "min_efficiency": Param(
            "ratio",
            "90 %",
            help="the DUT's conversion efficiency the EV's DC limits are allowed (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "max_gap": Param("time", "5 s", help="longest gap in readings accepted", positive=True),
    },
)
def power_direction(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name = "power_direction"
    share_limit = float(params["min_share"]) * 100
    end = last_sample_time(trace, EVSE_P)
    limits = LiveLimits.of(trace)
    home = readings(trace, HOME_P)
    min_power = float(params["min_power"])
    rows: list[Verdict] = []
    for interval in intervals(trace, end, float(params["settle"])):
        seen = window(trace, EVSE_P, interval.t0, interval.t1, float(params["max_gap"]))
        if isinstance(seen, Gap):
            rows.append(problem(name, seen.describe(), CLAUSE_DIRECTION, unit="%"))
            continue
        if seen.t.size == 0:
            continue
        low, high = _expected_at(
            limits, ctx, interval, seen.t, home, float(params["min_efficiency"])
        )
        # The expected power nearest zero: the least the DUT should move, in its direction.
        least = np.where(low > 0, low, np.where(high < 0, high, 0.0))
        directed = np.abs(least) >= min_power
        if not np.any(directed):
            continue
        sign = np.sign(least[directed])
        flowed = float(np.mean(sign * seen.v[directed]))
        should = float(np.mean(np.abs(least[directed])))
        share = flowed / should * 100
        u = ctx.instrumentation.band(EVSE_P, should) / should * 100
        what = (
            "following the home"
            if interval.setpoint_w is None
            else f"setpoint {interval.setpoint_w / 1e3:+.2f} kW"
        )
        direction = "discharge" if float(np.mean(sign)) < 0 else "charge"
        rows.append(
            judged(
                name,
                share,
                share_limit,
                Relation.AT_LEAST,
                "%",
                u,
                params,
                f"{what}, t={interval.t0:.1f}…{interval.t1:.1f} s: expected {direction} of at "
                f"least {should:.0f} W; {flowed:+.0f} W flowed that way ({share:.0f} %)",
                CLAUSE_DIRECTION,
                (Marker("span", what, (interval.t0, interval.t1), EVSE_P),),
            )
        )
    if not rows:
        return [
            not_judged(
                name,
                f"no commanded interval expected at least {min_power:.0f} W in either direction",
                CLAUSE_DIRECTION,
                unit="%",
                limit=share_limit,
                relation=Relation.AT_LEAST,
            )
        ]
    order = {"error": 0, "not judged": 1, "fail": 2, "inconclusive": 3, "pass": 4}
    return [
        min(rows, key=lambda v: (order[v.verdict], v.measured if v.measured is not None else 0))
    ]
