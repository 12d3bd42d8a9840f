"""The ISO 15118-20 EVCC (the vehicle's side) as a sans-IO state machine, h11 style.

Bytes and time go in, outputs come out (rig.v2g.engine). `EvccState` names the request the EVCC
has sent (or is about to send, while a pacing timer runs) and whose response it waits for;
TRANSITIONS is the whole state machine: which requests may follow the response to each one.
The EVCC has exactly one request outstanding. Anything else that arrives (another message, a
response with a FAILED code, a foreign SessionID, a V2GTP defect, garbage) ends the session: an
Event says why, the EvController is told to go safe, and the EVCC closes the connection. A
missing response ends it the same way when its timer (rig.v2g.timing.EvccTiming) fires.

The sequence (FACTS.md "ISO 15118-20 sequence"): supportedAppProtocol, SessionSetup,
AuthorizationSetup, Authorization (EIM; PnC shaped), ServiceDiscovery, ServiceDetail,
ServiceSelection, AC/DC_ChargeParameterDiscovery, ScheduleExchange, [DC_CableCheck, DC_PreCharge],
PowerDelivery(Start), AC/DC_ChargeLoop, PowerDelivery(Stop), [DC_WeldingDetection], SessionStop.
EVSENotifications are obeyed (Pause, Terminate, ServiceRenegotiation: stop and end the session
that way; ScheduleRenegotiation: PowerDelivery(ScheduleRenegotiation) and a new ScheduleExchange;
ExitStandby: PowerDelivery(Start)); MeteringConfirmation is reported as not supported.

Events: "session_phase", "response_code" (every WARNING or FAILED code received),
"unexpected_message", "malformed_message", "v2gtp_error", "truncated_frame", "timeout",
"session_established", "service_selected", "authorization_unavailable", "no_matching_service",
"notification", "resume_refused", "discharge_sign_mismatch", "controller_error",
"response_error", "session_end", "connection_lost", "quirk".

Where the schema leaves a field optional but Josev's message models require it, the EVCC sends
it (ChargingComplete, PowerToleranceAcceptance, an EVPowerProfile with every Finished
PowerDeliveryReq but Stop), so that a Josev SECC accepts every message (tests/v2g/engines/
test_peer_frames.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from rig.v2g.controllers import (
    AcLimits,
    AcLoopStatus,
    AuthMethod,
    Channel,
    ChargeProgress,
    Closure,
    DcLimits,
    DcLoopLimits,
    DcLoopStatus,
    Display,
    DynamicTargets,
    EvController,
    EvIntent,
    EvseNotice,
    MeterReading,
    Notification,
    ParameterSet,
    PowerProfile,
    PriceSchedule,
    ScheduleEntry,
    ScheduleOffer,
    ScheduleTuple,
    SessionEnd,
)
from rig.v2g.engine import CancelTimer, Close, Event, Output, Received, StartTimer
from rig.v2g.exchange import EngineUsageError, Inbound, Undecodable, Wire, phase_event
from rig.v2g.exi import ac, app, common, dc
from rig.v2g.messages import (
    V20_MAJOR_VERSION,
    V20_MINOR_VERSION,
    DischargeSign,
    ParameterError,
    Request,
    ResponseCode,
    code_name,
    dc_limits_from_wire,
    discharge_from_wire,
    discharge_to_wire,
    from_rational,
    header,
    is_failed,
    is_ok,
    namespace_of,
    optional_float,
    optional_rational,
    parameter_set_from_wire,
    to_rational,
)
from rig.v2g.prices import PriceScheduleError, received_prices
from rig.v2g.quirks import NO_QUIRKS, Quirks
from rig.v2g.sessions import PausedSession
from rig.v2g.timing import EvccTiming
from rig.v2g.v2gtp import DEFAULT_MAX_PAYLOAD, V2GTPError
from rig.v2g.vocabulary import SESSION_SERVICES, ControlMode, Service, SessionPhase


class EvccState(StrEnum):
    """The request the EVCC has sent (or is about to send) and whose response it awaits."""

    IDLE = "idle"
    SUPPORTED_APP_PROTOCOL = "supported_app_protocol"
    SESSION_SETUP = "session_setup"
    AUTHORIZATION_SETUP = "authorization_setup"
    AUTHORIZATION = "authorization"
    SERVICE_DISCOVERY = "service_discovery"
    SERVICE_DETAIL = "service_detail"
    SERVICE_SELECTION = "service_selection"
    CHARGE_PARAMETER_DISCOVERY = "charge_parameter_discovery"
    SCHEDULE_EXCHANGE = "schedule_exchange"
    CABLE_CHECK = "cable_check"
    PRE_CHARGE = "pre_charge"
    POWER_DELIVERY = "power_delivery"
    CHARGE_LOOP = "charge_loop"
    WELDING_DETECTION = "welding_detection"
    SESSION_STOP = "session_stop"
    CLOSED = "closed"


E = EvccState

#: The state machine: after the response to each state's request, the states that may follow.
TRANSITIONS: Mapping[EvccState, frozenset[EvccState]] = {
    E.IDLE: frozenset({E.SUPPORTED_APP_PROTOCOL}),
    E.SUPPORTED_APP_PROTOCOL: frozenset({E.SESSION_SETUP}),
    # a resumed session goes on at ChargeParameterDiscovery (EVerest) or AuthorizationSetup (Josev)
    E.SESSION_SETUP: frozenset({E.AUTHORIZATION_SETUP, E.CHARGE_PARAMETER_DISCOVERY}),
    E.AUTHORIZATION_SETUP: frozenset({E.AUTHORIZATION, E.SESSION_STOP}),
    E.AUTHORIZATION: frozenset({E.AUTHORIZATION, E.SERVICE_DISCOVERY, E.SESSION_STOP}),
    E.SERVICE_DISCOVERY: frozenset({E.SERVICE_DETAIL, E.SESSION_STOP}),
    E.SERVICE_DETAIL: frozenset({E.SERVICE_DETAIL, E.SERVICE_SELECTION, E.SESSION_STOP}),
    E.SERVICE_SELECTION: frozenset({E.CHARGE_PARAMETER_DISCOVERY}),
    E.CHARGE_PARAMETER_DISCOVERY: frozenset({E.SCHEDULE_EXCHANGE}),
    E.SCHEDULE_EXCHANGE: frozenset(
        {E.SCHEDULE_EXCHANGE, E.CABLE_CHECK, E.POWER_DELIVERY, E.SESSION_STOP}
    ),
    E.CABLE_CHECK: frozenset({E.CABLE_CHECK, E.PRE_CHARGE}),
    E.PRE_CHARGE: frozenset({E.PRE_CHARGE, E.POWER_DELIVERY}),
    # (another PowerDelivery: a notification in the PowerDeliveryRes is obeyed at once)
    E.POWER_DELIVERY: frozenset(
        {E.POWER_DELIVERY, E.CHARGE_LOOP, E.WELDING_DETECTION, E.SESSION_STOP, E.SCHEDULE_EXCHANGE}
    ),
    E.CHARGE_LOOP: frozenset({E.CHARGE_LOOP, E.POWER_DELIVERY}),
    E.WELDING_DETECTION: frozenset({E.WELDING_DETECTION, E.SESSION_STOP}),
    E.SESSION_STOP: frozenset({E.SERVICE_DISCOVERY, E.CLOSED}),
    E.CLOSED: frozenset(),
}

_FIXED_REQUEST: Mapping[EvccState, Request] = {
    E.SUPPORTED_APP_PROTOCOL: Request.SUPPORTED_APP_PROTOCOL,
    E.SESSION_SETUP: Request.SESSION_SETUP,
    E.AUTHORIZATION_SETUP: Request.AUTHORIZATION_SETUP,
    E.AUTHORIZATION: Request.AUTHORIZATION,
    E.SERVICE_DISCOVERY: Request.SERVICE_DISCOVERY,
    E.SERVICE_DETAIL: Request.SERVICE_DETAIL,
    E.SERVICE_SELECTION: Request.SERVICE_SELECTION,
    E.SCHEDULE_EXCHANGE: Request.SCHEDULE_EXCHANGE,
    E.CABLE_CHECK: Request.DC_CABLE_CHECK,
    E.PRE_CHARGE: Request.DC_PRE_CHARGE,
    E.POWER_DELIVERY: Request.POWER_DELIVERY,
    E.WELDING_DETECTION: Request.DC_WELDING_DETECTION,
    E.SESSION_STOP: Request.SESSION_STOP,
}

# Timer names
T_SETUP = "evcc.communication_setup"
T_RESPONSE = "evcc.response"
T_NEXT = "evcc.next_request"
T_ONGOING = "evcc.ongoing"
T_CABLE_CHECK = "evcc.cable_check_limit"
T_PRE_CHARGE = "evcc.pre_charge_limit"


class ResumePath(StrEnum):
    """Where a resumed session (OK_OldSessionJoined) goes on: the standard text was not at hand;
    EVerest's SECC expects ChargeParameterDiscovery, Josev's SECC AuthorizationSetup (?)."""

    CHARGE_PARAMETER_DISCOVERY = "charge_parameter_discovery"
    AUTHORIZATION_SETUP = "authorization_setup"


@dataclass(frozen=True, slots=True)
class AppProtocolOffer:
    """One supportedAppProtocolReq entry (priority is its position, 1 first)."""

    namespace: str
    major: int = V20_MAJOR_VERSION
    minor: int = V20_MINOR_VERSION


@dataclass(frozen=True, slots=True)
class EvccConfig:
    """Settings of one EVCC (per vehicle, or per firmware profile of an emulated one)."""

    evcc_id: str = "WMIV2HRIG0000001"
    #: Energy services the EV wants, most preferred first (offered in supportedAppProtocol too).
    services: tuple[Service, ...] = (Service.DC_BPT,)
    control_mode: ControlMode = ControlMode.DYNAMIC
    authorization: AuthMethod = AuthMethod.EIM
    #: How this peer's discharge limits look on the wire (both are accepted; a mismatch is an Event).
    sign: DischargeSign = DischargeSign.MAGNITUDE
    #: DC: check the contactors for welding after PowerDelivery(Stop) (Josev does).
    welding_detection: bool = True
    resume_path: ResumePath = ResumePath.CHARGE_PARAMETER_DISCOVERY
    #: The supportedAppProtocolReq entries; None derives them from `services`.
    app_protocols: tuple[AppProtocolOffer, ...] | None = None
    #: PnC only: the contract certificate chain (leaf first) sent in AuthorizationReq.
    contract_certificates: tuple[bytes, ...] = ()
    timing: EvccTiming = field(default_factory=EvccTiming)
    quirks: Quirks = NO_QUIRKS
    timestamp_origin: float = 0.0
    max_payload: int = DEFAULT_MAX_PAYLOAD

    def offers(self) -> tuple[AppProtocolOffer, ...]:
        if self.app_protocols is not None:
            return self.app_protocols
        seen: list[str] = []
        for service in self.services:
            ns = namespace_of(service)
            if ns not in seen:
                seen.append(ns)
        return tuple(AppProtocolOffer(ns) for ns in seen)


class _Abort(Exception):
    """A response the EVCC cannot go on from."""


_Handler = Callable[[Any, float], None]


class Evcc:
    """One EVCC connection (an rig.v2g.engine.Engine)."""

    def __init__(
        self,
        controller: EvController,
        config: EvccConfig | None = None,
        *,
        resume: PausedSession | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or EvccConfig()
        for s in self.config.services:
            if s not in SESSION_SERVICES:
                raise ValueError(
                    f"EvccConfig.services: the rig runs sessions of {SESSION_SERVICES}, not {s}"
                )
        self.resume = resume
        self.state = E.IDLE
        self.phase = SessionPhase.IDLE
        self.session_id = resume.session_id if resume else bytes(8)
        self.evse_id: str | None = None
        self.namespace: str | None = None
        self.service: Service | None = resume.service if resume else None
        self.parameter_set: ParameterSet | None = resume.parameter_set if resume else None
        self.evse_limits: DcLimits | AcLimits | None = None
        self.offer: ScheduleOffer | None = None
        self.paused_session: PausedSession | None = None
        self.closure: Closure | None = None
        self.loops = 0  # ChargeLoop exchanges in this connection
        self._wire = Wire(self.config.max_payload)
        self._started = False
        self._finished = False
        self._ended = False
        self._awaiting = False
        self._outs: list[Output] = []
        self._offered_services: list[Service] = []
        self._detailed: set[Service] = set()
        self._renegotiation_supported = False
        self._gen_challenge: bytes | None = None
        self._progress = ChargeProgress.START
        self._stop_kind = SessionEnd.TERMINATE
        self._precharged = False  # DC output matched once in this session (no second check)
        self._finished_sent = False  # the last DC_PreCharge/WeldingDetection said Finished
        self._standby = False
        self._profile: Any = None  # the EVPowerProfile sent with the last PowerDelivery(Start)
        self._ongoing_for: EvccState | None = None
        self._sign_mismatches: set[str] = set()
        self._handlers: dict[EvccState, _Handler] = {
            E.SUPPORTED_APP_PROTOCOL: self._on_supported_app_protocol,
            E.SESSION_SETUP: self._on_session_setup,
            E.AUTHORIZATION_SETUP: self._on_authorization_setup,
            E.AUTHORIZATION: self._on_authorization,
            E.SERVICE_DISCOVERY: self._on_service_discovery,
            E.SERVICE_DETAIL: self._on_service_detail,
            E.SERVICE_SELECTION: self._on_service_selection,
            E.CHARGE_PARAMETER_DISCOVERY: self._on_charge_parameter_discovery,
            E.SCHEDULE_EXCHANGE: self._on_schedule_exchange,
            E.CABLE_CHECK: self._on_cable_check,
            E.PRE_CHARGE: self._on_pre_charge,
            E.POWER_DELIVERY: self._on_power_delivery,
            E.CHARGE_LOOP: self._on_charge_loop,
            E.WELDING_DETECTION: self._on_welding_detection,
            E.SESSION_STOP: self._on_session_stop,
        }
        self._builders: dict[EvccState, Callable[[float], Any]] = {
            E.SUPPORTED_APP_PROTOCOL: self._supported_app_protocol_req,
            E.SESSION_SETUP: self._session_setup_req,
            E.AUTHORIZATION_SETUP: self._authorization_setup_req,
            E.AUTHORIZATION: self._authorization_req,
            E.SERVICE_DISCOVERY: self._service_discovery_req,
            E.SERVICE_DETAIL: self._service_detail_req,
            E.SERVICE_SELECTION: self._service_selection_req,
            E.CHARGE_PARAMETER_DISCOVERY: self._charge_parameter_discovery_req,
            E.SCHEDULE_EXCHANGE: self._schedule_exchange_req,
            E.CABLE_CHECK: self._cable_check_req,
            E.PRE_CHARGE: self._pre_charge_req,
            E.POWER_DELIVERY: self._power_delivery_req,
            E.CHARGE_LOOP: self._charge_loop_req,
            E.WELDING_DETECTION: self._welding_detection_req,
            E.SESSION_STOP: self._session_stop_req,
        }
        self._detail_service: Service | None = None

    # --- the Engine protocol ------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def control_mode(self) -> ControlMode | None:
        return None if self.parameter_set is None else self.parameter_set.control_mode

    @property
    def standby(self) -> bool:
        return self._standby

    def start(self, now: float) -> list[Output]:
        if self._started:
            raise EngineUsageError("Evcc.start() called twice")
        self._started = True
        self._outs = []
        self._set_phase(SessionPhase.SETUP)
        self._outs.append(StartTimer(T_SETUP, now + self.config.timing.communication_setup))
        self._go(E.SUPPORTED_APP_PROTOCOL, now)
        return self._flush()

    def receive_data(self, data: bytes, now: float) -> list[Output]:
        self._require_started()
        self._outs = []
        if self._finished:
            return []
        try:
            items = self._wire.receive(data)
        except V2GTPError as e:
            self._outs.append(Event("v2gtp_error", {"error": str(e), "kind": type(e).__name__}))
            self._abort(f"V2GTP error: {type(e).__name__}", now)
            return self._flush()
        for item in items:
            if self._finished:
                break
            if isinstance(item, Undecodable):
                self._outs.append(item.event())
                self._abort("undecodable message", now)
            else:
                self._response(item, now)
        return self._flush()

    def timer_expired(self, name: str, now: float) -> list[Output]:
        self._require_started()
        self._outs = []
        if self._finished:
            return []
        if name == T_NEXT:
            self._send(now)
        elif name in (T_SETUP, T_RESPONSE, T_ONGOING, T_CABLE_CHECK, T_PRE_CHARGE):
            self._outs.append(Event("timeout", {"timer": name, "state": self.state.value}))
            self._abort(f"{name} expired in state {self.state.value}", now)
        return self._flush()

    def connection_lost(self, reason: str, now: float) -> list[Output]:
        self._require_started()
        self._outs = []
        if self._finished:
            return []
        try:
            self._wire.reader.end()
        except V2GTPError as e:
            self._outs.append(Event("truncated_frame", {"error": str(e)}))
        self._outs.append(Event("connection_lost", {"reason": reason, "state": self.state.value}))
        self._end(Closure.ABORTED, f"connection lost in state {self.state.value}: {reason}", now)
        self._finish()
        return self._flush()

    # --- requests out -------------------------------------------------------------------------

    def _go(self, state: EvccState, now: float, delay: float = 0.0) -> None:
        """Move to `state` and send its request now, or after `delay` (pacing)."""
        if state not in TRANSITIONS[self.state]:
            raise AssertionError(f"{self.state} -> {state} not in TRANSITIONS")
        self.state = state
        if delay > 0:
            self._outs.append(StartTimer(T_NEXT, now + delay))
        else:
            self._send(now)

    def _send(self, now: float) -> None:
        try:
            message = self._builders[self.state](now)
            send = self._wire.send(message)
        except Exception as e:  # a controller error, or a value the schema refuses
            self._outs.append(
                Event("controller_error", {"state": self.state.value, "error": repr(e)})
            )
            self._abort(f"cannot build the {self.state.value} request: {e!r}", now)
            return
        self._outs.append(send)
        self._awaiting = True
        timeout = self.config.timing.response_timeout(self._request())
        self._outs.append(StartTimer(T_RESPONSE, now + timeout))

    def _request(self) -> Request:
        fixed = _FIXED_REQUEST.get(self.state)
        if fixed is not None:
            return fixed
        dc_service = self.service is not None and self.service.is_dc
        if self.state is E.CHARGE_PARAMETER_DISCOVERY:
            return (
                Request.DC_CHARGE_PARAMETER_DISCOVERY
                if dc_service
                else Request.AC_CHARGE_PARAMETER_DISCOVERY
            )
        if self.state is E.CHARGE_LOOP:
            return Request.DC_CHARGE_LOOP if dc_service else Request.AC_CHARGE_LOOP
        raise AssertionError(f"no request in state {self.state}")

    # --- responses in -------------------------------------------------------------------------

    def _response(self, item: Inbound, now: float) -> None:
        self._outs.append(Received(item.frame, int(item.payload_type), item.name, item.message))
        expected = self._request().response if self._awaiting else None
        if item.name != expected:
            self._outs.append(
                Event(
                    "unexpected_message",
                    {"received": item.name, "expected": expected, "state": self.state.value},
                )
            )
            self._abort(f"unexpected {item.name} in state {self.state.value}", now)
            return
        self._awaiting = False
        self._outs.append(CancelTimer(T_RESPONSE))
        message = item.message
        if (
            self.state not in (E.SUPPORTED_APP_PROTOCOL, E.SESSION_SETUP)
            and message.Header.SessionID != self.session_id
        ):
            self._outs.append(
                Event(
                    "unexpected_message",
                    {"received": item.name, "session_id": message.Header.SessionID.hex()},
                )
            )
            self._abort("response with a foreign SessionID", now)
            return
        code = getattr(message, "ResponseCode", None)
        if code is not None and not is_ok(code):
            self._outs.append(
                Event("response_code", {"message": item.name, "code": code_name(code)})
            )
            if is_failed(code):
                self._abort(f"{item.name} {code_name(code)}", now)
                return
        try:
            self._handlers[self.state](message, now)
        except _Abort as e:
            self._abort(str(e), now)
        except Exception as e:  # a value out of range in the response, or a controller error
            self._outs.append(Event("response_error", {"message": item.name, "error": repr(e)}))
            self._abort(f"cannot go on from {item.name}: {e!r}", now)

    # --- bookkeeping --------------------------------------------------------------------------

    def _flush(self) -> list[Output]:
        outs, self._outs = self._outs, []
        return outs

    def _require_started(self) -> None:
        if not self._started:
            raise EngineUsageError("Evcc: call start() first")

    def _header(self, now: float) -> Any:
        return header(self.session_id, int(self.config.timestamp_origin + now))

    def _set_phase(self, phase: SessionPhase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._outs.append(phase_event(phase))

    def _abort(self, reason: str, now: float) -> None:
        self._end(Closure.ABORTED, reason, now)
        self._outs.append(Close(reason))
        self._finish()

    def _end(self, closure: Closure, reason: str, now: float) -> None:
        if self._ended:
            return
        self._ended = True
        self.closure = closure
        self._outs.append(Event("session_end", {"closure": closure.value, "reason": reason}))
        try:
            self.controller.session_ended(closure, reason, now)
        except Exception as e:
            self._outs.append(
                Event("controller_error", {"call": "session_ended", "error": repr(e)})
            )

    def _finish(self) -> None:
        for timer in (T_SETUP, T_RESPONSE, T_NEXT, T_ONGOING, T_CABLE_CHECK, T_PRE_CHARGE):
            self._outs.append(CancelTimer(timer))
        self.state = E.CLOSED
        self._awaiting = False
        self._set_phase(
            SessionPhase.PAUSED if self.closure is Closure.PAUSED else SessionPhase.STOPPED
        )
        self._finished = True

    def _ongoing(self, now: float) -> None:
        if self._ongoing_for is not self.state:
            self._ongoing_for = self.state
            self._outs.append(StartTimer(T_ONGOING, now + self.config.timing.ongoing))

    def _ongoing_done(self) -> None:
        if self._ongoing_for is not None:
            self._ongoing_for = None
            self._outs.append(CancelTimer(T_ONGOING))

    def _discharge_in(self, r: Any, where: str) -> float:
        value, expected = discharge_from_wire(r, self.config.sign)
        if not expected and where not in self._sign_mismatches:
            self._sign_mismatches.add(where)  # once per field and session: the loop repeats it
            self._outs.append(
                Event(
                    "discharge_sign_mismatch",
                    {"field": where, "value": from_rational(r), "expected": self.config.sign.value},
                )
            )
        return value

    def _optional_discharge_in(self, r: Any, where: str) -> float | None:
        return None if r is None else self._discharge_in(r, where)

    def _discharge_out(self, value: float | None) -> Any:
        return None if value is None else discharge_to_wire(value, self.config.sign)

    def _stop(self, kind: SessionEnd, now: float) -> None:
        """End the energy transfer: PowerDelivery(Stop), then welding detection, SessionStop."""
        self._stop_kind = kind
        self._progress = ChargeProgress.STOP
        self._set_phase(SessionPhase.STOPPING)
        self._go(E.POWER_DELIVERY, now)

    def _session_stop(self, kind: SessionEnd, now: float) -> None:
        self._stop_kind = kind
        self._set_phase(SessionPhase.STOPPING)
        self._go(E.SESSION_STOP, now)

    # --- request builders -----------------------------------------------------------------------

    def _supported_app_protocol_req(self, now: float) -> Any:
        entries = [
            app.AppProtocolType(
                ProtocolNamespace=o.namespace,
                VersionNumberMajor=o.major,
                VersionNumberMinor=o.minor,
                SchemaID=i,
                Priority=i,
            )
            for i, o in enumerate(self.config.offers(), start=1)
        ]
        return app.supportedAppProtocolReq(AppProtocol=entries)

    def _session_setup_req(self, now: float) -> Any:
        return common.SessionSetupReq(Header=self._header(now), EVCCID=self.config.evcc_id)

    def _authorization_setup_req(self, now: float) -> Any:
        return common.AuthorizationSetupReq(Header=self._header(now))

    def _authorization_req(self, now: float) -> Any:
        if self.config.authorization is AuthMethod.PNC:
            # Shaped only: the rig signs nothing, so a real SECC answers FAILED_SignatureError.
            certs = self.config.contract_certificates
            if not certs or self._gen_challenge is None:
                raise ValueError("PnC needs contract certificates and the SECC's GenChallenge")
            mode = common.PnC_AReqAuthorizationModeType(
                Id="id1",
                GenChallenge=self._gen_challenge,
                ContractCertificateChain=common.ContractCertificateChainType(
                    Certificate=certs[0],
                    SubCertificates=common.SubCertificatesType(
                        Certificate=list(certs[1:]) or [certs[0]]
                    ),
                ),
            )
            return common.AuthorizationReq(
                Header=self._header(now),
                SelectedAuthorizationService=common.authorizationType.PnC,
                PnC_AReqAuthorizationMode=mode,
            )
        return common.AuthorizationReq(
            Header=self._header(now),
            SelectedAuthorizationService=common.authorizationType.EIM,
            EIM_AReqAuthorizationMode=common.EIM_AReqAuthorizationModeType(),
        )

    def _service_discovery_req(self, now: float) -> Any:
        return common.ServiceDiscoveryReq(Header=self._header(now))

    def _service_detail_req(self, now: float) -> Any:
        assert self._detail_service is not None
        return common.ServiceDetailReq(Header=self._header(now), ServiceID=self._detail_service.id)

    def _service_selection_req(self, now: float) -> Any:
        assert self.service is not None and self.parameter_set is not None
        return common.ServiceSelectionReq(
            Header=self._header(now),
            SelectedEnergyTransferService=common.SelectedServiceType(
                ServiceID=self.service.id, ParameterSetID=self.parameter_set.id
            ),
        )

    def _charge_parameter_discovery_req(self, now: float) -> Any:
        assert self.service is not None
        limits = self.controller.charge_parameters(self.service, now)
        bpt = self.service.bidirectional
        r = to_rational
        if self.service.is_dc:
            if not isinstance(limits, DcLimits) or (bpt and not limits.bidirectional):
                raise TypeError(f"EvController gave {limits!r} for {self.service}")
            fields = {
                "EVMaximumChargePower": r(limits.max_charge_power),
                "EVMinimumChargePower": r(limits.min_charge_power),
                "EVMaximumChargeCurrent": r(limits.max_charge_current),
                "EVMinimumChargeCurrent": r(limits.min_charge_current),
                "EVMaximumVoltage": r(limits.max_voltage),
                "EVMinimumVoltage": r(limits.min_voltage),
                "TargetSOC": None if limits.target_soc is None else round(limits.target_soc),
            }
            if bpt:
                mode: Any = dc.BPT_DC_CPDReqEnergyTransferMode(
                    **fields,
                    EVMaximumDischargePower=self._discharge_out(limits.max_discharge_power),
                    EVMinimumDischargePower=self._discharge_out(limits.min_discharge_power),
                    EVMaximumDischargeCurrent=self._discharge_out(limits.max_discharge_current),
                    EVMinimumDischargeCurrent=self._discharge_out(limits.min_discharge_current),
                )
            else:
                mode = dc.DC_CPDReqEnergyTransferMode(**fields)
            return dc.DC_ChargeParameterDiscoveryReq(
                Header=self._header(now), DC_CPDReqEnergyTransferMode=mode
            )
        if not isinstance(limits, AcLimits) or (bpt and not limits.bidirectional):
            raise TypeError(f"EvController gave {limits!r} for {self.service}")
        fields = {
            "EVMaximumChargePower": r(limits.max_charge_power),
            "EVMinimumChargePower": r(limits.min_charge_power),
        }
        if bpt:
            ac_mode: Any = ac.BPT_AC_CPDReqEnergyTransferMode(
                **fields,
                EVMaximumDischargePower=self._discharge_out(limits.max_discharge_power),
                EVMinimumDischargePower=self._discharge_out(limits.min_discharge_power),
            )
        else:
            ac_mode = ac.AC_CPDReqEnergyTransferMode(**fields)
        return ac.AC_ChargeParameterDiscoveryReq(
            Header=self._header(now), AC_CPDReqEnergyTransferMode=ac_mode
        )

    def _schedule_exchange_req(self, now: float) -> Any:
        mode = self.control_mode
        assert mode is not None
        need = self.controller.schedule_request(mode, now)
        energy = need.energy
        if mode is ControlMode.DYNAMIC:
            if energy is None or need.departure_time is None:
                raise ValueError("Dynamic mode needs the EV's departure time and energy request")
            dynamic = common.Dynamic_SEReqControlModeType(
                DepartureTime=int(need.departure_time),
                MinimumSOC=None if need.minimum_soc is None else round(need.minimum_soc),
                TargetSOC=None if need.target_soc is None else round(need.target_soc),
                EVTargetEnergyRequest=to_rational(energy.target),
                EVMaximumEnergyRequest=to_rational(energy.maximum),
                EVMinimumEnergyRequest=to_rational(energy.minimum),
                EVMaximumV2XEnergyRequest=optional_rational(energy.maximum_v2x),
                # the EV's reserve travels here (OCPP 2.1's reading, FACTS.md)
                EVMinimumV2XEnergyRequest=optional_rational(energy.minimum_v2x),
            )
            return common.ScheduleExchangeReq(
                Header=self._header(now),
                MaximumSupportingPoints=need.max_supporting_points,
                Dynamic_SEReqControlMode=dynamic,
            )
        scheduled = common.Scheduled_SEReqControlModeType(
            DepartureTime=None if need.departure_time is None else int(need.departure_time),
            EVTargetEnergyRequest=None if energy is None else to_rational(energy.target),
            EVMaximumEnergyRequest=None if energy is None else to_rational(energy.maximum),
            EVMinimumEnergyRequest=None if energy is None else to_rational(energy.minimum),
        )
        return common.ScheduleExchangeReq(
            Header=self._header(now),
            MaximumSupportingPoints=need.max_supporting_points,
            Scheduled_SEReqControlMode=scheduled,
        )

    def _cable_check_req(self, now: float) -> Any:
        return dc.DC_CableCheckReq(Header=self._header(now))

    def _pre_charge_req(self, now: float) -> Any:
        voltage = self.controller.present_voltage(now)
        processing = (
            common.processingType.Finished if self._finished_sent else common.processingType.Ongoing
        )
        return dc.DC_PreChargeReq(
            Header=self._header(now),
            EVProcessing=processing,
            EVPresentVoltage=to_rational(voltage),
            EVTargetVoltage=to_rational(voltage),
        )

    def _power_delivery_req(self, now: float) -> Any:
        assert self.service is not None
        profile = None
        channel = None
        if self._progress is ChargeProgress.START:
            chosen = self.controller.choose_power_profile(
                self.offer or ScheduleOffer(), self.control_mode or ControlMode.DYNAMIC, now
            )
            profile = self._profile = self._wire_profile(chosen, now)
            if self.service.bidirectional:
                channel = common.channelSelectionType((chosen.channel or Channel.CHARGE).value)
        elif self._progress is not ChargeProgress.STOP:
            # Standby and ScheduleRenegotiation repeat the plan sent with Start: the schema makes
            # the profile optional, Josev's models want one whenever EVProcessing is Finished (?)
            profile = self._profile
        return common.PowerDeliveryReq(
            Header=self._header(now),
            EVProcessing=common.processingType.Finished,
            ChargeProgress=common.chargeProgressType(self._progress.value),
            EVPowerProfile=profile,
            BPT_ChannelSelection=channel,
        )

    def _wire_profile(self, chosen: PowerProfile, now: float) -> Any:
        anchor = (
            int(self.config.timestamp_origin + now)
            if chosen.time_anchor is None
            else int(chosen.time_anchor)
        )
        entries = [
            common.PowerScheduleEntryType(Duration=int(e.duration), Power=to_rational(e.power))
            for e in chosen.entries
        ]
        if self.control_mode is ControlMode.SCHEDULED:
            if chosen.schedule_tuple_id is None or not entries:
                raise ValueError("Scheduled mode: the power profile needs a tuple and entries")
            return common.EVPowerProfileType(
                TimeAnchor=anchor,
                Scheduled_EVPPTControlMode=common.Scheduled_EVPPTControlModeType(
                    SelectedScheduleTupleID=chosen.schedule_tuple_id,
                    # optional in the schema, required by Josev's models; the rig's EV takes
                    # whatever tolerance the tuple has (?)
                    PowerToleranceAcceptance=common.powerToleranceAcceptanceType.PowerToleranceConfirmed,
                ),
                EVPowerProfileEntries=common.EVPowerProfileEntryListType(
                    EVPowerProfileEntry=entries
                ),
            )
        if not entries:
            # Dynamic mode: the schema makes the profile optional, but Josev's SECC refuses a
            # Finished PowerDeliveryReq without one, so EvControllers should give an entry
            return None
        return common.EVPowerProfileType(
            TimeAnchor=anchor,
            Dynamic_EVPPTControlMode=common.Dynamic_EVPPTControlModeType(),
            EVPowerProfileEntries=common.EVPowerProfileEntryListType(EVPowerProfileEntry=entries),
        )

    def _charge_loop_req(self, now: float) -> Any:
        assert self.service is not None
        mode = self.control_mode
        bpt = self.service.bidirectional
        dynamic = mode is ControlMode.DYNAMIC
        r, ro = to_rational, optional_rational
        if self.service.is_dc:
            req = self.controller.dc_loop_request(mode or ControlMode.DYNAMIC, bpt, now)
            if dynamic:
                lim, energy = req.limits, req.energy
                if lim is None or energy is None or lim.min_voltage is None:
                    raise ValueError(
                        "a Dynamic DC loop needs the EV's limits (with min_voltage) and energy"
                    )
                fields = {
                    "DepartureTime": None
                    if req.departure_time is None
                    else int(req.departure_time),
                    "EVTargetEnergyRequest": r(energy.target),
                    "EVMaximumEnergyRequest": r(energy.maximum),
                    "EVMinimumEnergyRequest": r(energy.minimum),
                    "EVMaximumChargePower": r(lim.max_charge_power),
                    "EVMinimumChargePower": r(lim.min_charge_power),
                    "EVMaximumChargeCurrent": r(lim.max_charge_current),
                    "EVMaximumVoltage": r(lim.max_voltage),
                    "EVMinimumVoltage": r(lim.min_voltage),
                }
                if bpt:
                    cl: Any = dc.BPT_Dynamic_DC_CLReqControlMode(
                        **fields,
                        EVMaximumDischargePower=self._discharge_out(lim.max_discharge_power),
                        EVMinimumDischargePower=self._discharge_out(lim.min_discharge_power),
                        EVMaximumDischargeCurrent=self._discharge_out(lim.max_discharge_current),
                        EVMaximumV2XEnergyRequest=ro(energy.maximum_v2x),
                        EVMinimumV2XEnergyRequest=ro(energy.minimum_v2x),
                    )
                else:
                    cl = dc.Dynamic_DC_CLReqControlMode(**fields)
            else:
                if req.target_current is None or req.target_voltage is None:
                    raise ValueError(
                        "a Scheduled DC loop needs the EV's target current and voltage"
                    )
                lim, energy = req.limits, req.energy
                fields = {
                    "EVTargetEnergyRequest": None if energy is None else r(energy.target),
                    "EVMaximumEnergyRequest": None if energy is None else r(energy.maximum),
                    "EVMinimumEnergyRequest": None if energy is None else r(energy.minimum),
                    "EVTargetCurrent": r(req.target_current),
                    "EVTargetVoltage": r(req.target_voltage),
                }
                if lim is not None:
                    fields.update(
                        EVMaximumChargePower=r(lim.max_charge_power),
                        EVMinimumChargePower=r(lim.min_charge_power),
                        EVMaximumChargeCurrent=r(lim.max_charge_current),
                        EVMaximumVoltage=r(lim.max_voltage),
                        EVMinimumVoltage=ro(lim.min_voltage),
                    )
                if bpt:
                    if lim is not None:
                        fields.update(
                            EVMaximumDischargePower=self._discharge_out(lim.max_discharge_power),
                            EVMinimumDischargePower=self._discharge_out(lim.min_discharge_power),
                            EVMaximumDischargeCurrent=self._discharge_out(
                                lim.max_discharge_current
                            ),
                        )
                    cl = dc.BPT_Scheduled_DC_CLReqControlMode(**fields)
                else:
                    cl = dc.Scheduled_DC_CLReqControlMode(**fields)
            return dc.DC_ChargeLoopReq(
                Header=self._header(now),
                DisplayParameters=_display_out(req.display),
                MeterInfoRequested=req.meter_info_requested,
                EVPresentVoltage=r(req.present_voltage),
                CLReqControlMode=cl,
            )
        areq = self.controller.ac_loop_request(mode or ControlMode.DYNAMIC, bpt, now)
        energy = areq.energy
        fields = {
            "EVTargetEnergyRequest": None if energy is None else r(energy.target),
            "EVMaximumEnergyRequest": None if energy is None else r(energy.maximum),
            "EVMinimumEnergyRequest": None if energy is None else r(energy.minimum),
            "EVMaximumChargePower": ro(areq.max_charge_power),
            "EVMinimumChargePower": ro(areq.min_charge_power),
            "EVPresentActivePower": r(areq.present_active_power),
            "EVPresentReactivePower": ro(areq.present_reactive_power),
        }
        if dynamic:
            if energy is None or None in (
                areq.max_charge_power,
                areq.min_charge_power,
                areq.present_reactive_power,
            ):
                raise ValueError("a Dynamic AC loop needs energy, charge limits and reactive power")
            fields["DepartureTime"] = (
                None if areq.departure_time is None else int(areq.departure_time)
            )
        if bpt:
            fields.update(
                EVMaximumDischargePower=self._discharge_out(areq.max_discharge_power),
                EVMinimumDischargePower=self._discharge_out(areq.min_discharge_power),
            )
            if dynamic:
                if areq.max_discharge_power is None or areq.min_discharge_power is None:
                    raise ValueError("a Dynamic AC_BPT loop needs the EV's discharge limits")
                fields.update(
                    EVMaximumV2XEnergyRequest=ro(None if energy is None else energy.maximum_v2x),
                    EVMinimumV2XEnergyRequest=ro(None if energy is None else energy.minimum_v2x),
                )
        cls = {
            (False, False): ac.Scheduled_AC_CLReqControlMode,
            (False, True): ac.Dynamic_AC_CLReqControlMode,
            (True, False): ac.BPT_Scheduled_AC_CLReqControlMode,
            (True, True): ac.BPT_Dynamic_AC_CLReqControlMode,
        }[(bpt, dynamic)]
        return ac.AC_ChargeLoopReq(
            Header=self._header(now),
            DisplayParameters=_display_out(areq.display),
            MeterInfoRequested=areq.meter_info_requested,
            CLReqControlMode=cls(**fields),
        )

    def _welding_detection_req(self, now: float) -> Any:
        processing = (
            common.processingType.Finished if self._finished_sent else common.processingType.Ongoing
        )
        return dc.DC_WeldingDetectionReq(Header=self._header(now), EVProcessing=processing)

    def _session_stop_req(self, now: float) -> Any:
        return common.SessionStopReq(
            Header=self._header(now),
            ChargingSession=common.chargingSessionType(self._stop_kind.value),
        )

    # --- response handlers ----------------------------------------------------------------------

    def _on_supported_app_protocol(self, res: Any, now: float) -> None:
        offers = self.config.offers()
        schema = res.SchemaID
        if schema is None or not 1 <= schema <= len(offers):
            raise _Abort(f"supportedAppProtocolRes names SchemaID {schema}, not one we offered")
        self.namespace = offers[schema - 1].namespace
        self._go(E.SESSION_SETUP, now)

    def _on_session_setup(self, res: Any, now: float) -> None:
        self._outs.append(CancelTimer(T_SETUP))
        self.session_id = res.Header.SessionID
        self.evse_id = res.EVSEID
        joined = res.ResponseCode is ResponseCode.OK_OldSessionJoined
        self._outs.append(
            Event(
                "session_established",
                {
                    "session_id": self.session_id.hex().upper(),
                    "evse_id": self.evse_id,
                    "resumed": joined,
                },
            )
        )
        if self.resume is not None and joined and self.session_id == self.resume.session_id:
            if self.config.resume_path is ResumePath.CHARGE_PARAMETER_DISCOVERY:
                self._go(E.CHARGE_PARAMETER_DISCOVERY, now)
                return
        elif self.resume is not None:
            self._outs.append(Event("resume_refused", {"code": code_name(res.ResponseCode)}))
            self.service = self.parameter_set = None
        self._go(E.AUTHORIZATION_SETUP, now)

    def _on_authorization_setup(self, res: Any, now: float) -> None:
        offered = {a.value for a in res.AuthorizationServices}
        if self.config.authorization.value not in offered:
            self._outs.append(Event("authorization_unavailable", {"offered": sorted(offered)}))
            self._session_stop(SessionEnd.TERMINATE, now)
            return
        if res.PnC_ASResAuthorizationMode is not None:
            self._gen_challenge = res.PnC_ASResAuthorizationMode.GenChallenge
        self._go(E.AUTHORIZATION, now)

    def _on_authorization(self, res: Any, now: float) -> None:
        if res.EVSEProcessing is not common.processingType.Finished:
            self._ongoing(now)
            self._go(E.AUTHORIZATION, now, self.config.timing.ongoing_interval)
            return
        self._ongoing_done()
        if res.ResponseCode is not ResponseCode.OK:  # a WARNING: not authorized
            self._session_stop(SessionEnd.TERMINATE, now)
            return
        self._go(E.SERVICE_DISCOVERY, now)

    def _on_service_discovery(self, res: Any, now: float) -> None:
        self._renegotiation_supported = bool(res.ServiceRenegotiationSupported)
        offered = []
        for s in res.EnergyTransferServiceList.Service:
            try:
                offered.append(Service.from_id(s.ServiceID))
            except ValueError:
                continue  # a service the rig does not know of
        self._offered_services = offered
        self._detailed = set()
        self.service = self.parameter_set = None
        self._detail_next(now)

    def _detail_next(self, now: float) -> None:
        for wanted in self.config.services:
            if (
                wanted in self._offered_services
                and wanted not in self._detailed
                and (self.namespace is None or namespace_of(wanted) == self.namespace)
            ):
                self._detail_service = wanted
                self._detailed.add(wanted)
                self._go(E.SERVICE_DETAIL, now)
                return
        self._outs.append(
            Event(
                "no_matching_service",
                {
                    "offered": [s.value for s in self._offered_services],
                    "wanted": [s.value for s in self.config.services],
                },
            )
        )
        self._session_stop(SessionEnd.TERMINATE, now)

    def _on_service_detail(self, res: Any, now: float) -> None:
        service = self._detail_service
        assert service is not None
        if res.ServiceID != service.id:
            raise _Abort(f"ServiceDetailRes for ServiceID {res.ServiceID}, asked {service.id}")
        chosen = None
        for wire in res.ServiceParameterList.ParameterSet:
            try:
                ps = parameter_set_from_wire(wire)
            except ParameterError as e:
                self._outs.append(
                    Event("response_error", {"message": "ServiceDetailRes", "error": str(e)})
                )
                continue
            if ps.control_mode is self.config.control_mode:
                chosen = ps
                break
        if chosen is None:
            self._detail_next(now)
            return
        self.service, self.parameter_set = service, chosen
        self._outs.append(
            Event(
                "service_selected",
                {
                    "service": service.value,
                    "parameter_set": chosen.id,
                    "control_mode": chosen.control_mode.value,
                },
            )
        )
        self._go(E.SERVICE_SELECTION, now)

    def _on_service_selection(self, res: Any, now: float) -> None:
        self._go(E.CHARGE_PARAMETER_DISCOVERY, now)

    def _on_charge_parameter_discovery(self, res: Any, now: float) -> None:
        assert self.service is not None
        f, fo = from_rational, optional_float
        if self.service.is_dc:
            m = res.DC_CPDResEnergyTransferMode
            bpt = type(m).__name__ == "BPT_DC_CPDResEnergyTransferMode"
            if bpt != self.service.bidirectional:
                raise _Abort(f"{type(m).__name__} does not fit {self.service}")
            limits: DcLimits | AcLimits = dc_limits_from_wire(
                m,
                "EVSE",
                bpt,
                self._discharge_in,
                power_ramp_limit=fo(m.EVSEPowerRampLimitation),
            )
        else:
            m = res.AC_CPDResEnergyTransferMode
            bpt = type(m).__name__ == "BPT_AC_CPDResEnergyTransferMode"
            if bpt != self.service.bidirectional:
                raise _Abort(f"{type(m).__name__} does not fit {self.service}")
            limits = AcLimits(
                max_charge_power=f(m.EVSEMaximumChargePower),
                min_charge_power=f(m.EVSEMinimumChargePower),
                max_discharge_power=self._discharge_in(
                    m.EVSEMaximumDischargePower, "EVSEMaximumDischargePower"
                )
                if bpt
                else None,
                min_discharge_power=self._discharge_in(
                    m.EVSEMinimumDischargePower, "EVSEMinimumDischargePower"
                )
                if bpt
                else None,
                nominal_frequency=f(m.EVSENominalFrequency),
                present_active_power=fo(m.EVSEPresentActivePower),
                power_ramp_limit=fo(m.EVSEPowerRampLimitation),
            )
        self.evse_limits = limits
        self.controller.evse_parameters(limits, now)
        self._go(E.SCHEDULE_EXCHANGE, now)

    def _on_schedule_exchange(self, res: Any, now: float) -> None:
        if res.EVSEProcessing is not common.processingType.Finished:
            self._ongoing(now)
            self._go(E.SCHEDULE_EXCHANGE, now, self.config.timing.ongoing_interval)
            return
        self._ongoing_done()
        self.offer = self._schedule_offer(res)
        if self.offer.go_to_pause:
            self._session_stop(SessionEnd.PAUSE, now)
            return
        assert self.service is not None
        if self.service.is_dc and not self._precharged:
            self._set_phase(SessionPhase.CABLE_CHECK)
            self._outs.append(StartTimer(T_CABLE_CHECK, now + self.config.timing.cable_check_limit))
            self._go(E.CABLE_CHECK, now)
            return
        self._progress = ChargeProgress.START
        self._go(E.POWER_DELIVERY, now)

    def _schedule_offer(self, res: Any) -> ScheduleOffer:
        go_to_pause = bool(res.GoToPause)
        mode = self.control_mode
        if mode is ControlMode.DYNAMIC:
            d = res.Dynamic_SEResControlMode
            if d is None:
                raise _Abort(
                    "Dynamic session, ScheduleExchangeRes without Dynamic_SEResControlMode"
                )
            targets = DynamicTargets(
                departure_time=None if d.DepartureTime is None else float(d.DepartureTime),
                minimum_soc=d.MinimumSOC,
                target_soc=d.TargetSOC,
            )
            return ScheduleOffer(targets=targets, go_to_pause=go_to_pause)
        s = res.Scheduled_SEResControlMode
        if s is None:
            raise _Abort(
                "Scheduled session, ScheduleExchangeRes without Scheduled_SEResControlMode"
            )
        tuples = []
        for t in s.ScheduleTuple:
            charging = tuple(
                ScheduleEntry(float(e.Duration), from_rational(e.Power))
                for e in t.ChargingSchedule.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry
            )
            discharging = None
            if t.DischargingSchedule is not None:
                discharging = tuple(
                    ScheduleEntry(
                        float(e.Duration), self._discharge_in(e.Power, "DischargingSchedule.Power")
                    )
                    for e in t.DischargingSchedule.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry
                )
            tuples.append(
                ScheduleTuple(
                    id=t.ScheduleTupleID,
                    charging=charging,
                    discharging=discharging,
                    time_anchor=float(t.ChargingSchedule.PowerSchedule.TimeAnchor),
                    charging_prices=self._prices(t.ChargingSchedule),
                    discharging_prices=None
                    if t.DischargingSchedule is None
                    else self._prices(t.DischargingSchedule),
                )
            )
        return ScheduleOffer(tuples=tuple(tuples), go_to_pause=go_to_pause)

    def _prices(self, schedule: Any) -> PriceSchedule | None:
        """A schedule's price information; one the EV cannot use is recorded and left out (the
        EV then chooses without prices, as with a schedule that carries none)."""
        try:
            return received_prices(schedule, self.config.timestamp_origin)
        except PriceScheduleError as exc:
            self._outs.append(Event("price_schedule_refused", {"reason": str(exc)}))
            return None

    def _on_cable_check(self, res: Any, now: float) -> None:
        if res.EVSEProcessing is not common.processingType.Finished:
            self._go(E.CABLE_CHECK, now, self.config.timing.ongoing_interval)
            return
        self._outs.append(CancelTimer(T_CABLE_CHECK))
        self._set_phase(SessionPhase.PRECHARGE)
        self._finished_sent = False
        self._outs.append(StartTimer(T_PRE_CHARGE, now + self.config.timing.pre_charge_limit))
        self._go(E.PRE_CHARGE, now)

    def _on_pre_charge(self, res: Any, now: float) -> None:
        if self._finished_sent:
            self._outs.append(CancelTimer(T_PRE_CHARGE))
            self._precharged = True
            self._finished_sent = False
            self._progress = ChargeProgress.START
            self._go(E.POWER_DELIVERY, now)
            return
        if self.controller.precharged(from_rational(res.EVSEPresentVoltage), now):
            self._finished_sent = True  # one more DC_PreChargeReq says Finished (as Josev)
            self._go(E.PRE_CHARGE, now)
            return
        self._go(E.PRE_CHARGE, now, self.config.timing.ongoing_interval)

    def _on_power_delivery(self, res: Any, now: float) -> None:
        progress = self._progress
        if res.ResponseCode is ResponseCode.WARNING_StandbyNotAllowed:
            progress = ChargeProgress.START  # refused: the energy transfer goes on as before
        else:
            self.controller.power_delivery_done(progress, now)
        interval = self.config.timing.charge_loop_interval
        notice = _notice(res.EVSEStatus)
        if progress in (ChargeProgress.START, ChargeProgress.STANDBY):
            self._standby = progress is ChargeProgress.STANDBY
            self._set_phase(SessionPhase.STANDBY if self._standby else SessionPhase.CHARGE_LOOP)
            if notice is not None:  # a notification with the answer: act on it at once
                self._act(self._obey(notice, now), now)
            else:
                self._go(E.CHARGE_LOOP, now, interval if self.loops or self._standby else 0.0)
        elif progress is ChargeProgress.SCHEDULE_RENEGOTIATION:
            self._go(E.SCHEDULE_EXCHANGE, now)
        else:  # Stop
            self._standby = False
            assert self.service is not None
            if self.service.is_dc and self.config.welding_detection:
                self._finished_sent = False
                self._go(E.WELDING_DETECTION, now)
            else:
                self._session_stop(self._stop_kind, now)

    def _on_charge_loop(self, res: Any, now: float) -> None:
        assert self.service is not None
        self.loops += 1
        notice = _notice(res.EVSEStatus)
        meter = None
        if res.MeterInfo is not None:
            mi = res.MeterInfo
            meter_discharged = (
                None
                if mi.BPT_DischargedEnergyReadingWh is None
                else float(mi.BPT_DischargedEnergyReadingWh)
            )
            meter = MeterReading(mi.MeterID, float(mi.ChargedEnergyReadingWh), meter_discharged)
        if self.service.is_dc:
            self.controller.dc_status(self._dc_status(res, meter, notice), now)
        else:
            self.controller.ac_status(self._ac_status(res, meter, notice), now)
        intent = self._obey(notice, now)
        self._act(intent, now)

    def _obey(self, notice: EvseNotice | None, now: float) -> EvIntent:
        """What the EV does next: the EVSE's notification if any (obeyed), else its own wish."""
        if notice is None:
            return self.controller.intent(now)
        n = notice.notification
        follow: EvIntent | None = {
            Notification.PAUSE: EvIntent.PAUSE,
            Notification.TERMINATE: EvIntent.STOP,
            Notification.SERVICE_RENEGOTIATION: EvIntent.RENEGOTIATE_SERVICE,
            Notification.SCHEDULE_RENEGOTIATION: EvIntent.RENEGOTIATE_SCHEDULE,
            Notification.EXIT_STANDBY: EvIntent.CHARGE if self._standby else None,
        }.get(n)
        obeyed = follow is not None
        if n is Notification.PAUSE and self.config.quirks.ignore_pause:
            self._outs.append(Event("quirk", {"quirk": "ignore_pause", "notification": n.value}))
            follow, obeyed = None, False
        self._outs.append(
            Event(
                "notification",
                {"notification": n.value, "max_delay": notice.max_delay, "obeyed": obeyed},
            )
        )
        self.controller.notification(notice, obeyed, now)
        return follow if follow is not None else self.controller.intent(now)

    def _act(self, intent: EvIntent, now: float) -> None:
        interval = self.config.timing.charge_loop_interval
        if intent is EvIntent.CHARGE:
            if self._standby:
                self._progress = ChargeProgress.START
                self._go(E.POWER_DELIVERY, now)
            else:
                self._go(E.CHARGE_LOOP, now, interval)
        elif intent is EvIntent.STANDBY:
            if self._standby:
                self._go(E.CHARGE_LOOP, now, interval)
            else:
                self._progress = ChargeProgress.STANDBY
                self._go(E.POWER_DELIVERY, now)
        elif intent is EvIntent.RENEGOTIATE_SCHEDULE:
            self._progress = ChargeProgress.SCHEDULE_RENEGOTIATION
            self._go(E.POWER_DELIVERY, now)
        elif intent is EvIntent.RENEGOTIATE_SERVICE and self._renegotiation_supported:
            self._stop(SessionEnd.SERVICE_RENEGOTIATION, now)
        elif intent is EvIntent.PAUSE:
            self._stop(SessionEnd.PAUSE, now)
        else:  # STOP, or a renegotiation the EVSE does not support
            self._stop(SessionEnd.TERMINATE, now)

    def _dc_status(self, res: Any, meter: Any, notice: EvseNotice | None) -> DcLoopStatus:
        f = from_rational
        cl = res.CLResControlMode
        name = type(cl).__name__
        limits = None
        targets = None
        if name in ("Dynamic_DC_CLResControlMode", "BPT_Dynamic_DC_CLResControlMode"):
            limits = self._evse_loop_limits(cl, name.startswith("BPT_"))
            targets = _targets(cl)
        elif (  # Scheduled: the EVSE's limits are optional there, all or none
            cl.EVSEMaximumChargePower is not None
            and cl.EVSEMinimumChargePower is not None
            and cl.EVSEMaximumChargeCurrent is not None
            and cl.EVSEMaximumVoltage is not None
        ):
            limits = self._evse_loop_limits(cl, name.startswith("BPT_"))
        return DcLoopStatus(
            present_voltage=f(res.EVSEPresentVoltage),
            present_current=f(res.EVSEPresentCurrent),
            power_limit_achieved=res.EVSEPowerLimitAchieved,
            current_limit_achieved=res.EVSECurrentLimitAchieved,
            voltage_limit_achieved=res.EVSEVoltageLimitAchieved,
            limits=limits,
            targets=targets,
            meter=meter,
            notice=notice,
        )

    def _evse_loop_limits(self, cl: Any, bpt: bool) -> DcLoopLimits:
        """The EVSE's limits in a DC CLResControlMode (required in Dynamic, optional fields
        checked by the caller in Scheduled); the discharge side only in BPT."""
        f, discharge = from_rational, self._optional_discharge_in
        return DcLoopLimits(
            max_charge_power=f(cl.EVSEMaximumChargePower),
            min_charge_power=f(cl.EVSEMinimumChargePower),
            max_charge_current=f(cl.EVSEMaximumChargeCurrent),
            max_voltage=f(cl.EVSEMaximumVoltage),
            min_voltage=optional_float(cl.EVSEMinimumVoltage) if bpt else None,
            max_discharge_power=discharge(cl.EVSEMaximumDischargePower, "EVSEMaximumDischargePower")
            if bpt
            else None,
            min_discharge_power=discharge(cl.EVSEMinimumDischargePower, "EVSEMinimumDischargePower")
            if bpt
            else None,
            max_discharge_current=discharge(
                cl.EVSEMaximumDischargeCurrent, "EVSEMaximumDischargeCurrent"
            )
            if bpt
            else None,
        )

    def _ac_status(self, res: Any, meter: Any, notice: EvseNotice | None) -> AcLoopStatus:
        cl = res.CLResControlMode
        fo = optional_float
        dynamic = "Dynamic" in type(cl).__name__
        return AcLoopStatus(
            target_active_power=fo(cl.EVSETargetActivePower),
            target_reactive_power=fo(cl.EVSETargetReactivePower),
            present_active_power=fo(cl.EVSEPresentActivePower),
            target_frequency=fo(res.EVSETargetFrequency),
            targets=_targets(cl) if dynamic else None,
            meter=meter,
            notice=notice,
        )

    def _on_welding_detection(self, res: Any, now: float) -> None:
        if self._finished_sent:
            self._ongoing_done()
            self._finished_sent = False
            self._session_stop(self._stop_kind, now)
            return
        if self.controller.welding_detection_done(from_rational(res.EVSEPresentVoltage), now):
            self._ongoing_done()
            self._finished_sent = True
            self._go(E.WELDING_DETECTION, now)
            return
        self._ongoing(now)
        self._go(E.WELDING_DETECTION, now, self.config.timing.ongoing_interval)

    def _on_session_stop(self, res: Any, now: float) -> None:
        kind = self._stop_kind
        if kind is SessionEnd.SERVICE_RENEGOTIATION:
            self.service = self.parameter_set = None
            self.offer = None
            self._precharged = False
            self._set_phase(SessionPhase.SETUP)
            self._go(E.SERVICE_DISCOVERY, now)
            return
        if kind is SessionEnd.PAUSE:
            assert self.service is not None and self.parameter_set is not None
            self.paused_session = PausedSession(
                self.session_id,
                self.service,
                self.parameter_set,
                self.config.evcc_id,
                self.evse_id or "",
            )
            self._end(Closure.PAUSED, "SessionStop(Pause)", now)
        else:
            self._end(Closure.TERMINATED, "SessionStop(Terminate)", now)
        self._outs.append(Close(f"SessionStop({kind.value}) answered"))
        self._finish()


def _notice(status: Any) -> EvseNotice | None:
    if status is None:
        return None
    return EvseNotice(
        Notification(status.EVSENotification.value), float(status.NotificationMaxDelay)
    )


def _targets(cl: Any) -> DynamicTargets | None:
    if cl.DepartureTime is None and cl.MinimumSOC is None and cl.TargetSOC is None:
        return None
    return DynamicTargets(
        departure_time=None if cl.DepartureTime is None else float(cl.DepartureTime),
        minimum_soc=cl.MinimumSOC,
        target_soc=cl.TargetSOC,
    )


@lru_cache(maxsize=256)
def _display_out(d: Display | None) -> Any:
    # cached: the display values change a few times an hour, the loop runs four times a second
    if d is None:
        return None

    def pct(v: float | None) -> int | None:
        return None if v is None else max(0, min(100, round(v)))

    return common.DisplayParametersType(
        PresentSOC=pct(d.present_soc),
        MinimumSOC=pct(d.minimum_soc),
        TargetSOC=pct(d.target_soc),
        MaximumSOC=pct(d.maximum_soc),
        RemainingTimeToTargetSOC=None
        if d.remaining_time_to_target_soc is None
        else int(d.remaining_time_to_target_soc),
        # optional in the schema, required by Josev's models: False unless the EV says so
        ChargingComplete=bool(d.charging_complete),
        BatteryEnergyCapacity=optional_rational(d.battery_capacity),
    )
