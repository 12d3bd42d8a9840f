"""transition_time: the DUT's open-loop response to each power step, as IEEE 1547.1 judges it.

A step is a new setpoint, the start of following the home load, or a home-load step while the
DUT follows the home. For each step the rig first works out what the DUT should settle at: the
command as the EV's live limits allow it (rig.checks.expected: the reserve, a full pack, the EV's
discharge limit), and judges the measured final value against it (`transition_time:final`). Then,
where a response was due (the expected change is at least `min_step`), the open-loop response
time in the style of IEEE 1547.1 (FACTS "Criteria details", as SunSpec SVP's p1547 and UL 1741 SB
tooling evaluate it):

- Y0 is the reading just before the step, Yfinal the measured steady state after the limit (the
  mean over `final_window` before the next step), never the raw command;
- the 90 % point is Y0 + 0.9 (Yfinal - Y0), with a two-sided band of ± 1.5 x MRA_P around it;
  MRA_P = `mra` of the DUT's rating (5 %: IEEE 1547-2018's minimum measurement accuracy for
  active power as both codebases quote it (?));
- the response has reached the 90 % point when it enters that band; the time tolerance is
  ± 1.5 x MRA_T with MRA_T = `time_mra` (1 %) of the limit;
- `response: within` (default) judges the limit as a maximum (a V2H direction change must be at
  least this fast); `response: setting` also fails a response that is in the band before the
  limit minus the tolerance (1547.1's check of a configured response time).

The limit `within` is the plan's: 2 s for a V2H direction change is not an IEEE 1547 value.
Overshoot and settling bands are the rig's own choices. The signal is the EVSE's AC power from the
power analyzer, never the DUT's report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rig.checks import (
    RUN_PRECEDENCE,
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
from rig.checks.evidence import Gap, last_sample_time, readings, too_sparse, window
from rig.checks.expected import Expected, LiveLimits
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

SIGNAL = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
HOME_P = analyzer_channel(MeasurementPoint.HOME, "p_w")
#: Step actions that end the observation window of the previous step.
_PHYSICAL = ("setpoint", "grid", "home_load", "follow_home_load", "session")
CLAUSE = (
    "IEEE 1547.1-2020 open-loop response time (90 % of the step, ± 1.5 MRA); the limit is the "
    "plan's (not an IEEE 1547 value)"
)


@dataclass(frozen=True)
class Step:
    """One commanded change the DUT must respond to."""

    t0: float
    t_end: float
    kind: str  # "setpoint", "follow home", "home load"
    command_w: float | None  # None: follow the home (the command is minus the home's draw)


@dataclass(frozen=True)
class Response:
    """What the DUT did after one step, and how it stands against the criteria."""

    step: Step
    y0: float
    y_final: float
    expected: Expected
    #: The expected step was at least min_step: a response time is judged.
    due: bool
    #: Seconds after t0: the band entry (judged), the exact 90 % crossing (reported).
    t_band: float | None
    t90: float | None
    #: setting mode: when the response passed beyond the band's far edge (too fast if early).
    t_beyond: float | None
    time_u: float
    overshoot: float  # share of the step beyond the final value
    settle: float | None
    final_u: float

    @property
    def label(self) -> str:
        return f"{self.step.kind} at t={self.step.t0:.1f} s {self.y0 / 1e3:+.2f}→{self.y_final / 1e3:+.2f} kW"


def _interpolated_crossing(t: np.ndarray, y: np.ndarray, level: float, sign: float) -> int | None:
    """Index of the first reading with sign·(y - level) >= 0."""
    hit = np.flatnonzero(sign * (y - level) >= 0.0)
    return None if hit.size == 0 else int(hit[0])


def _crossing_time(
    t: np.ndarray, y: np.ndarray, t0: float, y0: float, level: float, sign: float
) -> tuple[float, float] | None:
    """(time, slope) where the response first reaches `level`, interpolated between the last
    reading before it and the first at or beyond it (the reading at t0 is y0)."""
    k = _interpolated_crossing(t, y, level, sign)
    if k is None:
        return None
    t_prev, y_prev = (t0, y0) if k == 0 else (float(t[k - 1]), float(y[k - 1]))
    t_hit, y_hit = float(t[k]), float(y[k])
    if y_hit == y_prev:
        return t_hit, 0.0
    share = min(max((level - y_prev) / (y_hit - y_prev), 0.0), 1.0)
    slope = abs(y_hit - y_prev) / max(t_hit - t_prev, 1e-9)
    return t_prev + share * (t_hit - t_prev), slope


def _steps(trace: Trace, end: float) -> list[Step]:
    steps = trace.steps
    out: list[Step] = []
    following = False
    grid_on = True
    for i, s in enumerate(steps):
        if s.action == "grid" and "on" in s.args:
            grid_on = bool(s.args["on"])
        kind: str | None = None
        command: float | None = None
        if s.action == "setpoint":
            following = False
            kind, command = "setpoint", float(s.args["p_w"])
        elif s.action == "follow_home_load":
            following = bool(s.args.get("on"))
            kind = "follow home" if following else None
        elif s.action == "home_load" and following:
            kind = "home load"
        if kind is None or not grid_on:
            continue  # an island is judged by `islanding`, not as a response
        t_end = next(
            (later.t for later in steps[i + 1 :] if later.action in _PHYSICAL and later.t > s.t),
            end,
        )
        out.append(Step(s.t, min(t_end, end), kind, command))
    return out


@register(
    "transition_time",
    summary="Each step settles at what the DUT should do given the EV's live limits, and, where a "
    "response is due, reaches the 90 % band (IEEE 1547.1 style) within the plan's limit, with "
    "bounded overshoot and settling",
    clause=CLAUSE,
    params={
        "within": Param(
            "time",
            "2 s",
            help="the plan's response time limit (not an IEEE 1547 value)",
            positive=True,
        ),
        "response": Param(
            "choice",
            "within",
            choices=("within", "setting"),
            help="within: the limit is a maximum; setting: 1547.1's two-sided check of a "
            "configured response time",
        ),
        "mra": Param(
            "ratio",
            "5 %",
            help="MRA of active power, share of the rating (IEEE 1547-2018 table, as SVP quotes it (?))",
            high=1.0,
        ),
        "time_mra": Param(
            "ratio", "1 %", help="MRA of time, share of the limit (IEEE 1547.1 (?))", high=1.0
        ),
        "overshoot": Param(
            "ratio",
            "10 %",
            help="largest overshoot beyond the final value, share of the step (rig's choice)",
            high=1.0,
        ),
        "settle_band": Param(
            "ratio",
            "5 %",
            help="band around the final value, share of the step (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "settle_within": Param(
            "time", "10 s", help="settling time limit (rig's choice)", positive=True
        ),
        "min_step": Param(
            "power", "500 W", help="smaller expected steps: only the final value is judged"
        ),
        "final_window": Param(
            "time",
            "2 s",
            help="Yfinal is the mean over this long before the next step (rig's choice)",
            positive=True,
        ),
        "min_efficiency": Param(
            "ratio",
            "90 %",
            help="the DUT's conversion efficiency the EV's DC limits are allowed (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "resolution": Param(
            "ratio",
            "5 %",
            help="largest sample spacing in a response, share of the limit (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "max_gap": Param(
            "time", "2 s", help="longest gap in readings accepted after a step", positive=True
        ),
    },
)
def transition_time(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    within = float(params["within"])
    end = last_sample_time(trace, SIGNAL)
    steps = _steps(trace, end)
    if not steps:
        return [
            problem(
                "transition_time",
                "no setpoint or home-following step in the plan: nothing to judge",
                CLAUSE,
                unit="s",
                limit=within,
                relation=Relation.AT_MOST,
            )
        ]
    limits = LiveLimits.of(trace)
    outcomes: list[Response | Verdict] = [
        _respond(trace, ctx, params, limits, step) for step in steps
    ]
    problems = [o for o in outcomes if isinstance(o, Verdict)]
    responses = [o for o in outcomes if isinstance(o, Response)]
    out: list[Verdict] = []
    out.extend(_final_rows(ctx, params, responses, problems))
    due = [r for r in responses if r.due]
    if due:
        out.extend(_response_rows(ctx, params, due))
    return out


def _respond(
    trace: Trace, ctx: Context, params: Mapping[str, Any], limits: LiveLimits, step: Step
) -> Response | Verdict:
    within = float(params["within"])
    tol = 1.5 * float(params["time_mra"]) * within
    final_window = float(params["final_window"])
    max_gap = float(params["max_gap"])
    name = f"{step.kind} at t={step.t0:.1f} s"
    # The steady state is read once the DUT must have settled (settle_within), or before the
    # next step, whichever comes first: later, the EV's limits may have moved (its reserve).
    t_end = min(step.t_end, step.t0 + float(params["settle_within"]) + final_window)
    if t_end - step.t0 < within + tol + final_window:
        return not_judged(
            "transition_time",
            f"{name}: the plan moved on after {step.t_end - step.t0:.2f} s; a steady state after "
            f"the limit needs at least {within + tol + final_window:.2f} s",
            CLAUSE,
            unit="s",
        )
    step = Step(step.t0, t_end, step.kind, step.command_w)
    seen = window(trace, SIGNAL, step.t0, step.t_end, max_gap)
    if isinstance(seen, Gap):
        return problem("transition_time", f"{name}: {seen.describe()}", CLAUSE, unit="s")
    before = readings(trace, SIGNAL).last_before(step.t0)
    if before is None or step.t0 - before[0] > max_gap:
        return problem(
            "transition_time",
            f"{name}: no reading of {SIGNAL} just before the step (Y0)",
            CLAUSE,
            unit="s",
        )
    y0 = before[1]
    fast_until = min(step.t_end, step.t0 + within + tol + 0.5)
    spacing = seen.max_spacing(step.t0, fast_until)
    resolution = float(params["resolution"]) * within
    if too_sparse(spacing, resolution):
        return problem(
            "transition_time",
            f"{name}: readings of {SIGNAL} {spacing * 1e3:.0f} ms apart after the step; judging a "
            f"{within:g} s limit needs at most {resolution * 1e3:.0f} ms",
            CLAUSE,
            unit="s",
        )
    y_final = seen.mean(step.t_end - final_window, step.t_end)
    assert y_final is not None  # the window holds readings: no gap longer than max_gap
    command = step.command_w
    if command is None:
        home = readings(trace, HOME_P).mean(step.t_end - final_window, step.t_end)
        if home is None:
            return problem(
                "transition_time", f"{name}: no reading of {HOME_P} to follow", CLAUSE, unit="s"
            )
        command = min(-home, 0.0)  # the V2H unit discharges what the home draws, never charges
    expected = limits.expected(
        command, step.t_end, ctx.evse_rated_w, float(params["min_efficiency"])
    )
    target = expected.nearest(y_final)
    inst = ctx.instrumentation
    final_u = inst.band(SIGNAL, y_final)
    due = abs(target - y0) >= float(params["min_step"])
    t_band = t90 = t_beyond = None
    time_u = 0.0
    overshoot, settle = 0.0, None
    if due:
        moved = y_final - y0
        sign = 1.0 if (target - y0) > 0 else -1.0
        band = 1.5 * float(params["mra"]) * ctx.evse_rated_w
        t, y = seen.t[seen.t > step.t0], seen.v[seen.t > step.t0]
        if sign * moved >= 0.5 * abs(target - y0):
            level = y0 + 0.9 * moved
            entered = _crossing_time(t, y, step.t0, y0, level - sign * band, sign)
            exact = _crossing_time(t, y, step.t0, y0, level, sign)
            beyond = _crossing_time(t, y, step.t0, y0, level + sign * band, sign)
            if entered is not None:
                t_band = entered[0] - step.t0
                slope = entered[1]
                amp_u = inst.band(SIGNAL, level) / slope if slope > 0 else 0.0
                time_u = inst.time_u(SIGNAL, seen.spacing_at(entered[0])) + amp_u
            t90 = None if exact is None else exact[0] - step.t0
            t_beyond = None if beyond is None else beyond[0] - step.t0
            r = (y - y0) / moved
            overshoot = max(float(np.max(r)) - 1.0, 0.0) if r.size else 0.0
            outside = np.flatnonzero(np.abs(r - 1.0) > float(params["settle_band"]))
            if outside.size == 0:
                settle = 0.0
            elif int(outside[-1]) < r.size - 1:
                settle = float(t[int(outside[-1]) + 1]) - step.t0
    return Response(
        step, y0, y_final, expected, due, t_band, t90, t_beyond, time_u, overshoot, settle, final_u
    )


def _worst(verdicts: list[Verdict]) -> Verdict:
    order = {o: i for i, o in enumerate(RUN_PRECEDENCE)}
    return min(verdicts, key=lambda v: order.get(v.verdict, 0))


def _final_rows(
    ctx: Context, params: Mapping[str, Any], responses: list[Response], problems: list[Verdict]
) -> list[Verdict]:
    """transition_time:final, one row: the worst step (a problem with a step wins)."""
    band = 1.5 * float(params["mra"]) * ctx.evse_rated_w
    rows: list[Verdict] = []
    for r in responses:
        deviation = r.expected.distance(r.y_final)
        rows.append(
            judged(
                "transition_time:final",
                deviation,
                band,
                Relation.AT_MOST,
                "W",
                r.final_u,
                params,
                f"{r.label}: settled {deviation:.0f} W from what it should do, "
                f"{r.expected.describe()}; band ± 1.5 MRA = {band:.0f} W",
                CLAUSE,
                (Marker("time", "step", r.step.t0, SIGNAL),),
            )
        )
    rows.extend(
        Verdict("transition_time:final", p.verdict, None, band, "W", p.detail, CLAUSE)
        for p in problems
    )
    worst = _worst(rows)
    others = [f"{r.label} ({r.expected.describe()})" for r in responses if r.expected.reason]
    if others and worst.verdict == "pass":
        worst = replace(
            worst,
            detail=worst.detail
            + f"; {len(responses)} steps, limited by the EV: "
            + "; ".join(others),
        )
    return [worst]


def _response_rows(ctx: Context, params: Mapping[str, Any], due: list[Response]) -> list[Verdict]:
    within = float(params["within"])
    tol = 1.5 * float(params["time_mra"]) * within
    setting = params["response"] == "setting"
    rows: list[Verdict] = []
    for r in due:
        t_band = r.t_band
        detail = (
            f"{r.label}: in the 90 % band after "
            + ("never" if t_band is None else f"{t_band:.3f} s")
            + (f" (90 % point {r.t90:.3f} s)" if r.t90 is not None else "")
            + f"; limit {within:g} s + 1.5 MRA_T {tol * 1e3:.0f} ms"
        )
        verdict = judged(
            "transition_time",
            t_band,
            within + tol,
            Relation.AT_MOST,
            "s",
            r.time_u,
            params,
            detail,
            CLAUSE,
            _markers(r),
        )
        if setting and r.t_beyond is not None and r.t_beyond < within - tol - r.time_u:
            verdict = replace(
                verdict,
                verdict="fail",
                detail=detail + f"; beyond the band already after {r.t_beyond:.3f} s (too fast "
                f"for a {within:g} s setting)",
            )
        rows.append(verdict)
    response = _worst_by_value(rows)
    overshoot_rows = [
        judged(
            "transition_time:overshoot",
            r.overshoot * 100,
            float(params["overshoot"]) * 100,
            Relation.AT_MOST,
            "%",
            100 * ctx.instrumentation.band(SIGNAL, r.y_final) / max(abs(r.y_final - r.y0), 1.0),
            params,
            f"{r.label}: overshoot {r.overshoot * 100:.1f} % of the step (limit: rig's choice)",
            CLAUSE,
        )
        for r in due
    ]
    settle_limit = float(params["settle_within"])
    settle_rows = [
        judged(
            "transition_time:settling",
            r.settle,
            settle_limit,
            Relation.AT_MOST,
            "s",
            r.time_u,
            params,
            f"{r.label}: within ±{float(params['settle_band']) * 100:g} % of the final value "
            + ("never" if r.settle is None else f"from {r.settle:.2f} s on")
            + " (limit: rig's choice)",
            CLAUSE,
        )
        for r in due
    ]
    return [response, _worst_by_value(overshoot_rows), _worst_by_value(settle_rows)]


def _worst_by_value(rows: list[Verdict]) -> Verdict:
    """The decisive row: the worst outcome, and among equals the largest measured value."""
    order = {o: i for i, o in enumerate(RUN_PRECEDENCE)}
    return min(
        rows,
        key=lambda v: (
            order.get(v.verdict, 0),
            -(math.inf if v.measured is None else v.measured),
        ),
    )


def _markers(r: Response) -> tuple[Marker, ...]:
    level = r.y0 + 0.9 * (r.y_final - r.y0)
    out = [
        Marker("time", "step", r.step.t0, SIGNAL),
        Marker("threshold", "90 %", level, SIGNAL),
    ]
    if r.t_band is not None:
        out.append(Marker("time", f"90 % band {r.t_band:.2f} s", r.step.t0 + r.t_band, SIGNAL))
    shown = max(3.0 * (r.t_band if r.t_band is not None else 1.0), 2.0)
    out.append(Marker("zoom", "step", (r.step.t0 - 0.25 * shown, r.step.t0 + shown), SIGNAL))
    return tuple(out)
