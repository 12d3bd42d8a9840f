"""Control pilot timing: what ISO 15118-20 and IEC 61851-1 ask of each side's pilot.

The trace carries the pilot as measured (src "pilot", name "reading": state, frequency_hz, duty
(0..1), high_v, low_v; one event per change, from the control pilot instrument or the emulated
line) and the session's messages (src "v2g", name "message": rig.checks.v2gtrace). EV side:

- pilot_state_b_before_start [V2G20-1617]: state B when the EV sends its first
  PowerDeliveryReq(Start);
- pilot_state_c_after_start [V2G20-847]: state C or D at most 250 ms after it;
- pilot_state_b_after_stop [V2G20-848]: state B at most 250 ms after PowerDeliveryReq(Stop);
- pilot_state_held [V2G20-849]: no state change between the two.

EVSE side:

- pilot_pwm (IEC 61851-1, ISO 15118-3): while the EV is connected, the PWM is 1 kHz and 5 %
  (high-level communication), within tolerances that are parameters (defaults +-2 % of the
  frequency and +-0.5 percentage points of duty (?): IEC 61851-1 Table A.x not at hand).

The requirement texts are as open code quotes them (EVerest's and Josev's comments) (?).
Each check has a seeded defect of the emulated EV or EVSE that fails it (rig.sim.pilot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rig.checks import Context, Marker, Param, Verdict, register
from rig.checks.v2gtrace import Message, messages
from rig.trace import Trace

_REQ = "ISO 15118-20 [V2G20-847] [V2G20-848] [V2G20-849] [V2G20-1617] (texts as open code quotes them (?))"


@dataclass(frozen=True)
class PilotPoint:
    t: float
    state: str
    frequency_hz: float | None
    duty: float | None


def pilot_readings(trace: Trace) -> list[PilotPoint]:
    out = []
    for e in trace.events:
        if e.src != "pilot" or e.name != "reading":
            continue
        d = e.data
        freq, duty = d.get("frequency_hz"), d.get("duty")
        out.append(
            PilotPoint(
                e.t,
                str(d.get("state", "?")),
                float(freq) if isinstance(freq, int | float) else None,
                float(duty) if isinstance(duty, int | float) else None,
            )
        )
    return out


def _progress(m: Message) -> str:
    value = m.content.get("ChargeProgress")
    return str(value) if value is not None else ""


def _deliveries(trace: Trace) -> list[Message]:
    """The EV's PowerDeliveryReqs (sent by the rig's EVCC, or received by the rig's SECC)."""
    return [m for m in messages(trace) if m.name == "PowerDeliveryReq"]


def _state_at(points: list[PilotPoint], t: float) -> str | None:
    state = None
    for p in points:
        if p.t > t:
            break
        state = p.state
    return state


def _first_after(points: list[PilotPoint], t: float, states: set[str]) -> PilotPoint | None:
    return next((p for p in points if p.t >= t and p.state in states), None)


def _error(name: str, detail: str, clause: str) -> list[Verdict]:
    return [Verdict(name, "error", None, None, "s", detail, clause)]


@register(
    "pilot_state_b_before_start",
    summary="EV: control pilot in state B when the EV sends its first PowerDeliveryReq(Start)",
    clause="ISO 15118-20 [V2G20-1617] (?)",
)
def state_b_before_start(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name, clause = "pilot_state_b_before_start", "ISO 15118-20 [V2G20-1617] (?)"
    points = pilot_readings(trace)
    start = next((m for m in _deliveries(trace) if _progress(m) == "Start"), None)
    if not points or start is None:
        return _error(name, "no pilot reading or no PowerDeliveryReq(Start) in the trace", clause)
    state = _state_at(points, start.t)
    return [
        Verdict(
            name,
            "pass" if state == "B" else "fail",
            None,
            None,
            "",
            f"state {state} at the first PowerDeliveryReq(Start), t={start.t:.3f} s (B required)",
            clause,
            (Marker("time", "PowerDeliveryReq(Start)", start.t),),
        )
    ]


@register(
    "pilot_state_c_after_start",
    summary="EV: control pilot in state C or D within 250 ms of its first PowerDeliveryReq(Start)",
    clause="ISO 15118-20 [V2G20-847] (?)",
    params={
        "within": Param("time", "250 ms", help="[V2G20-847]: 250 ms", positive=True),
    },
)
def state_c_after_start(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name, clause = "pilot_state_c_after_start", "ISO 15118-20 [V2G20-847] (?)"
    limit = float(params["within"])
    points = pilot_readings(trace)
    start = next((m for m in _deliveries(trace) if _progress(m) == "Start"), None)
    if not points or start is None:
        return _error(name, "no pilot reading or no PowerDeliveryReq(Start) in the trace", clause)
    if _state_at(points, start.t) in ("C", "D"):
        after = 0.0  # already there: judged by pilot_state_b_before_start
    else:
        found = _first_after(points, start.t, {"C", "D"})
        if found is None:
            return [
                Verdict(
                    name, "fail", None, limit, "s",
                    f"no state C/D after PowerDeliveryReq(Start) at t={start.t:.3f} s", clause,
                    (Marker("time", "PowerDeliveryReq(Start)", start.t),),
                )
            ]  # fmt: skip
        after = found.t - start.t
    return [
        Verdict(
            name,
            "pass" if after <= limit else "fail",
            after,
            limit,
            "s",
            f"state C/D {after * 1e3:.0f} ms after PowerDeliveryReq(Start) at t={start.t:.3f} s",
            clause,
            (Marker("time", "PowerDeliveryReq(Start)", start.t),),
        )
    ]


@register(
    "pilot_state_b_after_stop",
    summary="EV: control pilot back in state B within 250 ms of each PowerDeliveryReq(Stop)",
    clause="ISO 15118-20 [V2G20-848] (?)",
    params={"within": Param("time", "250 ms", help="[V2G20-848]: 250 ms", positive=True)},
)
def state_b_after_stop(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name, clause = "pilot_state_b_after_stop", "ISO 15118-20 [V2G20-848] (?)"
    limit = float(params["within"])
    points = pilot_readings(trace)
    stops = [m for m in _deliveries(trace) if _progress(m) == "Stop"]
    if not points or not stops:
        return _error(name, "no pilot reading or no PowerDeliveryReq(Stop) in the trace", clause)
    worst: tuple[float, Message] | None = None
    for stop in stops:
        found = _first_after(points, stop.t, {"B"})
        after = float("inf") if found is None else found.t - stop.t
        if worst is None or after > worst[0]:
            worst = (after, stop)
    assert worst is not None
    after, stop = worst
    ok = after <= limit
    shown = "never" if after == float("inf") else f"{after * 1e3:.0f} ms"
    return [
        Verdict(
            name,
            "pass" if ok else "fail",
            None if after == float("inf") else after,
            limit,
            "s",
            f"state B {shown} after PowerDeliveryReq(Stop) at t={stop.t:.3f} s "
            f"({len(stops)} Stop requests)",
            clause,
            (Marker("time", "PowerDeliveryReq(Stop)", stop.t),),
        )
    ]


@register(
    "pilot_state_held",
    summary="EV: no pilot state change between state C/D after Start and the PowerDeliveryReq(Stop)",
    clause="ISO 15118-20 [V2G20-849] (?)",
)
def state_held(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name, clause = "pilot_state_held", "ISO 15118-20 [V2G20-849] (?)"
    points = pilot_readings(trace)
    deliveries = _deliveries(trace)
    start = next((m for m in deliveries if _progress(m) == "Start"), None)
    if not points or start is None:
        return _error(name, "no pilot reading or no PowerDeliveryReq(Start) in the trace", clause)
    # An EV already in C/D at Start (judged by pilot_state_b_before_start) holds from there.
    before = [p for p in points if p.t <= start.t]
    if before and before[-1].state in ("C", "D"):
        entered: PilotPoint | None = before[-1]
    else:
        entered = _first_after(points, start.t, {"C", "D"})
    if entered is None:
        return _error(
            name, "the EV never reached state C/D (see pilot_state_c_after_start)", clause
        )
    stop = next((m for m in deliveries if _progress(m) == "Stop" and m.t > entered.t), None)
    end = stop.t if stop is not None else trace.end_t
    changes = [p for p in points if entered.t < p.t < end and p.state != entered.state]
    detail = f"state {entered.state} from t={entered.t:.3f} s to t={end:.3f} s"
    if changes:
        first = changes[0]
        return [
            Verdict(
                name, "fail", float(len(changes)), 0.0, "changes",
                f"{detail}: {len(changes)} change(s), first to {first.state} at t={first.t:.3f} s",
                clause, (Marker("time", f"state {first.state}", first.t),),
            )
        ]  # fmt: skip
    return [Verdict(name, "pass", 0.0, 0.0, "changes", detail + ": held", clause)]


@register(
    "pilot_pwm",
    summary="EVSE: while the EV is connected, 1 kHz PWM at 5 % duty (high-level communication)",
    clause="IEC 61851-1 Annex A; ISO 15118-3 5 % for HLC (tolerances (?))",
    params={
        "duty": Param("ratio", "5 %", help="the duty cycle asked for", high=1.0),
        "duty_tolerance": Param("ratio", "0.5 %", help="(?) +- percentage points", high=1.0),
        "frequency": Param("frequency", "1 kHz", positive=True),
        "frequency_tolerance": Param(
            "ratio", "2 %", help="(?) +- share of the frequency", high=1.0
        ),
    },
)
def pwm(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    name = "pilot_pwm"
    clause = "IEC 61851-1 Annex A; ISO 15118-3 (tolerances (?))"
    duty, duty_tol = float(params["duty"]), float(params["duty_tolerance"])
    freq, freq_tol = float(params["frequency"]), float(params["frequency_tolerance"])
    # The PWM of a connected EV in B, C or D (E/F and A carry none).
    pwm_points = [
        p for p in pilot_readings(trace) if p.state in ("B", "C", "D") and p.duty is not None
    ]
    if not pwm_points:
        return _error(name, "no PWM reading with an EV connected in the trace", clause)
    worst_duty = max(pwm_points, key=lambda p: abs((p.duty or 0.0) - duty))
    worst_freq = max(pwm_points, key=lambda p: abs((p.frequency_hz or 0.0) - freq))
    duty_off = abs((worst_duty.duty or 0.0) - duty)
    freq_off = abs((worst_freq.frequency_hz or 0.0) - freq) / freq
    ok = duty_off <= duty_tol and freq_off <= freq_tol
    return [
        Verdict(
            name,
            "pass" if ok else "fail",
            worst_duty.duty,
            duty,
            "",
            f"duty {(worst_duty.duty or 0) * 100:.2f} % at t={worst_duty.t:.3f} s (asked "
            f"{duty * 100:g} % +- {duty_tol * 100:g}); frequency {worst_freq.frequency_hz} Hz "
            f"(asked {freq:g} Hz +- {freq_tol * 100:g} %); {len(pwm_points)} readings",
            clause,
            (Marker("time", "worst PWM reading", worst_duty.t),),
        )
    ]
