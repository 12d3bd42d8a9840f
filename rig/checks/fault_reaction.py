"""fault_reaction: what the DUT did about each fault the rig injected on purpose.

A conformance plan makes the rig's own side misbehave (rig.v2g.faults, the plan's `faults:`); -20
says how the peer must react: answer FAILED or let its timer run out, and in every case end the
session and stop the energy. Judged from the rig's records of its link and from the instruments:
- a fault that ends the session (drop, delay or reorder past the EV's timeout, truncate, corrupt,
  close, out_of_sequence): the session ends, and the EVSE's AC power stays below `idle_power`
  from `stop_within` after the link ended;
- silence: the DUT itself ends the session within its sequence timeout (`sequence_timeout`, the
  -20 SECC's 60 s by default) plus `stop_within`, then stops the energy the same way;
- duplicate: the session goes on (no end of the link within `continue_within`);
- wrong_value is judged by the check of the value's meaning (discharge_limits for a limit).
A fault whose consequence the run did not observe long enough is `error`, not pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.checks import Context, Marker, Param, Verdict, register
from rig.sim.points import MeasurementPoint
from rig.trace import Event, Trace, analyzer_channel

CLAUSE = "ISO 15118-20 error handling: FAILED responses, timeouts, safe state after a lost session"
EVSE_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
ENDING = ("drop", "delay", "reorder", "truncate", "corrupt", "close", "out_of_sequence")


@register(
    "fault_reaction",
    summary="After each injected fault the DUT answers or times out as -20 says, ends the "
    "session and stops the energy (or, for a duplicate, carries on)",
    clause=CLAUSE,
    params={
        "stop_within": Param(
            "time",
            "3 s",
            help="energy below idle_power this long after the session ended (?)",
            positive=True,
        ),
        "idle_power": Param("power", "200 W", help="what counts as no energy transfer"),
        "sequence_timeout": Param(
            "time", "60 s", help="the DUT's own timeout when the rig goes silent", positive=True
        ),
        "continue_within": Param(
            "time", "5 s", help="a duplicate must not end the session this soon", positive=True
        ),
    },
)
def fault_reaction(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    faults = [e for e in trace.events if e.src == "v2g" and e.name == "fault_injected"]
    if not faults:
        return [
            Verdict(
                "fault_reaction",
                "error",
                None,
                None,
                "",
                "no fault was injected (the plan's faults: never matched)",
                CLAUSE,
            )
        ]
    ends = [e for e in trace.events if e.src == "v2g" and e.name in ("link_closed", "session_end")]
    out = []
    for n, fault in enumerate(faults, 1):
        kind = str(fault.data.get("kind"))
        name = f"fault_reaction:{kind}" + (f"#{n}" if len(faults) > 1 else "")
        if kind == "wrong_value":
            continue  # judged by what the value means (discharge_limits, ...)
        # After silence only the DUT can end it (our engine's own timeout is muted with it).
        candidates = [e for e in ends if kind != "silence" or e.name == "link_closed"]
        end = next((e for e in candidates if e.t >= fault.t), None)
        if kind == "duplicate":
            out.append(_carries_on(name, fault, end, trace, float(params["continue_within"])))
        else:
            limit = float(params["sequence_timeout"]) if kind == "silence" else None
            out.append(_ends_and_stops(name, fault, end, trace, params, limit))
    return out or [
        Verdict("fault_reaction", "error", None, None, "", "only wrong_value faults", CLAUSE)
    ]


def _carries_on(name: str, fault: Event, end: Event | None, trace: Trace, within: float) -> Verdict:
    if trace.end_t < fault.t + within:
        return Verdict(name, "error", None, within, "s", "the run ended too soon after", CLAUSE)
    if end is not None and end.t < fault.t + within:
        return Verdict(
            name,
            "fail",
            end.t - fault.t,
            within,
            "s",
            f"the session ended {end.t - fault.t:.3f} s after the duplicated "
            f"{fault.data.get('message')} ({end.data.get('reason')}); -20 repeats of a request "
            "are answered, the session goes on",
            CLAUSE,
            (Marker("time", "session ended", end.t),),
        )
    return Verdict(
        name,
        "pass",
        None,
        within,
        "s",
        f"duplicated {fault.data.get('message')} at t={fault.t:.3f} s; the session went on",
        CLAUSE,
    )


def _ends_and_stops(
    name: str,
    fault: Event,
    end: Event | None,
    trace: Trace,
    params: Mapping[str, Any],
    end_limit: float | None,
) -> Verdict:
    stop_within = float(params["stop_within"])
    idle = float(params["idle_power"])
    kind = fault.data.get("kind")
    if end is None:
        observed = trace.end_t - fault.t
        if end_limit is not None and observed < end_limit + stop_within:
            return Verdict(
                name, "error", None, end_limit, "s",
                f"the plan watched only {observed:.1f} s after going silent; the DUT's timeout "
                f"is {end_limit:g} s",
                CLAUSE,
            )  # fmt: skip
        return Verdict(
            name,
            "fail",
            None,
            end_limit,
            "s",
            f"after the {kind} at t={fault.t:.3f} s the session never ended "
            f"({observed:.1f} s observed)",
            CLAUSE,
            (Marker("time", str(kind), fault.t),),
        )
    if end_limit is not None and end.t - fault.t > end_limit + stop_within:
        return Verdict(
            name,
            "fail",
            end.t - fault.t,
            end_limit,
            "s",
            f"the DUT ended the session {end.t - fault.t:.1f} s after the rig went silent "
            f"(its sequence timeout is {end_limit:g} s)",
            CLAUSE,
        )
    t, p = trace.series(EVSE_P)
    window = t >= end.t + stop_within
    if not np.any(window):
        return Verdict(
            name, "error", None, idle, "W",
            f"no EVSE power reading from {stop_within:g} s after the session ended "
            f"(t={end.t:.2f} s): the plan must watch longer",
            CLAUSE,
        )  # fmt: skip
    values = np.abs(p[window])
    if np.any(~np.isfinite(values)):
        return Verdict(name, "error", None, idle, "W", "missing EVSE power readings", CLAUSE)
    worst = float(np.max(values))
    return Verdict(
        name,
        "pass" if worst <= idle else "fail",
        worst,
        idle,
        "W",
        f"{kind} of {fault.data.get('message')} at t={fault.t:.3f} s; the session ended at "
        f"t={end.t:.3f} s ({end.data.get('reason')}); largest EVSE power from {stop_within:g} s "
        f"after: {worst:.0f} W",
        CLAUSE,
        (
            Marker("time", str(kind), fault.t, EVSE_P),
            Marker("time", "session ended", end.t, EVSE_P),
        ),
    )
