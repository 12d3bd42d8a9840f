"""tariff_cost: the day's energy cost at the grid point against the optimum for the same limits.

The cost is what the grid point meter saw, priced by the day's tariff (import price for energy
drawn, export price for energy fed in; rig.optimum.grid_cost). The optimum is the linear program
of rig.optimum over the same day: the home load the bench drew (the day's profile less PV), the
prices, the outages, the EV's battery (capacity, starting energy, reserve, departure need) and the
charge and discharge limits of the EV and the EVSE together, with a one-way conversion efficiency
(a plan parameter: the optimum is computed for a converter of that efficiency). The verdict is the
ratio DUT cost / optimum cost against the plan's limit; its uncertainty is the grid meter's
(reading and range terms over the day, priced), relative to the optimum.

DUT = EV in Scheduled mode is judged on its chosen power profile as well: the EVPowerProfile
decoded from its PowerDeliveryReq, priced with the home load as measured (`tariff_cost:profile`).

A DUT that left the EV short of its departure need is charged for the missing energy at the day's
dearest import price (through the converter): the optimum had to buy it, so a shortfall is never
a saving. The ratio means something only while the optimum costs money: a day whose optimum earns (more
export than import, priced) is `not judged`, with the two costs in the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from rig.checks import Context, Param, Relation, Verdict, judged, not_judged, problem, register
from rig.checks.departure import battery_track
from rig.checks.evidence import longest_gap, too_sparse
from rig.day import DaySpec
from rig.ev import EVSpec
from rig.optimum import Limits, OptimalDay, OptimumError, grid_cost, solve
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

CLAUSE = "V2H energy management: cost of the day against the optimum (rig's own criterion)"
GRID = analyzer_channel(MeasurementPoint.GRID, "p_w")


def limits_for(day: DaySpec, ev: EVSpec, evse_rated_w: float, efficiency: float) -> Limits:
    """The optimum's limits for this EV and EVSE (AC side: the EV's DC limits through the
    converter, capped by the EVSE's rating)."""
    return Limits(
        capacity_wh=ev.capacity_wh,
        start_wh=ev.energy_wh,
        reserve_wh=ev.reserve_wh,
        need_wh=day.departure.energy_wh,
        departure_s=day.departure.at_s,
        charge_w=min(ev.max_charge_w / efficiency, evse_rated_w),
        discharge_w=min(ev.max_discharge_w * efficiency, evse_rated_w),
        efficiency=efficiency,
    )


def optimum_for(ctx: Context, efficiency: float) -> OptimalDay:
    assert ctx.day is not None
    return solve(ctx.day, limits_for(ctx.day, ctx.ev, ctx.evse_rated_w, efficiency))


@register(
    "tariff_cost",
    summary="The day's energy cost at the grid point against the optimum of a linear program "
    "over the same tariff, home load, outages and limits (ratio against a limit)",
    clause=CLAUSE,
    params={
        "limit": Param(
            "ratio",
            "115 %",
            help="the highest DUT cost / optimum cost accepted (rig's choice: a rule-based "
            "manager without forecasts of the home load comes within 10-15 %)",
            high=100.0,
            positive=True,
        ),
        "efficiency": Param(
            "ratio",
            "95 %",
            help="one-way conversion efficiency of the optimum's converter (the DUT's datasheet)",
            high=1.0,
            positive=True,
        ),
        "max_gap": Param("time", "30 s", help="longest gap in grid-point readings", positive=True),
    },
)
def tariff_cost(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    day = ctx.day
    limit = float(params["limit"])
    if day is None:
        return [not_judged("tariff_cost", "not a day plan: no tariff was given", CLAUSE)]
    t, p = trace.series(GRID)
    ok = np.isfinite(p)
    t, p = t[ok], p[ok]
    end = day.length_s
    max_gap = float(params["max_gap"])
    if t.size < 2 or float(t[-1]) < end - max_gap:
        last = float(t[-1]) if t.size else 0.0
        return [
            not_judged(
                "tariff_cost",
                f"the grid-point readings end at t={last:.0f} s, before the day's end at "
                f"t={end:.0f} s: the cost of the day was not measured",
                CLAUSE,
                limit=limit,
                relation=Relation.AT_MOST,
            )
        ]
    length, start, stop = longest_gap(trace, GRID, 0.0, end)
    if too_sparse(length, max_gap):
        return [
            problem(
                "tariff_cost",
                f"{GRID}: no valid reading for {length:.1f} s (t={start:.1f} s to t={stop:.1f} s); "
                f"at most {max_gap:g} s allowed",
                CLAUSE,
                limit=limit,
                relation=Relation.AT_MOST,
            )
        ]
    try:
        best = optimum_for(ctx, float(params["efficiency"]))
    except OptimumError as exc:
        return [problem("tariff_cost", f"the day has no optimum: {exc}", CLAUSE)]
    cost = grid_cost(t, p, day)
    cur = day.tariff.currency
    # A DUT that left the EV short of its departure need did not buy that energy: it is priced
    # at the day's dearest import through the converter, so missing the need is never cheaper.
    eff = float(params["efficiency"])
    short_note = ""
    track = battery_track(trace, ctx, max_gap)
    if isinstance(track, Verdict):
        return [replace(track, name="tariff_cost", limit=limit, relation=Relation.AT_MOST)]
    if track.t.size >= 2:
        held = ctx.ev.energy_wh + float(np.interp(day.departure.at_s, track.t, track.e_wh))
        short = day.departure.energy_wh - held
        if short > 0.5:  # below half a Wh: rounding, not a shortfall
            dearest = max(w.import_price for w in day.tariff.windows)
            cost += short / eff * dearest / 1000.0
            short_note = (
                f"; {short:.0f} Wh short of the departure need, priced at the dearest import "
                f"({dearest:g} {cur}/kWh)"
            )
    if best.cost <= 0.0:
        return [
            not_judged(
                "tariff_cost",
                f"the optimum earns money ({best.cost:.3f} {cur}; the DUT's day cost "
                f"{cost:.3f} {cur}): a cost ratio means nothing here",
                CLAUSE,
                limit=limit,
                relation=Relation.AT_MOST,
            )
        ]
    u_cost = _cost_uncertainty(t, p, day, ctx)
    ratio = cost / best.cost
    keep = t <= end
    dt = np.diff(t[keep])
    mean = (p[keep][1:] + p[keep][:-1]) / 2.0
    imported = float(np.sum(np.clip(mean, 0, None) * dt)) / 3.6e6
    exported = float(np.sum(np.clip(-mean, 0, None) * dt)) / 3.6e6
    opt_imp = float(np.sum(np.clip(best.grid_w, 0, None))) * best.step_s / 3.6e6
    opt_exp = float(np.sum(np.clip(-best.grid_w, 0, None))) * best.step_s / 3.6e6
    detail = (
        f"the DUT's day cost {cost:.3f} {cur} at the grid point (imported {imported:.2f} kWh, "
        f"exported {exported:.2f} kWh); the optimum {best.cost:.3f} {cur} (imported "
        f"{opt_imp:.2f} kWh, exported {opt_exp:.2f} kWh, {params['efficiency'] * 100:g} % "
        f"one-way efficiency); ratio {ratio:.3f}, the plan accepts {limit:.3f}" + short_note
    )
    rows = [
        judged(
            "tariff_cost",
            ratio,
            limit,
            Relation.AT_MOST,
            "",
            u_cost / best.cost,
            params,
            detail,
            CLAUSE,
        )
    ]
    profile_row = _profile_row(trace, ctx, params, best, limit)
    if profile_row is not None:
        rows.append(profile_row)
    return rows


def ev_power_profile(trace: Trace) -> tuple[np.ndarray, np.ndarray] | None:
    """The EVPowerProfile a DUT = EV chose in Scheduled mode, decoded from the PowerDeliveryReq
    (Start) the rig's SECC received: (start times, AC power W) of its entries from the message's
    time on (None: no such profile in the trace). Bounded: at most 1024 entries (the schema's)."""
    for e in trace.events:
        if e.name != "message" or e.data.get("message") != "PowerDeliveryReq":
            continue
        if e.data.get("dir") != "rx":
            continue
        body = e.data.get("body")
        req = body.get("PowerDeliveryReq") if isinstance(body, Mapping) else None
        profile = req.get("EVPowerProfile") if isinstance(req, Mapping) else None
        if not isinstance(profile, Mapping) or "Scheduled_EVPPTControlMode" not in profile:
            continue
        listed = profile.get("EVPowerProfileEntries")
        entries = listed.get("EVPowerProfileEntry") if isinstance(listed, Mapping) else None
        if not isinstance(entries, list) or not entries:
            continue
        starts, powers = [], []
        t = float(e.t)
        for entry in entries[:1024]:
            try:
                duration = float(entry["Duration"])
                power = float(entry["Power"]["Value"]) * 10.0 ** int(entry["Power"]["Exponent"])
            except (KeyError, TypeError, ValueError):
                return None
            if not (np.isfinite(duration) and np.isfinite(power)) or duration < 0:
                return None
            starts.append(t)
            powers.append(power)
            t += duration
        starts.append(t)
        powers.append(0.0)  # after the profile: nothing planned
        return np.array(starts), np.array(powers)
    return None


def _profile_row(
    trace: Trace, ctx: Context, params: Mapping[str, Any], best: OptimalDay, limit: float
) -> Verdict | None:
    """DUT = EV: the cost of the power profile it chose (decoded from the trace), with the home
    load as measured, against the optimum: what the EV planned, besides what it did."""
    day = ctx.day
    profile = ev_power_profile(trace)
    if day is None or profile is None:
        return None
    starts, powers = profile
    t, home = trace.series(analyzer_channel(MeasurementPoint.HOME, "p_w"))
    ok = np.isfinite(home)
    t, home = t[ok], home[ok]
    if t.size < 2:
        return None
    k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, powers.size - 1)
    planned = np.where(t >= starts[0], powers[k], 0.0)
    cost = grid_cost(t, home + planned, day)
    ratio = cost / best.cost
    cur = day.tariff.currency
    return judged(
        "tariff_cost:profile",
        ratio,
        limit,
        Relation.AT_MOST,
        "",
        _cost_uncertainty(t, home + planned, day, ctx) / best.cost,
        params,
        f"the EVPowerProfile the EV chose ({powers.size - 1} entries, decoded from its "
        f"PowerDeliveryReq) with the home load as measured costs {cost:.3f} {cur}; the optimum "
        f"{best.cost:.3f} {cur}; ratio {ratio:.3f}, the plan accepts {limit:.3f}",
        CLAUSE,
    )


def _cost_uncertainty(t: np.ndarray, p: np.ndarray, day: DaySpec, ctx: Context) -> float:
    """The grid meter's uncertainty priced: per interval, (reading term × |P| + range term) ×
    duration × the dearer of the two prices (the sign of a reading near zero is not known)."""
    spec = ctx.instrumentation.of(GRID)
    if spec is None:
        return 0.0
    keep = t <= day.length_s
    t, p = t[keep], p[keep]
    typical = float(np.max(np.abs(p))) if p.size else 0.0
    dt = np.diff(t)
    mean = np.abs((p[1:] + p[:-1]) / 2.0)
    band = spec.accuracy.reading * mean + spec.offset(typical)
    mid = (t[1:] + t[:-1]) / 2.0
    imp, exp = day.tariff.prices_at(mid)
    price = np.maximum(np.abs(imp), np.abs(exp))
    return float(np.sum(band * dt * price)) / 3.6e6
