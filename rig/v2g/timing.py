"""Timeouts and pacing of the -20 engines: one frozen dataclass of values per side, in seconds.

Defaults come from open implementations as FACTS.md "Timing" gives them (Josev = the iso15118
package's Timeouts enum; EVerest = libiso15118), with the requirement ID or source beside each.
A firmware profile overrides any of them with `overridden({...})`, which refuses unknown names.
The engines never wait themselves: they emit StartTimer/CancelTimer with these durations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from rig.v2g.messages import Request


class _Overridable:
    __slots__ = ()

    def overridden(self, overrides: Mapping[str, float]) -> Self:
        """A copy with some values replaced; ValueError names an unknown or negative one."""
        known = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown timing(s) {unknown}")
        for name, value in overrides.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{type(self).__name__}.{name} must be a number >= 0")
        return dataclasses.replace(self, **overrides)  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class EvccTiming(_Overridable):
    """The EV's timeouts: how long it waits for each response, and for the Ongoing loops."""

    # Message timeouts: the EVCC waits this long for the response to each request (Josev).
    supported_app_protocol: float = 2.0  # Josev; FACTS.md "SupportedAppProtocol 2"
    session_setup: float = 2.0  # Josev SESSION_SETUP_REQ
    authorization_setup: float = 2.0  # Josev AUTHORIZATION_SETUP_REQ
    authorization: float = 2.0  # Josev AUTHORIZATION_REQ
    service_discovery: float = 2.0  # Josev SERVICE_DISCOVERY_REQ
    service_detail: float = 5.0  # Josev SERVICE_DETAIL_REQ
    service_selection: float = 2.0  # Josev SERVICE_SELECTION_REQ
    charge_parameter_discovery: float = 2.0  # Josev CHARGE_PARAMETER_DISCOVERY_REQ
    schedule_exchange: float = 2.0  # Josev SCHEDULE_EXCHANGE_REQ
    cable_check: float = 2.0  # Josev DC_CABLE_CHECK_REQ
    pre_charge: float = 2.0  # Josev DC_PRE_CHARGE_REQ
    power_delivery: float = 2.0  # Josev POWER_DELIVERY_REQ
    charge_loop: float = 0.5  # Josev AC_CHARGE_LOOP_REQ and DC_CHARGE_LOOP_REQ
    welding_detection: float = 2.0  # Josev DC_WELDING_DETECTION_REQ
    session_stop: float = 2.0  # Josev SESSION_STOP_REQ
    certificate_installation: float = 5.0  # Josev CERTIFICATE_INSTALLATION_REQ
    other_request: float = 2.0  # Josev: 2 s for every other -20 request

    # Sequence limits
    communication_setup: float = (
        20.0  # Josev V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT: up to SessionSetupRes
    )
    ongoing: float = 60.0  # Josev V2G_EVCC_ONGOING_TIMEOUT: any EVSEProcessing=Ongoing loop
    cable_check_limit: float = 40.0  # Josev V2G_EVCC_CABLE_CHECK_TIMEOUT
    pre_charge_limit: float = 10.0  # Josev V2G_EVCC_PRE_CHARGE_TIMEOUT

    # Pacing (rig's choice): the gap before the next ChargeLoopReq, and before repeating a
    # request the EVSE answered with Ongoing. A quarter second gives 14,400 loops an hour.
    charge_loop_interval: float = 0.25
    ongoing_interval: float = 0.25

    def response_timeout(self, request: Request) -> float:
        """How long the EVCC waits for the response to `request`."""
        return float(getattr(self, _EVCC_TIMEOUT_FIELD.get(request, "other_request")))


_EVCC_TIMEOUT_FIELD = {
    Request.SUPPORTED_APP_PROTOCOL: "supported_app_protocol",
    Request.SESSION_SETUP: "session_setup",
    Request.AUTHORIZATION_SETUP: "authorization_setup",
    Request.AUTHORIZATION: "authorization",
    Request.SERVICE_DISCOVERY: "service_discovery",
    Request.SERVICE_DETAIL: "service_detail",
    Request.SERVICE_SELECTION: "service_selection",
    Request.DC_CHARGE_PARAMETER_DISCOVERY: "charge_parameter_discovery",
    Request.AC_CHARGE_PARAMETER_DISCOVERY: "charge_parameter_discovery",
    Request.SCHEDULE_EXCHANGE: "schedule_exchange",
    Request.DC_CABLE_CHECK: "cable_check",
    Request.DC_PRE_CHARGE: "pre_charge",
    Request.POWER_DELIVERY: "power_delivery",
    Request.DC_CHARGE_LOOP: "charge_loop",
    Request.AC_CHARGE_LOOP: "charge_loop",
    Request.DC_WELDING_DETECTION: "welding_detection",
    Request.SESSION_STOP: "session_stop",
    Request.CERTIFICATE_INSTALLATION: "certificate_installation",
}


@dataclass(frozen=True, slots=True)
class SeccTiming(_Overridable):
    """The charger's timeouts."""

    # From the start of the connection until the SessionSetupReq (Josev uses 20 s for its
    # SessionSetup state; EVerest's SECC 18 s).
    communication_setup: float = 20.0
    # Between a response and the next request (Josev V2G_SECC_SEQUENCE_TIMEOUT).
    sequence: float = 60.0
    # How long an Ongoing loop may last before the SECC answers FAILED (EVerest 55 s for
    # ScheduleExchange; FACTS.md "Ongoing 60").
    ongoing: float = 60.0
    # Ongoing limit of EIM authorization (EVerest: 180 s).
    authorization_ongoing: float = 180.0
    # [V2G20-1643]: after SessionStopRes (or a FAILED response) the SECC waits for the EV to
    # close the TCP connection, then closes it itself (EVerest waits 5 s).
    close_after_stop: float = 5.0
