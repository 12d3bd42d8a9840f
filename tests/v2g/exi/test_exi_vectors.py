"""Every -20 and AppProtocol stream of the EVerest test suites: it decodes to what its test
asserted (tests/v2g/exi/vector_expectations.json, translated by hand from the test's literal
lines) and re-encodes byte for byte; the two known-bad streams are rejected."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rig.v2g import exi

HERE = Path(__file__).parent
EXPECTATIONS: dict[str, Any] = json.loads((HERE / "vector_expectations.json").read_text())[
    "vectors"
]
NAMESPACES = {
    "urn:iso:std:iso:15118:-20:CommonMessages": "common",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:15118:2:2010:AppProtocol": "app",
}


def _vector_files(shared: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((shared / "vectors" / "everest").glob("*/*.json")):
        data = json.loads(path.read_text())
        if data.get("kind") == "exi" and data.get("namespace") in NAMESPACES:
            out[path.stem] = data
    return out


@pytest.fixture(scope="module")
def vectors(shared: Path) -> dict[str, dict[str, Any]]:
    return _vector_files(shared)


def test_every_in_scope_vector_has_an_expectation(vectors: dict[str, dict[str, Any]]) -> None:
    assert len(vectors) == 100  # 86 libiso15118, 9 libcbv2g, 5 cbexigen issues
    assert sorted(vectors) == sorted(EXPECTATIONS)
    for name, data in vectors.items():
        assert EXPECTATIONS[name]["ns"] == NAMESPACES[data["namespace"]], name


def _walk(obj: Any, path: str) -> Any:
    """The value at 'A/B/0/C' ('*Suffix' matches the one key ending with Suffix)."""
    for part in path.split("/"):
        if isinstance(obj, list):
            obj = obj[int(part)]
        elif part.startswith("*"):
            keys = [k for k in obj if k.endswith(part[1:])]
            assert len(keys) == 1, f"{path}: {part} matches {keys}"
            obj = obj[keys[0]]
        else:
            obj = obj[part]
    return obj


def _exists(obj: Any, path: str) -> bool:
    try:
        _walk(obj, path)
    except (KeyError, IndexError):
        return False
    return True


def _assert_subset(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an element, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}/{key} missing (have {sorted(actual)})"
            _assert_subset(value, actual[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        assert len(actual) == len(expected), (
            f"{where}: {len(actual)} items, expected {len(expected)}"
        )
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_subset(e, a, f"{where}/{i}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


GOOD = sorted(k for k, v in EXPECTATIONS.items() if "reject" not in v)
BAD = sorted(k for k, v in EXPECTATIONS.items() if "reject" in v)


@pytest.mark.parametrize("name", GOOD)
def test_vector_decodes_to_what_its_test_asserted(
    name: str, vectors: dict[str, dict[str, Any]]
) -> None:
    exp = EXPECTATIONS[name]
    data = bytes.fromhex(vectors[name]["hex"])
    message = exi.decode(exp["ns"], data)
    got = exi.to_json(message)
    _assert_subset(exp["fields"], got, "")
    if exp["complete"]:
        assert got == exp["fields"]
    for path, value in exp.get("rationals", {}).items():
        r = _walk(got, path)
        assert math.isclose(
            r["Value"] * 10.0 ** r["Exponent"], value, rel_tol=1e-6, abs_tol=1e-9
        ), f"{path}: {r} is not {value}"
    for path in exp.get("absent", []):
        assert not _exists(got, path), f"{path} should be absent"
    for path in exp.get("present", []):
        assert _exists(got, path), f"{path} should be present"


@pytest.mark.parametrize("name", GOOD)
def test_vector_reencodes_byte_for_byte(name: str, vectors: dict[str, dict[str, Any]]) -> None:
    exp = EXPECTATIONS[name]
    data = bytes.fromhex(vectors[name]["hex"])
    assert exi.encode(exi.decode(exp["ns"], data)).hex() == data.hex()


@pytest.mark.parametrize("name", sorted(k for k in GOOD if EXPECTATIONS[k]["complete"]))
def test_vector_encodes_from_the_asserted_fields(
    name: str, vectors: dict[str, dict[str, Any]]
) -> None:
    exp = EXPECTATIONS[name]
    message = exi.from_json(exp["ns"], exp["fields"])
    assert exi.encode(message).hex() == vectors[name]["hex"]


@pytest.mark.parametrize("name", BAD)
def test_known_bad_vector_is_rejected_at_the_escape(
    name: str, vectors: dict[str, dict[str, Any]]
) -> None:
    exp = EXPECTATIONS[name]
    data = bytes.fromhex(vectors[name]["hex"])
    with pytest.raises(exi.EXIDecodeError) as info:
        exi.decode(exp["ns"], data)
    assert info.value.bit_offset == exp["reject"]["bit"]
    assert "second level" in str(info.value)
    assert f"bit {exp['reject']['bit']}" in str(info.value)


def test_cbexigen52_good_and_bad_streams_differ_only_after_the_control_mode(
    vectors: dict[str, dict[str, Any]],
) -> None:
    good = bytes.fromhex(vectors["issue_vector_2"]["hex"])
    bad = bytes.fromhex(vectors["issue_vector_3"]["hex"])
    # same message up to the end of BPT_Dynamic_AC_CLResControlMode (bit 233)
    assert int.from_bytes(good, "big") >> (len(good) * 8 - 233) == int.from_bytes(bad, "big") >> (
        len(bad) * 8 - 233
    )
    assert exi.to_json(exi.decode("ac", good))["AC_ChargeLoopRes"]["ResponseCode"] == "OK"
