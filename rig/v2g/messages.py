"""ISO 15118-20 messages at the wire: names, payload types, RationalNumbers, the sign convention of
discharge values, ServiceDetail parameter sets, and the minimal responses that carry a FAILED code.

Everything the engines put on the wire or take from it passes through here, so the rest of the
stack works in SI values and the controller types of rig.v2g.controllers.

- `to_rational(x)` / `from_rational(r)`: exact both ways within the schema's ranges (Value a
  short, Exponent a byte): a RationalNumber becomes the float nearest to Value·10^Exponent, and
  that float becomes a RationalNumber of the same value; a float with at most 4-5 significant
  digits round-trips unchanged. Wider values are rounded to the nearest representable one.
- `DischargeSign`: discharge limits on the wire as magnitudes (the common reading of the schema)
  or as negative values (some products; EVerest made it a setting). A per-peer setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any

from rig.v2g.controllers import (
    BptChannel,
    DcLimits,
    GeneratorMode,
    IslandingDetection,
    MobilityNeedsMode,
    ParameterSet,
    Pricing,
)
from rig.v2g.exi import ac, app, common, dc, decode, encode
from rig.v2g.v2gtp import PayloadType, frame
from rig.v2g.vocabulary import ControlMode, Service

# --- namespaces and payload types ---------------------------------------------------------------

DC_NAMESPACE = "urn:iso:std:iso:15118:-20:DC"
AC_NAMESPACE = "urn:iso:std:iso:15118:-20:AC"
V20_NAMESPACE_PREFIX = "urn:iso:std:iso:15118:-20:"
#: The -20 protocol's major version in supportedAppProtocol (Josev offers and accepts 1) (?).
V20_MAJOR_VERSION = 1
V20_MINOR_VERSION = 0
DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"
ISO2_NAMESPACES = ("urn:iso:15118:2:2013:MsgDef", "urn:iso:15118:2:2010:MsgDef")

#: The codec's namespace set for each payload type of a -20 session.
NAMESPACE_SET: Mapping[PayloadType, str] = {
    PayloadType.SAP: "app",
    PayloadType.COMMON: "common",
    PayloadType.AC: "ac",
    PayloadType.DC: "dc",
}
_PAYLOAD_TYPE_OF_SET = {ns: pt for pt, ns in NAMESPACE_SET.items()}


def namespace_of(service: Service) -> str:
    """The supportedAppProtocol namespace an energy service is negotiated under."""
    return DC_NAMESPACE if service.is_dc else AC_NAMESPACE


class Request(StrEnum):
    """The requests an EVCC sends in a -20 session, by element name."""

    SUPPORTED_APP_PROTOCOL = "supportedAppProtocolReq"
    SESSION_SETUP = "SessionSetupReq"
    AUTHORIZATION_SETUP = "AuthorizationSetupReq"
    AUTHORIZATION = "AuthorizationReq"
    SERVICE_DISCOVERY = "ServiceDiscoveryReq"
    SERVICE_DETAIL = "ServiceDetailReq"
    SERVICE_SELECTION = "ServiceSelectionReq"
    DC_CHARGE_PARAMETER_DISCOVERY = "DC_ChargeParameterDiscoveryReq"
    AC_CHARGE_PARAMETER_DISCOVERY = "AC_ChargeParameterDiscoveryReq"
    SCHEDULE_EXCHANGE = "ScheduleExchangeReq"
    DC_CABLE_CHECK = "DC_CableCheckReq"
    DC_PRE_CHARGE = "DC_PreChargeReq"
    POWER_DELIVERY = "PowerDeliveryReq"
    DC_CHARGE_LOOP = "DC_ChargeLoopReq"
    AC_CHARGE_LOOP = "AC_ChargeLoopReq"
    DC_WELDING_DETECTION = "DC_WeldingDetectionReq"
    SESSION_STOP = "SessionStopReq"
    # Requests the rig's engines do not implement; the SECC answers them with a FAILED code
    # (or closes, where no response can be formed) instead of treating them as garbage.
    CERTIFICATE_INSTALLATION = "CertificateInstallationReq"
    METERING_CONFIRMATION = "MeteringConfirmationReq"
    VEHICLE_CHECK_IN = "VehicleCheckInReq"
    VEHICLE_CHECK_OUT = "VehicleCheckOutReq"

    @property
    def response(self) -> str:
        """The element name of the matching response."""
        return self.value[:-3] + "Res"


_REQUESTS = {r.value: r for r in Request}
_RESPONSES = {r.response: r for r in Request}


def request_of(name: str) -> Request | None:
    """The Request an element name is, or None (a response, or not a -20 request)."""
    return _REQUESTS.get(name)


def request_answered_by(response_name: str) -> Request | None:
    """The Request a response element answers, or None."""
    return _RESPONSES.get(response_name)


_CLASS_INFO: dict[type, tuple[str, PayloadType]] = {}


def _class_info(cls: type) -> tuple[str, PayloadType]:
    info = _CLASS_INFO.get(cls)
    if info is None:
        meta = getattr(cls, "_exi_meta", None)
        if meta is None or meta.element is None:
            raise TypeError(f"{cls.__name__} is not a message (global element) class")
        info = _CLASS_INFO[cls] = (meta.element, _PAYLOAD_TYPE_OF_SET[meta.ns_set])
    return info


def message_name(message: Any) -> str:
    """The element name of a message, e.g. "DC_ChargeLoopReq"."""
    return _class_info(type(message))[0]


def payload_type_of(message: Any) -> PayloadType:
    """The V2GTP payload type a message travels under."""
    return _class_info(type(message))[1]


def encode_frame(message: Any) -> tuple[PayloadType, bytes]:
    """The message's payload type and its whole V2GTP frame (EXI inside)."""
    payload_type = payload_type_of(message)
    return payload_type, frame(payload_type, encode(message))


def decode_payload(payload_type: PayloadType, payload: bytes) -> Any:
    """The message in a frame's payload; raises EXIDecodeError, or KeyError for a payload type
    with no -20 message grammar."""
    return decode(NAMESPACE_SET[payload_type], payload)


def header(session_id: bytes, timestamp: int) -> Any:
    """A MessageHeader (no signature)."""
    return common.MessageHeaderType(SessionID=session_id, TimeStamp=timestamp)


# --- response codes -----------------------------------------------------------------------------

#: The -20 responseCodeType enumeration (the same class in every -20 namespace).
ResponseCode: Any = common.responseCodeType
AppResponseCode: Any = app.responseCodeType


def code_name(code: Any) -> str:
    return str(code.name)


_FAILED = frozenset(
    c
    for enum in (ResponseCode, AppResponseCode)
    for c in enum
    if c.name.upper().startswith("FAILED")
)
_OK = frozenset(
    c for enum in (ResponseCode, AppResponseCode) for c in enum if c.name.upper().startswith("OK")
)


def is_failed(code: Any) -> bool:
    """FAILED and FAILED_* (and the handshake's Failed_NoNegotiation): the session ends."""
    return code in _FAILED


def is_ok(code: Any) -> bool:
    """OK and OK_* (OK_NewSessionEstablished, OK_SuccessfulNegotiation, ...)."""
    return code in _OK


def response_code_of(name: str) -> Any:
    """The responseCodeType member of a name; ValueError for a name that is not one."""
    try:
        return ResponseCode[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a -20 response code") from None


# --- RationalNumber -----------------------------------------------------------------------------

SHORT_MAX = 32767
EXPONENT_RANGE = (-128, 127)
#: Exact powers of ten as ints (int/int true division is correctly rounded, float powers are not).
_POW10: tuple[int, ...] = tuple(int(10**k) for k in range(140))


class RationalRangeError(ValueError):
    """A value too large (or not finite) for a RationalNumber."""


@lru_cache(maxsize=4096)
def to_rational(value: float) -> Any:
    """The RationalNumber of `value` (exact when it has a representation, else the nearest)."""
    # Cached: a session sends the same limits and voltages over and over, and the objects are
    # frozen, so they can be shared.
    if not math.isfinite(value):
        raise RationalRangeError(f"{value} has no RationalNumber")
    if value == int(value) and -SHORT_MAX - 1 <= value <= SHORT_MAX:
        return common.RationalNumberType(Exponent=0, Value=int(value))
    magnitude = abs(value)
    if magnitude < 1e-120:  # below the smallest step the exponent allows: zero
        return common.RationalNumberType(Exponent=0, Value=0)
    # The most digits a short holds: start one decade below the estimate (log10 of a float may
    # be off by one ulp at powers of ten) and move up until the value fits.
    limit = SHORT_MAX + 1 if value < 0 else SHORT_MAX  # a short reaches -32768
    exponent = max(math.floor(math.log10(magnitude)) - 5, EXPONENT_RANGE[0])
    while True:
        if exponent > EXPONENT_RANGE[1]:
            raise RationalRangeError(f"{value} is too large for a RationalNumber")
        number = _scaled(magnitude, exponent)
        if number <= limit:
            break
        exponent += 1
    # Shortest form: a value that is exact with fewer digits gets them (0.25 -> 25e-2).
    while number and number % 10 == 0 and exponent < 0:
        number, exponent = number // 10, exponent + 1
    while exponent > 0 and number * 10 <= limit:  # and small exponents (11000e0, not 11e3)
        number, exponent = number * 10, exponent - 1
    return common.RationalNumberType(Exponent=exponent, Value=-number if value < 0 else number)


def _scaled(magnitude: float, exponent: int) -> int:
    """round(magnitude / 10**exponent): exact for a value that is V·10^exponent, since the float
    of V·10^e times 10^-e is within an ulp of the integer V."""
    if exponent < 0:
        return round(magnitude * _POW10[-exponent])
    return round(magnitude / _POW10[exponent])


def from_rational(r: Any) -> float:
    """The float nearest to Value·10^Exponent (int arithmetic, correctly rounded)."""
    value: int = r.Value
    exponent: int = r.Exponent
    if exponent >= 0:
        return float(value * _POW10[exponent])
    return value / _POW10[-exponent]


def optional_rational(value: float | None) -> Any:
    return None if value is None else to_rational(value)


def optional_float(r: Any) -> float | None:
    return None if r is None else from_rational(r)


# --- sign convention of discharge values --------------------------------------------------------


class DischargeSign(StrEnum):
    """How a peer writes discharge limits on the wire (a bench setting per peer)."""

    MAGNITUDE = "magnitude"  # EVMaximumDischargePower 11 kW is 11000 (the common reading)
    NEGATIVE = "negative"  # ... is -11000 (some products)


def discharge_to_wire(value: float, sign: DischargeSign) -> Any:
    """A discharge value of the rig (<= 0 W or A) as the peer's convention writes it."""
    magnitude = abs(value)
    return to_rational(magnitude if sign is DischargeSign.MAGNITUDE else -magnitude)


def discharge_from_wire(r: Any, sign: DischargeSign) -> tuple[float, bool]:
    """A wire discharge value in the rig's convention (<= 0), and whether its sign was the one
    `sign` says (a peer that writes the other convention is accepted and reported)."""
    value = from_rational(r)
    expected = value >= 0 if sign is DischargeSign.MAGNITUDE else value <= 0
    return -abs(value), expected


# --- ServiceDetail parameter sets ---------------------------------------------------------------


def _int_parameter(name: str, value: int) -> Any:
    return common.ParameterType(Name=name, intValue=value)


def parameter_set_to_wire(ps: ParameterSet) -> Any:
    """A ParameterSet as ServiceDetailRes carries it (every value an intValue, as Josev and
    EVerest send them; EVSENominalVoltage a rationalNumber when not a whole number)."""
    params = [
        _int_parameter("Connector", ps.connector),
        _int_parameter("ControlMode", ps.control_mode.id),
    ]
    if ps.nominal_voltage is not None:
        if ps.nominal_voltage == int(ps.nominal_voltage):
            params.append(_int_parameter("EVSENominalVoltage", int(ps.nominal_voltage)))
        else:
            params.append(
                common.ParameterType(
                    Name="EVSENominalVoltage", rationalNumber=to_rational(ps.nominal_voltage)
                )
            )
    params.append(_int_parameter("MobilityNeedsMode", int(ps.mobility_needs_mode)))
    params.append(_int_parameter("Pricing", int(ps.pricing)))
    if ps.bpt_channel is not None:
        params.append(_int_parameter("BPTChannel", int(ps.bpt_channel)))
    if ps.generator_mode is not None:
        params.append(_int_parameter("GeneratorMode", int(ps.generator_mode)))
    if ps.islanding_detection is not None:
        params.append(
            _int_parameter("GridCodeIslandingDetectionMethod", int(ps.islanding_detection))
        )
    return common.ParameterSetType(ParameterSetID=ps.id, Parameter=params)


class ParameterError(ValueError):
    """A ServiceDetailRes parameter set the rig cannot read."""


def _parameter_value(p: Any) -> float | int | bool | str | None:
    for attr in ("intValue", "shortValue", "byteValue", "boolValue", "finiteString"):
        v = getattr(p, attr)
        if v is not None:
            return v  # type: ignore[no-any-return]
    if p.rationalNumber is not None:
        return from_rational(p.rationalNumber)
    return None


def parameter_set_from_wire(ps: Any) -> ParameterSet:
    """A wire ParameterSet as the typed value; ParameterError names what is wrong."""
    values: dict[str, Any] = {}
    for p in ps.Parameter:
        values[p.Name] = _parameter_value(p)

    def integer(name: str, default: int | None = None) -> int | None:
        v = values.get(name, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
            raise ParameterError(f"parameter {name} = {v!r} is not a whole number")
        return int(v)

    try:
        mode = integer("ControlMode")
        if mode is None:
            raise ParameterError(f"parameter set {ps.ParameterSetID} has no ControlMode")
        nominal = values.get("EVSENominalVoltage")
        bpt = integer("BPTChannel")
        gen = integer("GeneratorMode")
        isl = integer("GridCodeIslandingDetectionMethod")
        return ParameterSet(
            id=ps.ParameterSetID,
            control_mode=ControlMode.from_id(mode),
            connector=integer("Connector", 1) or 0,
            mobility_needs_mode=MobilityNeedsMode(integer("MobilityNeedsMode", 1) or 1),
            pricing=Pricing(integer("Pricing", 0) or 0),
            nominal_voltage=float(nominal) if isinstance(nominal, (int, float)) else None,
            bpt_channel=None if bpt is None else BptChannel(bpt),
            generator_mode=None if gen is None else GeneratorMode(gen),
            islanding_detection=None if isl is None else IslandingDetection(isl),
        )
    except ParameterError:
        raise
    except ValueError as e:  # an enum value outside its range
        raise ParameterError(f"parameter set {ps.ParameterSetID}: {e}") from None


# --- minimal responses with a FAILED code --------------------------------------------------------

_ZERO = None


def _zero() -> Any:
    global _ZERO
    if _ZERO is None:
        _ZERO = to_rational(0)
    return _ZERO


def _dc_loop_control_mode(service: Service | None, mode: ControlMode | None) -> Any:
    z = _zero()
    bpt = service is Service.DC_BPT
    if mode is ControlMode.DYNAMIC:
        common_fields = {
            "EVSEMaximumChargePower": z,
            "EVSEMinimumChargePower": z,
            "EVSEMaximumChargeCurrent": z,
            "EVSEMaximumVoltage": z,
        }
        if bpt:
            return dc.BPT_Dynamic_DC_CLResControlMode(
                **common_fields,
                EVSEMaximumDischargePower=z,
                EVSEMinimumDischargePower=z,
                EVSEMaximumDischargeCurrent=z,
                EVSEMinimumVoltage=z,
            )
        return dc.Dynamic_DC_CLResControlMode(**common_fields)
    return dc.BPT_Scheduled_DC_CLResControlMode() if bpt else dc.Scheduled_DC_CLResControlMode()


def _ac_loop_control_mode(service: Service | None, mode: ControlMode | None) -> Any:
    bpt = service is Service.AC_BPT
    if mode is ControlMode.DYNAMIC:
        cls = ac.BPT_Dynamic_AC_CLResControlMode if bpt else ac.Dynamic_AC_CLResControlMode
        return cls(EVSETargetActivePower=_zero())
    return ac.BPT_Scheduled_AC_CLResControlMode() if bpt else ac.Scheduled_AC_CLResControlMode()


UINT32_MAX = 0xFFFFFFFF


def whole_second_durations(
    durations: Sequence[float], begins: float, time_anchor: int
) -> list[int]:
    """The wire's whole-second Durations of consecutive entries that begin at `begins` (s, the
    TimeAnchor's clock) and last `durations`, counted from the whole-second `time_anchor`: each
    entry ends at its true end rounded to the second, so no boundary is more than half a second
    off, however many entries come before it (truncating each duration, and the anchor, moved
    every boundary earlier, by up to a second per entry)."""
    out: list[int] = []
    edge = time_anchor
    end = begins
    for duration in durations:
        end += duration
        nxt = max(edge, math.floor(end + 0.5))
        out.append(min(nxt - edge, UINT32_MAX))
        edge = nxt
    return out


def flat_price_levels(time_anchor: int, schedule_id: int, duration: float) -> Any:
    """A PriceLevelSchedule of one level for `duration` s: "no price information" in the shape
    a ChargingSchedule is expected to carry. -20 asks for a price schedule in each one (EVerest
    quotes [V2G20-2176] and leaves it out; Josev's message models refuse a schedule without) (?)."""
    entry = common.PriceLevelScheduleEntryType(
        Duration=min(int(duration), UINT32_MAX), PriceLevel=0
    )
    return common.PriceLevelScheduleType(
        TimeAnchor=time_anchor,
        PriceScheduleID=max(1, schedule_id),
        NumberOfPriceLevels=1,
        PriceLevelScheduleEntries=common.PriceLevelScheduleEntryListType(
            PriceLevelScheduleEntry=[entry]
        ),
    )


def placeholder_schedule_tuple(timestamp: int) -> Any:
    """A one-entry zero-power tuple: the schema wants a Scheduled_SEResControlMode with a tuple
    even when EVSEProcessing is Ongoing (Josev notes the same), and the EV must ignore it then."""
    entry = common.PowerScheduleEntryType(Duration=0, Power=_zero())
    schedule = common.PowerScheduleType(
        TimeAnchor=timestamp,
        PowerScheduleEntries=common.PowerScheduleEntryListType(PowerScheduleEntry=[entry]),
    )
    return common.ScheduleTupleType(
        ScheduleTupleID=1,
        ChargingSchedule=common.ChargingScheduleType(
            PowerSchedule=schedule, PriceLevelSchedule=flat_price_levels(timestamp, 1, 0)
        ),
    )


def failed_response(
    request: Request,
    hdr: Any,
    code: Any,
    *,
    evse_id: str = "",
    service: Service | None = None,
    control_mode: ControlMode | None = None,
    service_id: int | None = None,
) -> Any | None:
    """The response to `request` with `code` and only the schema's mandatory fields (zeros),
    choosing control-mode variants from the session's `service` and `control_mode` where the
    schema needs one; None where no response can be formed (CertificateInstallationRes)."""
    z = _zero()
    finished = common.processingType.Finished
    match request:
        case Request.SUPPORTED_APP_PROTOCOL:
            return app.supportedAppProtocolRes(
                ResponseCode=app.responseCodeType.Failed_NoNegotiation
            )
        case Request.SESSION_SETUP:
            return common.SessionSetupRes(Header=hdr, ResponseCode=code, EVSEID=evse_id)
        case Request.AUTHORIZATION_SETUP:
            return common.AuthorizationSetupRes(
                Header=hdr,
                ResponseCode=code,
                AuthorizationServices=[common.authorizationType.EIM],
                CertificateInstallationService=False,
                EIM_ASResAuthorizationMode=common.EIM_ASResAuthorizationModeType(),
            )
        case Request.AUTHORIZATION:
            return common.AuthorizationRes(Header=hdr, ResponseCode=code, EVSEProcessing=finished)
        case Request.SERVICE_DISCOVERY:
            sid = (service or Service.DC).id
            return common.ServiceDiscoveryRes(
                Header=hdr,
                ResponseCode=code,
                ServiceRenegotiationSupported=False,
                EnergyTransferServiceList=common.ServiceListType(
                    Service=[common.ServiceType(ServiceID=sid, FreeService=True)]
                ),
            )
        case Request.SERVICE_DETAIL:
            minimal = common.ParameterSetType(
                ParameterSetID=0, Parameter=[_int_parameter("ControlMode", 1)]
            )
            return common.ServiceDetailRes(
                Header=hdr,
                ResponseCode=code,
                ServiceID=service_id if service_id is not None else (service or Service.DC).id,
                ServiceParameterList=common.ServiceParameterListType(ParameterSet=[minimal]),
            )
        case Request.SERVICE_SELECTION:
            return common.ServiceSelectionRes(Header=hdr, ResponseCode=code)
        case Request.DC_CHARGE_PARAMETER_DISCOVERY:
            fields = {
                "EVSEMaximumChargePower": z,
                "EVSEMinimumChargePower": z,
                "EVSEMaximumChargeCurrent": z,
                "EVSEMinimumChargeCurrent": z,
                "EVSEMaximumVoltage": z,
                "EVSEMinimumVoltage": z,
            }
            mode: Any
            if service is Service.DC_BPT:
                mode = dc.BPT_DC_CPDResEnergyTransferMode(
                    **fields,
                    EVSEMaximumDischargePower=z,
                    EVSEMinimumDischargePower=z,
                    EVSEMaximumDischargeCurrent=z,
                    EVSEMinimumDischargeCurrent=z,
                )
            else:
                mode = dc.DC_CPDResEnergyTransferMode(**fields)
            return dc.DC_ChargeParameterDiscoveryRes(
                Header=hdr, ResponseCode=code, DC_CPDResEnergyTransferMode=mode
            )
        case Request.AC_CHARGE_PARAMETER_DISCOVERY:
            fields = {
                "EVSEMaximumChargePower": z,
                "EVSEMinimumChargePower": z,
                "EVSENominalFrequency": z,
            }
            ac_mode: Any
            if service is Service.AC_BPT:
                ac_mode = ac.BPT_AC_CPDResEnergyTransferMode(
                    **fields, EVSEMaximumDischargePower=z, EVSEMinimumDischargePower=z
                )
            else:
                ac_mode = ac.AC_CPDResEnergyTransferMode(**fields)
            return ac.AC_ChargeParameterDiscoveryRes(
                Header=hdr, ResponseCode=code, AC_CPDResEnergyTransferMode=ac_mode
            )
        case Request.SCHEDULE_EXCHANGE:
            if control_mode is ControlMode.SCHEDULED:
                scheduled = common.Scheduled_SEResControlModeType(
                    ScheduleTuple=[placeholder_schedule_tuple(hdr.TimeStamp)]
                )
                return common.ScheduleExchangeRes(
                    Header=hdr,
                    ResponseCode=code,
                    EVSEProcessing=finished,
                    Scheduled_SEResControlMode=scheduled,
                )
            return common.ScheduleExchangeRes(
                Header=hdr,
                ResponseCode=code,
                EVSEProcessing=finished,
                Dynamic_SEResControlMode=common.Dynamic_SEResControlModeType(),
            )
        case Request.DC_CABLE_CHECK:
            return dc.DC_CableCheckRes(Header=hdr, ResponseCode=code, EVSEProcessing=finished)
        case Request.DC_PRE_CHARGE:
            return dc.DC_PreChargeRes(Header=hdr, ResponseCode=code, EVSEPresentVoltage=z)
        case Request.POWER_DELIVERY:
            return common.PowerDeliveryRes(Header=hdr, ResponseCode=code)
        case Request.DC_CHARGE_LOOP:
            return dc.DC_ChargeLoopRes(
                Header=hdr,
                ResponseCode=code,
                EVSEPresentCurrent=z,
                EVSEPresentVoltage=z,
                EVSEPowerLimitAchieved=False,
                EVSECurrentLimitAchieved=False,
                EVSEVoltageLimitAchieved=False,
                CLResControlMode=_dc_loop_control_mode(service, control_mode),
            )
        case Request.AC_CHARGE_LOOP:
            return ac.AC_ChargeLoopRes(
                Header=hdr,
                ResponseCode=code,
                CLResControlMode=_ac_loop_control_mode(service, control_mode),
            )
        case Request.DC_WELDING_DETECTION:
            return dc.DC_WeldingDetectionRes(Header=hdr, ResponseCode=code, EVSEPresentVoltage=z)
        case Request.SESSION_STOP:
            return common.SessionStopRes(Header=hdr, ResponseCode=code)
        case Request.METERING_CONFIRMATION:
            return common.MeteringConfirmationRes(Header=hdr, ResponseCode=code)
        case Request.VEHICLE_CHECK_IN:
            return common.VehicleCheckInRes(Header=hdr, ResponseCode=code)
        case Request.VEHICLE_CHECK_OUT:
            return common.VehicleCheckOutRes(
                Header=hdr,
                ResponseCode=code,
                EVSECheckOutStatus=common.evseCheckOutStatusType.Completed,
            )
        case Request.CERTIFICATE_INSTALLATION:
            return None  # its mandatory chains and signed data cannot be made up
    raise AssertionError(f"unhandled request {request}")


def names(messages: Sequence[object]) -> list[str]:
    """Element names of messages (for tests and traces)."""
    return [message_name(m) for m in messages]


def dc_limits_from_wire(
    mode: Any,
    party: str,
    bpt: bool,
    discharge_in: Callable[[Any, str], float],
    *,
    target_soc: float | None = None,
    power_ramp_limit: float | None = None,
) -> DcLimits:
    """The limits of a DC ChargeParameterDiscovery energy transfer mode, the EV's (`party` "EV")
    or the EVSE's ("EVSE"); the BPT discharge values through `discharge_in` (the engine's sign
    convention and its mismatch event), None without BPT."""

    def charge(wire: str) -> float:
        return from_rational(getattr(mode, f"{party}{wire}"))

    def discharge(wire: str) -> float | None:
        return discharge_in(getattr(mode, f"{party}{wire}"), f"{party}{wire}") if bpt else None

    return DcLimits(
        max_charge_power=charge("MaximumChargePower"),
        min_charge_power=charge("MinimumChargePower"),
        max_charge_current=charge("MaximumChargeCurrent"),
        min_charge_current=charge("MinimumChargeCurrent"),
        max_voltage=charge("MaximumVoltage"),
        min_voltage=charge("MinimumVoltage"),
        max_discharge_power=discharge("MaximumDischargePower"),
        min_discharge_power=discharge("MinimumDischargePower"),
        max_discharge_current=discharge("MaximumDischargeCurrent"),
        min_discharge_current=discharge("MinimumDischargeCurrent"),
        target_soc=target_soc,
        power_ramp_limit=power_ramp_limit,
    )
