"""islanding: when the grid goes away, the EVSE ceases to energize, or carries the home as configured.

Grid-following (anti-islanding, IEEE 1547-2018 8.1 / IEEE 1547.1-2020 5.10, IEC 62116): after the
grid is disconnected, the EVSE's output voltage and current must fall below 0.05 p.u. and stay
there within the clearing time (2 s (?), the usual reading of 8.1). Grid-forming (V2H backup,
GeneratorMode GridForming): the home's voltage and frequency must be back within their bands within
the plan's transfer time and stay there until the grid returns, and the unit must not back-feed
the dead grid point (it separates the home first). Judged from the power analyzer at the EVSE
terminals, the home and the grid point, never from the DUT's own "island detected" claims.

Before judging, the conditions the procedures state must hold, or the verdict is `not judged` or
`error` with the reason (never `pass`):
- the grid really went away: the grid source's output state recorded after the loss
  (`grid_simulator.output_on`), as 1547.1 5.10 opens S3;
- grid-following: the EVSE exported at the moment of the loss, at the plan's stated output level
  within ± 0.05 p.u. (`output_level`, 1547.1 5.10 runs at stated levels), or at least
  `min_export` when the plan states none (rig's choice);
- the plan watched long enough: at least the limit plus `sustain` after the loss (1547.1 5.10
  confirms a sustained island for 10 s);
- readings dense enough for the limit (`resolution` of it around the loss; in grid-forming mode no
  two readings of the home further apart than the transfer limit anywhere in the island, so a
  blackout as long as the limit cannot fall between them), and no gap longer than `max_gap`;
- grid-following: per-cycle data (the analyzer's update interval at most one nominal cycle), as
  the clearing criterion is one on instantaneous values (1547.1 5.10, SVP's reading); a slower
  analyzer needs a scope capture (rig.checks.waveform) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import (
    REQUIRED_IF,
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
from rig.checks.evidence import Gap, Readings, last_sample_time, readings, too_sparse, window
from rig.checks.waveform import CAPTURE_EVENT, capture_for, clearing_time
from rig.sim.points import MeasurementPoint
from rig.trace import BoolArray, FloatArray, StepMarker, Trace, analyzer_channel

EVSE_V = analyzer_channel(MeasurementPoint.EVSE_AC, "v_rms")
EVSE_I = analyzer_channel(MeasurementPoint.EVSE_AC, "i_rms")
EVSE_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
HOME_V = analyzer_channel(MeasurementPoint.HOME, "v_rms")
HOME_F = analyzer_channel(MeasurementPoint.HOME, "f_hz")
GRID_V = analyzer_channel(MeasurementPoint.GRID, "v_rms")
#: The grid source's output state as the runner records it after a grid step (1 on, 0 off).
SOURCE_STATE = "grid_simulator.output_on"
#: S3's state as the runner reads it back from the switch unit after a switch step (1 closed).
S3_STATE = "switch_unit.s3"
GRID_P = analyzer_channel(MeasurementPoint.GRID, "p_w")
GRID_Q = analyzer_channel(MeasurementPoint.GRID, "q_var")
#: A scope capture counts for a loss when it triggered within this of the loss (s).
CAPTURE_MATCH_S = 0.05
#: How long the signals must stay below the threshold at the end of a capture (rig's choice).
CAPTURE_HOLD_S = 0.02
#: How long after the loss the source's state must be on record (s).
STATE_WITHIN_S = 1.0
CLAUSE_FOLLOWING = "IEEE 1547-2018 8.1 / IEEE 1547.1-2020 5.10 (cease to energize)"
CLAUSE_FORMING = (
    "V2H backup: GeneratorMode GridForming (ISO 15118-20); transfer time and bands per plan"
)


def _grid_losses(trace: Trace) -> list[tuple[float, float, str]]:
    """(t_loss, t_end, state channel) of every grid outage: from a `grid: off` step to `grid: on`
    or the end, and from S3 opening (`switch: {s3: open}`, IEEE 1547.1 5.10) to its closing; the
    channel is where the runner recorded the source's or S3's state after the step."""
    out: list[tuple[float, float, str]] = []
    for action, key, channel in (("grid", "on", SOURCE_STATE), ("switch", "s3", S3_STATE)):
        marks: list[StepMarker] = [s for s in trace.steps if s.action == action and key in s.args]
        for i, s in enumerate(marks):
            if s.args[key] is False:
                end = next((g.t for g in marks[i + 1 :] if g.args[key] is True), trace.end_t)
                out.append((s.t, end, channel))
    return sorted(out)


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


@register(
    "islanding",
    summary="After grid loss: a grid-following EVSE ceases to energize (V and I < 0.05 p.u. within "
    "2 s); a grid-forming EVSE restores the home's voltage and frequency within the transfer time "
    "and never back-feeds the dead grid",
    clause="IEEE 1547-2018 8.1; IEEE 1547.1-2020 5.10; V2H backup (GeneratorMode GridForming)",
    params={
        "mode": Param("choice", "grid_following", choices=("grid_following", "grid_forming")),
        "within": Param(
            "time",
            "2 s",
            help="grid-following clearing time limit (1547-2018 8.1 (?))",
            positive=True,
        ),
        "threshold": Param(
            "ratio",
            "0.05 p.u.",
            help="V and I below this count as ceased (1547.1 5.10); also the back-feed limit",
            high=1.0,
            positive=True,
        ),
        "output_level": Param(
            "ratio",
            None,
            help="grid-following: the EVSE's export at the loss, p.u. of its rating (1547.1 5.10 "
            "levels, ± 0.05 p.u.)",
            high=1.5,
        ),
        "min_export": Param(
            "ratio",
            "5 %",
            help="grid-following without output_level: the least export at the loss, p.u. "
            "(rig's choice)",
            high=1.0,
        ),
        "sustain": Param(
            "time",
            "10 s",
            help="observation after the loss beyond the limit (1547.1 5.10 sustains the island 10 s)",
        ),
        "resolution": Param(
            "ratio",
            "5 %",
            help="largest reading spacing around the loss, share of the limit (rig's choice)",
            high=1.0,
            positive=True,
        ),
        "balance": Param(
            "ratio",
            None,
            help="grid-following: the largest P and Q through S3 before it opens with the RLC "
            "bank balanced, p.u. of the rating (IEEE 1547.1 5.10: 0.02 p.u.)",
            high=1.0,
            positive=True,
        ),
        "max_gap": Param(
            "time", "2 s", help="longest gap in readings accepted after the loss", positive=True
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
        "frequency_band": Param(
            "ratio",
            "2 %",
            help="grid-forming: the home's frequency band around nominal (rig's choice (?))",
            high=1.0,
            positive=True,
        ),
    },
)
def islanding(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    losses = _grid_losses(trace)
    mode = params["mode"]
    if not losses:
        return [
            not_judged(
                f"islanding:{mode}",
                "the plan never disconnects the grid (grid: off)",
                CLAUSE_FOLLOWING if mode == "grid_following" else CLAUSE_FORMING,
                unit="s",
            )
        ]
    out: list[Verdict] = []
    for t0, t1, state in losses:
        if mode == "grid_following":
            if _last_step_args(trace, "dut_control", t0).get("anti_islanding") is False:
                out.append(_sustained(trace, ctx, params, t0, t1, state))
            else:
                out.append(_cease_to_energize(trace, ctx, params, t0, t1, state))
        else:
            out.extend(_backup(trace, ctx, params, t0, t1, state))
    return out


def _last_step_args(trace: Trace, action: str, t0: float) -> Mapping[str, Any]:
    """The arguments of the last `action` step at or before t0 ({} if none)."""
    found = [s for s in trace.steps if s.action == action and s.t <= t0]
    return found[-1].args if found else {}


def _source_gone(trace: Trace, t0: float, channel: str = SOURCE_STATE) -> str | None:
    """None when the record shows the grid source's output (or S3) open after the loss; else
    why not."""
    what = "S3's state" if channel == S3_STATE else "the grid source's output state"
    t, v = trace.series(channel)
    after = (t >= t0) & (t <= t0 + STATE_WITHIN_S) & ~np.isnan(v)
    if t.size == 0:
        return (
            f"no record of {what} ({channel}): the trace cannot show that the grid really went away"
        )
    if not np.any(after):
        return f"{what} was not recorded within {STATE_WITHIN_S:g} s of the loss"
    if float(v[after][-1]) > 0.5:
        return f"{what} still read closed/on after the step: the grid never went away"
    return None


def _balance(
    trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, max_gap: float
) -> str | None:
    """IEEE 1547.1 5.10: with the RLC bank balanced (not detuned), the power through S3 is within
    `balance` p.u. in P and in Q before S3 opens (measured at the grid point). None: balanced,
    or not asked (`balance` unset, or the bank detuned on purpose); else the measured imbalance."""
    limit = params.get("balance")
    if limit is None:
        return None
    bank = _last_step_args(trace, "rlc_load", t0)
    if not bank:
        return "the plan never sets the RLC load bank (rlc_load) before the loss"
    if bank.get("active_pct") != 100.0 or bank.get("reactive_pct") != 100.0:
        return None  # a detuned case of the sweep: imbalanced on purpose
    rated = ctx.evse_rated_w
    seen: list[float] = []
    for ch in (GRID_P, GRID_Q):
        before = readings(trace, ch).last_before(t0)
        if before is None or t0 - before[0] > max_gap:
            return f"no reading of {ch} before the loss: the balance through S3 is unknown"
        seen.append(before[1])
    p, q = seen
    if abs(p) > float(limit) * rated or abs(q) > float(limit) * rated:
        return (
            f"the RLC bank was not balanced: {p:.0f} W and {q:.0f} var through S3 before it "
            f"opened ({p / rated:+.3f} / {q / rated:+.3f} p.u.; IEEE 1547.1 5.10 asks within "
            f"{float(limit):g} p.u. in P and Q)"
        )
    return None


def _sustained(
    trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, t1: float, state: str
) -> Verdict:
    """IEEE 1547.1 5.10's first case: with the EUT's anti-islanding disabled, the balanced island
    persists for `sustain`. Persisting passes; an island that collapsed means the load was not
    balanced well enough for the procedure (not judged), not a fault of the unit."""
    name = "islanding:sustained"
    clause = "IEEE 1547.1-2020 5.10 (island sustained with anti-islanding disabled)"
    need = float(params["sustain"])
    thr = float(params["threshold"])

    def refuse(kind: str, reason: str) -> Verdict:
        maker = not_judged if kind == "not judged" else problem
        return maker(name, reason, clause, unit="s", limit=need, relation=Relation.AT_LEAST)

    end, short = _observation(trace, (EVSE_V,), t0, t1, need)
    if short:
        return refuse("not judged", short)
    gone = _source_gone(trace, t0, state)
    if gone:
        return refuse("error" if "no record" in gone else "not judged", gone)
    got = window(trace, EVSE_V, t0, end, float(params["max_gap"]))
    if isinstance(got, Gap):
        return refuse("error", got.describe())
    dead = np.nonzero(got.v < thr * ctx.v_nominal)[0]
    lasted = (float(got.t[dead[0]]) if dead.size else end) - t0
    if lasted < need:
        return refuse(
            "not judged",
            f"with anti-islanding disabled the island collapsed {lasted:.2f} s after S3 opened "
            f"(needs to persist {need:g} s): the RLC load is not balanced well enough for the "
            "procedure's cases",
        )
    detail = f"with anti-islanding disabled the island persisted {lasted:.1f} s (observed)"
    return judged(
        name, lasted, need, Relation.AT_LEAST, "s", 0.0, params, detail, clause,
        (Marker("time", "grid lost", t0, EVSE_V),),
    )  # fmt: skip


def _capture_at(trace: Trace, t0: float) -> Any:
    """The scope_capture event of the loss at t0 (None: the bench had no scope)."""
    for ev in trace.events_named(CAPTURE_EVENT):
        if abs(float(ev.data.get("t_trigger", -1e9)) - t0) <= CAPTURE_MATCH_S:
            return ev
    return None


def _observation(
    trace: Trace, channels: tuple[str, ...], t0: float, t1: float, needed: float
) -> tuple[float, str | None]:
    """The end of what was measured of this outage, and a reason if it is too short."""
    end = min(t1, last_sample_time(trace, *channels))
    if end - t0 < needed:
        return end, (
            f"the plan watched {end - t0:.2f} s after the loss at t={t0:.2f} s; judging needs at "
            f"least {needed:.2f} s (the limit plus `sustain`)"
        )
    return end, None


def _aligned(a: Readings, b: Readings) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Readings of two channels taken together (the analyzer reads them in one update)."""
    common, ia, ib = np.intersect1d(a.t, b.t, assume_unique=False, return_indices=True)
    return common, a.v[ia], b.v[ib]


def _cease_to_energize(
    trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, t1: float, state: str
) -> Verdict:
    name = "islanding:grid_following"
    clause = CLAUSE_FOLLOWING
    limit = float(params["within"])
    thr = float(params["threshold"])
    i_base = ctx.evse_rated_w / ctx.v_nominal
    max_gap = float(params["max_gap"])

    def refuse(kind: str, reason: str) -> Verdict:
        maker = not_judged if kind == "not judged" else problem
        return maker(name, reason, clause, unit="s", limit=limit, relation=Relation.AT_MOST)

    end, short = _observation(trace, (EVSE_V, EVSE_I), t0, t1, limit + float(params["sustain"]))
    if short:
        return refuse("not judged", short)
    gone = _source_gone(trace, t0, state)
    if gone:
        return refuse("error" if "no record" in gone else "not judged", gone)
    imbalance = _balance(trace, ctx, params, t0, max_gap)
    if imbalance:
        return refuse("error" if "no reading" in imbalance else "not judged", imbalance)
    capture = _capture_at(trace, t0)
    cycle = 1.0 / ctx.f_nominal
    for ch in (EVSE_V, EVSE_I) if capture is None else ():
        interval = ctx.instrumentation.update_interval(ch)
        if interval is None:
            return refuse("error", f"the bench does not describe the instrument behind {ch}")
        if interval > cycle * 1.0001:
            return refuse(
                "error",
                f"{ch} averages over {interval * 1e3:g} ms updates; the clearing criterion is on "
                f"instantaneous values and needs per-cycle data (at most {cycle * 1e3:g} ms) or a "
                "scope capture",
            )
    before = readings(trace, EVSE_P).last_before(t0)
    if before is None or t0 - before[0] > max_gap:
        return refuse("error", f"no reading of {EVSE_P} at the loss: the export is unknown")
    export_pu = -before[1] / ctx.evse_rated_w
    level = params.get("output_level")
    if level is not None:
        if abs(export_pu - float(level)) > 0.05:
            return refuse(
                "not judged",
                f"the EVSE exported {-before[1]:.0f} W ({export_pu:.2f} p.u.) when the grid was "
                f"lost; the plan states {float(level):.2f} p.u. ± 0.05 p.u. (IEEE 1547.1 5.10)",
            )
    elif export_pu < float(params["min_export"]):
        return refuse(
            "not judged",
            f"the EVSE exported {-before[1]:.0f} W ({export_pu:.2f} p.u.) when the grid was "
            f"lost: nothing to cease (at least {float(params['min_export']):.2f} p.u. needed)",
        )
    exported = f"exporting {-before[1]:.0f} W ({export_pu:.2f} p.u.)"
    if capture is not None:
        return _from_capture(trace, ctx, params, t0, capture, exported, refuse)
    seen: list[Readings] = []
    for ch in (EVSE_V, EVSE_I):
        got = window(trace, ch, t0, end, max_gap)
        if isinstance(got, Gap):
            return refuse("error", got.describe())
        seen.append(got)
    resolution = float(params["resolution"]) * limit
    dense_until = min(end, t0 + limit + 0.5)
    spacing = seen[0].max_spacing(t0, dense_until)
    if too_sparse(spacing, resolution):
        return refuse(
            "error",
            f"readings of {EVSE_V} {spacing * 1e3:.0f} ms apart after the loss; judging a "
            f"{limit:g} s clearing time needs at most {resolution * 1e3:.0f} ms",
        )
    t, v, i = _aligned(seen[0], seen[1])
    dead = (v < thr * ctx.v_nominal) & (i < thr * i_base)
    t_clear = stays_below_from(t, dead, t0, end)
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
            f"grid lost at t={t0:.2f} s while {exported}; the EVSE still energized its terminals "
            f"(V or I ≥ {thr:g} p.u.) at the end of the {end - t0:.1f} s observed"
        )
        return judged(
            name, None, limit, Relation.AT_MOST, "s", 0.0, params, detail, clause, markers
        )
    clearing = t_clear - t0
    u = ctx.instrumentation.time_u(EVSE_V, seen[0].spacing_at(t_clear))
    detail = (
        f"grid lost at t={t0:.2f} s while {exported}; EVSE V < {thr * ctx.v_nominal:.1f} V and "
        f"I < {thr * i_base:.2f} A from {clearing:.3f} s on (observed {end - t0:.1f} s; source: "
        "the power analyzer's per-cycle RMS)"
    )
    return judged(name, clearing, limit, Relation.AT_MOST, "s", u, params, detail, clause, markers)


def _from_capture(
    trace: Trace,
    ctx: Context,
    params: Mapping[str, Any],
    t0: float,
    event: Any,
    exported: str,
    refuse: Any,
) -> Verdict:
    """The clearing time from the scope capture triggered by S3 opening (IEEE 1547.1 5.10 on
    instantaneous voltage and EUT current: rig.checks.waveform.clearing_time)."""
    name = "islanding:grid_following"
    limit = float(params["within"])
    thr = float(params["threshold"])
    i_base = ctx.evse_rated_w / ctx.v_nominal
    data = event.data
    if data.get("error"):
        return refuse("error", f"scope capture: {data['error']}")  # type: ignore[no-any-return]
    try:
        capture = capture_for(trace.meta, data, None)
    except (OSError, ValueError, KeyError) as exc:
        return refuse("error", f"the scope capture {data.get('file')} cannot be read: {exc}")  # type: ignore[no-any-return]
    v_probe = next((p for p in ("evse_ac.v", "home.v") if p in capture.probes), None)
    if v_probe is None or "evse_ac.i" not in capture.probes:
        return refuse(  # type: ignore[no-any-return]
            "error",
            "the scope does not probe the EUT's voltage (evse_ac.v) and current (evse_ac.i): "
            f"it probes {', '.join(sorted(capture.probes)) or 'nothing'}",
        )
    t_event = t0 - capture.t_trigger
    after = float(capture.t[-1]) - t_event
    if after < limit + CAPTURE_HOLD_S:
        return refuse(  # type: ignore[no-any-return]
            "error",
            f"the scope capture ends {after:.2f} s after S3 opened; judging a {limit:g} s "
            f"clearing time needs at least {limit + CAPTURE_HOLD_S:.2f} s",
        )
    found = clearing_time(
        capture.t,
        capture.probes[v_probe],
        capture.probes["evse_ac.i"],
        t_event=t_event,
        v_nominal_rms=ctx.v_nominal,
        i_rated_rms=i_base,
        threshold_pu=thr,
        min_hold_s=CAPTURE_HOLD_S,
    )
    rate = capture.sample_rate_hz
    source = (
        f"source: scope capture {data.get('file', data.get('key'))}, {rate / 1e3:.0f} kSa/s, "
        f"instantaneous values against {thr:g} p.u. of the nominal peaks "
        f"({found.threshold_v:.1f} V, {found.threshold_i:.2f} A)"
    )
    markers = (
        Marker("time", "S3 opened" if _opened_s3(trace, t0) else "grid lost", t0, EVSE_V),
        Marker("span", "limit", (t0, t0 + limit), EVSE_V),
    )
    if found.clearing_s is None:
        detail = (
            f"grid lost at t={t0:.2f} s while {exported}; the EVSE still energized its terminals "
            f"at the end of the {after:.2f} s captured ({source})"
        )
        return judged(
            name, None, limit, Relation.AT_MOST, "s", 0.0, params, detail, CLAUSE_FOLLOWING, markers
        )
    # The sample interval (interpolation between samples) and the free-running sample clock
    # against the trigger: two sample intervals (rig's own choice).
    u = 2.0 / rate if rate > 0 else float("inf")
    detail = (
        f"grid lost at t={t0:.2f} s while {exported}; instantaneous EVSE voltage and current "
        f"below {thr:g} p.u. from {found.clearing_s:.4f} s on, held {found.held_s:.2f} s to the "
        f"end of the capture ({source})"
    )
    return judged(
        name, found.clearing_s, limit, Relation.AT_MOST, "s", u, params, detail,
        CLAUSE_FOLLOWING, (*markers, Marker("time", f"cleared {found.clearing_s:.3f} s",
                                            t0 + found.clearing_s, EVSE_V)),
    )  # fmt: skip


def _opened_s3(trace: Trace, t0: float) -> bool:
    return any(
        s.action == "switch" and s.args.get("s3") is False and s.t == t0 for s in trace.steps
    )


def _backup(
    trace: Trace, ctx: Context, params: Mapping[str, Any], t0: float, t1: float, state: str
) -> list[Verdict]:
    name = "islanding:grid_forming"
    clause = CLAUSE_FORMING
    limit = float(params["transfer_within"])
    band = float(params["voltage_band"])
    f_band = float(params["frequency_band"]) * ctx.f_nominal
    thr = float(params["threshold"])
    max_gap = min(float(params["max_gap"]), limit)

    def refuse(kind: str, reason: str) -> list[Verdict]:
        maker = not_judged if kind == "not judged" else problem
        return [maker(name, reason, clause, unit="s", limit=limit, relation=Relation.AT_MOST)]

    end, short = _observation(trace, (HOME_V,), t0, t1, limit + float(params["sustain"]))
    if short:
        return refuse("not judged", short)
    gone = _source_gone(trace, t0, state)
    if gone:
        return refuse("error" if "no record" in gone else "not judged", gone)
    seen: dict[str, Readings] = {}
    for ch in (HOME_V, HOME_F, GRID_V):
        if not trace.has(ch):
            return refuse("error", f"{ch} was not measured")
        # Frequency reads NaN on a dead bus (nothing to count): its gaps are the voltage's.
        got = window(trace, ch, t0, end, max_gap) if ch != HOME_F else readings(trace, ch)
        if isinstance(got, Gap):
            return refuse(
                "error",
                got.describe()
                + (
                    f" (a blackout as long as the {limit * 1e3:.0f} ms limit could hide there)"
                    if got.allowed == limit
                    else ""
                ),
            )
        seen[ch] = got
    resolution = float(params["resolution"]) * limit
    spacing = seen[HOME_V].max_spacing(t0, min(end, t0 + limit + 0.5))
    if too_sparse(spacing, resolution):
        return refuse(
            "error",
            f"readings of {HOME_V} {spacing * 1e3:.0f} ms apart after the loss; judging a "
            f"{limit * 1e3:.0f} ms transfer needs at most {resolution * 1e3:.0f} ms",
        )
    home_v = seen[HOME_V]
    t, v = home_v.t, home_v.v
    # The frequency of the same analyzer update as each voltage reading (NaN: none, a dead bus).
    f_t, f_v = trace.series(HOME_F)
    f_here = np.full(t.shape, np.nan)
    if f_t.size:
        idx = np.clip(np.searchsorted(f_t, t), 0, f_t.size - 1)
        f_here = np.where(f_t[idx] == t, f_v[idx], np.nan)
    v_ok = np.abs(v - ctx.v_nominal) <= band * ctx.v_nominal
    f_ok = np.abs(f_here - ctx.f_nominal) <= f_band  # NaN (dead bus) is never within the band
    inside = v_ok & f_ok
    t_back = stays_below_from(t, inside, t0, end)
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
    rows: list[Verdict] = []
    island = (t >= t0) & (t <= end)
    lowest = float(np.min(v[island])) if np.any(island) else float("nan")
    f_island = f_here[island & ~np.isnan(f_here)]
    f_span = (
        f"{float(np.min(f_island)):.2f}…{float(np.max(f_island)):.2f} Hz" if f_island.size else "—"
    )
    if t_back is None:
        detail = (
            f"grid lost at t={t0:.2f} s; the home was not held within ±{band * 100:g} % of "
            f"{ctx.v_nominal:.0f} V and ±{f_band:.2g} Hz of {ctx.f_nominal:g} Hz by the end of the "
            f"{end - t0:.1f} s observed (lowest {lowest:.0f} V, frequency {f_span})"
        )
        rows.append(
            judged(name, None, limit, Relation.AT_MOST, "s", 0.0, params, detail, clause, markers)
        )
    else:
        transfer = t_back - t0
        u = ctx.instrumentation.time_u(HOME_V, home_v.spacing_at(t_back))
        detail = (
            f"grid lost at t={t0:.2f} s; home voltage within ±{band * 100:g} % and frequency "
            f"within ±{f_band:.2g} Hz from {transfer * 1e3:.0f} ms on, held for {end - t_back:.1f} s "
            f"until the grid returned; lowest {lowest:.0f} V, frequency {f_span}"
        )
        rows.append(
            judged(name, transfer, limit, Relation.AT_MOST, "s", u, params, detail, clause, markers)
        )
    # No back-feed: once the transfer limit has passed, the dead grid point carries no voltage
    # (the unit separated the home before forming its island).
    grid = seen[GRID_V].between(t0 + limit, end)
    if grid.empty:
        rows.append(
            problem(
                f"{name}:backfeed",
                f"no reading of {GRID_V} in the island after the transfer limit",
                clause,
                unit="V",
            )
        )
        return rows
    k = int(np.argmax(grid.v))
    worst = float(grid.v[k])
    rows.append(
        judged(
            f"{name}:backfeed",
            worst,
            thr * ctx.v_nominal,
            Relation.AT_MOST,
            "V",
            ctx.instrumentation.band(GRID_V, worst),
            params,
            f"largest grid-point voltage from {limit * 1e3:.0f} ms after the loss until the grid "
            f"returned: {worst:.1f} V at t={float(grid.t[k]):.2f} s (the dead grid must stay below "
            f"{thr:g} p.u.)",
            clause,
            (Marker("threshold", f"{thr:g} p.u.", thr * ctx.v_nominal, GRID_V),),
        )
    )
    return rows


def _zoom(t0: float, limit: float, t_measured: float | None, channel: str) -> Marker:
    seen = max(limit, (t_measured - t0) if t_measured is not None else 2 * limit)
    return Marker("zoom", "grid loss", (t0 - 0.5 * seen, t0 + 2.0 * seen), channel)


REQUIRED_IF[("islanding", "transfer_within")] = lambda values: values.get("mode") == "grid_forming"
REQUIRED_IF[("islanding", "output_level")] = lambda values: False
REQUIRED_IF[("islanding", "balance")] = lambda values: False
