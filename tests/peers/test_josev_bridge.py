"""The Josev peer bridge itself: translation, error handling, and the peer's facts we rely on.

These tests need no codec of ours. They pin what the cross-check (tests/v2g/exi/test_peer_*.py)
assumes about the peer, so that a new peer version that changes one of them is noticed here first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.corpus import Vector, load_vectors
from peers import josev
from peers.josev_bridge import NAMESPACES, _rename_keys

HEADER = {"SessionID": "0102030405060708", "TimeStamp": 1718607534}


@pytest.fixture(scope="session")
def peer() -> josev.JosevPeer:
    return josev.session_peer()


def _vectors() -> list[Vector]:
    shared = josev.root_conftest().shared_dir()
    return load_vectors(shared) if (shared / "vectors").is_dir() else []


VECTORS = _vectors()
GOOD = [v for v in VECTORS if not (v.known_bad or v.open_question)]


def test_translation_renames_the_simple_content_key_both_ways() -> None:
    ours = {"Header": {"Signature": {"SignatureValue": {"#text": "AAEC", "Id": "s1"}}}}
    to_peer = _rename_keys(ours, {"#text": "value"})
    assert to_peer == {"Header": {"Signature": {"SignatureValue": {"value": "AAEC", "Id": "s1"}}}}
    assert _rename_keys(to_peer, {"value": "#text"}) == ours


def test_translation_leaves_values_and_lists_alone() -> None:
    ours = {"A": [{"value": "value"}, {"B": ["value", 1, True, None]}]}
    assert _rename_keys(ours, {"value": "x"}) == {
        "A": [{"x": "value"}, {"B": ["value", 1, True, None]}]
    }


def test_bridge_knows_the_namespace_sets_and_xmldsig() -> None:
    assert set(NAMESPACES) == {"app", "common", "dc", "ac", "acdp", "wpt", "din", "iso2", "xmldsig"}


@pytest.mark.peer
def test_peer_is_the_pinned_package(peer: josev.JosevPeer) -> None:
    assert peer.info["iso15118"] == "0.31.2"
    assert peer.info["codec_version"] == pytest.approx(1.55)
    assert peer.info["java"].split(".")[0].isdigit()
    assert int(peer.info["java"].split(".")[0]) >= 17


@pytest.mark.peer
def test_vectors_are_present() -> None:
    if not VECTORS:
        josev.missing("shared vectors not found (set RIG_SHARED)")
    assert {v.ns for v in VECTORS} >= {"app", "common", "dc", "ac"}


@pytest.mark.peer
@pytest.mark.parametrize("vector", GOOD, ids=[v.name for v in GOOD])
def test_peer_reencodes_each_vector_bit_identically(peer: josev.JosevPeer, vector: Vector) -> None:
    """The peer is a fair reference only if it reproduces the streams EVerest's codec accepts."""
    decoded = peer.decode(vector.ns, vector.data)
    assert list(decoded) == [vector.root]
    assert peer.encode(vector.ns, decoded).hex() == vector.data.hex()


@pytest.mark.peer
def test_peer_rejects_the_known_bad_stream(peer: josev.JosevPeer) -> None:
    """cbexigen #52: the 31-byte AC_ChargeLoopRes is invalid; EXIficient agrees with libcbv2g."""
    bad = [v for v in VECTORS if v.known_bad]
    if not bad:
        josev.missing("shared vectors not found (set RIG_SHARED)")
    for vector in bad:
        with pytest.raises(josev.PeerError, match=r"EOS|Exception"):
            peer.decode(vector.ns, vector.data)


@pytest.mark.peer
def test_peer_rejects_the_open_question_stream_too(peer: josev.JosevPeer) -> None:
    """cbexigen #71 (issue_vector_5): EXIficient fails on it as EVerest's C codec does."""
    open_ones = [v for v in VECTORS if v.open_question]
    if not open_ones:
        josev.missing("shared vectors not found (set RIG_SHARED)")
    for vector in open_ones:
        with pytest.raises(josev.PeerError):
            peer.decode(vector.ns, vector.data)


@pytest.mark.peer
@pytest.mark.parametrize(
    ("ns", "message"),
    [
        (
            "acdp",
            {
                "ACDP_VehiclePositioningReq": {
                    "Header": HEADER,
                    "EVMobilityStatus": True,
                    "EVPositioningSupport": False,
                }
            },
        ),
        (
            "wpt",
            {"WPT_PairingReq": {"Header": HEADER, "EVProcessing": "Finished", "ObservedIDCode": 7}},
        ),
    ],
)
def test_peer_has_no_json_binding_for_acdp_and_wpt(
    peer: josev.JosevPeer, ns: str, message: dict[str, object]
) -> None:
    """EXICodec.setJAXBContext binds AppProtocol, CommonMessages, AC and DC only (codec 1.55)."""
    with pytest.raises(josev.PeerError, match="descriptor with default root element"):
        peer.encode(ns, message)


@pytest.mark.peer
def test_peer_signedinfo_fragment_rewrites_the_algorithms(peer: josev.JosevPeer) -> None:
    """In xmldsig fragment mode the peer's JSON 'conformance' pass swaps in the -2 algorithms."""
    signed_info = {
        "SignedInfo": {
            "CanonicalizationMethod": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"},
            "SignatureMethod": {"Algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"},
            "Reference": [
                {
                    "URI": "#id1",
                    "Transforms": {
                        "Transform": [{"Algorithm": "http://www.w3.org/TR/canonical-exi/"}]
                    },
                    "DigestMethod": {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha512"},
                    "DigestValue": "AAECAw==",
                }
            ],
        }
    }
    back = peer.decode("xmldsig", peer.encode("xmldsig", signed_info))["SignedInfo"]
    assert back["SignatureMethod"]["Algorithm"].endswith("ecdsa-sha256")
    assert back["Reference"][0]["DigestMethod"]["Algorithm"].endswith("sha256")


@pytest.mark.peer
def test_peer_keeps_answering_after_a_refused_request(peer: josev.JosevPeer) -> None:
    with pytest.raises(josev.PeerError):
        peer.decode("dc", bytes.fromhex("80ff"))
    with pytest.raises(josev.PeerError, match="unknown ns"):
        peer.decode("iso3", bytes.fromhex("80"))
    message = {
        "supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}
    }
    assert peer.encode("app", message) == bytes.fromhex("80400040")


def test_bridge_script_runs_without_the_rig() -> None:
    """The bridge runs in .venv-peer, where the rig is not installed: it must import no rig code."""
    source = Path(josev.BRIDGE).read_text(encoding="utf-8")
    assert "import rig" not in source and "from rig" not in source


@pytest.mark.peer
def test_peer_encodes_but_cannot_decode_a_minus_20_fragment(peer: josev.JosevPeer) -> None:
    """-20 fragments: EXICodec encodes PnC_AReqAuthorizationMode and
    OEMProvisioningCertificateChain in fragment mode (its signatureElements_20), but decodes the
    CommonMessages namespace in document mode only, so it cannot read such a fragment back."""
    chain = {"Id": "id2", "Certificate": "AAEC", "SubCertificates": {"Certificate": ["AQI="]}}
    fragment = peer.encode("common", {"OEMProvisioningCertificateChain": chain})
    assert fragment == bytes.fromhex("8040015a590c80300010200100811468")
    with pytest.raises(josev.PeerError):
        peer.decode("common", fragment)
