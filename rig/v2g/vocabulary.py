"""The session vocabulary every layer shares: session phases, energy services, control modes.

One spelling each. Plans (`wait_for: charge_loop`, `session: {service: DC_BPT}`), the emulators,
the engines, the trace and the report all use these enums; the wire codes (ServiceID, ControlMode
parameter values, ISO 15118-20 8.3.5 / FACTS.md "Services and parameters") live beside the names.
"""

from __future__ import annotations

from enum import StrEnum


class SessionPhase(StrEnum):
    """Where a session stands, coarse enough for plans and reports; the engines keep the
    message-level state machine inside and report phase changes in these terms."""

    IDLE = "idle"  # not started (or unplugged)
    SETUP = "setup"  # link up to ScheduleExchange: handshake, setup, authorization, services
    CABLE_CHECK = "cable_check"  # DC_CableCheck loop (DC only)
    PRECHARGE = "precharge"  # DC_PreCharge loop (DC only)
    CHARGE_LOOP = "charge_loop"  # after PowerDelivery(Start): AC/DC_ChargeLoop, energy flows
    STANDBY = "standby"  # PowerDelivery(Standby): the session holds, no energy
    PAUSED = "paused"  # SessionStop(Pause): the session may resume with the same SessionID
    STOPPING = "stopping"  # PowerDelivery(Stop), welding detection, SessionStop(Terminate)
    STOPPED = "stopped"  # ended (normally or not; the trace says which)


class Service(StrEnum):
    """Energy transfer services by their -20 name; `.id` is the ServiceID on the wire."""

    AC = "AC"
    DC = "DC"
    WPT = "WPT"
    DC_ACDP = "DC_ACDP"
    AC_BPT = "AC_BPT"
    DC_BPT = "DC_BPT"
    DC_ACDP_BPT = "DC_ACDP_BPT"

    @property
    def id(self) -> int:
        return _SERVICE_IDS[self]

    @property
    def bidirectional(self) -> bool:
        return self in _BIDIRECTIONAL

    @property
    def is_dc(self) -> bool:
        return self in _DC_SERVICES

    @classmethod
    def from_id(cls, service_id: int) -> Service:
        for service, sid in _SERVICE_IDS.items():
            if sid == service_id:
                return service
        raise ValueError(f"unknown ServiceID {service_id}")


# Sets (a hash lookup): both properties are asked several times per ChargeLoop exchange.
_BIDIRECTIONAL = frozenset((Service.AC_BPT, Service.DC_BPT, Service.DC_ACDP_BPT))
_DC_SERVICES = frozenset((Service.DC, Service.DC_BPT, Service.DC_ACDP, Service.DC_ACDP_BPT))

_SERVICE_IDS = {
    Service.AC: 1,
    Service.DC: 2,
    Service.WPT: 3,
    Service.DC_ACDP: 4,
    Service.AC_BPT: 5,
    Service.DC_BPT: 6,
    Service.DC_ACDP_BPT: 7,
}

#: The services the rig runs sessions for (the others are named so that a peer's offer decodes).
SESSION_SERVICES = (Service.DC_BPT, Service.AC_BPT, Service.DC, Service.AC)


class ControlMode(StrEnum):
    """Who steers the power (FACTS.md "Who decides discharge"); `.id` is the parameter value."""

    SCHEDULED = "scheduled"
    DYNAMIC = "dynamic"

    @property
    def id(self) -> int:
        return 1 if self is ControlMode.SCHEDULED else 2

    @classmethod
    def from_id(cls, value: int) -> ControlMode:
        if value == 1:
            return cls.SCHEDULED
        if value == 2:
            return cls.DYNAMIC
        raise ValueError(f"unknown ControlMode {value}")
