"""sequence: the peer keeps the ISO 15118-20 message order and answers with the right codes, and
energy stops when the session says so.

Judged from the messages the rig's engine exchanged (the peer's frames as received):
- order: every response answers the request before it, and none comes unasked;
- response codes: OK (or the specific OK of SessionSetup: OK_NewSessionEstablished for a new
  session, OK_OldSessionJoined for a resumed one); a request the rig sent out of sequence on
  purpose (a fault from the plan) must be answered FAILED_SequenceError; any other FAILED or
  WARNING code the peer sent is reported;
- energy after stop: after an acknowledged PowerDelivery(Stop or Standby), the EVSE's measured AC
  power falls below `idle_power` within `stop_within` and stays there until the next Start
  (a stop the plan did not watch for that long is `not judged`, with its reason).
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
from rig.checks.evidence import Gap, window
from rig.checks.uncertainty import Instrumentation
from rig.checks.v2gtrace import Message, find, messages, response_name
from rig.sim.points import MeasurementPoint
from rig.trace import Trace, analyzer_channel

CLAUSE = "ISO 15118-20 message sequence and ResponseCode; PowerDelivery ChargeProgress"
EVSE_P = analyzer_channel(MeasurementPoint.EVSE_AC, "p_w")
#: Order and codes are protocol facts read from the frames: no measurement uncertainty.
EXACT = "exact (protocol facts from the frames; no measurement uncertainty)"


@register(
    "sequence",
    summary="Responses in order and with the right ResponseCode (FAILED_SequenceError to an "
    "out-of-sequence request); no energy after PowerDelivery Stop/Standby",
    clause=CLAUSE,
    params={
        "stop_within": Param(
            "time",
            "2 s",
            help="energy below idle_power this long after Stop/Standby (?)",
            positive=True,
        ),
        "idle_power": Param(
            "power",
            "200 W",
            help="what counts as no energy transfer at the EVSE's AC side (rig's choice)",
        ),
        "max_gap": Param("time", "2 s", help="longest gap in readings accepted", positive=True),
    },
)
def sequence(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    msgs = [m for m in messages(trace) if m.side == "evcc"]
    if not msgs:
        return [
            not_judged(
                "sequence",
                "no ISO 15118-20 message of the rig's EVCC in the trace (protocol none, or the "
                "rig is the EVSE: judge the EV with protocol_timing)",
                CLAUSE,
            )
        ]
    out = [_order(msgs), _codes(msgs, trace)]
    out.extend(_energy_after_stop(trace, msgs, params, ctx.instrumentation))
    return out


def _pairs(msgs: list[Message]) -> tuple[list[tuple[Message, Message]], Message | None]:
    """Each response with the outstanding request it answers (the oldest of that name: the rig
    may have sent an extra request on purpose, a fault from the plan), and the first response
    that answers none (None: every response had its request)."""
    outstanding: list[Message] = []
    pairs: list[tuple[Message, Message]] = []
    for m in msgs:
        if m.is_request:
            outstanding.append(m)
            continue
        request = next((r for r in outstanding if response_name(r.name) == m.name), None)
        if request is None:
            return pairs, m
        outstanding.remove(request)
        pairs.append((request, m))
    return pairs, None


def _order(msgs: list[Message]) -> Verdict:
    _, stray = _pairs(msgs)
    if stray is not None:
        return Verdict(
            "sequence:order",
            "fail",
            None,
            None,
            "",
            f"{stray.name} at t={stray.t:.3f} s answers no request the rig sent",
            CLAUSE,
            (Marker("time", f"unexpected {stray.name}", stray.t),),
            decision_rule=EXACT,
        )
    return Verdict(
        "sequence:order",
        "pass",
        None,
        None,
        "",
        f"{len(msgs)} messages in -20 order",
        CLAUSE,
        decision_rule=EXACT,
    )


def _expected_code(request: Message, injected: set[float]) -> set[str]:
    if request.t in injected:
        return {"FAILED_SequenceError"}
    if request.name == "supportedAppProtocolReq":
        return {"OK_SuccessfulNegotiation", "OK_SuccessfulNegotiationWithMinorDeviation"}
    if request.name == "SessionSetupReq":
        sid = find(request.content, "SessionID")
        new = not sid or set(str(sid)) <= {"0"}
        return (
            {"OK_NewSessionEstablished"}
            if new
            else {"OK_OldSessionJoined", "OK_NewSessionEstablished"}
        )
    return {"OK"}


def _codes(msgs: list[Message], trace: Trace) -> Verdict:
    injected = {
        float(e.data["t_sent"])
        for e in trace.events
        if e.name == "fault_injected"
        and e.data.get("kind") == "out_of_sequence"
        and e.data.get("t_sent") is not None
    }
    pairs, _ = _pairs(msgs)
    checked = 0
    for request, response in pairs:
        if response.code is None:
            continue
        checked += 1
        allowed = _expected_code(request, injected)
        if response.code not in allowed:
            return Verdict(
                "sequence:response_codes",
                "fail",
                None,
                None,
                "",
                f"{response.name} at t={response.t:.3f} s said {response.code}; -20 expects "
                f"{' or '.join(sorted(allowed))} to that {request.name}"
                + (" (sent out of sequence by the plan)" if request.t in injected else ""),
                CLAUSE,
                (Marker("time", f"{response.name} {response.code}", response.t),),
                decision_rule=EXACT,
            )
    if not checked:
        return problem("sequence:response_codes", "no response", CLAUSE)
    answered = {r.t for r, _ in pairs}
    unanswered = injected - answered
    if unanswered:
        return Verdict(
            "sequence:response_codes",
            "fail",
            None,
            None,
            "",
            f"the request the plan sent out of sequence at t={min(unanswered):.3f} s was never "
            "answered (-20: FAILED_SequenceError)",
            CLAUSE,
            decision_rule=EXACT,
        )
    probes = f"; {len(injected)} out-of-sequence probe(s) refused" if injected else ""
    return Verdict(
        "sequence:response_codes",
        "pass",
        None,
        None,
        "",
        f"{checked} responses with the expected codes{probes}",
        CLAUSE,
        decision_rule=EXACT,
    )


def _energy_after_stop(
    trace: Trace, msgs: list[Message], params: Mapping[str, Any], inst: Instrumentation
) -> list[Verdict]:
    within = float(params["stop_within"])
    idle = float(params["idle_power"])
    t, _ = trace.series(EVSE_P)
    if t.size == 0:
        return []
    last_sample = float(t[-1])
    stops: list[tuple[float, str]] = []
    starts: list[float] = []
    request: Message | None = None
    for m in msgs:
        if m.is_request:
            request = m
        elif request is not None and m.name == "PowerDeliveryRes" and m.code == "OK":
            progress = find(request.content, "ChargeProgress")
            if progress in ("Stop", "Standby"):
                stops.append((m.t, str(progress)))
            elif progress == "Start":
                starts.append(m.t)
    verdicts = []
    for t_stop, progress in stops:
        if t_stop >= last_sample:
            # The session's close after the plan's last reading (the rig ends every session at
            # teardown): no instrument watched it, and no plan step asked for it.
            continue
        if t_stop + within > last_sample:
            verdicts.append(
                not_judged(
                    "sequence:energy_after_stop",
                    f"PowerDelivery({progress}) acknowledged at t={t_stop:.2f} s, {last_sample - t_stop:.2f} s "
                    f"before the last reading: stopping is judged {within:g} s after it",
                    CLAUSE,
                    unit="W",
                    limit=idle,
                    relation=Relation.AT_MOST,
                )
            )
            continue
        t_next = min((s for s in starts if s > t_stop), default=last_sample)
        if t_next <= t_stop + within:
            continue
        seen = window(trace, EVSE_P, t_stop + within, t_next, float(params["max_gap"]))
        if isinstance(seen, Gap):
            verdicts.append(
                problem("sequence:energy_after_stop", seen.describe(), CLAUSE, unit="W")
            )
            continue
        if seen.empty:
            continue
        k = int(np.argmax(np.abs(seen.v)))
        worst = abs(float(seen.v[k]))
        verdicts.append(
            judged(
                "sequence:energy_after_stop",
                worst,
                idle,
                Relation.AT_MOST,
                "W",
                inst.band(EVSE_P, worst),
                params,
                f"PowerDelivery({progress}) acknowledged at t={t_stop:.2f} s: largest EVSE AC power "
                f"from {within:g} s after it to the next Start: {worst:.0f} W",
                CLAUSE,
                (Marker("time", f"{progress}", t_stop, EVSE_P),),
            )
        )
    return verdicts
