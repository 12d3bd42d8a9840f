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
from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import Context, Marker, Param, Verdict, register
from rig.checks.reserve import SOURCES, energy_wh
from rig.checks.v2gtrace import EvAnnouncement, ev_announcements, messages
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

CLAUSE = (
    "ISO 15118-20 EVMaximumDischargePower / EVMaximumDischargeCurrent / EVMinimumV2XEnergyRequest"
)
AC_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
DC_I = "dc_source.i"


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
        "energy_tolerance": Param("energy", "20 Wh", help="meter margin on the V2X energy"),
    },
)
def discharge_limits(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    msgs = messages(trace)
    announced = [a for a in ev_announcements(msgs) if a.max_discharge_power is not None]
    if not announced:
        return [
            Verdict(
                "discharge_limits:power",
                "error",
                None,
                None,
                "W",
                "the EV announced no discharge limit over ISO 15118-20 (no BPT session in the trace)",
                CLAUSE,
            )
        ]
    react = float(params["react_within"])
    margin = float(params["tolerance"]) * ctx.evse_rated_w
    ac = any(m.name.startswith("AC_") for m in msgs)
    channel = AC_P if ac else next((c for c in SOURCES if trace.has(c)), SOURCES[0])
    out = [_power(trace, announced, channel, react, margin)]
    if not ac and trace.has(DC_I) and any(a.max_discharge_current is not None for a in announced):
        out.append(_current(trace, announced, react, margin / 400.0))
    out.append(_v2x_energy(trace, announced, float(params["energy_tolerance"])))
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


def _power(
    trace: Trace, announced: list[EvAnnouncement], channel: str, react: float, margin: float
) -> Verdict:
    t, p = trace.series(channel)
    ok = np.isfinite(p) & (t >= announced[0].t)
    t, p = t[ok], p[ok]
    if t.size == 0:
        return Verdict(
            "discharge_limits:power", "error", None, None, "W", f"no {channel} reading", CLAUSE
        )
    times = [a.t for a in announced]
    limits = np.array(
        [announced[_in_force(times, float(x), react)].max_discharge_power for x in t], dtype=float
    )
    i, excess = _worst(t, p, limits, margin)
    measured, limit = float(p[i]), float(limits[i])
    detail = (
        f"largest discharge against the EV's limit: {measured:.0f} W at t={t[i]:.2f} s where the EV "
        f"allowed {limit:.0f} W (± {margin:.0f} W meter margin, {react:g} s to react) on {channel}"
    )
    return Verdict(
        "discharge_limits:power",
        "pass" if excess <= 0 else "fail",
        -measured,
        -limit,
        "W",
        detail,
        CLAUSE,
        (
            Marker("threshold", "EV discharge limit", limit, channel),
            Marker("time", "worst", float(t[i]), channel),
        ),
    )


def _current(trace: Trace, announced: list[EvAnnouncement], react: float, margin: float) -> Verdict:
    t, i_a = trace.series(DC_I)
    use = [a for a in announced if a.max_discharge_current is not None]
    ok = np.isfinite(i_a) & (t >= use[0].t)
    t, i_a = t[ok], i_a[ok]
    times = [a.t for a in use]
    limits = np.array(
        [use[_in_force(times, float(x), react)].max_discharge_current for x in t], dtype=float
    )
    k, excess = _worst(t, i_a, limits, margin)
    return Verdict(
        "discharge_limits:current",
        "pass" if excess <= 0 else "fail",
        -float(i_a[k]),
        -float(limits[k]),
        "A",
        f"largest discharge current against the EV's limit: {i_a[k]:.1f} A at t={t[k]:.2f} s, "
        f"allowed {limits[k]:.1f} A",
        CLAUSE,
    )


def _v2x_energy(trace: Trace, announced: list[EvAnnouncement], tolerance: float) -> Verdict:
    """From each announcement on, the energy into the battery must not fall below the EV's
    EVMinimumV2XEnergyRequest (negative: what it may still give back)."""
    windows = [a for a in announced if a.minimum_v2x_energy is not None]
    channel = next((c for c in SOURCES if trace.has(c)), None)
    if not windows or channel is None:
        return Verdict(
            "discharge_limits:v2x_energy",
            "error",
            None,
            None,
            "Wh",
            "no EVMinimumV2XEnergyRequest announced, or no battery-side power measured",
            CLAUSE,
        )
    t, p = trace.series(channel)
    ok = np.isfinite(p)
    t, p = t[ok], p[ok]
    e = energy_wh(t, p)
    worst: tuple[float, EvAnnouncement, float] | None = None  # (overrun Wh, announcement, t)
    for a in windows:
        k0 = int(np.searchsorted(t, a.t))
        if k0 >= t.size:
            continue
        moved = e[k0:] - e[k0]
        floor = float(a.minimum_v2x_energy or 0.0)
        k = int(np.argmin(moved))
        overrun = floor - float(moved[k])  # > 0: more given back than the window allowed
        if worst is None or overrun > worst[0]:
            worst = (overrun, a, float(t[k0 + k]))
    if worst is None:
        return Verdict(
            "discharge_limits:v2x_energy",
            "error",
            None,
            None,
            "Wh",
            "no reading after the announcements",
            CLAUSE,
        )
    overrun, a, t_worst = worst
    return Verdict(
        "discharge_limits:v2x_energy",
        "pass" if overrun <= tolerance else "fail",
        max(overrun, 0.0),
        tolerance,
        "Wh",
        f"worst: from t={a.t:.2f} s (EV window {a.minimum_v2x_energy:.0f} Wh) to t={t_worst:.2f} s "
        f"the battery gave {overrun:+.1f} Wh beyond the window (meter margin {tolerance:g} Wh), from {channel}",
        CLAUSE,
    )
