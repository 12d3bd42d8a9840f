"""Wire helpers: RationalNumbers exact both ways, the discharge sign convention, parameter sets,
message names and payload types, and the minimal FAILED responses (schema-valid, each one)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.v2g import exi
from rig.v2g.controllers import (
    BptChannel,
    GeneratorMode,
    IslandingDetection,
    MobilityNeedsMode,
    ParameterSet,
    Pricing,
)
from rig.v2g.engine import CancelTimer, Close, Event, Received, StartTimer
from rig.v2g.exchange import Wire
from rig.v2g.exi import common, dc
from rig.v2g.messages import (
    DischargeSign,
    ParameterError,
    RationalRangeError,
    Request,
    ResponseCode,
    decode_payload,
    discharge_from_wire,
    discharge_to_wire,
    encode_frame,
    failed_response,
    from_rational,
    header,
    is_failed,
    is_ok,
    message_name,
    parameter_set_from_wire,
    parameter_set_to_wire,
    payload_type_of,
    request_answered_by,
    request_of,
    to_rational,
)
from rig.v2g.records import record
from rig.v2g.v2gtp import PayloadType
from rig.v2g.vocabulary import ControlMode, Service

exponents = st.integers(min_value=-20, max_value=20)
shorts = st.integers(min_value=-32768, max_value=32767)


@settings(max_examples=500, deadline=None)
@given(value=shorts, exponent=exponents)
def test_a_rational_reads_back_as_the_same_number(value: int, exponent: int) -> None:
    r = common.RationalNumberType(Exponent=exponent, Value=value)
    x = from_rational(r)
    assert x == float(Decimal(value).scaleb(exponent))  # the nearest float, correctly rounded
    back = to_rational(x)
    assert Decimal(back.Value).scaleb(back.Exponent) == Decimal(value).scaleb(exponent)
    assert -32768 <= back.Value <= 32767


@settings(max_examples=300, deadline=None)
@given(value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_any_float_becomes_the_nearest_rational(value: float) -> None:
    r = to_rational(value)
    assert -32768 <= r.Value <= 32767 and -128 <= r.Exponent <= 127
    x = from_rational(r)
    # a short has 4-5 significant digits: the error is at most half a unit of the last one
    assert abs(x - value) <= 0.5 * 10.0**r.Exponent * (1 + 1e-9) + 1e-300


def test_rational_examples() -> None:
    cases = {
        0.0: (0, 0),
        11_000.0: (11000, 0),
        45_000.0: (4500, 1),
        0.25: (25, -2),
        230.5: (2305, -1),
        -11_000.0: (-11000, 0),
        400.0: (400, 0),
        1e-5: (1, -5),
    }
    for value, (v, e) in cases.items():
        r = to_rational(value)
        assert (r.Value, r.Exponent) == (v, e), value
    assert from_rational(to_rational(123_456.0)) == 123_460.0  # rounded: 5 digits at most
    for bad in (float("nan"), float("inf"), 1e200):
        with pytest.raises(RationalRangeError):
            to_rational(bad)


def test_discharge_values_in_both_sign_conventions() -> None:
    magnitude = discharge_to_wire(-11_000.0, DischargeSign.MAGNITUDE)
    negative = discharge_to_wire(-11_000.0, DischargeSign.NEGATIVE)
    assert (magnitude.Value, negative.Value) == (11000, -11000)
    # a positive rig value is still a discharge magnitude: the sign is never trusted blindly
    assert discharge_to_wire(5.0, DischargeSign.NEGATIVE).Value == -5
    assert discharge_from_wire(magnitude, DischargeSign.MAGNITUDE) == (-11_000.0, True)
    assert discharge_from_wire(negative, DischargeSign.NEGATIVE) == (-11_000.0, True)
    # the other convention is accepted, converted, and flagged
    assert discharge_from_wire(negative, DischargeSign.MAGNITUDE) == (-11_000.0, False)
    assert discharge_from_wire(magnitude, DischargeSign.NEGATIVE) == (-11_000.0, False)
    zero = to_rational(0)
    assert discharge_from_wire(zero, DischargeSign.MAGNITUDE)[1]
    assert discharge_from_wire(zero, DischargeSign.NEGATIVE)[1]


def test_parameter_sets_round_trip_through_the_wire() -> None:
    sets = [
        ParameterSet(
            1,
            ControlMode.DYNAMIC,
            connector=2,
            mobility_needs_mode=MobilityNeedsMode.PROVIDED_BY_SECC,
            pricing=Pricing.ABSOLUTE,
            bpt_channel=BptChannel.SEPARATED,
            generator_mode=GeneratorMode.GRID_FORMING,
        ),
        ParameterSet(
            7,
            ControlMode.SCHEDULED,
            connector=1,
            nominal_voltage=230.0,
            bpt_channel=BptChannel.UNIFIED,
            generator_mode=GeneratorMode.GRID_FOLLOWING,
            islanding_detection=IslandingDetection.PASSIVE,
        ),
        ParameterSet(0, ControlMode.SCHEDULED, nominal_voltage=400.5),
    ]
    for ps in sets:
        wire = parameter_set_to_wire(ps)
        res = common.ServiceDetailRes(
            Header=header(bytes(8), 0),
            ResponseCode=ResponseCode.OK,
            ServiceID=6,
            ServiceParameterList=common.ServiceParameterListType(ParameterSet=[wire]),
        )
        decoded = exi.decode("common", exi.encode(res)).ServiceParameterList.ParameterSet[0]
        assert parameter_set_from_wire(decoded) == ps
    names = [p.Name for p in parameter_set_to_wire(sets[1]).Parameter]
    assert names == [
        "Connector",
        "ControlMode",
        "EVSENominalVoltage",
        "MobilityNeedsMode",
        "Pricing",
        "BPTChannel",
        "GeneratorMode",
        "GridCodeIslandingDetectionMethod",
    ]
    assert all(p.intValue is not None for p in parameter_set_to_wire(sets[0]).Parameter)


def test_parameter_set_problems_and_bad_wire_sets() -> None:
    assert ParameterSet(1, ControlMode.DYNAMIC).problems(Service.DC) == []
    assert ParameterSet(1, ControlMode.DYNAMIC).problems(Service.DC_BPT)  # no BPT parameters
    assert ParameterSet(
        1,
        ControlMode.DYNAMIC,
        bpt_channel=BptChannel.UNIFIED,
        generator_mode=GeneratorMode.GRID_FORMING,
    ).problems(Service.AC_BPT)
    assert ParameterSet(
        1, ControlMode.SCHEDULED, mobility_needs_mode=MobilityNeedsMode.PROVIDED_BY_SECC
    ).problems(Service.DC)
    missing_mode = common.ParameterSetType(
        ParameterSetID=3, Parameter=[common.ParameterType(Name="Connector", intValue=1)]
    )
    with pytest.raises(ParameterError, match="no ControlMode"):
        parameter_set_from_wire(missing_mode)
    bad_mode = common.ParameterSetType(
        ParameterSetID=3, Parameter=[common.ParameterType(Name="ControlMode", intValue=9)]
    )
    with pytest.raises(ParameterError):
        parameter_set_from_wire(bad_mode)
    text_mode = common.ParameterSetType(
        ParameterSetID=3, Parameter=[common.ParameterType(Name="ControlMode", finiteString="2")]
    )
    with pytest.raises(ParameterError, match="not a whole number"):
        parameter_set_from_wire(text_mode)


def test_names_payload_types_and_requests() -> None:
    req = dc.DC_CableCheckReq(Header=header(bytes(8), 5))
    assert message_name(req) == "DC_CableCheckReq"
    assert payload_type_of(req) is PayloadType.DC
    assert (
        payload_type_of(
            common.SessionStopReq(
                Header=header(bytes(8), 5), ChargingSession=common.chargingSessionType.Pause
            )
        )
        is PayloadType.COMMON
    )
    assert request_of("DC_CableCheckReq") is Request.DC_CABLE_CHECK
    assert request_of("DC_CableCheckRes") is None
    assert request_answered_by("supportedAppProtocolRes") is Request.SUPPORTED_APP_PROTOCOL
    assert Request.AC_CHARGE_LOOP.response == "AC_ChargeLoopRes"
    pt, data = encode_frame(req)
    assert pt is PayloadType.DC and data[:4] == bytes.fromhex("01fe8004")
    assert decode_payload(pt, data[8:]) == req
    assert is_failed(ResponseCode.FAILED_SequenceError) and not is_ok(ResponseCode.FAILED)
    assert is_ok(ResponseCode.OK_OldSessionJoined) and not is_failed(
        ResponseCode.WARNING_StandbyNotAllowed
    )


@pytest.mark.parametrize("request_kind", list(Request))
@pytest.mark.parametrize(
    ("service", "mode"),
    [
        (Service.DC_BPT, ControlMode.DYNAMIC),
        (Service.DC, ControlMode.SCHEDULED),
        (Service.AC_BPT, ControlMode.SCHEDULED),
        (Service.AC, ControlMode.DYNAMIC),
        (None, None),
    ],
)
def test_every_failed_response_is_schema_valid(
    request_kind: Request, service: Service | None, mode: ControlMode | None
) -> None:
    hdr = header(bytes.fromhex("0102030405060708"), 1_700_000_000)
    res = failed_response(
        request_kind,
        hdr,
        ResponseCode.FAILED_SequenceError,
        evse_id="E1",
        service=service,
        control_mode=mode,
    )
    if request_kind is Request.CERTIFICATE_INSTALLATION:
        assert res is None  # its mandatory signed data cannot be made up: the SECC closes
        return
    assert message_name(res) == request_kind.response
    pt, data = encode_frame(res)
    assert decode_payload(pt, data[8:]) == res
    if request_kind is Request.SUPPORTED_APP_PROTOCOL:
        assert res.ResponseCode.name == "Failed_NoNegotiation"
    else:
        assert res.ResponseCode is ResponseCode.FAILED_SequenceError


def test_records_are_json_able() -> None:
    req = common.SessionSetupReq(Header=header(bytes(8), 7), EVCCID="EV1")
    send = Wire.send(req)
    rec = record(send, side="ev", time=1.5)
    assert rec["kind"] == "message" and rec["direction"] == "sent"
    assert rec["name"] == "SessionSetupReq" and rec["payload_type"] == 0x8002
    assert rec["payload_type_name"] == "COMMON"
    assert bytes.fromhex(rec["hex"]) == send.frame
    assert rec["json"]["SessionSetupReq"]["EVCCID"] == "EV1"
    got = record(Received(send.frame, send.payload_type, send.name, send.message))
    assert got["direction"] == "received"
    others = [
        record(StartTimer("t", 3.0)),
        record(CancelTimer("t")),
        record(Event("x", {"phase": ControlMode.DYNAMIC, "raw": b"\x01", "n": (1, 2)})),
        record(Close("bye")),
    ]
    assert others[2]["data"] == {"phase": "dynamic", "raw": "01", "n": [1, 2]}
    json.dumps([rec, got, *others])
    with pytest.raises(TypeError):
        record("nope")  # type: ignore[arg-type]
