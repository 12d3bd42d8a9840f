"""departure: at the driver's departure the EV holds at least the energy it asked for.

A day plan (rig.day) states when the driver leaves and what the battery must hold then; the rig's
EV (DUT = EVSE) announces it over ISO 15118-20 as DepartureTime and EVTargetEnergyRequest, the EV
under test (DUT = EV) knows it itself. The battery's energy at departure is reconstructed as
reserve_floor does it (rig.checks.reserve): the battery emulator's own counter where the trace has
one, else the battery-side meter that integrates with the smallest uncertainty, from the known
starting energy. The DUT's claims play no part in the energy.

A DUT that cannot meet the need may say so in time: in Dynamic mode the SECC's DepartureTime
(ScheduleExchangeRes, ChargeLoopRes) tells the EV when it can have what it asked for. Received at
least `notice` before the departure and naming a later time, it makes the shortfall a declared
one: `departure:declared` passes with what was said and when, and the energy row is not judged.
A declaration counts only when the need was out of reach then (the measured energy plus the EV's
full charge power over the time left falls short of it).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from rig.checks.evidence import longest_gap, too_sparse
from rig.checks.reserve import SOURCES, EnergyTrack, counter_track, energy_track
from rig.trace import Trace

CLAUSE = "ISO 15118-20 DepartureTime, EVTargetEnergyRequest (the driver's need at departure)"
#: The EVSE's message fields that carry its DepartureTime in Dynamic mode.
_SECC_MESSAGES = ("ScheduleExchangeRes", "DC_ChargeLoopRes", "AC_ChargeLoopRes")


def battery_track(trace: Trace, ctx: Context, max_gap: float) -> EnergyTrack | Verdict:
    """The best reconstruction of the energy into the battery (or the problem that prevents it)."""
    counter = counter_track(trace, ctx.instrumentation)
    if counter is not None:
        return counter
    tracks: list[EnergyTrack] = []
    for ch in SOURCES:
        t, _ = trace.series(ch)
        if t.size < 2:
            continue
        length, start, end = longest_gap(trace, ch, float(t[0]), float(t[-1]))
        if too_sparse(length, max_gap):
            return problem(
                "departure",
                f"{ch}: no valid reading for {length:.1f} s (t={start:.1f} s to t={end:.1f} s); "
                f"at most {max_gap:g} s allowed",
                CLAUSE,
            )
        tracks.append(energy_track(trace, ctx.instrumentation, ch))
    if not tracks:
        return problem(
            "departure",
            f"no battery-side power measured (need one of {', '.join(SOURCES)})",
            CLAUSE,
        )
    return min(tracks, key=lambda tr: float(tr.u_wh[-1]))


def declared_departures(trace: Trace) -> list[tuple[float, float]]:
    """(when received, the departure it names in run time) for every DepartureTime the SECC sent
    the rig's EV (DUT = EVSE)."""
    out: list[tuple[float, float]] = []
    for e in trace.events:
        if e.name != "message" or e.data.get("dir") != "rx":
            continue
        name = e.data.get("message")
        if name not in _SECC_MESSAGES:
            continue
        body = e.data.get("body")
        inner = body.get(name) if isinstance(body, Mapping) else None
        value = _departure_time(inner)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            out.append((e.t, e.t + float(value)))
    return out


def _departure_time(inner: Any) -> Any:
    """DepartureTime of a response body: in the message itself or in its control mode (the
    Dynamic_SEResControlMode of ScheduleExchangeRes, the *_CLResControlMode of a ChargeLoopRes)."""
    if not isinstance(inner, Mapping):
        return None
    if "DepartureTime" in inner:
        return inner["DepartureTime"]
    for child in inner.values():
        if isinstance(child, Mapping) and "DepartureTime" in child:
            return child["DepartureTime"]
    return None


@register(
    "departure",
    summary="At the departure the battery holds at least the energy the EV asked for (battery "
    "emulator's counter or integrated meters, with uncertainty), or the DUT said in time that it "
    "could not",
    clause=CLAUSE,
    params={
        "tolerance": Param(
            "ratio",
            "0.5 %",
            help="how far below the need the plan accepts, in SoC (rig's choice: a BMS reports "
            "SoC to about half a percent)",
            high=1.0,
        ),
        "notice": Param(
            "time",
            "30 min",
            help="a DUT that cannot make it says so at least this long before the departure "
            "(rig's choice)",
        ),
        "max_gap": Param(
            "time", "30 s", help="longest gap in battery-side readings", positive=True
        ),
    },
)
def departure(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    day = ctx.day
    if day is None:
        return [not_judged("departure", "not a day plan: no departure was given", CLAUSE)]
    ev = ctx.ev
    t_dep = day.departure.at_s
    need = day.departure.energy_wh
    tol = float(params["tolerance"])
    limit = need - tol * ev.capacity_wh
    max_gap = float(params["max_gap"])
    found = battery_track(trace, ctx, max_gap)
    if isinstance(found, Verdict):
        return [found]
    track = found
    if track.t.size < 2 or float(track.t[-1]) < t_dep - max_gap:
        end = float(track.t[-1]) if track.t.size else 0.0
        return [
            not_judged(
                "departure",
                f"the readings end at t={end:.0f} s, before the departure at t={t_dep:.0f} s "
                f"({day.clock_of(t_dep)}): the plan must run until the driver leaves",
                CLAUSE,
                unit="Wh",
                limit=limit,
                relation=Relation.AT_LEAST,
            )
        ]
    energy = ev.energy_wh + float(np.interp(t_dep, track.t, track.e_wh))
    u = float(np.interp(t_dep, track.t, track.u_wh))
    notice = float(params["notice"])
    said = [(t, at) for t, at in declared_departures(trace) if at > t_dep + 60.0]
    in_time = [(t, at) for t, at in said if t <= t_dep - notice]
    source = "counter" if track.counter else "integrated"
    detail = (
        f"{energy:.0f} ± {u:.0f} Wh ({energy / ev.capacity_wh * 100:.2f} % SoC) at the departure "
        f"t={t_dep:.0f} s ({day.clock_of(t_dep)}) from {track.channel} ({source}); the EV asked "
        f"for {need:.0f} Wh ({need / ev.capacity_wh * 100:.1f} %), the plan accepts "
        f"{tol * 100:g} % below it"
    )
    markers = (
        Marker("threshold", "departure need", need / ev.capacity_wh, "soc"),
        Marker("time", "departure", t_dep, "soc"),
    )
    if in_time:
        t_said, at = in_time[0]
        # Only a need that was out of reach when said excuses a shortfall: a DUT that declares
        # what it could have done is judged on the energy.
        then = ev.energy_wh + float(np.interp(t_said, track.t, track.e_wh))
        reach = then + min(ev.max_charge_w, ctx.evse_rated_w) * (t_dep - t_said) / 3600.0
        if reach >= need:
            detail += (
                f"; the DUT said at t={t_said:.0f} s it could not make it, but {reach:.0f} Wh "
                "were within reach at full power then"
            )
            in_time = []
    if in_time:
        t_said, at = in_time[0]
        return [
            Verdict(
                "departure:declared",
                "pass",
                energy,
                limit,
                "Wh",
                f"the DUT said at t={t_said:.0f} s ({(t_dep - t_said) / 60:.0f} min ahead) that the "
                f"need is met only at t={at:.0f} s ({day.clock_of(at)}), not at the departure: "
                + detail,
                CLAUSE,
                markers,
                relation=Relation.AT_LEAST,
            )
        ]
    if said:
        detail += (
            f"; the DUT said it could not make it only at t={said[0][0]:.0f} s, less than "
            f"{notice / 60:g} min ahead"
        )
    return [
        judged(
            "departure",
            energy,
            limit,
            Relation.AT_LEAST,
            "Wh",
            u,
            params,
            detail,
            CLAUSE,
            markers,
        )
    ]
