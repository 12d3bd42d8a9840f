"""Facets are enforced: encoding an out-of-range value raises EXIEncodeError naming the field
path (never a wrong stream), and decoding a stream whose value breaks a facet raises
EXIDecodeError. Decoder-side streams are built bit by bit here from the EXI rules, not by our
encoder."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rig.v2g import exi
from rig.v2g.exi import app, common, dc

SID = bytes.fromhex("5A2CDE53F701D4AC")


def header(**kw: Any) -> Any:
    return common.MessageHeaderType(**{"SessionID": SID, "TimeStamp": 1718607534, **kw})


def rational(value: int = 400, exponent: int = 0) -> Any:
    return dc.RationalNumberType(Exponent=exponent, Value=value)


def charge_loop(**kw: Any) -> Any:
    fields = {
        "Header": dc.MessageHeaderType(SessionID=SID, TimeStamp=1),
        "MeterInfoRequested": False,
        "EVPresentVoltage": rational(),
        "CLReqControlMode": dc.Scheduled_DC_CLReqControlMode(
            EVTargetCurrent=rational(20), EVTargetVoltage=rational(400)
        ),
    }
    fields.update(kw)
    return dc.DC_ChargeLoopReq(**fields)


def encode_error(message: Any) -> exi.EXIEncodeError:
    with pytest.raises(exi.EXIEncodeError) as info:
        exi.encode(message)
    return info.value


def test_valid_message_encodes() -> None:
    assert exi.decode("dc", exi.encode(charge_loop())) == charge_loop()


@pytest.mark.parametrize(
    ("message", "path", "words"),
    [
        # n-bit integer (xs:byte, 8 bits offset 128)
        (
            charge_loop(EVPresentVoltage=rational(400, 128)),
            "DC_ChargeLoopReq.EVPresentVoltage.Exponent",
            "-128..127",
        ),
        (
            charge_loop(EVPresentVoltage=rational(400, -129)),
            "DC_ChargeLoopReq.EVPresentVoltage.Exponent",
            "-128..127",
        ),
        # n-bit integer with facets (percentValueType 0..100)
        (
            charge_loop(DisplayParameters=dc.DisplayParametersType(PresentSOC=101)),
            "DC_ChargeLoopReq.DisplayParameters.PresentSOC",
            "0..100",
        ),
        (
            charge_loop(DisplayParameters=dc.DisplayParametersType(PresentSOC=-1)),
            "DC_ChargeLoopReq.DisplayParameters.PresentSOC",
            "0..100",
        ),
        # signed integer (xs:short)
        (
            charge_loop(EVPresentVoltage=rational(32768)),
            "DC_ChargeLoopReq.EVPresentVoltage.Value",
            "-32768..32767",
        ),
        (
            charge_loop(EVPresentVoltage=rational(-32769)),
            "DC_ChargeLoopReq.EVPresentVoltage.Value",
            "-32768..32767",
        ),
        # unsigned integer (xs:unsignedLong)
        (
            charge_loop(Header=dc.MessageHeaderType(SessionID=SID, TimeStamp=2**64)),
            "DC_ChargeLoopReq.Header.TimeStamp",
            "0..18446744073709551615",
        ),
        (
            charge_loop(Header=dc.MessageHeaderType(SessionID=SID, TimeStamp=-1)),
            "DC_ChargeLoopReq.Header.TimeStamp",
            "0..18446744073709551615",
        ),
        # hexBinary length facet (sessionIDType: length 8)
        (
            charge_loop(Header=dc.MessageHeaderType(SessionID=b"1234567", TimeStamp=1)),
            "DC_ChargeLoopReq.Header.SessionID",
            "7 octets",
        ),
        # wrong Python type
        (charge_loop(MeterInfoRequested=1), "DC_ChargeLoopReq.MeterInfoRequested", "expected bool"),
        (
            charge_loop(EVPresentVoltage=rational("400")),
            "DC_ChargeLoopReq.EVPresentVoltage.Value",
            "expected int",
        ),
        (
            charge_loop(EVPresentVoltage=rational(True)),
            "DC_ChargeLoopReq.EVPresentVoltage.Value",
            "expected int",
        ),
        # missing required element
        (charge_loop(EVPresentVoltage=None), "DC_ChargeLoopReq.EVPresentVoltage", "missing"),
        # substitution group: a class that is not a member
        (charge_loop(CLReqControlMode=rational()), "DC_ChargeLoopReq.CLReqControlMode", "expected"),
    ],
)
def test_dc_charge_loop_facets(message: Any, path: str, words: str) -> None:
    e = encode_error(message)
    assert e.field_path == path
    assert words in str(e)


def test_string_max_length() -> None:
    m = common.SessionSetupReq(Header=header(), EVCCID="x" * 256)  # identifierType: maxLength 255
    e = encode_error(m)
    assert e.field_path == "SessionSetupReq.EVCCID"
    assert "256 characters" in str(e)
    assert exi.encode(dataclasses.replace(m, EVCCID="x" * 255))


def test_unsigned_short_range() -> None:
    e = encode_error(common.ServiceDetailReq(Header=header(), ServiceID=65536))
    assert e.field_path == "ServiceDetailReq.ServiceID"


def test_unsigned_int_with_min_inclusive() -> None:
    tuple_ = common.ScheduleTupleType(
        ScheduleTupleID=0,  # numericIDType: 1..4294967295
        ChargingSchedule=common.ChargingScheduleType(
            PowerSchedule=common.PowerScheduleType(
                TimeAnchor=0,
                PowerScheduleEntries=common.PowerScheduleEntryListType(
                    PowerScheduleEntry=[common.PowerScheduleEntryType(Duration=1, Power=rational())]
                ),
            )
        ),
    )
    m = common.ScheduleExchangeRes(
        Header=header(),
        ResponseCode=common.responseCodeType.OK,
        EVSEProcessing=common.processingType.Finished,
        Scheduled_SEResControlMode=common.Scheduled_SEResControlModeType(ScheduleTuple=[tuple_]),
    )
    e = encode_error(m)
    assert (
        e.field_path
        == "ScheduleExchangeRes.Scheduled_SEResControlMode.ScheduleTuple[0].ScheduleTupleID"
    )
    assert "1..4294967295" in str(e)


def test_nbit_range_with_offset() -> None:
    def req(points: int) -> Any:
        return common.ScheduleExchangeReq(
            Header=header(),
            MaximumSupportingPoints=points,  # 12..1024: 10 bits, offset 12
            Dynamic_SEReqControlMode=common.Dynamic_SEReqControlModeType(
                DepartureTime=0,
                EVTargetEnergyRequest=rational(),
                EVMaximumEnergyRequest=rational(),
                EVMinimumEnergyRequest=rational(),
            ),
        )

    for bad in (11, 1025):
        assert encode_error(req(bad)).field_path == "ScheduleExchangeReq.MaximumSupportingPoints"
    for good in (12, 1024):
        assert exi.decode("common", exi.encode(req(good))) == req(good)


def test_list_counts() -> None:
    def res(services: list[Any]) -> Any:
        return common.AuthorizationSetupRes(
            Header=header(),
            ResponseCode=common.responseCodeType.OK,
            AuthorizationServices=services,  # 1..2
            CertificateInstallationService=False,
            EIM_ASResAuthorizationMode=common.EIM_ASResAuthorizationModeType(),
        )

    eim = common.authorizationType.EIM
    e = encode_error(res([eim, eim, eim]))
    assert e.field_path == "AuthorizationSetupRes.AuthorizationServices"
    assert "3 items" in str(e) and "1..2" in str(e)
    assert encode_error(res([])).field_path == "AuthorizationSetupRes.AuthorizationServices"
    assert exi.decode("common", exi.encode(res([eim, eim]))) == res([eim, eim])


def test_base64_length_facets() -> None:
    def pnc(challenge: bytes) -> Any:
        return common.AuthorizationSetupRes(
            Header=header(),
            ResponseCode=common.responseCodeType.OK,
            AuthorizationServices=[common.authorizationType.PnC],
            CertificateInstallationService=False,
            PnC_ASResAuthorizationMode=common.PnC_ASResAuthorizationModeType(
                GenChallenge=challenge
            ),
        )

    e = encode_error(pnc(bytes(15)))  # genChallengeType: length 16
    assert e.field_path == "AuthorizationSetupRes.PnC_ASResAuthorizationMode.GenChallenge"
    meter = dc.MeterInfoType(MeterID="m", ChargedEnergyReadingWh=1, MeterSignature=bytes(65))
    res = dc.DC_ChargeLoopRes(
        Header=dc.MessageHeaderType(SessionID=SID, TimeStamp=1),
        ResponseCode=dc.responseCodeType.OK,
        MeterInfo=meter,
        EVSEPresentCurrent=rational(),
        EVSEPresentVoltage=rational(),
        EVSEPowerLimitAchieved=False,
        EVSECurrentLimitAchieved=False,
        EVSEVoltageLimitAchieved=False,
        CLResControlMode=dc.Scheduled_DC_CLResControlMode(),
    )
    e = encode_error(res)  # meterSignatureType: maxLength 64
    assert e.field_path == "DC_ChargeLoopRes.MeterInfo.MeterSignature"
    assert "65 octets" in str(e)


def test_enumeration_needs_a_member() -> None:
    m = common.SessionStopRes(Header=header(), ResponseCode="OK")
    e = encode_error(m)
    assert e.field_path == "SessionStopRes.ResponseCode"
    assert "responseCodeType" in str(e)


def test_choice_needs_exactly_one_alternative() -> None:
    both = common.AuthorizationReq(
        Header=header(),
        SelectedAuthorizationService=common.authorizationType.EIM,
        EIM_AReqAuthorizationMode=common.EIM_AReqAuthorizationModeType(),
        PnC_AReqAuthorizationMode=common.PnC_AReqAuthorizationModeType(
            Id="id1",
            GenChallenge=bytes(16),
            ContractCertificateChain=common.ContractCertificateChainType(
                Certificate=b"c", SubCertificates=common.SubCertificatesType(Certificate=[b"s"])
            ),
        ),
    )
    assert encode_error(both).field_path == "AuthorizationReq.PnC_AReqAuthorizationMode"
    neither = dataclasses.replace(
        both, EIM_AReqAuthorizationMode=None, PnC_AReqAuthorizationMode=None
    )
    assert "incomplete" in str(encode_error(neither))


def test_app_protocol_priority_and_count() -> None:
    def proto(priority: int) -> Any:
        return app.AppProtocolType(
            ProtocolNamespace="urn:iso:std:iso:15118:-20:DC",
            VersionNumberMajor=1,
            VersionNumberMinor=0,
            SchemaID=1,
            Priority=priority,  # priorityType 1..20
        )

    assert encode_error(app.supportedAppProtocolReq(AppProtocol=[proto(21)])).field_path == (
        "supportedAppProtocolReq.AppProtocol[0].Priority"
    )
    too_many = app.supportedAppProtocolReq(AppProtocol=[proto(1)] * 21)  # maxOccurs 20
    assert encode_error(too_many).field_path == "supportedAppProtocolReq.AppProtocol"


def test_a_type_class_is_not_a_document() -> None:
    with pytest.raises(exi.EXIEncodeError, match="not of a global element"):
        exi.encode(dc.RationalNumberType(Exponent=0, Value=1))


# --- the decoder rejects what the facets forbid (streams built by hand) -------------------------


class Bits:
    """A tiny independent bit writer for hand-made streams."""

    def __init__(self) -> None:
        self.bits = "10000000"  # EXI header 0x80

    def put(self, value: int, width: int) -> Bits:
        if width:
            self.bits += format(value, f"0{width}b")
        return self

    def uint(self, value: int) -> Bits:
        while value >= 128:
            self.put(128 | (value & 127), 8)
            value >>= 7
        return self.put(value, 8)

    def miss(self, text: str) -> Bits:
        self.uint(len(text) + 2)
        for ch in text:
            self.uint(ord(ch))
        return self

    def bytes(self) -> bytes:
        b = self.bits + "0" * (-len(self.bits) % 8)
        return int(b, 2).to_bytes(len(b) // 8, "big")


def app_req(priority_code: int, namespace_hits: list[str] | None = None) -> Bits:
    """supportedAppProtocolReq: root 0 of 2 (2 bits); AppProtocol items of the grammar
    (CH = 0, EE = 0 in 1 bit; list: 2 bits per further item, EE = 1)."""
    b = Bits().put(0, 2)
    items = namespace_hits or ["miss"]
    for i, how in enumerate(items):
        b.put(0, 1 if i == 0 else 2)  # SE(AppProtocol): first (1 production) or more (code 0)
        b.put(0, 1).put(0, 1)  # SE(ProtocolNamespace), CH
        if how == "miss":
            b.miss("urn:iso:std:iso:15118:-20:DC")
        elif how == "local":
            b.uint(0)  # local hit, 1 entry: 0 bits of index
        else:
            b.uint(1)  # global hit, 1 entry: 0 bits of index
        b.put(0, 1)  # EE
        b.put(0, 1).put(0, 1).uint(1).put(0, 1)  # VersionNumberMajor = 1
        b.put(0, 1).put(0, 1).uint(0).put(0, 1)  # VersionNumberMinor = 0
        b.put(0, 1).put(0, 1).put(1, 8).put(0, 1)  # SchemaID = 1 (unsignedByte, 8 bits)
        b.put(0, 1).put(0, 1).put(priority_code, 5).put(0, 1)  # Priority (offset 1, 5 bits)
        b.put(0, 1)  # EE of AppProtocolType
    return b.put(1, 2)  # EE of supportedAppProtocolReq (after 1..19 items: 2 bits, code 1)


def test_hand_built_stream_decodes() -> None:
    m = exi.decode("app", app_req(0).bytes())
    assert m.AppProtocol[0].Priority == 1
    assert exi.encode(m) == app_req(0).bytes()


def test_decoder_rejects_nbit_value_beyond_max_inclusive() -> None:
    exi.decode("app", app_req(19).bytes())  # priority 20: allowed
    with pytest.raises(exi.EXIDecodeError, match=r"Priority: value 21 outside 1\.\.20"):
        exi.decode("app", app_req(20).bytes())


def test_decoder_rejects_enumeration_index_beyond_the_values() -> None:
    # supportedAppProtocolRes: root 1, SE(ResponseCode), CH, 2-bit index 3 of 3 values
    stream = Bits().put(1, 2).put(0, 1).put(0, 1).put(3, 2).put(0, 1).put(1, 2).bytes()
    with pytest.raises(exi.EXIDecodeError, match="enumeration index 3 of 3") as info:
        exi.decode("app", stream)
    assert info.value.bit_offset == 12


def test_decoder_accepts_string_table_hits() -> None:
    for how in ("local", "global"):
        m = exi.decode("app", app_req(0, ["miss", how]).bytes())
        assert [p.ProtocolNamespace for p in m.AppProtocol] == ["urn:iso:std:iso:15118:-20:DC"] * 2
        # the encoder always writes misses
        assert exi.encode(m) == app_req(0, ["miss", "miss"]).bytes()


def test_decoder_rejects_hit_on_empty_table() -> None:
    with pytest.raises(exi.EXIDecodeError, match="local string table hit but the table is empty"):
        exi.decode("app", app_req(0, ["local"]).bytes())


def test_decoder_rejects_string_longer_than_max_length() -> None:
    b = Bits().put(0, 2).put(0, 1).put(0, 1).put(0, 1).uint(101 + 2)  # protocolNamespaceType <= 100
    for _ in range(101):
        b.uint(ord("a"))
    with pytest.raises(exi.EXIDecodeError, match="101 characters"):
        exi.decode("app", b.bytes())


def test_decoder_rejects_session_id_of_wrong_length(shared: Any) -> None:
    good = bytes.fromhex(
        "808c0400000000000000000c9f9c2bd0620b2ba6a4ab1899199a1a9b1b9c1c9820a121a222ac00"
    )
    bits = format(int.from_bytes(good, "big"), f"0{len(good) * 8}b")
    # header 8 + root 6 + SE(Header) 1 + SE(SessionID) 1 + CH 1: the length octet at bit 17
    assert bits[17:25] == format(8, "08b")
    bad = bits[:17] + format(9, "08b") + bits[25:]
    with pytest.raises(exi.EXIDecodeError, match="9 octets") as info:
        exi.decode("common", int(bad, 2).to_bytes(len(good), "big"))
    assert info.value.bit_offset == 17


def test_decoder_rejects_percent_value_above_100() -> None:
    m = dc.DC_ChargeLoopReq(
        Header=dc.MessageHeaderType(SessionID=SID, TimeStamp=1),
        DisplayParameters=dc.DisplayParametersType(PresentSOC=100),
        MeterInfoRequested=False,
        EVPresentVoltage=rational(),
        CLReqControlMode=dc.Scheduled_DC_CLReqControlMode(
            EVTargetCurrent=rational(), EVTargetVoltage=rational()
        ),
    )
    data = exi.encode(m)
    bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")
    # ... SE(DisplayParameters) 2 bits, SE(PresentSOC) 4 bits, CH 1 bit, then the 7-bit value
    at = 8 + 6 + 1  # header, root code, SE(Header)
    at += 1 + 1 + 8 + 64 + 1  # SE(SessionID), CH, length, 8 octets, EE
    at += 1 + 1 + 8 + 1  # SE(TimeStamp), CH, 1 in one octet, EE
    at += 2 + 2 + 4 + 1  # EE of the header (code 1 of 2), SE(DisplayParameters), SE(PresentSOC), CH
    assert bits[at : at + 7] == format(100, "07b")
    bad = bits[:at] + format(101, "07b") + bits[at + 7 :]
    with pytest.raises(exi.EXIDecodeError, match=r"PresentSOC: value 101 outside 0\.\.100"):
        exi.decode("dc", int(bad, 2).to_bytes(len(data), "big"))


def test_enumeration_member_names_keep_schema_values() -> None:
    assert common.responseCodeType.OK.value == "OK"
    wpt = exi.types("wpt")
    assert wpt.WPT_PowerClassType("MF-WPT1").name == "MF_WPT1"  # not an identifier: "-" -> "_"
    assert dc.processingType.Ongoing_WaitingForCustomerInteraction.value == (
        "Ongoing_WaitingForCustomerInteraction"
    )
