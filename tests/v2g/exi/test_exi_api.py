"""The public API of rig.v2g.exi: light import, message classes, JSON form, decode contract."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rig.v2g import exi

REPO = Path(__file__).resolve().parents[3]
DC_REQ = bytes.fromhex("8034042d166f29fb80ea560aebdbfb3062810012006164000a02002400c800")


def test_import_loads_no_generated_module() -> None:
    code = (
        "import sys, rig.v2g.exi\n"
        "print(sorted(m for m in sys.modules if m.startswith('rig.v2g.exi._generated.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_message_classes_are_frozen_slotted_dataclasses() -> None:
    cls = exi.message_types("dc")["DC_ChargeLoopReq"]
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    message = exi.decode("dc", DC_REQ)
    assert type(message) is cls
    assert not hasattr(message, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.MeterInfoRequested = True  # type: ignore[misc]
    assert message == exi.decode("dc", DC_REQ)  # value equality
    assert dataclasses.replace(message, MeterInfoRequested=True) != message


def test_substitution_member_and_enum_types() -> None:
    message = exi.decode("dc", DC_REQ)
    assert type(message.CLReqControlMode).__name__ == "BPT_Scheduled_DC_CLReqControlMode"
    res = exi.decode("common", bytes.fromhex("8098041ea65fc99ba76c4d8d7bfe1b60620000"))
    assert res.ResponseCode is exi.types("common").responseCodeType.OK
    assert isinstance(res.Header.SessionID, bytes)


def test_message_types_cover_the_namespace_sets() -> None:
    counts = {ns: len(exi.message_types(ns)) for ns in exi.DOCUMENT_SETS}
    assert counts == {
        "app": 2,
        "common": 54,
        "dc": 48,
        "ac": 42,
        "acdp": 34,
        "wpt": 38,
        "din": 81,
        "iso2": 80,
    }
    assert "BPT_Dynamic_DC_CLReqControlMode" in exi.message_types("dc")


def test_json_form() -> None:
    j = exi.to_json(exi.decode("dc", DC_REQ))
    assert j["DC_ChargeLoopReq"]["Header"] == {
        "SessionID": "5A2CDE53F701D4AC",
        "TimeStamp": 1718607534,
    }
    assert "DisplayParameters" not in j["DC_ChargeLoopReq"]  # absent optional: left out
    assert json.loads(json.dumps(j)) == j
    pnc = bytes.fromhex(
        "800c04790c8adceeee09688d6cac3a6062000112080081018202830384048505860687078810"
    )
    jp = exi.to_json(exi.decode("common", pnc))["AuthorizationSetupRes"]
    assert jp["AuthorizationServices"] == ["EIM", "PnC"]  # enumerations by name, lists
    assert jp["PnC_ASResAuthorizationMode"]["GenChallenge"] == "AQIDBAUGBwgJCgsMDQ4PEA=="


def test_from_json_errors_name_the_path() -> None:
    with pytest.raises(exi.EXIEncodeError) as info:
        exi.from_json("dc", {"DC_ChargeLoopReq": {"Header": {"SessionID": "zz", "TimeStamp": 1}}})
    assert info.value.field_path == "DC_ChargeLoopReq.Header.SessionID"
    with pytest.raises(exi.EXIEncodeError, match="unknown keys"):
        exi.from_json(
            "app", {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "X": 1}}
        )
    with pytest.raises(exi.EXIEncodeError, match="is not one of"):
        exi.from_json("app", {"supportedAppProtocolRes": {"ResponseCode": "Fine"}})


def test_decode_errors_carry_the_bit_offset() -> None:
    with pytest.raises(exi.EXIDecodeError) as info:
        exi.decode("dc", b"")
    assert info.value.bit_offset == 0
    with pytest.raises(exi.EXIDecodeError, match="header byte"):
        exi.decode("dc", b"\x81\x00")
    with pytest.raises(exi.EXIDecodeError, match="trailing bytes"):
        exi.decode("dc", DC_REQ + b"\x00")
    with pytest.raises(exi.EXIDecodeError, match="SE\\(\\*\\)"):
        exi.decode("app", b"\x80\x80")  # root code 2 of 2 global elements: SE(*)
    with pytest.raises(ValueError, match="unknown namespace set"):
        exi.decode("iso3", DC_REQ)


def test_any_truncation_is_a_decode_error() -> None:
    for n in range(len(DC_REQ)):
        with pytest.raises(exi.EXIDecodeError):
            exi.decode("dc", DC_REQ[:n])


def test_mutated_streams_give_a_message_or_a_decode_error(shared: Path) -> None:
    """Seeded bit flips and byte edits of every vector: never another exception."""
    streams = []
    for path in sorted((shared / "vectors" / "everest").glob("*/*.json")):
        data = json.loads(path.read_text())
        ns = {
            "urn:iso:std:iso:15118:-20:CommonMessages": "common",
            "urn:iso:std:iso:15118:-20:DC": "dc",
            "urn:iso:std:iso:15118:-20:AC": "ac",
            "urn:iso:15118:2:2010:AppProtocol": "app",
        }.get(data.get("namespace"))
        if ns and data.get("kind") == "exi":
            streams.append((ns, bytes.fromhex(data["hex"])))
    rng = random.Random(20240615)
    decoded = rejected = 0
    for _ in range(3000):
        ns, data = rng.choice(streams)
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            if rng.random() < 0.7:
                b[i] ^= 1 << rng.randrange(8)
            else:
                b[i] = rng.randrange(256)
        try:
            exi.decode(ns, bytes(b))
            decoded += 1
        except exi.EXIDecodeError as e:
            assert "internal decoder error" not in str(e)
            rejected += 1
    assert decoded and rejected


def test_huge_lengths_fail_fast() -> None:
    """A SessionSetupReq whose EVCCID claims 2**28 characters fails on the length, at once."""
    good = bytes.fromhex(
        "808c0400000000000000000c9f9c2bd0620b2ba6a4ab1899199a1a9b1b9c1c9820a121a222ac00"
    )
    bits = format(int.from_bytes(good, "big"), f"0{len(good) * 8}b")
    # header 8, root 6, SE(Header) 1, SessionID 1+1+8+64+1, TimeStamp 1+1+40+1, EE 2, SE+CH 2
    at = 8 + 6 + 1 + 75 + 43 + 2 + 2
    assert int(bits[at : at + 8], 2) == 22  # 20 characters + 2: a table miss
    length = 2**28 + 2
    groups = ""
    while length >= 128:
        groups += format(128 | (length & 127), "08b")
        length >>= 7
    groups += format(length, "08b")
    b = bits[:at] + groups
    b += "0" * (-len(b) % 8)
    with pytest.raises(exi.EXIDecodeError, match="268435456 characters") as info:
        exi.decode("common", int(b, 2).to_bytes(len(b) // 8, "big"))
    assert info.value.bit_offset == at


def test_empty_value_written_without_ch_is_accepted() -> None:
    """EXIficient (the iso15118 package) writes an empty EVCCID as SE(EVCCID) then EE at the
    second level of the simple type's first state (escape 1, then 3 bits: 7 second-level
    productions, EE 2.0); we write CH with a zero length. Both mean the same empty element."""
    peer = bytes.fromhex("808c040000000000000000001280")
    m = exi.decode("common", peer)
    assert m.EVCCID == ""
    assert exi.encode(m).hex() == "808c04000000000000000000120100"
    bits = format(int.from_bytes(peer, "big"), f"0{len(peer) * 8}b")
    assert bits[103:108] == "01000"  # SE(EVCCID), escape, EE 2.0
    other = bits[:105] + "101" + bits[108:]  # SE(*) 2.5 instead of EE: still refused
    with pytest.raises(exi.EXIDecodeError, match="other than EE") as info:
        exi.decode("common", int(other, 2).to_bytes(len(peer), "big"))
    assert info.value.bit_offset == 104


def test_empty_binary_written_without_ch_is_accepted() -> None:
    peer = bytes.fromhex("8038040000000000000000001200201b680138920000410000200048")
    assert exi.decode("dc", peer).MeterInfo.MeterSignature == b""


def test_a_root_of_abstract_type_is_refused_both_ways() -> None:
    """CLReqControlMode is a global element whose type is abstract: valid only with xsi:type."""
    from rig.v2g import exi

    cls = exi.message_types("common")["CLReqControlMode"]
    with pytest.raises(exi.EXIEncodeError, match="CLReqControlModeType is abstract"):
        exi.encode(cls())
    with pytest.raises(exi.EXIDecodeError, match="abstract") as err:
        exi.decode("common", bytes.fromhex("8010"))
    assert err.value.bit_offset == 8
