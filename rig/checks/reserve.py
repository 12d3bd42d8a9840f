"""reserve_floor: the battery never goes below the EV's reserve, in SoC and in energy.

The reserve is what the EV announces as the energy below which it gives nothing back
(EVMinimumV2XEnergyRequest in ISO 15118-20 Dynamic mode; FACTS.md "Who decides discharge"). The
battery's state is reconstructed from what a lab measures: the battery emulator's own energy
counter where the trace has one (`dc_source.e_wh`), else the battery-side power of the battery
emulator and of the power analyzer's DC element, each integrated from the known starting SoC. The
DUT's claims (its reported SoC, its "reserve reached" events) play no part.

An integrated meter's energy carries an uncertainty that grows with what it integrated: the
reading term of its accuracy times the energy moved (throughput), the range term (what the meter
cannot tell from zero) times the time power flowed, every change of the power times the meter's
update interval (a reading averages a window, so when a change happened is known to a window), and,
where the power changed by more than the meter's band between two readings, half that change times
the interval (the change could have happened anywhere between them). Idle time accumulates neither energy nor uncertainty: a reading
within the range term of zero is zero as far as the meter can tell, so a small offset does not
integrate into a false loss over hours. The reconstruction with the smallest uncertainty is
judged; another that disagrees with it beyond both uncertainties is an error (a wiring or
calibration problem), never averaged away.

With `promise: reaches_reserve` (a plan that promises the EV carries the home down to its reserve)
the check also judges that the battery really got there (`reserve_floor:reached`).
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
    problem,
    register,
)
from rig.checks.evidence import longest_gap, too_sparse
from rig.checks.uncertainty import Instrumentation
from rig.ev import EVSpec
from rig.sim.points import MeasurementPoint
from rig.trace import FloatArray, Trace, analyzer_channel

#: Battery-side power channels, in order of preference (rig sign: + into the EV).
SOURCES = ("dc_source.p_w", analyzer_channel(MeasurementPoint.EVSE_DC, "p_w"))
#: A battery emulator's own energy counter (Wh into the EV since the output was switched on).
COUNTER = "dc_source.e_wh"
CLAUSE = "ISO 15118-20 EVMinimumV2XEnergyRequest (V2X reserve)"
#: Two reconstructions closer than this always agree (Wh; the rig's own floor, a rounding guard).
AGREE_FLOOR_WH = 0.5


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
    track = energy_track(trace, ctx.instrumentation, channel)
    return track.t, ctx.ev.soc + track.e_wh / ctx.ev.capacity_wh


@dataclass(frozen=True, eq=False)
class EnergyTrack:
    """Energy into the battery since the first reading (Wh) and its expanded uncertainty."""

    channel: str
    t: FloatArray
    e_wh: FloatArray
    u_wh: FloatArray
    counter: bool = False


def integrate(
    t: FloatArray,
    p: FloatArray,
    *,
    offset_w: float,
    reading: float,
    band_w: float,
    window_s: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """(energy Wh, uncertainty Wh) over readings p at times t (NaN-free, ascending).

    `offset_w` is the meter's range term (readings within it count as zero), `reading` its
    reading term (a fraction), `band_w` its whole band at the present power (changes larger than
    twice it between readings are real changes whose timing is unknown), `window_s` how long a
    reading averages (its update interval plus jitter)."""
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    q = np.where(np.abs(p) <= offset_w, 0.0, p)
    dt = np.diff(t)
    mean = (q[1:] + q[:-1]) / 2.0
    energy = np.zeros_like(t)
    energy[1:] = np.cumsum(dt * mean) / 3600.0
    active = (q[1:] != 0.0) | (q[:-1] != 0.0)
    step = np.abs(np.diff(q))
    changed = step > 2.0 * band_w
    per = (
        active * (reading * np.abs(mean) + offset_w) * dt
        + changed * step * dt / 2.0
        + step * window_s
    )
    u = np.zeros_like(t)
    u[1:] = np.cumsum(per) / 3600.0
    return energy, u


def energy_track(trace: Trace, inst: Instrumentation, channel: str) -> EnergyTrack:
    t, p = trace.series(channel)
    ok = ~np.isnan(p)
    t, p = t[ok], p[ok]
    spec = inst.of(channel)
    if spec is None:
        e = energy_wh(t, p)
        return EnergyTrack(channel, t, e, np.zeros_like(e))
    typical = float(np.max(np.abs(p))) if p.size else 0.0
    e, u = integrate(
        t,
        p,
        offset_w=spec.offset(typical),
        reading=spec.accuracy.reading,
        band_w=spec.band(typical),
        window_s=spec.update_interval_s + spec.jitter_s,
    )
    return EnergyTrack(channel, t, e, u)


def counter_track(trace: Trace, inst: Instrumentation) -> EnergyTrack | None:
    """The battery emulator's own Wh counter, where the trace has one; its uncertainty is the
    emulator's power accuracy applied to the throughput (the counter integrates the same
    measurement inside the instrument, without the rig's sampling)."""
    t, e = trace.series(COUNTER)
    ok = ~np.isnan(e)
    t, e = t[ok], e[ok]
    if t.size < 2:
        return None
    moved = e - e[0]
    spec = inst.of(SOURCES[0])
    reading = spec.accuracy.reading if spec is not None else 0.0
    offset = spec.offset() if spec is not None else 0.0
    throughput = np.concatenate(([0.0], np.cumsum(np.abs(np.diff(moved)))))
    busy = np.concatenate(([0.0], np.cumsum(np.diff(t) * (np.diff(moved) != 0.0)))) / 3600.0
    return EnergyTrack(COUNTER, t, moved, reading * throughput + offset * busy, counter=True)


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


@dataclass(frozen=True)
class _Low:
    """The lowest point of one reconstruction."""

    track: EnergyTrack
    index: int
    soc: float
    u_soc: float

    @property
    def t(self) -> float:
        return float(self.track.t[self.index])


def _lowest(track: EnergyTrack, ev: EVSpec) -> _Low:
    soc = ev.soc + track.e_wh / ev.capacity_wh
    k = int(np.argmin(soc))
    return _Low(track, k, float(soc[k]), float(track.u_wh[k]) / ev.capacity_wh)


@register(
    "reserve_floor",
    summary="The battery never goes below the EV's reserve (SoC and energy), judged from the "
    "battery emulator's counter or integrated battery-side meters with their uncertainty",
    clause=CLAUSE,
    params={
        "tolerance": Param(
            "ratio",
            "0.05 %",
            help="how far below the reserve the plan accepts, in SoC: the EVSE hears of the "
            "reserve at the next ChargeLoop and ramps down (rig's choice)",
            high=1.0,
        ),
        "promise": Param(
            "choice",
            "stays_above",
            choices=("stays_above", "reaches_reserve"),
            help="reaches_reserve: the plan promises the battery goes down to its reserve; "
            "judge that it did",
        ),
        "reach_band": Param(
            "ratio",
            "0.5 %",
            help="promise reaches_reserve: the lowest SoC within this of the reserve (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "max_gap": Param(
            "time", "5 s", help="longest gap in battery-side readings accepted", positive=True
        ),
    },
)
def reserve_floor(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    ev = ctx.ev
    reserve_pct = ev.reserve_soc * 100
    max_gap = float(params["max_gap"])
    tracks: list[EnergyTrack] = []
    counter = counter_track(trace, ctx.instrumentation)
    if counter is not None:
        tracks.append(counter)
    for ch in SOURCES:
        t, _ = trace.series(ch)
        if t.size < 2:
            continue
        length, start, end = longest_gap(trace, ch, float(t[0]), float(t[-1]))
        if too_sparse(length, max_gap):
            return [
                problem(
                    "reserve_floor:soc",
                    f"{ch}: no valid reading for {length:.2f} s (t={start:.2f} s to t={end:.2f} s); "
                    f"at most {max_gap:g} s allowed: energy may have moved unseen",
                    CLAUSE,
                    unit="%",
                    limit=reserve_pct,
                    relation=Relation.AT_LEAST,
                )
            ]
        tracks.append(energy_track(trace, ctx.instrumentation, ch))
    if not tracks:
        msg = f"no battery-side power was measured (need one of {', '.join(SOURCES)})"
        return [
            problem(
                "reserve_floor:soc",
                msg,
                CLAUSE,
                unit="%",
                limit=reserve_pct,
                relation=Relation.AT_LEAST,
            )
        ]
    # The battery emulator's own counter where it has one, else the reconstruction that ends with
    # the smallest uncertainty; every other one must agree with it within both uncertainties.
    primary = tracks[0] if tracks[0].counter else min(tracks, key=lambda tr: float(tr.u_wh[-1]))
    for other in tracks:
        if other is primary:
            continue
        e_there = np.interp(primary.t, other.t, other.e_wh)
        u_there = np.interp(primary.t, other.t, other.u_wh)
        beyond = np.abs(e_there - primary.e_wh) - (u_there + primary.u_wh) - AGREE_FLOOR_WH
        k = int(np.argmax(beyond))
        if beyond[k] > 0.0:
            cap = ev.capacity_wh / 100.0
            return [
                problem(
                    "reserve_floor:soc",
                    f"{primary.channel} and {other.channel} disagree at t={primary.t[k]:.1f} s: "
                    f"{primary.e_wh[k]:+.1f} ± {primary.u_wh[k]:.1f} Wh against "
                    f"{e_there[k]:+.1f} ± {u_there[k]:.1f} Wh moved "
                    f"({abs(e_there[k] - primary.e_wh[k]) / cap:.3f} % SoC), beyond their "
                    "uncertainties: check the wiring and calibration",
                    CLAUSE,
                    unit="%",
                    limit=reserve_pct,
                    relation=Relation.AT_LEAST,
                )
            ]
    lows = [_lowest(tr, ev) for tr in tracks]
    best = next(low for low in lows if low.track is primary)
    tol = float(params["tolerance"])
    spread = "".join(
        f"; {low.track.channel} says {low.soc * 100:.3f} % ± {low.u_soc * 100:.3f} %"
        for low in lows
        if low is not best
    )
    source = "counter" if best.track.counter else "integrated"
    detail = (
        f"lowest SoC {best.soc * 100:.3f} % ± {best.u_soc * 100:.3f} % "
        f"({best.soc * ev.capacity_wh:.0f} Wh) at t={best.t:.1f} s from {best.track.channel} "
        f"({source}); reserve {reserve_pct:.2f} % ({ev.reserve_wh:.0f} Wh), the plan accepts "
        f"{tol * 100:.2f} % below it" + spread
    )
    markers = (
        Marker("threshold", "reserve", ev.reserve_soc, "soc"),
        Marker("time", "lowest SoC", best.t, "soc"),
    )
    soc_row = judged(
        "reserve_floor:soc",
        best.soc * 100,
        (ev.reserve_soc - tol) * 100,
        Relation.AT_LEAST,
        "%",
        best.u_soc * 100,
        params,
        detail,
        CLAUSE,
        markers,
    )
    rows = [
        soc_row,
        Verdict(
            "reserve_floor:energy",
            soc_row.verdict,
            best.soc * ev.capacity_wh,
            (ev.reserve_soc - tol) * ev.capacity_wh,
            "Wh",
            detail,
            CLAUSE,
            relation=Relation.AT_LEAST,
            uncertainty=best.u_soc * ev.capacity_wh,
            decision_rule=soc_row.decision_rule,
        ),
    ]
    if params["promise"] == "reaches_reserve":
        band = float(params["reach_band"])
        rows.append(
            judged(
                "reserve_floor:reached",
                best.soc * 100,
                (ev.reserve_soc + band) * 100,
                Relation.AT_MOST,
                "%",
                best.u_soc * 100,
                params,
                f"the plan promises the battery goes down to its reserve: lowest SoC "
                f"{best.soc * 100:.3f} % against the reserve {reserve_pct:.2f} % + "
                f"{band * 100:g} % (started at {ev.soc * 100:.2f} %)",
                CLAUSE,
            )
        )
    return rows
