"""discharge_limits: the measured discharge never beyond what the EV announced, and the energy
given back never beyond the EV's V2X window.

The EV announces its discharge limits over ISO 15118-20 (EVMaximumDischargePower and
EVMaximumDischargeCurrent in ChargeParameterDiscovery and every Dynamic ChargeLoopReq) and the
energy it may give back (EVMinimumV2XEnergyRequest: the energy to its reserve, negative while above
it; OCPP 2.1's reading, FACTS.md). The EVSE must keep within them. Judged from the instruments:
the battery side (battery emulator, or the analyzer's DC element) for DC services, the EVSE's AC
terminals for AC services, each reading against the announcement in force `react_within` earlier
(the EVSE hears of a new limit at the next ChargeLoop and needs its ramp), with `tolerance` for
the meter. Discharge limits are read as magnitudes whatever sign the EV wrote.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
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
from rig.checks.evidence import Gap, last_sample_time, window
from rig.checks.reserve import SOURCES, energy_track
from rig.checks.uncertainty import Instrumentation
from rig.checks.v2gtrace import EvAnnouncement, ev_announcements, messages
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

CLAUSE = (
    "ISO 15118-20 EVMaximumDischargePower / EVMaximumDischargeCurrent / EVMinimumV2XEnergyRequest"
)
AC_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
#: Battery-side current channels (the battery emulator's readback, the analyzer's DC element).
CURRENTS = ("dc_source.i", analyzer_channel(MeasurementPoint.EVSE_DC, "i"))


def most_accurate(trace: Trace, inst: Instrumentation, channels: tuple[str, ...], at: float) -> str:
    """Of the channels the trace has, the one with the smallest uncertainty at the value `at`
    (the first listed when the bench describes none)."""
    present = [c for c in channels if trace.has(c)]
    if not present:
        return channels[0]
    known = [c for c in present if inst.known(c)]
    if not known:
        return present[0]
    return min(known, key=lambda c: inst.band(c, at))


@register(
    "discharge_limits",
    summary="Measured discharge power and current never beyond the EV's announced maxima, and "
    "the energy given back within the EV's V2X window (EVMinimumV2XEnergyRequest)",
    clause=CLAUSE,
    params={
        "react_within": Param(
            "time",
            "1 s",
            help="time the EVSE has to follow a lowered limit (rig's choice)",
            positive=True,
        ),
        "tolerance": Param(
            "ratio",
            "2 %",
            help="meter margin, as a share of the EVSE's rating (rig's choice)",
            high=1.0,
        ),
        "energy_tolerance": Param(
            "energy", "20 Wh", help="energy the EV's window may be overrun by (rig's choice)"
        ),
        "max_gap": Param("time", "5 s", help="longest gap in readings accepted", positive=True),
    },
)
def discharge_limits(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    msgs = messages(trace)
    announced = [a for a in ev_announcements(msgs) if a.max_discharge_power is not None]
    if not announced:
        return [
            not_judged(
                "discharge_limits:power",
                "the EV announced no discharge limit over ISO 15118-20 (no BPT session in the trace)",
                CLAUSE,
                unit="W",
            )
        ]
    react = float(params["react_within"])
    margin = float(params["tolerance"]) * ctx.evse_rated_w
    ac = any(m.name.startswith("AC_") for m in msgs)
    inst = ctx.instrumentation
    first = float(-(announced[0].max_discharge_power or 0.0))
    channel = AC_P if ac else most_accurate(trace, inst, SOURCES, first)
    max_gap = float(params["max_gap"])
    out = [_power(trace, inst, params, announced, channel, react, margin, max_gap)]
    currents = [a.max_discharge_current for a in announced if a.max_discharge_current is not None]
    if not ac and currents and any(trace.has(c) for c in CURRENTS):
        i_channel = most_accurate(trace, inst, CURRENTS, -currents[0])
        out.append(
            _current(trace, inst, params, announced, i_channel, react, margin / 400.0, max_gap)
        )
    out.append(_v2x_energy(trace, inst, params, announced, float(params["energy_tolerance"])))
    return out


def _in_force(times: list[float], t: float, react: float) -> int:
    """Index of the announcement in force at t: the latest at or before t - react (a lowered
    limit binds after react), else the first."""
    return max(bisect.bisect_right(times, t - react) - 1, 0)


def _worst(
    t: np.ndarray, value: np.ndarray, limits: np.ndarray, margin: float
) -> tuple[int, float]:
    """Index of the sample most beyond its (negative) limit, and by how much (W or A; <= 0 ok)."""
    excess = (limits - margin) - value  # > 0 when the discharge is larger than allowed
    i = int(np.nanargmax(excess))
    return i, float(excess[i])


def _against_limits(
    trace: Trace,
    announced: list[EvAnnouncement],
    limit_of: Callable[[EvAnnouncement], float | None],
    channel: str,
    react: float,
    margin: float,
    max_gap: float,
) -> tuple[float, float, float] | str:
    """(t, measured, limit in force) of the reading most beyond the EV's announced limit on
    `channel`, from the first announcement that gives one; or why there is none to judge."""
    use = [a for a in announced if limit_of(a) is not None]
    seen = window(trace, channel, use[0].t, last_sample_time(trace, channel), max_gap)
    if isinstance(seen, Gap):
        return seen.describe()
    t, v = seen.t, seen.v
    if t.size == 0:
        return f"no {channel} reading"
    times = [a.t for a in use]
    limits = np.array([limit_of(use[_in_force(times, float(x), react)]) for x in t], dtype=float)
    i, _ = _worst(t, v, limits, margin)
    return float(t[i]), float(v[i]), float(limits[i])


def _power(
    trace: Trace,
    inst: Instrumentation,
    params: Mapping[str, Any],
    announced: list[EvAnnouncement],
    channel: str,
    react: float,
    margin: float,
    max_gap: float,
) -> Verdict:
    name = "discharge_limits:power"
    worst = _against_limits(
        trace, announced, lambda a: a.max_discharge_power, channel, react, margin, max_gap
    )
    if isinstance(worst, str):
        return problem(name, worst, CLAUSE, unit="W")
    t, measured, limit = worst
    detail = (
        f"largest discharge against the EV's limit: {-measured:.0f} W at t={t:.2f} s where the "
        f"EV allowed {-limit:.0f} W (+ {margin:.0f} W allowance, rig's choice; {react:g} s to react) "
        f"on {channel}"
    )
    return judged(
        name,
        -measured,
        -limit + margin,
        Relation.AT_MOST,
        "W",
        inst.band(channel, measured),
        params,
        detail,
        CLAUSE,
        (
            Marker("threshold", "EV discharge limit", limit, channel),
            Marker("time", "worst", t, channel),
        ),
    )


def _current(
    trace: Trace,
    inst: Instrumentation,
    params: Mapping[str, Any],
    announced: list[EvAnnouncement],
    channel: str,
    react: float,
    margin: float,
    max_gap: float,
) -> Verdict:
    name = "discharge_limits:current"
    worst = _against_limits(
        trace, announced, lambda a: a.max_discharge_current, channel, react, margin, max_gap
    )
    if isinstance(worst, str):
        return problem(name, worst, CLAUSE, unit="A")
    t, measured, limit = worst
    return judged(
        name,
        -measured,
        -limit + margin,
        Relation.AT_MOST,
        "A",
        inst.band(channel, measured),
        params,
        f"largest discharge current against the EV's limit: {-measured:.1f} A at t={t:.2f} s, "
        f"allowed {-limit:.1f} A (+ {margin:.1f} A allowance, rig's choice) on {channel}",
        CLAUSE,
    )


def _v2x_energy(
    trace: Trace,
    inst: Instrumentation,
    params: Mapping[str, Any],
    announced: list[EvAnnouncement],
    tolerance: float,
) -> Verdict:
    """From each announcement on, the energy into the battery must not fall below the EV's
    EVMinimumV2XEnergyRequest (negative: what it may still give back)."""
    name = "discharge_limits:v2x_energy"
    windows = [a for a in announced if a.minimum_v2x_energy is not None]
    present = [c for c in SOURCES if trace.has(c)]
    if not windows or not present:
        return not_judged(
            name,
            "no EVMinimumV2XEnergyRequest announced, or no battery-side power measured",
            CLAUSE,
            unit="Wh",
        )
    # The reconstruction with the smallest uncertainty at its end (rig.checks.reserve).
    track = min(
        (energy_track(trace, inst, c) for c in present),
        key=lambda tr: float(tr.u_wh[-1]) if tr.u_wh.size else float("inf"),
    )
    channel = track.channel
    t, e, u = track.t, track.e_wh, track.u_wh
    worst: tuple[float, EvAnnouncement, float, float] | None = None  # (overrun, a, t, U)
    for a in windows:
        k0 = int(np.searchsorted(t, a.t))
        if k0 >= t.size:
            continue
        moved = e[k0:] - e[k0]
        floor = float(a.minimum_v2x_energy or 0.0)
        k = int(np.argmin(moved))
        overrun = floor - float(moved[k])  # > 0: more given back than the window allowed
        if worst is None or overrun > worst[0]:
            worst = (overrun, a, float(t[k0 + k]), float(u[k0 + k] - u[k0]))
    if worst is None:
        return problem(name, "no reading after the announcements", CLAUSE, unit="Wh")
    overrun, a, t_worst, u_wh = worst
    return judged(
        name,
        max(overrun, 0.0),
        tolerance,
        Relation.AT_MOST,
        "Wh",
        u_wh,
        params,
        f"worst: from t={a.t:.2f} s (EV window {a.minimum_v2x_energy:.0f} Wh) to t={t_worst:.2f} s "
        f"the battery gave {overrun:+.1f} Wh beyond the window (allowance {tolerance:g} Wh, "
        f"rig's choice), from {channel}",
        CLAUSE,
    )
