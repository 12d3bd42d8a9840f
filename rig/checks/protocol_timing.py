"""protocol_timing: every response of the peer within its limit, and the rig's own timeouts kept.

When the rig is the EV (the DUT is an EVSE), each response of the SECC is judged against the
EVCC's timeout for that request (rig.v2g.timing.EvccTiming: 0.5 s for ChargeLoop, 5 s for
ServiceDetail, 2 s otherwise; the values open implementations use, FACTS.md "Timing"), and a
request that was never answered fails. When the rig is the EVSE (the DUT is an EV), each of the
EV's requests must come within the SECC's sequence timeout of the previous response (60 s). The
times are the rig's own timestamps of the frames on its link, never the DUT's claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from rig.checks.v2gtrace import Exchange, exchanges, messages
from rig.trace import Trace

CLAUSE = "ISO 15118-20 message timeouts (EVCC) and sequence timeout (SECC); FACTS.md Timing"
#: Uncertainty of the rig's own frame timestamps: the engine stamps a frame when its transport
#: hands it over, within a scheduler turn of the wire (rig's own estimate (?)).
TIMESTAMP_U_S = 0.001


def _limit(request: str) -> float:
    from rig.v2g.messages import request_of
    from rig.v2g.timing import EvccTiming

    req = request_of(request)
    return EvccTiming().other_request if req is None else EvccTiming().response_timeout(req)


@register(
    "protocol_timing",
    summary="Each peer response within the EVCC's timeout for it (rig = EV), or each EV request "
    "within the SECC's sequence timeout (rig = EVSE); an unanswered request fails",
    clause=CLAUSE,
    params={
        "sequence_timeout": Param(
            "time",
            "60 s",
            help="rig = EVSE: the longest wait for the EV's next request",
            positive=True,
        ),
    },
)
def protocol_timing(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    msgs = messages(trace)
    if not msgs:
        return [
            not_judged(
                "protocol_timing",
                "no ISO 15118-20 message in the trace (protocol none, or no session)",
                CLAUSE,
                unit="s",
            )
        ]
    if msgs[0].side == "secc":
        return [_ev_pacing(msgs, float(params["sequence_timeout"]), params)]
    pairs = list(exchanges([m for m in msgs if m.side == "evcc"]))
    worst: tuple[float, Exchange] | None = None  # (share of its limit, exchange)
    by_name: dict[str, list[float]] = {}
    missing: list[Exchange] = []
    for ex in pairs:
        if ex.response is None:
            missing.append(ex)
            continue
        rt = ex.response_time or 0.0
        by_name.setdefault(ex.request.name, []).append(rt)
        share = rt / _limit(ex.request.name)
        if worst is None or share > worst[0]:
            worst = (share, ex)
    summary = "; ".join(
        f"{name} ×{len(v)} max {max(v) * 1e3:.1f} ms (limit {_limit(name):g} s)"
        for name, v in sorted(by_name.items(), key=lambda kv: -max(kv[1]) / _limit(kv[0]))[:4]
    )
    if missing:
        first = missing[0]
        limit = _limit(first.request.name)
        # A request left unanswered at the very end of the run (teardown cut the link) is not
        # the peer's fault unless its limit had passed before the trace ended.
        overdue = [m for m in missing if trace.end_t - m.request.t >= _limit(m.request.name)]
        if overdue:
            first = overdue[0]
            limit = _limit(first.request.name)
            return [
                judged(
                    "protocol_timing",
                    None,
                    limit,
                    Relation.AT_MOST,
                    "s",
                    TIMESTAMP_U_S,
                    params,
                    f"{first.request.name} sent at t={first.request.t:.3f} s was never answered "
                    f"(limit {limit:g} s); {len(overdue)} unanswered in all. {summary}",
                    CLAUSE,
                    (Marker("time", f"{first.request.name} unanswered", first.request.t),),
                )
            ]
    if worst is None:
        return [problem("protocol_timing", "no response in the trace", CLAUSE, unit="s")]
    share, ex = worst
    limit = _limit(ex.request.name)
    rt = ex.response_time or 0.0
    return [
        judged(
            "protocol_timing",
            rt,
            limit,
            Relation.AT_MOST,
            "s",
            TIMESTAMP_U_S,
            params,
            f"slowest against its limit: {ex.response.name if ex.response else '?'} after "
            f"{rt * 1e3:.1f} ms at t={ex.request.t:.3f} s ({share * 100:.0f} % of {limit:g} s); "
            f"{len(pairs)} exchanges. {summary}",
            CLAUSE,
            (Marker("time", f"slowest {ex.request.name}", ex.request.t),),
        )
    ]


def _ev_pacing(msgs: list[Any], timeout: float, params: Mapping[str, Any]) -> Verdict:
    gaps = []
    last_response: float | None = None
    for m in msgs:
        if m.sent and not m.is_request:
            last_response = m.t
        elif not m.sent and m.is_request and last_response is not None:
            gaps.append((m.t - last_response, m))
            last_response = None
    if not gaps:
        return problem("protocol_timing", "no EV request", CLAUSE, unit="s", limit=timeout)
    gap, m = max(gaps, key=lambda g: g[0])
    return judged(
        "protocol_timing",
        gap,
        timeout,
        Relation.AT_MOST,
        "s",
        TIMESTAMP_U_S,
        params,
        f"longest wait for the EV's next request: {gap:.3f} s before {m.name} at t={m.t:.3f} s",
        CLAUSE,
    )
