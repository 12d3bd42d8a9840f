"""FaultRule validation (every error names the attribute and what is wrong with it, so a plan can
be refused at validation with file:line) and the templates OUT_OF_SEQUENCE sends."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from rig.v2g.exi import common
from rig.v2g.faults import (
    MESSAGE_NAMES,
    TEMPLATES,
    FaultKind,
    FaultRule,
    FaultRuleError,
    SessionView,
    build_message,
)
from rig.v2g.messages import (
    Request,
    decode_payload,
    encode_frame,
    message_name,
    payload_type_of,
    to_rational,
)
from rig.v2g.v2gtp import HEADER_SIZE
from rig.v2g.vocabulary import SESSION_SERVICES, ControlMode

K = FaultKind
LOOP = "DC_ChargeLoopReq"
DISCHARGE = "CLReqControlMode.EVMaximumDischargePower"


def refused(attribute: str, match: str, **kw: Any) -> FaultRuleError:
    with pytest.raises(FaultRuleError, match=match) as info:
        FaultRule(**kw)
    assert info.value.attribute == attribute, info.value
    return info.value


def test_message_names_and_kinds() -> None:
    refused(
        "message",
        "'DC_ChargeLoopReqq' is not an ISO 15118-20 message",
        kind=K.DROP,
        message="DC_ChargeLoopReqq",
    )
    refused("message", "is not an ISO 15118-20 message", kind=K.DROP, message=None)
    refused("kind", "'explode' is not one of delay, drop", kind="explode")
    assert FaultRule("out_of_sequence", send="SessionSetupReq").kind is K.OUT_OF_SEQUENCE
    assert FaultRule("DROP", LOOP).kind is K.DROP  # a plan may write the name
    assert all(FaultRule(K.DROP, name).message == name for name in MESSAGE_NAMES)


def test_occurrence_window_and_count() -> None:
    refused("nth", "whole number >= 1", kind=K.DROP, nth=0)
    refused("nth", "whole number >= 1", kind=K.DROP, nth=1.5)
    refused("count", "whole number >= 1", kind=K.DROP, count=0)
    refused("count", "whole number >= 1", kind=K.DROP, count=True)
    refused("window", r"must be \(t0, t1\)", kind=K.DROP, window=(1.0,))
    refused("window", r"must be \(t0, t1\)", kind=K.DROP, window=("1 s", 2))
    refused("window", r"must be \(t0, t1\)", kind=K.DROP, window=(0, float("inf")))
    refused("window", "t0 must be before t1", kind=K.DROP, window=(5, 5))
    assert FaultRule(K.DROP, window=[1, 2.5]).window == (1.0, 2.5)  # a YAML list is fine
    refused("count", "SILENCE happens once", kind=K.SILENCE, count=2)
    refused("count", "CLOSE happens once", kind=K.CLOSE, count=3)


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        (K.DELAY, "delay"),
        (K.CORRUPT, "bits"),
        (K.TRUNCATE, "keep"),
        (K.REORDER, "hold"),
        (K.WRONG_VALUE, "field"),
        (K.OUT_OF_SEQUENCE, "send"),
    ],
)
def test_each_kind_needs_its_parameters(kind: FaultKind, missing: str) -> None:
    refused(missing, f"{kind.name} needs {missing}", kind=kind, message=LOOP)


def test_parameters_of_another_kind_are_refused() -> None:
    refused("delay", "is not a parameter of DROP", kind=K.DROP, delay=1.0)
    refused("keep", "is not a parameter of CORRUPT", kind=K.CORRUPT, bits=1, keep=3)
    refused("header", "is not a parameter of TRUNCATE", kind=K.TRUNCATE, keep=3, header=True)
    refused("replace", "is not a parameter of DUPLICATE", kind=K.DUPLICATE, replace=True)
    refused("hold", "is not a parameter of DELAY", kind=K.DELAY, delay=1, hold=1)
    refused("value", "is not a parameter of SILENCE", kind=K.SILENCE, value=3)


def test_parameter_values() -> None:
    refused("delay", r"number of seconds > 0", kind=K.DELAY, delay=0)
    refused("delay", r"number of seconds > 0", kind=K.DELAY, delay=float("nan"))
    refused("hold", r"number of seconds > 0", kind=K.REORDER, hold=-1)
    refused("bits", "whole number >= 1", kind=K.CORRUPT, bits=0)
    refused("keep", "nothing kept is DROP", kind=K.TRUNCATE, keep=0)
    refused("header", "true or false", kind=K.CORRUPT, bits=1, header="yes")
    refused(
        "send",
        "'SessionSetupReqq' is not a message the injector can build",
        kind=K.OUT_OF_SEQUENCE,
        send="SessionSetupReqq",
    )
    refused(
        "send",
        "'CertificateInstallationReq' is not a message",
        kind=K.OUT_OF_SEQUENCE,
        send="CertificateInstallationReq",
    )


def test_wrong_value_fields_must_exist_in_the_message() -> None:
    refused(
        "message", "one message name, not", kind=K.WRONG_VALUE, field="Header.SessionID", value="00"
    )
    e = refused(
        "field",
        "DC_ChargeLoopReq has no field 'EVMaximumDischargePower'",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="EVMaximumDischargePower",
        value=1,
    )
    assert "CLReqControlMode" in e.reason  # the message's fields are listed
    refused(
        "field",
        r"DC_ChargeLoopReq.CLReqControlMode has no field 'EVMaximumDischargePowr'",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="CLReqControlMode.EVMaximumDischargePowr",
        value=1,
    )
    # a field of another message of the same session is not one of this message's
    refused(
        "field",
        "has no field 'EVSEMaximumDischargePower'",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="CLReqControlMode.EVSEMaximumDischargePower",
        value=1,
    )
    refused(
        "field",
        "a simple value: nothing is below it",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="MeterInfoRequested.Value",
        value=1,
    )
    refused(
        "field",
        "is not a repeated element",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="EVPresentVoltage[0]",
        value=1,
    )
    refused(
        "field",
        r"is a list: name an item, Parameter\[0\]",
        kind=K.WRONG_VALUE,
        message="ServiceDetailRes",
        field="ServiceParameterList.ParameterSet[0].Parameter.intValue",
        value=1,
    )
    refused(
        "field",
        "is not a field name",
        kind=K.WRONG_VALUE,
        message=LOOP,
        field="Header..SessionID",
        value="00",
    )
    refused("field", "empty field path", kind=K.WRONG_VALUE, message=LOOP, field="", value=1)


def test_wrong_value_values_must_fit_the_field() -> None:
    def bad(field: str, value: Any, match: str, message: str = LOOP) -> None:
        refused("value", match, kind=K.WRONG_VALUE, message=message, field=field, value=value)

    bad(DISCHARGE, "20 kW", "expected an object for RationalNumberType")
    bad(DISCHARGE, {"Exponent": 3}, "required element missing: Value")
    bad(DISCHARGE, {"Exponent": 3, "Value": 40_000}, r"Value: 40000 is outside xs:short's range")
    bad(DISCHARGE, {"Exponent": 3, "Value": 2, "Unit": "W"}, "unknown keys")
    bad(DISCHARGE, 1e200, "too large for a RationalNumber")
    bad(DISCHARGE, True, "expected an object")  # a bool is not a number here
    bad("MeterInfoRequested", 1, "takes true or false")
    bad("Header.SessionID", "0102", r"length 2 is outside sessionIDType's 8..8")
    bad("Header.SessionID", "zz", "takes hex digits")
    bad("Header.TimeStamp", -1, "outside xs:unsignedLong's range")
    bad("ChargeProgress", "Go", "'Go' is not one of Start, Stop, Standby", "PowerDeliveryReq")
    bad("CLReqControlMode", {"Dynamic_AC_CLReqControlMode": {}}, "is not one of")
    bad("CLReqControlMode", {"EVTargetCurrent": {}}, "'EVTargetCurrent' is not one of BPT_Dynamic")
    bad("CLReqControlMode", {"CLReqControlMode": {}}, "is not one of")  # the abstract head
    bad("CLReqControlMode", [1], re.escape("give {member name: body}"))


def test_wrong_value_accepts_json_forms_and_si_numbers() -> None:
    rule = FaultRule(K.WRONG_VALUE, LOOP, field=DISCHARGE, value={"Exponent": 3, "Value": 20})
    assert rule.typed_value == common.RationalNumberType(Exponent=3, Value=20)
    assert FaultRule(K.WRONG_VALUE, LOOP, field=DISCHARGE, value=20_000).typed_value == (
        to_rational(20_000)
    )
    assert FaultRule(K.WRONG_VALUE, LOOP, field=DISCHARGE, value=-1.5).typed_value == (
        common.RationalNumberType(Exponent=-1, Value=-15)
    )
    # a variant may be named; a list item indexed; a whole substitution value given
    named = FaultRule(
        K.WRONG_VALUE,
        LOOP,
        field="CLReqControlMode.BPT_Dynamic_DC_CLReqControlMode.EVMaximumDischargePower",
        value=1,
    )
    assert named.typed_value == to_rational(1)
    FaultRule(
        K.WRONG_VALUE,
        "ServiceDetailRes",
        field="ServiceParameterList.ParameterSet[0].Parameter[1].intValue",
        value=7,
    )
    whole = FaultRule(
        K.WRONG_VALUE,
        LOOP,
        field="CLReqControlMode",
        value={
            "Scheduled_DC_CLReqControlMode": {
                "EVTargetCurrent": {"Exponent": 0, "Value": 5},
                "EVTargetVoltage": {"Exponent": 0, "Value": 400},
            }
        },
    )
    assert type(whole.typed_value).__name__ == "Scheduled_DC_CLReqControlMode"
    enum = FaultRule(K.WRONG_VALUE, "PowerDeliveryReq", field="ChargeProgress", value="Stop")
    assert enum.typed_value is common.chargeProgressType.Stop


def test_wrong_value_adds_an_optional_field_the_message_left_out() -> None:
    rule = FaultRule(K.WRONG_VALUE, LOOP, field=DISCHARGE, value=5_000)
    view = SessionView(control_mode=ControlMode.SCHEDULED)  # BPT_Scheduled: discharge optional
    message = build_message(LOOP, view)
    assert message.CLReqControlMode.EVMaximumDischargePower is None
    changed, old = rule.with_value(message)
    assert old is None and changed.CLReqControlMode.EVMaximumDischargePower == to_rational(5_000)


def test_every_message_name_has_a_class() -> None:
    from rig.v2g.faults import _message_class

    for name in MESSAGE_NAMES:
        assert _message_class(name).__name__ == name


@pytest.mark.parametrize(
    ("service", "mode"), list(itertools.product(SESSION_SERVICES, list(ControlMode)))
)
def test_every_template_is_valid_exi_of_the_sessions_variant(
    service: Any, mode: ControlMode
) -> None:
    sid = bytes.fromhex("1122334455667788")
    view = SessionView(session_id=sid, timestamp=99, service=service, control_mode=mode)
    for name in TEMPLATES:
        message = build_message(name, view)
        assert message_name(message) == name
        payload_type, data = encode_frame(message)
        assert payload_type == payload_type_of(message)
        assert decode_payload(payload_type, data[HEADER_SIZE:]) == message
        hdr = getattr(message, "Header", None)
        if hdr is not None:
            assert (hdr.SessionID, hdr.TimeStamp) == (sid, 99)
        mode_field = getattr(message, "CLReqControlMode", None)
        if mode_field is not None:
            variant = type(mode_field).__name__
            assert variant.startswith("BPT_") == service.bidirectional
            assert ("Dynamic" in variant) == (mode is ControlMode.DYNAMIC)
    # every request the engines know has a template, but the two with signed content
    missing = {r.value for r in Request} - set(TEMPLATES)
    assert missing == {"CertificateInstallationReq", "MeteringConfirmationReq"}
