"""The ISO 15118-20 SECC (the charger's side) as a sans-IO state machine, h11 style.

Bytes and time go in (`receive_data`, `timer_expired`, `connection_lost`), outputs come out
(rig.v2g.engine: Send, Received, StartTimer, CancelTimer, Event, Close). No sockets, no clock.
`SeccState` names what the SECC waits for; TRANSITIONS (below) is the whole state machine: for
each state, the requests it accepts and the states each may lead to. A request a state does not
accept is answered with FAILED_SequenceError. Every FAILED response ends the session: the SECC
tells its EvseController to go safe, waits `close_after_stop` for the EV to close the TCP
connection and then closes it [V2G20-1643] (EVerest does the same after FAILED).

Response codes this SECC produces, and when:

- supportedAppProtocolRes: OK_SuccessfulNegotiation (an offered -20 namespace of a service we
  offer, major version 1, minor 0), OK_SuccessfulNegotiationWithMinorDeviation (minor != 0),
  Failed_NoNegotiation (no such namespace, e.g. an EV offering only DIN 70121 or -2; also the
  answer to garbage before the handshake).
- OK_NewSessionEstablished / OK_OldSessionJoined (SessionSetupRes: a SessionID of a paused
  session in the SessionStore resumes it; any other ID gets a new session, as Josev and EVerest).
- FAILED_SequenceError: a request the present state does not accept, or that the session's
  progress forbids (DC_CableCheckReq in an AC session, PowerDelivery(Start) before pre-charge).
- FAILED_UnknownSession: a request after SessionSetup whose header SessionID is not ours.
- FAILED: an undecodable (garbage) message, answered with the response of the request the state
  expects; a ScheduleExchangeReq of the wrong control mode (as EVerest); a ChargeLoopReq whose
  control mode does not match the selected service and mode; an isolation fault; an Ongoing
  loop past its limit (`ongoing`, `authorization_ongoing`); a controller error.
- WARNING_AuthorizationSelectionInvalid (EV selects an authorization we did not offer),
  WARNING_EIMAuthorizationFailure (controller rejects), WARNING_ChallengeInvalid (PnC with a
  GenChallenge not ours), WARNING_GeneralPnCAuthorizationError (PnC: contract verification is not
  implemented here), FAILED_SignatureError (PnC without a header signature).
- FAILED_ServiceIDInvalid: ServiceDetailReq for a service not offered [V2G20-464] (as Josev).
- FAILED_NoEnergyTransferServiceSelected: ServiceSelectionReq of a service not offered;
  FAILED_ServiceSelectionInvalid: a parameter set not offered for it, or any VAS (none offered).
- FAILED_WrongChargeParameter: a ChargeParameterDiscoveryReq whose kind (DC/AC, BPT or not) does
  not match the selected service, inconsistent EV limits (min > max, non-positive voltage), or
  limits the controller refuses.
- FAILED_ScheduleSelectionInvalid: PowerDelivery(Start) choosing a ScheduleTupleID not offered;
  FAILED_EVPowerProfileInvalid: no EVPowerProfile in Scheduled mode, or entries outside the chosen
  tuple's power range.
- FAILED_PowerDeliveryNotApplied / FAILED_ContactorError: as the controller reports.
- WARNING_StandbyNotAllowed: PowerDelivery(Standby) when the config forbids Standby (EVerest).
- FAILED_NoServiceRenegotiationSupported: SessionStop(ServiceRenegotiation) when the controller
  does not support it (EVerest); FAILED_PauseNotAllowed: SessionStop(Pause) before a service was
  selected (nothing to resume).
- FAILED on CertificateInstallationReq is not possible (its response cannot be formed): the SECC
  closes with a reason; MeteringConfirmationReq and VehicleCheckIn/Out get FAILED_SequenceError.

WARNING codes keep the session going (the state stays where the EV can try again); the OK_*
codes of the handshake and SessionSetup are reported through "session_established".

Events: "session_phase" on every SessionPhase change, "response_code" for every WARNING or
FAILED code sent, "no_negotiation", "malformed_message", "v2gtp_error", "truncated_frame",
"sequence_error", "unknown_session", "timeout", "session_established", "service_selected",
"schedule_trimmed", "isolation_warning", "notification_sent", "notification_not_obeyed",
"session_stop", "discharge_sign_mismatch", "controller_error", "quirk", "session_end",
"connection_lost", "late_request".
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rig.v2g.controllers import (
    AcLimits,
    AcLoopRequest,
    AuthMethod,
    AuthorizationStatus,
    Channel,
    ChargeProgress,
    Closure,
    DcLimits,
    DcLoopLimits,
    DcLoopRequest,
    Display,
    EnergyRequest,
    EvseController,
    EvseNotice,
    IsolationStatus,
    MeterReading,
    Notification,
    ParameterSet,
    PowerDeliveryCommand,
    PowerDeliveryOutcome,
    PowerProfile,
    ScheduleEntry,
    ScheduleOffer,
    ScheduleRequest,
    ScheduleTuple,
    ServiceOffer,
    SessionEnd,
)
from rig.v2g.engine import CancelTimer, Close, Event, Output, Received, StartTimer
from rig.v2g.exchange import EngineUsageError, Inbound, Undecodable, Wire, phase_event
from rig.v2g.exi import EXIEncodeError, ac, app, common, dc
from rig.v2g.messages import (
    AC_NAMESPACE,
    DC_NAMESPACE,
    V20_MAJOR_VERSION,
    DischargeSign,
    Request,
    ResponseCode,
    code_name,
    dc_limits_from_wire,
    discharge_from_wire,
    discharge_to_wire,
    failed_response,
    flat_price_levels,
    from_rational,
    header,
    is_failed,
    is_ok,
    optional_float,
    optional_rational,
    parameter_set_to_wire,
    placeholder_schedule_tuple,
    request_of,
    to_rational,
    whole_second_durations,
)
from rig.v2g.prices import price_schedule
from rig.v2g.quirks import NO_QUIRKS, Quirks
from rig.v2g.sessions import PausedSession, SessionStore
from rig.v2g.timing import SeccTiming
from rig.v2g.v2gtp import DEFAULT_MAX_PAYLOAD, PayloadType, V2GTPError
from rig.v2g.vocabulary import SESSION_SERVICES, ControlMode, Service, SessionPhase


class SeccState(StrEnum):
    """What the SECC waits for (the requests each state accepts are in TRANSITIONS)."""

    SUPPORTED_APP_PROTOCOL = "supported_app_protocol"
    SESSION_SETUP = "session_setup"
    RESUMED = "resumed"  # OK_OldSessionJoined: AuthorizationSetup, or ChargeParameterDiscovery
    AUTHORIZATION_SETUP = "authorization_setup"
    AUTHORIZATION = "authorization"  # also while authorization is Ongoing
    SERVICE_DISCOVERY = "service_discovery"
    SERVICE_DETAIL = "service_detail"
    SERVICE_SELECTION = "service_selection"  # or another ServiceDetailReq
    CHARGE_PARAMETER_DISCOVERY = "charge_parameter_discovery"
    SCHEDULE_EXCHANGE = "schedule_exchange"  # also while the schedule is Ongoing
    SCHEDULED = "scheduled"  # schedule agreed: DC_CableCheck (DC) or PowerDelivery
    CABLE_CHECK = "cable_check"  # isolation check Ongoing
    PRE_CHARGE = "pre_charge"  # DC_PreChargeReq until the EV's PowerDelivery(Start)
    CHARGE_LOOP = "charge_loop"  # energy flows: ChargeLoopReq until PowerDelivery
    STANDBY = "standby"  # PowerDelivery(Standby): ChargeLoopReq without energy
    POWER_STOPPED = "power_stopped"  # PowerDelivery(Stop): welding detection or SessionStop
    WELDING_DETECTION = "welding_detection"
    CLOSING = "closing"  # SessionStopRes or a FAILED response sent: the TCP connection ends
    CLOSED = "closed"


S = SeccState
R = Request
_STOP = frozenset({S.CLOSING, S.SERVICE_DISCOVERY})  # Terminate/Pause, or ServiceRenegotiation

#: The state machine: state -> request it accepts -> the states that request may lead to.
#: (A FAILED response always leads to CLOSING; that is not repeated in every row.)
TRANSITIONS: Mapping[SeccState, Mapping[Request, frozenset[SeccState]]] = {
    S.SUPPORTED_APP_PROTOCOL: {R.SUPPORTED_APP_PROTOCOL: frozenset({S.SESSION_SETUP})},
    S.SESSION_SETUP: {R.SESSION_SETUP: frozenset({S.AUTHORIZATION_SETUP, S.RESUMED})},
    S.RESUMED: {
        R.AUTHORIZATION_SETUP: frozenset({S.AUTHORIZATION}),
        R.DC_CHARGE_PARAMETER_DISCOVERY: frozenset({S.SCHEDULE_EXCHANGE}),
        R.AC_CHARGE_PARAMETER_DISCOVERY: frozenset({S.SCHEDULE_EXCHANGE}),
        R.SESSION_STOP: _STOP,
    },
    S.AUTHORIZATION_SETUP: {
        R.AUTHORIZATION_SETUP: frozenset({S.AUTHORIZATION}),
        R.SESSION_STOP: _STOP,
    },
    S.AUTHORIZATION: {
        R.AUTHORIZATION: frozenset({S.AUTHORIZATION, S.SERVICE_DISCOVERY}),
        R.SESSION_STOP: _STOP,
    },
    S.SERVICE_DISCOVERY: {
        R.SERVICE_DISCOVERY: frozenset({S.SERVICE_DETAIL}),
        R.SESSION_STOP: _STOP,
    },
    S.SERVICE_DETAIL: {
        R.SERVICE_DETAIL: frozenset({S.SERVICE_SELECTION}),
        R.SESSION_STOP: _STOP,
    },
    S.SERVICE_SELECTION: {
        R.SERVICE_DETAIL: frozenset({S.SERVICE_SELECTION}),
        R.SERVICE_SELECTION: frozenset({S.CHARGE_PARAMETER_DISCOVERY}),
        R.SESSION_STOP: _STOP,
    },
    S.CHARGE_PARAMETER_DISCOVERY: {
        R.DC_CHARGE_PARAMETER_DISCOVERY: frozenset({S.SCHEDULE_EXCHANGE}),
        R.AC_CHARGE_PARAMETER_DISCOVERY: frozenset({S.SCHEDULE_EXCHANGE}),
        R.SESSION_STOP: _STOP,
    },
    S.SCHEDULE_EXCHANGE: {
        R.SCHEDULE_EXCHANGE: frozenset({S.SCHEDULE_EXCHANGE, S.SCHEDULED}),
        R.SESSION_STOP: _STOP,
    },
    S.SCHEDULED: {
        R.DC_CABLE_CHECK: frozenset({S.CABLE_CHECK, S.PRE_CHARGE}),
        # AC starts here; DC only after a schedule renegotiation (pre-charged already)
        R.POWER_DELIVERY: frozenset({S.SCHEDULED, S.CHARGE_LOOP, S.STANDBY, S.POWER_STOPPED}),
        R.SESSION_STOP: _STOP,
    },
    S.CABLE_CHECK: {
        R.DC_CABLE_CHECK: frozenset({S.CABLE_CHECK, S.PRE_CHARGE}),
        R.SESSION_STOP: _STOP,
    },
    S.PRE_CHARGE: {
        R.DC_PRE_CHARGE: frozenset({S.PRE_CHARGE}),
        R.POWER_DELIVERY: frozenset({S.PRE_CHARGE, S.CHARGE_LOOP, S.STANDBY, S.POWER_STOPPED}),
        R.SESSION_STOP: _STOP,
    },
    S.CHARGE_LOOP: {
        R.DC_CHARGE_LOOP: frozenset({S.CHARGE_LOOP}),
        R.AC_CHARGE_LOOP: frozenset({S.CHARGE_LOOP}),
        R.POWER_DELIVERY: frozenset(
            {S.CHARGE_LOOP, S.STANDBY, S.POWER_STOPPED, S.SCHEDULE_EXCHANGE}
        ),
    },
    S.STANDBY: {
        R.DC_CHARGE_LOOP: frozenset({S.STANDBY}),
        R.AC_CHARGE_LOOP: frozenset({S.STANDBY}),
        R.POWER_DELIVERY: frozenset(
            {S.STANDBY, S.CHARGE_LOOP, S.POWER_STOPPED, S.SCHEDULE_EXCHANGE}
        ),
    },
    S.POWER_STOPPED: {
        R.DC_WELDING_DETECTION: frozenset({S.WELDING_DETECTION}),
        R.SESSION_STOP: _STOP,
    },
    S.WELDING_DETECTION: {
        R.DC_WELDING_DETECTION: frozenset({S.WELDING_DETECTION}),
        R.SESSION_STOP: _STOP,
    },
    S.CLOSING: {},
    S.CLOSED: {},
}

#: The request a state expects above all: what an undecodable message is taken to have been.
_PRIMARY: Mapping[SeccState, Request] = {
    state: next(iter(accepts)) for state, accepts in TRANSITIONS.items() if accepts
}

_PHASE: Mapping[SeccState, SessionPhase] = {
    S.CABLE_CHECK: SessionPhase.CABLE_CHECK,
    S.PRE_CHARGE: SessionPhase.PRECHARGE,
    S.CHARGE_LOOP: SessionPhase.CHARGE_LOOP,
    S.STANDBY: SessionPhase.STANDBY,
    S.POWER_STOPPED: SessionPhase.STOPPING,
    S.WELDING_DETECTION: SessionPhase.STOPPING,
    S.CLOSING: SessionPhase.STOPPING,
    S.CLOSED: SessionPhase.STOPPED,
}

# Timer names (StartTimer/CancelTimer/timer_expired)
T_SETUP = "secc.communication_setup"
T_SEQUENCE = "secc.sequence"
T_ONGOING = "secc.ongoing"
T_CLOSE = "secc.close_after_stop"
T_NOTICE = "secc.notification_deadline"
T_DELAY = "secc.delayed_response"  # + ":<n>", one per delayed response


@dataclass(frozen=True, slots=True)
class SeccConfig:
    """Settings of one SECC (per charger, or per firmware profile of an emulated one)."""

    evse_id: str = "DE*V2H*E0001*1"
    #: How this peer's discharge limits look on the wire (both are accepted; a mismatch is an Event).
    sign: DischargeSign = DischargeSign.MAGNITUDE
    #: Offer Plug & Charge in AuthorizationSetupRes (its verification answers "not supported").
    offer_pnc: bool = False
    #: Accept PowerDelivery(Standby); EVerest's default answers WARNING_StandbyNotAllowed.
    standby_allowed: bool = True
    #: Give each offered schedule a one-level PriceLevelSchedule (see messages.flat_price_levels):
    #: Josev's EVCC refuses a ChargingSchedule without a price schedule.
    flat_price_levels: bool = True
    timing: SeccTiming = field(default_factory=SeccTiming)
    quirks: Quirks = NO_QUIRKS
    #: Header TimeStamp = int(timestamp_origin + now): 0 when `now` already is Unix time.
    timestamp_origin: float = 0.0
    max_payload: int = DEFAULT_MAX_PAYLOAD


class _Refusal(Exception):
    """A handler's decision to answer with a non-OK code (FAILED ends the session)."""

    def __init__(self, code: Any, reason: str, next_state: SeccState | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.next_state = next_state  # for WARNING codes: where the session goes on


_Handler = Callable[[Any, float], tuple[Any, SeccState]]


class Secc:
    """One SECC connection (an rig.v2g.engine.Engine)."""

    def __init__(
        self,
        controller: EvseController,
        config: SeccConfig | None = None,
        *,
        store: SessionStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or SeccConfig()
        self.store = store if store is not None else SessionStore()
        self._rng = rng or random.SystemRandom()
        self.state = S.SUPPORTED_APP_PROTOCOL
        self.phase = SessionPhase.IDLE
        self.session_id = bytes(8)
        self.evcc_id: str | None = None
        self.namespace: str | None = None
        self.resumed = False
        self.offered: dict[Service, ServiceOffer] = {}
        self.service: Service | None = None
        self.parameter_set: ParameterSet | None = None
        self.ev_limits: DcLimits | AcLimits | None = None
        self.evse_limits: DcLimits | AcLimits | None = None
        self.schedule_offer: ScheduleOffer | None = None
        self.closure: Closure | None = None
        self._wire = Wire(self.config.max_payload)
        self._started = False
        self._finished = False
        self._ended = False  # controller.session_ended called
        self._outs: list[Output] = []
        self._precharged = False  # a DC_PreChargeReq came in this connection
        self._gen_challenge: bytes | None = None
        self._ongoing_for: Request | None = None
        self._ongoing_expired = False
        self._pending_notice: EvseNotice | None = None
        self._delayed: deque[tuple[str, Any]] = deque()
        self._delay_serial = 0
        self._sign_mismatches: set[str] = set()
        self._handlers: dict[Request, _Handler] = {
            R.SUPPORTED_APP_PROTOCOL: self._supported_app_protocol,
            R.SESSION_SETUP: self._session_setup,
            R.AUTHORIZATION_SETUP: self._authorization_setup,
            R.AUTHORIZATION: self._authorization,
            R.SERVICE_DISCOVERY: self._service_discovery,
            R.SERVICE_DETAIL: self._service_detail,
            R.SERVICE_SELECTION: self._service_selection,
            R.DC_CHARGE_PARAMETER_DISCOVERY: self._dc_charge_parameter_discovery,
            R.AC_CHARGE_PARAMETER_DISCOVERY: self._ac_charge_parameter_discovery,
            R.SCHEDULE_EXCHANGE: self._schedule_exchange,
            R.DC_CABLE_CHECK: self._cable_check,
            R.DC_PRE_CHARGE: self._pre_charge,
            R.POWER_DELIVERY: self._power_delivery,
            R.DC_CHARGE_LOOP: self._dc_charge_loop,
            R.AC_CHARGE_LOOP: self._ac_charge_loop,
            R.DC_WELDING_DETECTION: self._welding_detection,
            R.SESSION_STOP: self._session_stop,
        }

    # --- the Engine protocol ------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def control_mode(self) -> ControlMode | None:
        return None if self.parameter_set is None else self.parameter_set.control_mode

    def start(self, now: float) -> list[Output]:
        if self._started:
            raise EngineUsageError("Secc.start() called twice")
        self._started = True
        self._outs = []
        self._set_phase(SessionPhase.SETUP)
        self._outs.append(StartTimer(T_SETUP, now + self.config.timing.communication_setup))
        return self._flush()

    def receive_data(self, data: bytes, now: float) -> list[Output]:
        self._require_started()
        self._outs = []
        if self._finished:
            return []
        try:
            items = self._wire.receive(data)
        except V2GTPError as e:
            items = []
            self._stream_defect(e, now)
        for item in items:
            if self.state in (S.CLOSING, S.CLOSED):
                self._outs.append(Event("late_request", {"state": self.state.value}))
                continue
            if isinstance(item, Undecodable):
                self._undecodable(item, now)
            else:
                self._request(item, now)
        return self._flush()

    def timer_expired(self, name: str, now: float) -> list[Output]:
        self._require_started()
        self._outs = []
        if self._finished:
            return []
        if name == T_CLOSE:
            self._close("session over: closing after SessionStop or FAILED [V2G20-1643]")
        elif name in (T_SETUP, T_SEQUENCE):
            what = "communication setup" if name == T_SETUP else "sequence"
            self._outs.append(
                Event("timeout", {"timer": name, "state": self.state.value, "what": what})
            )
            self._end(Closure.ABORTED, f"{what} timeout in state {self.state.value}", now)
            self._close(f"{what} timeout")
        elif name == T_ONGOING:
            # The next request of the loop gets FAILED (EVerest does the same); if none comes,
            # the sequence timeout ends the session.
            self._ongoing_expired = True
            self._outs.append(
                Event("timeout", {"timer": name, "state": self.state.value, "what": "ongoing"})
            )
        elif name == T_NOTICE:
            notice = self._pending_notice
            self._pending_notice = None
            if notice is not None:
                self._outs.append(
                    Event(
                        "notification_not_obeyed",
                        {"notification": notice.notification.value, "max_delay": notice.max_delay},
                    )
                )
        elif name.startswith(T_DELAY + ":"):
            self._send_delayed(name, now)
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

    # --- dispatch -----------------------------------------------------------------------------

    def _request(self, item: Inbound, now: float) -> None:
        self._outs.append(Received(item.frame, int(item.payload_type), item.name, item.message))
        request = request_of(item.name)
        if request is None:  # a response, or a message of no -20 request
            self._sequence_error(_PRIMARY.get(self.state), item.name, now)
            return
        if item.payload_type is not _PAYLOAD_TYPE[request]:
            self._sequence_error(request, item.name, now)
            return
        accepts = TRANSITIONS[self.state]
        handler = self._handlers.get(request)
        allowed = accepts.get(request)
        if allowed is None:
            if not (self.config.quirks.accept_out_of_sequence and handler is not None):
                self._sequence_error(request, item.name, now)
                return
            self._outs.append(
                Event("quirk", {"quirk": "accept_out_of_sequence", "request": item.name})
            )
        assert handler is not None  # every accepted request has one (a test pins it)
        if request not in (R.SUPPORTED_APP_PROTOCOL, R.SESSION_SETUP):
            received_id = item.message.Header.SessionID
            if received_id != self.session_id:
                self._outs.append(
                    Event(
                        "unknown_session",
                        {"received": received_id.hex(), "expected": self.session_id.hex()},
                    )
                )
                self._refuse(request, ResponseCode.FAILED_UnknownSession, "unknown SessionID", now)
                return
        try:
            response, next_state = handler(item.message, now)
        except _Refusal as refusal:
            self._refuse(
                request, refusal.code, refusal.reason, now, refusal.next_state, item.message
            )
            return
        except Exception as e:  # a controller (or our) bug: go safe, say so, do not raise
            self._outs.append(Event("controller_error", {"request": item.name, "error": repr(e)}))
            self._refuse(request, ResponseCode.FAILED, f"internal error: {e!r}", now)
            return
        if allowed is not None and next_state not in allowed:
            # our own bug, not the peer's: say so and end safely rather than raise
            self._outs.append(
                Event(
                    "controller_error",
                    {"error": f"{self.state} --{request}--> {next_state} not in TRANSITIONS"},
                )
            )
            self._refuse(request, ResponseCode.FAILED, "internal transition error", now)
            return
        self._respond(response, next_state, now)

    def _respond(self, response: Any, next_state: SeccState, now: float) -> None:
        """Send a response (or arm its delay), move to `next_state`, arm the sequence timer."""
        name = type(response).__name__
        quirks = self.config.quirks
        wrong = quirks.wrong_response_codes.get(name) if quirks.any else None
        if wrong is not None:
            response = dataclasses.replace(response, ResponseCode=ResponseCode[wrong])
            self._outs.append(
                Event("quirk", {"quirk": "wrong_response_code", "message": name, "code": wrong})
            )
        code = getattr(response, "ResponseCode", None)
        if code is not None and not is_ok(code):
            self._outs.append(Event("response_code", {"message": name, "code": code_name(code)}))
        self._move(next_state)
        delay = quirks.delays(name) if quirks.any else 0.0
        if delay:
            self._delay_serial += 1
            timer = f"{T_DELAY}:{self._delay_serial}"
            self._delayed.append((timer, response))
            self._outs.append(
                Event("quirk", {"quirk": "response_delay", "message": name, "delay": delay})
            )
            self._outs.append(StartTimer(timer, now + delay))
            return
        self._emit(response, now)

    def _emit(self, response: Any, now: float) -> None:
        try:
            self._outs.append(self._wire.send(response))
        except EXIEncodeError as e:  # a value the schema refuses (a controller's, or ours)
            self._outs.append(
                Event("controller_error", {"message": type(response).__name__, "error": str(e)})
            )
            self._end(Closure.ABORTED, f"cannot encode {type(response).__name__}: {e}", now)
            self._close("response could not be encoded")
            return
        if self.state is S.CLOSING:
            self._outs.append(CancelTimer(T_SEQUENCE))
            self._outs.append(StartTimer(T_CLOSE, now + self.config.timing.close_after_stop))
        else:
            self._outs.append(StartTimer(T_SEQUENCE, now + self.config.timing.sequence))

    def _send_delayed(self, timer: str, now: float) -> None:
        while self._delayed:
            name, response = self._delayed.popleft()
            if name == timer:
                self._emit(response, now)
                return

    def _refuse(
        self,
        request: Request,
        code: Any,
        reason: str,
        now: float,
        next_state: SeccState | None = None,
        message: Any = None,
    ) -> None:
        """Answer `request` with a non-OK code. FAILED (or no next state) ends the session."""
        response = failed_response(
            request,
            self._header(now),
            code,
            evse_id=self.config.evse_id,
            service=self.service,
            control_mode=self.control_mode,
            service_id=getattr(message, "ServiceID", None),  # ServiceDetailRes echoes it
        )
        if response is None:
            self._outs.append(
                Event(
                    "response_code",
                    {"message": request.response, "code": code_name(code), "reason": reason},
                )
            )
            self._end(Closure.ABORTED, f"{reason} (no {request.response} can be formed)", now)
            self._close(f"{request.value}: {reason}")
            return
        if is_failed(code) or next_state is None:
            self._end(
                Closure.ABORTED, f"{type(response).__name__} {code_name(code)}: {reason}", now
            )
            next_state = S.CLOSING
        self._respond(response, next_state, now)

    def _sequence_error(self, request: Request | None, received: str, now: float) -> None:
        self._outs.append(
            Event("sequence_error", {"received": received, "state": self.state.value})
        )
        if request is None:  # nothing we could answer (no state expects anything)
            self._end(Closure.ABORTED, f"unexpected {received}", now)
            self._close(f"unexpected {received}")
            return
        self._refuse(
            request,
            ResponseCode.FAILED_SequenceError,
            f"{received} in state {self.state.value}",
            now,
        )

    def _undecodable(self, item: Undecodable, now: float) -> None:
        self._outs.append(item.event())
        request = _PRIMARY.get(self.state)
        if request is None:
            self._end(Closure.ABORTED, "undecodable message", now)
            self._close("undecodable message")
            return
        self._refuse(request, ResponseCode.FAILED, f"undecodable message: {item.error}", now)

    def _stream_defect(self, error: V2GTPError, now: float) -> None:
        # The framing is lost: no response can be tied to a request. Close (the -20 stack of
        # EVerest throws and drops the connection on a bad header too).
        self._outs.append(Event("v2gtp_error", {"error": str(error), "kind": type(error).__name__}))
        self._end(Closure.ABORTED, f"V2GTP error: {error}", now)
        self._close(f"V2GTP error: {type(error).__name__}")

    # --- outputs and bookkeeping --------------------------------------------------------------

    def _flush(self) -> list[Output]:
        outs, self._outs = self._outs, []
        return outs

    def _require_started(self) -> None:
        if not self._started:
            raise EngineUsageError("Secc: call start() first")

    def _header(self, now: float) -> Any:
        return header(self.session_id, int(self._clock_time(now)))

    def _move(self, state: SeccState) -> None:
        self.state = state
        if state is S.CLOSING and self.closure is Closure.PAUSED:
            self._set_phase(SessionPhase.PAUSED)
        else:
            self._set_phase(_PHASE.get(state, SessionPhase.SETUP))

    def _set_phase(self, phase: SessionPhase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._outs.append(phase_event(phase))

    def _end(self, closure: Closure, reason: str, now: float) -> None:
        """The session is over: tell the controller once (it goes safe) and say why."""
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

    def _close(self, reason: str) -> None:
        self._outs.append(Close(reason))
        self._finish()

    def _finish(self) -> None:
        for timer in (T_SETUP, T_SEQUENCE, T_ONGOING, T_CLOSE, T_NOTICE):
            self._outs.append(CancelTimer(timer))
        for timer, _ in self._delayed:
            self._outs.append(CancelTimer(timer))
        self._delayed.clear()
        self.state = S.CLOSED
        self._set_phase(
            SessionPhase.PAUSED if self.closure is Closure.PAUSED else SessionPhase.STOPPED
        )
        self._finished = True

    def _ongoing(self, request: Request, limit: float, now: float) -> None:
        """An Ongoing answer: arm the loop's limit on its first round; FAILED once it expired."""
        if self._ongoing_for is not request:
            self._ongoing_for = request
            self._ongoing_expired = False
            self._outs.append(StartTimer(T_ONGOING, now + limit))
        elif self._ongoing_expired:
            raise _Refusal(ResponseCode.FAILED, f"{request.value} Ongoing beyond {limit} s")

    def _ongoing_done(self, request: Request) -> None:
        if self._ongoing_for is request:
            if self._ongoing_expired:
                raise _Refusal(
                    ResponseCode.FAILED, f"{request.value} finished after its Ongoing limit"
                )
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

    def _discharge_out(self, value: float) -> Any:
        return discharge_to_wire(value, self.config.sign)

    def _require_service(self, *allowed: Service) -> Service:
        if self.service is None or self.parameter_set is None:
            raise _Refusal(ResponseCode.FAILED_SequenceError, "no energy service selected yet")
        if allowed and self.service not in allowed:
            raise _Refusal(
                ResponseCode.FAILED_SequenceError, f"not possible in a {self.service} session"
            )
        return self.service

    # --- handlers: one per request --------------------------------------------------------------

    def _supported_app_protocol(self, req: Any, now: float) -> tuple[Any, SeccState]:
        offered_services = {offer.service for offer in self.controller.services()}
        supported = set()
        if any(s.is_dc for s in offered_services & set(SESSION_SERVICES)):
            supported.add(DC_NAMESPACE)
        if any(not s.is_dc for s in offered_services & set(SESSION_SERVICES)):
            supported.add(AC_NAMESPACE)
        candidates = sorted(
            (
                p
                for p in req.AppProtocol
                if p.ProtocolNamespace in supported and p.VersionNumberMajor == V20_MAJOR_VERSION
            ),
            key=lambda p: p.Priority,  # 1 is the highest [V2G20-167]
        )
        if not candidates:
            offered = [
                f"{p.ProtocolNamespace} {p.VersionNumberMajor}.{p.VersionNumberMinor}"
                for p in req.AppProtocol
            ]
            self._outs.append(Event("no_negotiation", {"offered": offered}))
            raise _Refusal(app.responseCodeType.Failed_NoNegotiation, "no common protocol")
        chosen = candidates[0]
        self.namespace = chosen.ProtocolNamespace
        code = (
            app.responseCodeType.OK_SuccessfulNegotiation
            if chosen.VersionNumberMinor == 0
            else app.responseCodeType.OK_SuccessfulNegotiationWithMinorDeviation
        )
        return app.supportedAppProtocolRes(
            ResponseCode=code, SchemaID=chosen.SchemaID
        ), S.SESSION_SETUP

    def _session_setup(self, req: Any, now: float) -> tuple[Any, SeccState]:
        self._outs.append(CancelTimer(T_SETUP))
        self.evcc_id = req.EVCCID
        asked: bytes = req.Header.SessionID
        paused = self.store.take(asked) if any(asked) else None
        if paused is not None and _namespace_fits(paused.service, self.namespace):
            self.session_id = asked
            self.resumed = True
            self.service = paused.service
            self.parameter_set = paused.parameter_set
            code, next_state = ResponseCode.OK_OldSessionJoined, S.RESUMED
        else:
            self.session_id = self._new_session_id()
            code, next_state = ResponseCode.OK_NewSessionEstablished, S.AUTHORIZATION_SETUP
        self._outs.append(
            Event(
                "session_established",
                {
                    "session_id": self.session_id.hex().upper(),
                    "evcc_id": self.evcc_id,
                    "resumed": self.resumed,
                    "namespace": self.namespace,
                },
            )
        )
        res = common.SessionSetupRes(
            Header=self._header(now), ResponseCode=code, EVSEID=self.config.evse_id
        )
        return res, next_state

    def _new_session_id(self) -> bytes:
        while True:
            sid = bytes(self._rng.getrandbits(8) for _ in range(8))
            if any(sid) and sid not in self.store:  # all zeros asks for a new session
                return sid

    def _authorization_setup(self, req: Any, now: float) -> tuple[Any, SeccState]:
        services = [common.authorizationType.EIM]
        eim = pnc = None
        if self.config.offer_pnc:
            services.append(common.authorizationType.PnC)
            self._gen_challenge = bytes(self._rng.getrandbits(8) for _ in range(16))
            # The schema takes one mode element: with PnC offered it is PnC's (Josev, [V2G20-2567])
            pnc = common.PnC_ASResAuthorizationModeType(GenChallenge=self._gen_challenge)
        else:
            eim = common.EIM_ASResAuthorizationModeType()
        res = common.AuthorizationSetupRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            AuthorizationServices=services,
            CertificateInstallationService=False,
            EIM_ASResAuthorizationMode=eim,
            PnC_ASResAuthorizationMode=pnc,
        )
        return res, S.AUTHORIZATION

    def _authorization(self, req: Any, now: float) -> tuple[Any, SeccState]:
        method = AuthMethod(req.SelectedAuthorizationService.value)
        finished = common.processingType.Finished
        if method is AuthMethod.PNC:
            if not self.config.offer_pnc:
                raise _Refusal(
                    ResponseCode.WARNING_AuthorizationSelectionInvalid,
                    "PnC not offered",
                    S.AUTHORIZATION,
                )
            if req.Header.Signature is None:
                raise _Refusal(
                    ResponseCode.FAILED_SignatureError, "PnC AuthorizationReq without a signature"
                )
            mode = req.PnC_AReqAuthorizationMode
            if mode is None or mode.GenChallenge != self._gen_challenge:
                raise _Refusal(
                    ResponseCode.WARNING_ChallengeInvalid,
                    "GenChallenge is not ours",
                    S.AUTHORIZATION,
                )
            raise _Refusal(
                ResponseCode.WARNING_GeneralPnCAuthorizationError,
                "contract certificate verification is not implemented in the rig",
                S.AUTHORIZATION,
            )
        status = self.controller.authorize(method, now)
        if status is AuthorizationStatus.ONGOING:
            self._ongoing(R.AUTHORIZATION, self.config.timing.authorization_ongoing, now)
            res = common.AuthorizationRes(
                Header=self._header(now),
                ResponseCode=ResponseCode.OK,
                EVSEProcessing=common.processingType.Ongoing,
            )
            return res, S.AUTHORIZATION
        self._ongoing_done(R.AUTHORIZATION)
        if status is AuthorizationStatus.REJECTED:
            raise _Refusal(
                ResponseCode.WARNING_EIMAuthorizationFailure,
                "authorization rejected",
                S.AUTHORIZATION,
            )
        res = common.AuthorizationRes(
            Header=self._header(now), ResponseCode=ResponseCode.OK, EVSEProcessing=finished
        )
        return res, S.SERVICE_DISCOVERY

    def _service_discovery(self, req: Any, now: float) -> tuple[Any, SeccState]:
        fits = [
            o
            for o in self.controller.services()
            if o.service in SESSION_SERVICES and _namespace_fits(o.service, self.namespace)
        ]
        if req.SupportedServiceIDs is not None:
            wanted = set(req.SupportedServiceIDs.ServiceID)
            narrowed = [o for o in fits if o.service.id in wanted]
            fits = narrowed or fits  # the list may not be empty; the EV will find nothing it wants
        if not fits:
            raise _Refusal(ResponseCode.FAILED, f"no energy service offered under {self.namespace}")
        self.offered = {o.service: o for o in fits[:8]}  # the schema allows 8
        self.service = None
        self.parameter_set = None
        res = common.ServiceDiscoveryRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            ServiceRenegotiationSupported=bool(self.controller.service_renegotiation_supported()),
            EnergyTransferServiceList=common.ServiceListType(
                Service=[
                    common.ServiceType(ServiceID=o.service.id, FreeService=o.free)
                    for o in self.offered.values()
                ]
            ),
        )
        return res, S.SERVICE_DETAIL

    def _service_detail(self, req: Any, now: float) -> tuple[Any, SeccState]:
        offer = next((o for o in self.offered.values() if o.service.id == req.ServiceID), None)
        if offer is None:  # [V2G20-464]
            raise _Refusal(
                ResponseCode.FAILED_ServiceIDInvalid, f"ServiceID {req.ServiceID} was not offered"
            )
        for ps in offer.parameter_sets:
            problems = ps.problems(offer.service)
            if problems:
                raise ValueError(
                    f"controller offers a bad parameter set for {offer.service}: {problems}"
                )
        res = common.ServiceDetailRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            ServiceID=req.ServiceID,
            ServiceParameterList=common.ServiceParameterListType(
                ParameterSet=[parameter_set_to_wire(ps) for ps in offer.parameter_sets[:32]]
            ),
        )
        return res, S.SERVICE_SELECTION

    def _service_selection(self, req: Any, now: float) -> tuple[Any, SeccState]:
        selected = req.SelectedEnergyTransferService
        offer = next((o for o in self.offered.values() if o.service.id == selected.ServiceID), None)
        if offer is None:
            raise _Refusal(
                ResponseCode.FAILED_NoEnergyTransferServiceSelected,
                f"ServiceID {selected.ServiceID} was not offered",
            )
        ps = offer.parameter_set(selected.ParameterSetID)
        if ps is None:
            raise _Refusal(
                ResponseCode.FAILED_ServiceSelectionInvalid,
                f"ParameterSetID {selected.ParameterSetID} was not offered for {offer.service}",
            )
        if req.SelectedVASList is not None and req.SelectedVASList.SelectedService:
            raise _Refusal(
                ResponseCode.FAILED_ServiceSelectionInvalid, "no value-added service was offered"
            )
        self.service, self.parameter_set = offer.service, ps
        self._outs.append(
            Event(
                "service_selected",
                {
                    "service": offer.service.value,
                    "parameter_set": ps.id,
                    "control_mode": ps.control_mode.value,
                },
            )
        )
        return common.ServiceSelectionRes(
            Header=self._header(now), ResponseCode=ResponseCode.OK
        ), S.CHARGE_PARAMETER_DISCOVERY

    def _dc_charge_parameter_discovery(self, req: Any, now: float) -> tuple[Any, SeccState]:
        mode = req.DC_CPDReqEnergyTransferMode
        bpt = type(mode).__name__ == "BPT_DC_CPDReqEnergyTransferMode"
        if self.service not in (Service.DC, Service.DC_BPT) or bpt != (
            self.service is Service.DC_BPT
        ):
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter,
                f"{type(mode).__name__} does not fit {self.service}",
            )
        if not _charge_side_ok(
            mode.EVMaximumChargePower,
            mode.EVMinimumChargePower,
            mode.EVMaximumChargeCurrent,
            mode.EVMinimumChargeCurrent,
        ):
            raise _Refusal(ResponseCode.FAILED_WrongChargeParameter, "negative charge limits")
        ev = dc_limits_from_wire(mode, "EV", bpt, self._discharge_in, target_soc=mode.TargetSOC)
        problem = _dc_limits_problem(ev)
        if problem:
            raise _Refusal(ResponseCode.FAILED_WrongChargeParameter, problem)
        evse = self.controller.charge_parameters(self.service, ev, now)
        if evse is None:
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter, "the EVSE refuses the EV's parameters"
            )
        if not isinstance(evse, DcLimits) or (bpt and not evse.bidirectional):
            raise TypeError(f"controller gave {evse!r} for {self.service}")
        self.ev_limits, self.evse_limits = ev, evse
        r = to_rational
        fields = {
            "EVSEMaximumChargePower": r(evse.max_charge_power),
            "EVSEMinimumChargePower": r(evse.min_charge_power),
            "EVSEMaximumChargeCurrent": r(evse.max_charge_current),
            "EVSEMinimumChargeCurrent": r(evse.min_charge_current),
            "EVSEMaximumVoltage": r(evse.max_voltage),
            "EVSEMinimumVoltage": r(evse.min_voltage),
            "EVSEPowerRampLimitation": optional_rational(evse.power_ramp_limit),
        }
        if bpt:
            assert evse.max_discharge_power is not None and evse.min_discharge_power is not None
            assert evse.max_discharge_current is not None and evse.min_discharge_current is not None
            res_mode: Any = dc.BPT_DC_CPDResEnergyTransferMode(
                **fields,
                EVSEMaximumDischargePower=self._discharge_out(evse.max_discharge_power),
                EVSEMinimumDischargePower=self._discharge_out(evse.min_discharge_power),
                EVSEMaximumDischargeCurrent=self._discharge_out(evse.max_discharge_current),
                EVSEMinimumDischargeCurrent=self._discharge_out(evse.min_discharge_current),
            )
        else:
            res_mode = dc.DC_CPDResEnergyTransferMode(**fields)
        res = dc.DC_ChargeParameterDiscoveryRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            DC_CPDResEnergyTransferMode=res_mode,
        )
        return res, S.SCHEDULE_EXCHANGE

    def _ac_charge_parameter_discovery(self, req: Any, now: float) -> tuple[Any, SeccState]:
        mode = req.AC_CPDReqEnergyTransferMode
        bpt = type(mode).__name__ == "BPT_AC_CPDReqEnergyTransferMode"
        if self.service not in (Service.AC, Service.AC_BPT) or bpt != (
            self.service is Service.AC_BPT
        ):
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter,
                f"{type(mode).__name__} does not fit {self.service}",
            )
        f = from_rational
        max_charge, min_charge = f(mode.EVMaximumChargePower), f(mode.EVMinimumChargePower)
        if max_charge < 0 or min_charge < 0 or min_charge > max_charge:
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter, "EV charge power limits inconsistent"
            )
        ev = AcLimits(
            max_charge_power=max_charge,
            min_charge_power=min_charge,
            max_discharge_power=self._discharge_in(
                mode.EVMaximumDischargePower, "EVMaximumDischargePower"
            )
            if bpt
            else None,
            min_discharge_power=self._discharge_in(
                mode.EVMinimumDischargePower, "EVMinimumDischargePower"
            )
            if bpt
            else None,
        )
        if bpt and ev.min_discharge_power < ev.max_discharge_power:  # type: ignore[operator]
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter,
                "EVMinimumDischargePower above EVMaximumDischargePower",
            )
        evse = self.controller.charge_parameters(self.service, ev, now)
        if evse is None:
            raise _Refusal(
                ResponseCode.FAILED_WrongChargeParameter, "the EVSE refuses the EV's parameters"
            )
        if (
            not isinstance(evse, AcLimits)
            or evse.nominal_frequency is None
            or (bpt and not evse.bidirectional)
        ):
            raise TypeError(f"controller gave {evse!r} for {self.service}")
        self.ev_limits, self.evse_limits = ev, evse
        r = to_rational
        fields = {
            "EVSEMaximumChargePower": r(evse.max_charge_power),
            "EVSEMinimumChargePower": r(evse.min_charge_power),
            "EVSENominalFrequency": r(evse.nominal_frequency),
            "EVSEPowerRampLimitation": optional_rational(evse.power_ramp_limit),
            "EVSEPresentActivePower": optional_rational(evse.present_active_power),
        }
        if bpt:
            assert evse.max_discharge_power is not None and evse.min_discharge_power is not None
            res_mode: Any = ac.BPT_AC_CPDResEnergyTransferMode(
                **fields,
                EVSEMaximumDischargePower=self._discharge_out(evse.max_discharge_power),
                EVSEMinimumDischargePower=self._discharge_out(evse.min_discharge_power),
            )
        else:
            res_mode = ac.AC_CPDResEnergyTransferMode(**fields)
        res = ac.AC_ChargeParameterDiscoveryRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            AC_CPDResEnergyTransferMode=res_mode,
        )
        return res, S.SCHEDULE_EXCHANGE

    def _schedule_exchange(self, req: Any, now: float) -> tuple[Any, SeccState]:
        self._require_service()
        mode = self.control_mode
        dynamic, scheduled = req.Dynamic_SEReqControlMode, req.Scheduled_SEReqControlMode
        if (mode is ControlMode.DYNAMIC) != (dynamic is not None):
            raise _Refusal(
                ResponseCode.FAILED, f"ScheduleExchangeReq control mode does not match {mode}"
            )
        assert mode is not None
        if dynamic is not None:
            request = ScheduleRequest(
                control_mode=mode,
                max_supporting_points=req.MaximumSupportingPoints,
                departure_time=float(dynamic.DepartureTime),
                minimum_soc=dynamic.MinimumSOC,
                target_soc=dynamic.TargetSOC,
                energy=_energy_request(dynamic),
            )
        else:
            request = ScheduleRequest(
                control_mode=mode,
                max_supporting_points=req.MaximumSupportingPoints,
                departure_time=None
                if scheduled.DepartureTime is None
                else float(scheduled.DepartureTime),
                energy=_energy_request(scheduled)
                if scheduled.EVTargetEnergyRequest is not None
                and scheduled.EVMaximumEnergyRequest is not None
                and scheduled.EVMinimumEnergyRequest is not None
                else None,
            )
        offer = self.controller.schedule(request, now)
        hdr = self._header(now)
        if offer is None:
            self._ongoing(R.SCHEDULE_EXCHANGE, self.config.timing.ongoing, now)
            ongoing = common.processingType.Ongoing
            if mode is ControlMode.DYNAMIC:
                return common.ScheduleExchangeRes(
                    Header=hdr,
                    ResponseCode=ResponseCode.OK,
                    EVSEProcessing=ongoing,
                    Dynamic_SEResControlMode=common.Dynamic_SEResControlModeType(),
                ), S.SCHEDULE_EXCHANGE
            return common.ScheduleExchangeRes(
                Header=hdr,
                ResponseCode=ResponseCode.OK,
                EVSEProcessing=ongoing,
                Scheduled_SEResControlMode=common.Scheduled_SEResControlModeType(
                    ScheduleTuple=[placeholder_schedule_tuple(hdr.TimeStamp)]
                ),
            ), S.SCHEDULE_EXCHANGE
        self._ongoing_done(R.SCHEDULE_EXCHANGE)
        finished = common.processingType.Finished
        go_to_pause = True if offer.go_to_pause else None
        if mode is ControlMode.DYNAMIC:
            t = offer.targets
            res_mode = common.Dynamic_SEResControlModeType(
                DepartureTime=None
                if t is None or t.departure_time is None
                else int(t.departure_time),
                MinimumSOC=None if t is None or t.minimum_soc is None else int(t.minimum_soc),
                TargetSOC=None if t is None or t.target_soc is None else int(t.target_soc),
            )
            res = common.ScheduleExchangeRes(
                Header=hdr,
                ResponseCode=ResponseCode.OK,
                EVSEProcessing=finished,
                GoToPause=go_to_pause,
                Dynamic_SEResControlMode=res_mode,
            )
        else:
            if not 1 <= len(offer.tuples) <= 3:
                raise ValueError(
                    f"a Scheduled offer needs 1-3 schedule tuples, got {len(offer.tuples)}"
                )
            tuples = [
                self._schedule_tuple(
                    t, hdr.TimeStamp, request.max_supporting_points, self._clock_time(now)
                )
                for t in offer.tuples
            ]
            res = common.ScheduleExchangeRes(
                Header=hdr,
                ResponseCode=ResponseCode.OK,
                EVSEProcessing=finished,
                GoToPause=go_to_pause,
                Scheduled_SEResControlMode=common.Scheduled_SEResControlModeType(
                    ScheduleTuple=tuples
                ),
            )
        self.schedule_offer = offer
        return res, S.SCHEDULED

    def _clock_time(self, now: float) -> float:
        """`now` on the clock of the header's TimeStamp (which is this, truncated)."""
        return self.config.timestamp_origin + now

    def _schedule_tuple(
        self, t: ScheduleTuple, timestamp: int, max_points: int, clock_now: float
    ) -> Any:
        # A tuple without a TimeAnchor begins now: its entries' ends are counted from now (not
        # from the whole second the TimeStamp was truncated to) and rounded to the second.
        anchor = timestamp if t.time_anchor is None else int(t.time_anchor)
        begins = clock_now if t.time_anchor is None else t.time_anchor

        def schedule(entries: Sequence[ScheduleEntry], discharging: bool) -> Any:
            if len(entries) > max_points:
                self._outs.append(
                    Event(
                        "schedule_trimmed",
                        {"tuple": t.id, "entries": len(entries), "max": max_points},
                    )
                )
                entries = entries[:max_points]
            durations = whole_second_durations([e.duration for e in entries], begins, anchor)
            wire = [
                common.PowerScheduleEntryType(
                    Duration=duration,
                    Power=self._discharge_out(e.power) if discharging else to_rational(e.power),
                )
                for e, duration in zip(entries, durations, strict=True)
            ]
            levels = None
            absolute = None
            given = t.discharging_prices if discharging else t.charging_prices
            if given is not None:
                absolute, levels = price_schedule(given, anchor, begins)
            elif self.config.flat_price_levels:
                levels = flat_price_levels(anchor, t.id, sum(durations))
            return common.ChargingScheduleType(
                PowerSchedule=common.PowerScheduleType(
                    TimeAnchor=anchor,
                    PowerScheduleEntries=common.PowerScheduleEntryListType(PowerScheduleEntry=wire),
                ),
                AbsolutePriceSchedule=absolute,
                PriceLevelSchedule=levels,
            )

        return common.ScheduleTupleType(
            ScheduleTupleID=t.id,
            ChargingSchedule=schedule(t.charging, False),
            DischargingSchedule=None if t.discharging is None else schedule(t.discharging, True),
        )

    def _cable_check(self, req: Any, now: float) -> tuple[Any, SeccState]:
        self._require_service(Service.DC, Service.DC_BPT)
        status = self.controller.isolation_check(now)
        if status is IsolationStatus.FAULT:
            raise _Refusal(ResponseCode.FAILED, "isolation fault")
        if status is IsolationStatus.ONGOING:
            self._ongoing(R.DC_CABLE_CHECK, self.config.timing.ongoing, now)
            processing, next_state = common.processingType.Ongoing, S.CABLE_CHECK
        else:
            self._ongoing_done(R.DC_CABLE_CHECK)
            if status is IsolationStatus.WARNING:
                self._outs.append(Event("isolation_warning", {}))
            processing, next_state = common.processingType.Finished, S.PRE_CHARGE
        res = dc.DC_CableCheckRes(
            Header=self._header(now), ResponseCode=ResponseCode.OK, EVSEProcessing=processing
        )
        return res, next_state

    def _pre_charge(self, req: Any, now: float) -> tuple[Any, SeccState]:
        self._require_service(Service.DC, Service.DC_BPT)
        target = from_rational(req.EVTargetVoltage)
        present = self.controller.precharge(target, now)
        self._precharged = True
        res = dc.DC_PreChargeRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            EVSEPresentVoltage=to_rational(present),
        )
        return res, S.PRE_CHARGE

    def _power_delivery(self, req: Any, now: float) -> tuple[Any, SeccState]:
        service = self._require_service()
        progress = ChargeProgress(req.ChargeProgress.value)
        hdr = self._header(now)
        ok = common.PowerDeliveryRes(Header=hdr, ResponseCode=ResponseCode.OK)
        if req.EVProcessing is not common.processingType.Finished:
            return ok, self.state  # the EV is still working out its profile: it asks again
        channel = (
            None if req.BPT_ChannelSelection is None else Channel(req.BPT_ChannelSelection.value)
        )
        energized = self.state in (S.CHARGE_LOOP, S.STANDBY)
        profile: PowerProfile | None = None
        if progress is ChargeProgress.START:
            if service.is_dc and not self._precharged and not energized:
                raise _Refusal(
                    ResponseCode.FAILED_SequenceError, "PowerDelivery(Start) before DC_PreCharge"
                )
            profile = self._check_profile(req.EVPowerProfile)
            next_state = S.CHARGE_LOOP
        elif progress is ChargeProgress.STANDBY:
            if not self.config.standby_allowed:
                raise _Refusal(
                    ResponseCode.WARNING_StandbyNotAllowed, "Standby not allowed", self.state
                )
            next_state = S.STANDBY
        elif progress is ChargeProgress.STOP:
            next_state = S.POWER_STOPPED
        else:  # ScheduleRenegotiation: only with energy flowing or held
            if not energized:
                raise _Refusal(
                    ResponseCode.FAILED_SequenceError,
                    "ScheduleRenegotiation outside the charge loop",
                )
            next_state = S.SCHEDULE_EXCHANGE
        self._notice_answered(progress)
        if (
            progress in (ChargeProgress.STOP, ChargeProgress.STANDBY)
            and self.config.quirks.ignore_pause
        ):
            self._outs.append(Event("quirk", {"quirk": "ignore_pause", "progress": progress.value}))
        else:
            outcome = self.controller.power_delivery(
                PowerDeliveryCommand(progress, channel, profile), now
            )
            if outcome is PowerDeliveryOutcome.NOT_APPLIED:
                raise _Refusal(
                    ResponseCode.FAILED_PowerDeliveryNotApplied, f"{progress.value} not applied"
                )
            if outcome is PowerDeliveryOutcome.CONTACTOR_ERROR:
                raise _Refusal(
                    ResponseCode.FAILED_ContactorError, f"contactor error on {progress.value}"
                )
        return ok, next_state

    def _check_profile(self, wire: Any) -> PowerProfile | None:
        """The EV's EVPowerProfile as a PowerProfile; checks it against the offer in Scheduled mode."""
        entries: tuple[ScheduleEntry, ...] = ()
        if wire is not None:
            entries = tuple(
                ScheduleEntry(float(e.Duration), from_rational(e.Power))
                for e in wire.EVPowerProfileEntries.EVPowerProfileEntry
            )
        if self.control_mode is not ControlMode.SCHEDULED:
            return (
                None
                if wire is None
                else PowerProfile(entries=entries, time_anchor=float(wire.TimeAnchor))
            )
        if wire is None or wire.Scheduled_EVPPTControlMode is None:
            raise _Refusal(
                ResponseCode.FAILED_EVPowerProfileInvalid,
                "Scheduled mode needs an EVPowerProfile with a tuple",
            )
        chosen = wire.Scheduled_EVPPTControlMode.SelectedScheduleTupleID
        tuples = {t.id: t for t in (self.schedule_offer.tuples if self.schedule_offer else ())}
        if chosen not in tuples:
            raise _Refusal(
                ResponseCode.FAILED_ScheduleSelectionInvalid,
                f"ScheduleTupleID {chosen} was not offered",
            )
        low, high = tuples[chosen].power_range()
        outside = [e.power for e in entries if not low <= e.power <= high]
        if outside:
            raise _Refusal(
                ResponseCode.FAILED_EVPowerProfileInvalid,
                f"EVPowerProfile power {outside[0]} W outside tuple {chosen}'s {low}..{high} W",
            )
        return PowerProfile(
            schedule_tuple_id=chosen, entries=entries, time_anchor=float(wire.TimeAnchor)
        )

    def _dc_charge_loop(self, req: Any, now: float) -> tuple[Any, SeccState]:
        service = self._require_service(Service.DC, Service.DC_BPT)
        mode = self.control_mode
        bpt = service is Service.DC_BPT
        expected = f"{'BPT_' if bpt else ''}{'Dynamic' if mode is ControlMode.DYNAMIC else 'Scheduled'}_DC_CLReqControlMode"
        cl = req.CLReqControlMode
        if type(cl).__name__ != expected:
            raise _Refusal(
                ResponseCode.FAILED, f"{type(cl).__name__} in a {service} {mode} session"
            )
        f = from_rational
        if mode is ControlMode.DYNAMIC:
            if not _charge_side_ok(
                cl.EVMaximumChargePower, cl.EVMinimumChargePower, cl.EVMaximumChargeCurrent
            ):
                raise _Refusal(ResponseCode.FAILED, "negative charge limits in DC_ChargeLoopReq")
            limits = DcLoopLimits(
                max_charge_power=f(cl.EVMaximumChargePower),
                min_charge_power=f(cl.EVMinimumChargePower),
                max_charge_current=f(cl.EVMaximumChargeCurrent),
                max_voltage=f(cl.EVMaximumVoltage),
                min_voltage=f(cl.EVMinimumVoltage),
                max_discharge_power=self._discharge_in(
                    cl.EVMaximumDischargePower, "EVMaximumDischargePower"
                )
                if bpt
                else None,
                min_discharge_power=self._discharge_in(
                    cl.EVMinimumDischargePower, "EVMinimumDischargePower"
                )
                if bpt
                else None,
                max_discharge_current=self._discharge_in(
                    cl.EVMaximumDischargeCurrent, "EVMaximumDischargeCurrent"
                )
                if bpt
                else None,
            )
            request = DcLoopRequest(
                present_voltage=f(req.EVPresentVoltage),
                energy=_energy_request(cl),
                limits=limits,
                departure_time=None if cl.DepartureTime is None else float(cl.DepartureTime),
                display=_display(req.DisplayParameters),
                meter_info_requested=req.MeterInfoRequested,
            )
        else:
            request = DcLoopRequest(
                present_voltage=f(req.EVPresentVoltage),
                target_current=f(cl.EVTargetCurrent),
                target_voltage=f(cl.EVTargetVoltage),
                energy=_energy_request(cl)
                if cl.EVTargetEnergyRequest is not None
                and cl.EVMaximumEnergyRequest is not None
                and cl.EVMinimumEnergyRequest is not None
                else None,
                display=_display(req.DisplayParameters),
                meter_info_requested=req.MeterInfoRequested,
            )
        status = self.controller.dc_charge_loop(request, now)
        r, ro = to_rational, optional_rational
        lim = status.limits
        if mode is ControlMode.DYNAMIC:
            if lim is None or (
                bpt
                and None
                in (
                    lim.min_voltage,
                    lim.max_discharge_power,
                    lim.min_discharge_power,
                    lim.max_discharge_current,
                )
            ):
                raise TypeError(f"a Dynamic DC loop needs the EVSE's limits, got {lim!r}")
            t = status.targets
            extra: dict[str, Any] = {
                "DepartureTime": None
                if t is None or t.departure_time is None
                else int(t.departure_time),
                "MinimumSOC": None if t is None or t.minimum_soc is None else int(t.minimum_soc),
                "TargetSOC": None if t is None or t.target_soc is None else int(t.target_soc),
            }
            charge: dict[str, Any] = {
                "EVSEMaximumChargePower": r(lim.max_charge_power),
                "EVSEMinimumChargePower": r(lim.min_charge_power),
                "EVSEMaximumChargeCurrent": r(lim.max_charge_current),
                "EVSEMaximumVoltage": r(lim.max_voltage),
            }
            if bpt:
                assert lim.min_voltage is not None and lim.max_discharge_power is not None
                assert lim.min_discharge_power is not None and lim.max_discharge_current is not None
                res_mode: Any = dc.BPT_Dynamic_DC_CLResControlMode(
                    **extra,
                    **charge,
                    EVSEMaximumDischargePower=self._discharge_out(lim.max_discharge_power),
                    EVSEMinimumDischargePower=self._discharge_out(lim.min_discharge_power),
                    EVSEMaximumDischargeCurrent=self._discharge_out(lim.max_discharge_current),
                    EVSEMinimumVoltage=r(lim.min_voltage),
                )
            else:
                res_mode = dc.Dynamic_DC_CLResControlMode(**extra, **charge)
        else:
            charge = (
                {}
                if lim is None
                else {
                    "EVSEMaximumChargePower": r(lim.max_charge_power),
                    "EVSEMinimumChargePower": r(lim.min_charge_power),
                    "EVSEMaximumChargeCurrent": r(lim.max_charge_current),
                    "EVSEMaximumVoltage": r(lim.max_voltage),
                }
            )
            if bpt:
                if lim is not None:
                    charge["EVSEMinimumVoltage"] = ro(lim.min_voltage)
                    charge["EVSEMaximumDischargePower"] = (
                        None
                        if lim.max_discharge_power is None
                        else self._discharge_out(lim.max_discharge_power)
                    )
                    charge["EVSEMinimumDischargePower"] = (
                        None
                        if lim.min_discharge_power is None
                        else self._discharge_out(lim.min_discharge_power)
                    )
                    charge["EVSEMaximumDischargeCurrent"] = (
                        None
                        if lim.max_discharge_current is None
                        else self._discharge_out(lim.max_discharge_current)
                    )
                res_mode = dc.BPT_Scheduled_DC_CLResControlMode(**charge)
            else:
                res_mode = dc.Scheduled_DC_CLResControlMode(**charge)
        res = dc.DC_ChargeLoopRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            EVSEStatus=self._evse_status(now),
            MeterInfo=self._meter_info(now) if request.meter_info_requested else None,
            EVSEPresentCurrent=r(status.present_current),
            EVSEPresentVoltage=r(status.present_voltage),
            EVSEPowerLimitAchieved=status.power_limit_achieved,
            EVSECurrentLimitAchieved=status.current_limit_achieved,
            EVSEVoltageLimitAchieved=status.voltage_limit_achieved,
            CLResControlMode=res_mode,
        )
        return res, self.state

    def _ac_charge_loop(self, req: Any, now: float) -> tuple[Any, SeccState]:
        service = self._require_service(Service.AC, Service.AC_BPT)
        mode = self.control_mode
        bpt = service is Service.AC_BPT
        expected = f"{'BPT_' if bpt else ''}{'Dynamic' if mode is ControlMode.DYNAMIC else 'Scheduled'}_AC_CLReqControlMode"
        cl = req.CLReqControlMode
        if type(cl).__name__ != expected:
            raise _Refusal(
                ResponseCode.FAILED, f"{type(cl).__name__} in a {service} {mode} session"
            )
        fo = optional_float
        dynamic = mode is ControlMode.DYNAMIC
        request = AcLoopRequest(
            present_active_power=from_rational(cl.EVPresentActivePower),
            present_reactive_power=fo(cl.EVPresentReactivePower),
            energy=_energy_request(cl)
            if cl.EVTargetEnergyRequest is not None
            and cl.EVMaximumEnergyRequest is not None
            and cl.EVMinimumEnergyRequest is not None
            else None,
            max_charge_power=fo(cl.EVMaximumChargePower),
            min_charge_power=fo(cl.EVMinimumChargePower),
            max_discharge_power=self._optional_discharge_in(
                cl.EVMaximumDischargePower, "EVMaximumDischargePower"
            )
            if bpt
            else None,
            min_discharge_power=self._optional_discharge_in(
                cl.EVMinimumDischargePower, "EVMinimumDischargePower"
            )
            if bpt
            else None,
            departure_time=None
            if not dynamic or cl.DepartureTime is None
            else float(cl.DepartureTime),
            display=_display(req.DisplayParameters),
            meter_info_requested=req.MeterInfoRequested,
        )
        status = self.controller.ac_charge_loop(request, now)
        ro = optional_rational
        fields = {
            "EVSETargetActivePower": ro(status.target_active_power),
            "EVSETargetReactivePower": ro(status.target_reactive_power),
            "EVSEPresentActivePower": ro(status.present_active_power),
        }
        if dynamic:
            if status.target_active_power is None:
                raise TypeError("a Dynamic AC loop needs the EVSE's target active power")
            t = status.targets
            fields.update(
                DepartureTime=None
                if t is None or t.departure_time is None
                else int(t.departure_time),
                MinimumSOC=None if t is None or t.minimum_soc is None else int(t.minimum_soc),
                TargetSOC=None if t is None or t.target_soc is None else int(t.target_soc),
            )
            cls: Any = ac.BPT_Dynamic_AC_CLResControlMode if bpt else ac.Dynamic_AC_CLResControlMode
        else:
            cls = ac.BPT_Scheduled_AC_CLResControlMode if bpt else ac.Scheduled_AC_CLResControlMode
        res = ac.AC_ChargeLoopRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            EVSEStatus=self._evse_status(now),
            MeterInfo=self._meter_info(now) if request.meter_info_requested else None,
            EVSETargetFrequency=ro(status.target_frequency),
            CLResControlMode=cls(**fields),
        )
        return res, self.state

    def _evse_status(self, now: float) -> Any:
        notice = self.controller.next_notification(now)
        if notice is None:
            return None
        self._outs.append(
            Event(
                "notification_sent",
                {"notification": notice.notification.value, "max_delay": notice.max_delay},
            )
        )
        if notice.notification is not Notification.METERING_CONFIRMATION:
            self._pending_notice = notice
            self._outs.append(StartTimer(T_NOTICE, now + notice.max_delay))
        return common.EVSEStatusType(
            NotificationMaxDelay=int(notice.max_delay),
            EVSENotification=common.evseNotificationType(notice.notification.value),
        )

    def _notice_answered(self, progress: ChargeProgress) -> None:
        notice = self._pending_notice
        if notice is None:
            return
        answers = {
            Notification.PAUSE: ChargeProgress.STOP,
            Notification.TERMINATE: ChargeProgress.STOP,
            Notification.SERVICE_RENEGOTIATION: ChargeProgress.STOP,
            Notification.SCHEDULE_RENEGOTIATION: ChargeProgress.SCHEDULE_RENEGOTIATION,
            Notification.EXIT_STANDBY: ChargeProgress.START,
        }
        if answers.get(notice.notification) is progress:
            self._pending_notice = None
            self._outs.append(CancelTimer(T_NOTICE))

    def _meter_info(self, now: float) -> Any:
        m: MeterReading = self.controller.meter_reading(now)
        return common.MeterInfoType(
            MeterID=m.meter_id,
            ChargedEnergyReadingWh=max(0, round(m.charged_energy)),
            # the BPT reading belongs to BPT services only
            BPT_DischargedEnergyReadingWh=None
            if m.discharged_energy is None or self.service is None or not self.service.bidirectional
            else max(0, round(m.discharged_energy)),
        )

    def _welding_detection(self, req: Any, now: float) -> tuple[Any, SeccState]:
        self._require_service(Service.DC, Service.DC_BPT)
        present = self.controller.welding_detection(now)
        res = dc.DC_WeldingDetectionRes(
            Header=self._header(now),
            ResponseCode=ResponseCode.OK,
            EVSEPresentVoltage=to_rational(present),
        )
        return res, S.WELDING_DETECTION

    def _session_stop(self, req: Any, now: float) -> tuple[Any, SeccState]:
        kind = SessionEnd(req.ChargingSession.value)
        ok = common.SessionStopRes(Header=self._header(now), ResponseCode=ResponseCode.OK)
        info = {
            "charging_session": kind.value,
            "code": req.EVTerminationCode,
            "explanation": req.EVTerminationExplanation,
        }
        self._outs.append(Event("session_stop", info))
        if kind is SessionEnd.SERVICE_RENEGOTIATION:
            if not self.controller.service_renegotiation_supported():
                raise _Refusal(
                    ResponseCode.FAILED_NoServiceRenegotiationSupported,
                    "service renegotiation not supported",
                )
            self.service = self.parameter_set = None
            self._precharged = False
            return ok, S.SERVICE_DISCOVERY
        if kind is SessionEnd.PAUSE:
            if self.service is None or self.parameter_set is None:
                raise _Refusal(
                    ResponseCode.FAILED_PauseNotAllowed,
                    "nothing to pause before a service is selected",
                )
            self.store.keep(
                PausedSession(
                    self.session_id,
                    self.service,
                    self.parameter_set,
                    self.evcc_id or "",
                    self.config.evse_id,
                )
            )
            self._end(Closure.PAUSED, "SessionStop(Pause)", now)
        else:
            self._end(Closure.TERMINATED, "SessionStop(Terminate)", now)
        return ok, S.CLOSING


# --- helpers ------------------------------------------------------------------------------------


def _payload_type_of(request: Request) -> PayloadType:
    if request is R.SUPPORTED_APP_PROTOCOL:
        return PayloadType.SAP
    if request.value.startswith("DC_"):
        return PayloadType.DC
    if request.value.startswith("AC_"):
        return PayloadType.AC
    return PayloadType.COMMON


#: The payload type each request must arrive under (a DC message as "common" is out of place).
_PAYLOAD_TYPE: Mapping[Request, PayloadType] = {r: _payload_type_of(r) for r in Request}


def _namespace_fits(service: Service, namespace: str | None) -> bool:
    return namespace == (DC_NAMESPACE if service.is_dc else AC_NAMESPACE)


def _energy_request(mode: Any) -> EnergyRequest:
    f, fo = from_rational, optional_float
    return EnergyRequest(
        target=f(mode.EVTargetEnergyRequest),
        maximum=f(mode.EVMaximumEnergyRequest),
        minimum=f(mode.EVMinimumEnergyRequest),
        maximum_v2x=fo(getattr(mode, "EVMaximumV2XEnergyRequest", None)),
        minimum_v2x=fo(getattr(mode, "EVMinimumV2XEnergyRequest", None)),
    )


def _display(d: Any) -> Display | None:
    if d is None:
        return None
    return Display(
        present_soc=d.PresentSOC,
        minimum_soc=d.MinimumSOC,
        target_soc=d.TargetSOC,
        maximum_soc=d.MaximumSOC,
        remaining_time_to_target_soc=d.RemainingTimeToTargetSOC,
        charging_complete=d.ChargingComplete,
        battery_capacity=optional_float(d.BatteryEnergyCapacity),
    )


def _charge_side_ok(*values: Any) -> bool:
    """Charge-side limits are never negative (DcLimits would refuse them: say FAILED instead)."""
    return all(from_rational(v) >= 0 for v in values)


def _dc_limits_problem(ev: DcLimits) -> str | None:
    if ev.min_charge_power > ev.max_charge_power:
        return "EVMinimumChargePower above EVMaximumChargePower"
    if ev.min_charge_current > ev.max_charge_current:
        return "EVMinimumChargeCurrent above EVMaximumChargeCurrent"
    if ev.min_voltage <= 0 or ev.max_voltage <= 0 or ev.min_voltage > ev.max_voltage:
        return f"EV voltage range {ev.min_voltage}..{ev.max_voltage} V is not a range"
    if ev.bidirectional:
        assert ev.max_discharge_power is not None and ev.min_discharge_power is not None
        assert ev.max_discharge_current is not None and ev.min_discharge_current is not None
        # discharge values are <= 0: the "maximum" is the more negative one
        if (
            ev.min_discharge_power < ev.max_discharge_power
            or ev.min_discharge_current < ev.max_discharge_current
        ):
            return "EVMinimumDischarge* above EVMaximumDischarge*"
    return None
