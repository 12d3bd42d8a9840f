"""The session timeline of a decoded capture: phases with durations, the charge loop's values.

Phases, each from its first to its last message: pilot (only where the trace has pilot events:
a capture does not see the pilot), SLAC (CM_SLAC_PARM.REQ to CM_SLAC_MATCH.CNF), key (the
CM_SET_KEY exchanges after the match), SDP, TCP (the session connection's first frame to its
first V2GTP message), handshake (supportedAppProtocol), setup (SessionSetup to
ScheduleExchange / ChargeParameterDiscovery and authorization), cable check, pre-charge,
power delivery, charge loop (CurrentDemand, ChargingStatus, -20 ChargeLoop), welding
detection, stop (PowerDelivery(Stop) to SessionStop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rig.decode.capture import DecodedEvent, message_content

#: Message (without Req/Res) -> phase. Names of DIN 70121, -2 and -20 alike.
_PHASE_OF = {
    "supportedAppProtocol": "handshake",
    "SessionSetup": "setup",
    "ServiceDiscovery": "setup",
    "ServiceDetail": "setup",
    "ServicePaymentSelection": "setup",
    "PaymentServiceSelection": "setup",
    "ServiceSelection": "setup",
    "ContractAuthentication": "setup",
    "Authorization": "setup",
    "AuthorizationSetup": "setup",
    "PaymentDetails": "setup",
    "CertificateInstallation": "setup",
    "CertificateUpdate": "setup",
    "ChargeParameterDiscovery": "setup",
    "DC_ChargeParameterDiscovery": "setup",
    "AC_ChargeParameterDiscovery": "setup",
    "ScheduleExchange": "setup",
    "CableCheck": "cable_check",
    "DC_CableCheck": "cable_check",
    "PreCharge": "precharge",
    "DC_PreCharge": "precharge",
    "CurrentDemand": "charge_loop",
    "ChargingStatus": "charge_loop",
    "MeteringReceipt": "charge_loop",
    "DC_ChargeLoop": "charge_loop",
    "AC_ChargeLoop": "charge_loop",
    "WeldingDetection": "welding_detection",
    "DC_WeldingDetection": "welding_detection",
    "SessionStop": "stop",
}
PHASE_ORDER = (
    "pilot",
    "slac",
    "key",
    "sdp",
    "tcp",
    "handshake",
    "setup",
    "cable_check",
    "precharge",
    "power_delivery",
    "charge_loop",
    "welding_detection",
    "stop",
)


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start: float
    end: float
    messages: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    def as_record(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "start_s": round(self.start, 6),
            "end_s": round(self.end, 6),
            "duration_s": round(self.duration, 6),
            "messages": self.messages,
        }


def phase_of(event: DecodedEvent) -> str | None:
    if event.src == "pilot":
        return "pilot"
    if event.src == "sdp":
        return "sdp"
    if event.src == "slac":
        return "key" if event.name.startswith("CM_SET_KEY") else "slac"
    if event.src != "v2gtp" or event.name == "undecoded":
        return None
    base = event.name[:-3] if event.name.endswith(("Req", "Res")) else event.name
    if base == "PowerDelivery":
        body = event.data.get("body")
        content = message_content(body) if isinstance(body, Mapping) else {}
        progress = str(content.get("ChargeProgress", ""))
        return "stop" if progress == "Stop" else "power_delivery"
    return _PHASE_OF.get(base)


def phases(events: Sequence[DecodedEvent]) -> list[Phase]:
    """The phases present in the events, in session order. The key phase counts only the
    CM_SET_KEY exchanges between the first CM_SLAC_MATCH and SDP (the ones at start-up or after
    unplugging set up the EVSE's own network, not the EV's join)."""
    spans: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    match_t = next((e.t for e in events if e.src == "slac" and "SLAC_MATCH" in e.name), None)
    sdp_t = next((e.t for e in events if e.src == "sdp"), None)
    first_v2g: float | None = None
    delivery = "power_delivery"  # the phase of the last PowerDeliveryReq (its Res follows it)
    for event in events:
        phase = phase_of(event)
        if event.name == "PowerDeliveryReq":
            delivery = phase or delivery
        elif event.name == "PowerDeliveryRes":
            phase = delivery
        if phase == "key" and (
            match_t is None or event.t < match_t or (sdp_t is not None and event.t > sdp_t)
        ):
            continue  # the EVSE's own key at start-up or after unplugging: not the EV's join
        if phase == "slac" and not event.name.startswith(
            ("CM_SLAC", "CM_START", "CM_MNBC", "CM_ATTEN")
        ):
            continue  # vendor messages of the modems
        if phase is None:
            continue
        if event.src == "v2gtp" and first_v2g is None:
            first_v2g = event.t
        span = spans.setdefault(phase, [event.t, event.t])
        span[0] = min(span[0], event.t)
        span[1] = max(span[1], event.t)
        counts[phase] = counts.get(phase, 0) + 1
    if first_v2g is not None:
        sdp_end = spans.get("sdp", [None, None])[1]
        start = sdp_end if sdp_end is not None and sdp_end <= first_v2g else None
        if start is not None:
            spans["tcp"] = [start, first_v2g]
            counts["tcp"] = 0
    return [
        Phase(name, spans[name][0], spans[name][1], counts.get(name, 0))
        for name in PHASE_ORDER
        if name in spans
    ]


@dataclass(frozen=True, slots=True)
class LoopPoint:
    """One charge-loop response: what the EVSE reported (V, A, W = V x A), and the EV's target."""

    t: float
    voltage_v: float | None
    current_a: float | None
    target_voltage_v: float | None = None
    target_current_a: float | None = None

    @property
    def power_w(self) -> float | None:
        if self.voltage_v is None or self.current_a is None:
            return None
        return self.voltage_v * self.current_a


def physical(value: Any) -> float | None:
    """DIN / -2 PhysicalValue {Multiplier, Unit, Value} or -20 RationalNumber {Exponent, Value}."""
    if not isinstance(value, Mapping):
        return None
    try:
        scale = value.get("Multiplier", value.get("Exponent", 0))
        return float(value["Value"]) * 10.0 ** int(scale)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def charge_loop(events: Iterable[DecodedEvent]) -> list[LoopPoint]:
    """The charge loop's present voltage and current over time (DC: CurrentDemandRes, -20
    DC_ChargeLoopRes), with the EV's targets from the request before each response."""
    points: list[LoopPoint] = []
    target: tuple[float | None, float | None] = (None, None)
    for event in events:
        if event.src != "v2gtp" or not isinstance(event.data.get("body"), Mapping):
            continue
        name = event.name
        if name not in (
            "CurrentDemandReq",
            "CurrentDemandRes",
            "DC_ChargeLoopReq",
            "DC_ChargeLoopRes",
        ):
            continue
        content = message_content(event.data["body"])
        if name.endswith("Req"):
            target = (
                physical(content.get("EVTargetVoltage")),
                physical(content.get("EVTargetCurrent")),
            )
            continue
        voltage = physical(content.get("EVSEPresentVoltage"))
        current = physical(content.get("EVSEPresentCurrent"))
        if voltage is None and current is None:
            continue
        points.append(LoopPoint(event.t, voltage, current, *target))
    return points
