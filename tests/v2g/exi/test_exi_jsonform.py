"""The generated JSON converters (`_j_<Class>`) give what the generic walk (jsonform.body) gives,
key order included, for decoded streams and for instances that break the schema's types; every
class has one; they compile on first use."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rig.v2g import exi
from rig.v2g.exi import jsonform, lazy

REPO = Path(__file__).resolve().parents[3]
MODULES = ("xmldsig", "commontypes", "common", "dc", "ac", "acdp", "wpt", "app", "din", "iso2")
NAMESPACES = {
    "urn:iso:std:iso:15118:-20:CommonMessages": "common",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:15118:2:2010:AppProtocol": "app",
}
DC_REQ = bytes.fromhex("8034042d166f29fb80ea560aebdbfb3062810012006164000a02002400c800")


def generic(message: Any) -> dict[str, Any]:
    return {type(message)._exi_meta.element: jsonform.body(message)}


def converter(value: Any) -> Any:
    """The generated converter of `value`'s class, called directly (no fallback around it)."""
    cls = type(value)
    return lazy.codec(cls.__module__.rsplit(".", 1)[-1], f"_j_{cls.__name__}")(value)


def same(a: Any, b: Any) -> bool:
    """Equal with keys in the same order (what a trace file holds)."""
    return json.dumps(a) == json.dumps(b) and a == b


def test_every_class_has_a_converter() -> None:
    count = 0
    for module in MODULES:
        g = lazy.module_globals(module)
        codec = set(g["_CODEC"])
        for name in g["_PROVIDES"]:
            if name.startswith("_"):
                continue
            if hasattr(lazy.get(g, name), "_exi_fields"):
                assert f"_j_{name}" in codec, (module, name)
                count += 1
    assert count > 500


def test_vectors_convert_as_the_generic_walk(shared: Path) -> None:
    checked = 0
    for path in sorted((shared / "vectors" / "everest").glob("*/*.json")):
        data = json.loads(path.read_text())
        ns = NAMESPACES.get(data.get("namespace", ""))
        if data.get("kind") != "exi" or ns is None:
            continue
        try:
            message = exi.decode(ns, bytes.fromhex(data["hex"]))
        except exi.EXIDecodeError:
            continue  # the known-bad streams
        assert same(exi.to_json(message), generic(message)), path.name
        assert same(converter(message), jsonform.body(message)), path.name
        checked += 1
    assert checked >= 95


def _charge_loop() -> Any:
    return exi.decode("dc", DC_REQ)


def test_a_none_in_a_required_field_is_left_out_as_before() -> None:
    from rig.v2g.exi import dc

    m = _charge_loop()
    broken = dataclasses.replace(
        m,
        EVPresentVoltage=dc.RationalNumberType(Exponent=None, Value=400),  # type: ignore[arg-type]
    )
    out = exi.to_json(broken)
    assert out["DC_ChargeLoopReq"]["EVPresentVoltage"] == {"Value": 400}
    assert same(out, generic(broken))
    assert same(converter(broken), jsonform.body(broken))
    no_header = dataclasses.replace(m, Header=None)  # type: ignore[arg-type]
    assert "Header" not in exi.to_json(no_header)["DC_ChargeLoopReq"]
    assert same(exi.to_json(no_header), generic(no_header))
    no_flag = dataclasses.replace(m, MeterInfoRequested=None)  # type: ignore[arg-type]
    assert same(exi.to_json(no_flag), generic(no_flag))
    assert same(converter(no_flag), jsonform.body(no_flag))


def test_values_of_other_types_give_the_generic_form() -> None:
    from rig.v2g.exi import common

    res = exi.decode("common", bytes.fromhex("8098041ea65fc99ba76c4d8d7bfe1b60620000"))
    raw_enum = dataclasses.replace(res, ResponseCode="OK")  # type: ignore[arg-type]
    assert exi.to_json(raw_enum)["SessionStopRes"]["ResponseCode"] == "OK"
    assert same(exi.to_json(raw_enum), generic(raw_enum))
    header = dataclasses.replace(res.Header, SessionID=bytearray(res.Header.SessionID))
    as_bytearray = dataclasses.replace(res, Header=header)
    assert same(exi.to_json(as_bytearray), exi.to_json(res))
    # a substitution field holding the class of the member's type instead of the member's
    m = _charge_loop()
    mode = m.CLReqControlMode
    base = type(mode).__mro__[1]
    as_type = dataclasses.replace(m, CLReqControlMode=base(**_fields(mode)))
    assert same(exi.to_json(as_type), generic(as_type))
    assert same(converter(as_type), jsonform.body(as_type))
    # a bytes field holding a str fails in both
    bad = dataclasses.replace(res, Header=dataclasses.replace(res.Header, SessionID="zz"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        exi.to_json(bad)
    with pytest.raises(TypeError):
        generic(bad)
    assert common.SessionStopRes is type(res)


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def test_lists_binary_and_value_wrappers() -> None:
    pnc = bytes.fromhex(
        "800c04790c8adceeee09688d6cac3a6062000112080081018202830384048505860687078810"
    )
    m = exi.decode("common", pnc)
    out = exi.to_json(m)["AuthorizationSetupRes"]
    assert out["AuthorizationServices"] == ["EIM", "PnC"]
    challenge = out["PnC_ASResAuthorizationMode"]["GenChallenge"]
    assert base64.b64decode(challenge) == bytes(range(1, 17))
    assert same(converter(m), jsonform.body(m))
    # a global element of a simple type: the JSON body is the value itself
    from rig.v2g.exi import xmldsig

    digest = xmldsig.DigestValue(CONTENT=b"\x01\x02\xff")
    assert exi.to_json(digest) == {"DigestValue": "AQL/"}
    assert same(converter(digest), jsonform.body(digest))


def test_not_an_element_instance_is_refused() -> None:
    from rig.v2g.exi import dc

    with pytest.raises(TypeError, match="not a global element class"):
        exi.to_json(dc.RationalNumberType(Exponent=0, Value=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a global element class"):
        exi.to_json(3)  # type: ignore[arg-type]


def test_converters_compile_on_first_use() -> None:
    code = (
        "from rig.v2g import exi\n"
        "from rig.v2g.exi import lazy\n"
        f"m = exi.decode('dc', bytes.fromhex('{DC_REQ.hex()}'))\n"
        "assert not lazy.is_compiled('dc', '_j_DC_ChargeLoopReqType')\n"
        "assert not lazy.is_compiled('wpt', '_j_WPT_ChargeLoopReqType')\n"
        "exi.to_json(m)\n"
        "assert lazy.is_compiled('dc', '_j_DC_ChargeLoopReqType')\n"
        "assert lazy.is_compiled('dc', '_j_BPT_Scheduled_DC_CLReqControlModeType')\n"
        "assert not lazy.is_compiled('dc', '_j_BPT_Dynamic_DC_CLReqControlModeType')\n"
        "assert not lazy.is_compiled('wpt', '_j_WPT_ChargeLoopReqType')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
