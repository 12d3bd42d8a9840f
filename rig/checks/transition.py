"""transition_time: direction changes and setpoint steps reach 90 % of the step in time.

Open-loop response time as IEEE 1547.1-2020 defines it for power steps: the time from the command
until the response Y(t) reaches Y0 + 0.9 (Yfinal - Y0), with the instrument's accuracy as a margin
in the DUT's favour. Also judged: overshoot beyond the final value (as a share of the step) and the
settling time into a band around it. The response is the EVSE's AC power measured by the power
analyzer, never the DUT's own report; the final value is the commanded setpoint, limited by what the
EV announced it can take or give (a DUT is not blamed for honouring the EV's limits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.checks import Context, Marker, Param, Relation, Verdict, register
from rig.sim.points import MeasurementPoint
from rig.trace import FloatArray, StepMarker, Trace, analyzer_channel

SIGNAL = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
#: Step actions that end the observation window of the previous setpoint step.
_PHYSICAL = ("setpoint", "grid", "home_load", "follow_home_load", "session")
CLAUSE = "IEEE 1547.1-2020 open-loop response time (90 % of step)"


@dataclass(frozen=True)
class StepResponse:
    t0: float
    y0: float
    y_final: float
    t90: float | None  # seconds after t0
    overshoot: float  # fraction of the step beyond the final value (>= 0)
    settle: float | None  # seconds after t0, None = never settled in the window

    @property
    def kind(self) -> str:
        if self.y0 >= 0 > self.y_final:
            return "charge→discharge"
        if self.y0 < 0 <= self.y_final:
            return "discharge→charge"
        return "setpoint step"


def response(
    t: FloatArray,
    y: FloatArray,
    t0: float,
    t_end: float,
    y_final: float,
    *,
    accuracy_w: float,
    band: float,
) -> StepResponse | None:
    """Measure one step's response from samples; None if there is nothing before or after t0."""
    before = np.nonzero(t <= t0)[0]
    inside = np.nonzero((t > t0) & (t <= t_end))[0]
    if before.size == 0 or inside.size == 0:
        return None
    y0 = float(y[before[-1]])
    step = y_final - y0
    tw, r = t[inside], (y[inside] - y0) / step
    # Reaching 90 % within the meter's accuracy counts as reaching it (1547.1 MRA margin).
    goal = 0.9 - accuracy_w / abs(step)
    hit = np.nonzero(r >= goal)[0]
    t90: float | None = None
    if hit.size:
        k = int(hit[0])
        t_prev, r_prev = (t0, 0.0) if k == 0 else (float(tw[k - 1]), float(r[k - 1]))
        t_hit, r_hit = float(tw[k]), float(r[k])
        # Interpolate between the last sample below the goal and the first at or above it.
        frac = 1.0 if r_hit == r_prev else (goal - r_prev) / (r_hit - r_prev)
        t90 = t_prev + min(max(frac, 0.0), 1.0) * (t_hit - t_prev) - t0
    overshoot = max(float(np.max(r)) - 1.0, 0.0)
    outside = np.nonzero(np.abs(r - 1.0) > band)[0]
    if outside.size == 0:
        settle: float | None = 0.0
    elif outside[-1] == r.size - 1:
        settle = None
    else:
        settle = float(tw[outside[-1] + 1]) - t0
    return StepResponse(t0, y0, y_final, t90, overshoot, settle)


def _window_end(steps: list[StepMarker], i: int, end: float) -> float:
    for later in steps[i + 1 :]:
        if later.action in _PHYSICAL and later.t > steps[i].t:
            return later.t
    return end


@register(
    "transition_time",
    summary="Charge→discharge, discharge→charge and setpoint steps reach 90 % of the step within "
    "the limit, with bounded overshoot and settling",
    clause=CLAUSE,
    params={
        "within": Param("time", "2 s", help="90 % response time limit", positive=True),
        "overshoot": Param(
            "ratio",
            "10 %",
            help="largest overshoot beyond the final value, share of the step",
            high=1.0,
        ),
        "settle_band": Param(
            "ratio",
            "5 %",
            help="band around the final value, share of the step",
            high=1.0,
            positive=True,
        ),
        "settle_within": Param("time", "10 s", help="settling time limit", positive=True),
        "accuracy": Param("power", "100 W", help="the power analyzer's accuracy margin"),
        "min_step": Param("power", "500 W", help="smaller steps are not judged"),
    },
)
def transition_time(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    t, y = trace.series(SIGNAL)
    ok = np.isfinite(y)
    t, y = t[ok], y[ok]
    steps = trace.steps
    results: list[StepResponse] = []
    for i, marker in enumerate(steps):
        if marker.action != "setpoint":
            continue
        target = float(marker.args["p_w"])
        y_final = min(
            max(target, -ctx.ev.max_discharge_w, -ctx.evse_rated_w),
            ctx.ev.max_charge_w,
            ctx.evse_rated_w,
        )
        r = response(
            t,
            y,
            marker.t,
            _window_end(steps, i, trace.end_t),
            y_final,
            accuracy_w=params["accuracy"],
            band=params["settle_band"],
        )
        if r is not None and abs(r.y_final - r.y0) >= params["min_step"]:
            results.append(r)
    if not results:
        msg = f"no setpoint step of at least {params['min_step']:.0f} W with samples of {SIGNAL} around it"
        return [
            Verdict(
                "transition_time",
                "error",
                None,
                params["within"],
                "s",
                msg,
                CLAUSE,
                relation=Relation.AT_MOST,
            )
        ]

    def describe(r: StepResponse) -> str:
        t90 = f"{r.t90:.3f} s" if r.t90 is not None else "never"
        settle = f"{r.settle:.2f} s" if r.settle is not None else "never"
        return (
            f"{r.kind} at t={r.t0:.1f} s {r.y0 / 1e3:+.2f}→{r.y_final / 1e3:+.2f} kW: 90 % after "
            f"{t90}, overshoot {r.overshoot * 100:.1f} %, settled {settle}"
        )

    lines = "; ".join(describe(r) for r in results)
    inf = float("inf")
    worst90 = max(results, key=lambda r: inf if r.t90 is None else r.t90)
    worst_os = max(results, key=lambda r: r.overshoot)
    worst_settle = max(results, key=lambda r: inf if r.settle is None else r.settle)
    markers: list[Marker] = []
    for r in results:
        markers.append(Marker("time", "step", r.t0, SIGNAL))
        markers.append(Marker("threshold", "90 %", r.y0 + 0.9 * (r.y_final - r.y0), SIGNAL))
        if r.t90 is not None:
            markers.append(Marker("time", f"90 % {r.t90:.2f} s", r.t0 + r.t90, SIGNAL))
    v90 = worst90.t90
    shown = max(3.0 * (v90 if v90 is not None else params["within"]), 2.0)
    markers.append(
        Marker("zoom", "worst step", (worst90.t0 - 0.25 * shown, worst90.t0 + shown), SIGNAL)
    )
    v_settle = worst_settle.settle
    return [
        Verdict(
            "transition_time",
            "pass" if v90 is not None and v90 <= params["within"] else "fail",
            v90,
            params["within"],
            "s",
            lines,
            CLAUSE,
            tuple(markers),
            relation=Relation.AT_MOST,
        ),
        Verdict(
            "transition_time:overshoot",
            "pass" if worst_os.overshoot <= params["overshoot"] else "fail",
            worst_os.overshoot * 100,
            params["overshoot"] * 100,
            "%",
            describe(worst_os),
            CLAUSE,
            relation=Relation.AT_MOST,
        ),
        Verdict(
            "transition_time:settling",
            "pass" if v_settle is not None and v_settle <= params["settle_within"] else "fail",
            v_settle,
            params["settle_within"],
            "s",
            describe(worst_settle),
            CLAUSE,
            relation=Relation.AT_MOST,
        ),
    ]
