"""Handshakes the TLS layer must refuse, each direction where it applies, and the reason each side
reports: the refusing side names the cause precisely; the refused side reports the peer's alert."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from OpenSSL import SSL
from tls_harness import (
    MemoryPipe,
    OpenSslPeer,
    StdlibPeer,
    attach,
    evcc_config,
    secc_config,
    session_over_pipe,
)

from rig.v2g.pki import Curve, Entity, PkiFolder
from rig.v2g.tls_records import iter_handshake_messages, parse_client_hello, parse_records
from rig.v2g.transport.tls import TlsContext, TlsFailure

# (bad EV leaf or None, bad SECC leaf or None, the refusing side's failure, the refused side's)
CERTIFICATE_CASES = {
    "secc_wrong_root": (
        None,
        Entity.SECC_LEAF_WRONG_ROOT,
        TlsFailure.UNKNOWN_CA,
        TlsFailure.UNKNOWN_CA,
    ),
    "ev_wrong_root": (
        Entity.VEHICLE_LEAF_WRONG_ROOT,
        None,
        TlsFailure.UNKNOWN_CA,
        TlsFailure.UNKNOWN_CA,
    ),
    "secc_expired": (
        None,
        Entity.SECC_LEAF_EXPIRED,
        TlsFailure.CERTIFICATE_EXPIRED,
        TlsFailure.CERTIFICATE_EXPIRED,
    ),
    "ev_expired": (
        Entity.VEHICLE_LEAF_EXPIRED,
        None,
        TlsFailure.CERTIFICATE_EXPIRED,
        TlsFailure.CERTIFICATE_EXPIRED,
    ),
    # OpenSSL answers "not yet valid" with the generic bad_certificate alert
    "secc_not_yet_valid": (
        None,
        Entity.SECC_LEAF_NOT_YET_VALID,
        TlsFailure.CERTIFICATE_NOT_YET_VALID,
        TlsFailure.BAD_CERTIFICATE,
    ),
    "ev_not_yet_valid": (
        Entity.VEHICLE_LEAF_NOT_YET_VALID,
        None,
        TlsFailure.CERTIFICATE_NOT_YET_VALID,
        TlsFailure.BAD_CERTIFICATE,
    ),
    # a refusal by the verify callback goes out as internal_error (OpenSSL's choice)
    "secc_wrong_curve": (
        None,
        Entity.SECC_LEAF_WRONG_CURVE,
        TlsFailure.WRONG_CURVE,
        TlsFailure.PEER_ALERT,
    ),
    "ev_wrong_curve": (
        Entity.VEHICLE_LEAF_WRONG_CURVE,
        None,
        TlsFailure.WRONG_CURVE,
        TlsFailure.PEER_ALERT,
    ),
}

DETAILS = {
    TlsFailure.UNKNOWN_CA: "does not lead to a trusted root",
    TlsFailure.CERTIFICATE_EXPIRED: "certificate expired",
    TlsFailure.CERTIFICATE_NOT_YET_VALID: "not valid before",
    TlsFailure.WRONG_CURVE: "key is secp256r1, ISO 15118-20 needs secp521r1",
}


@pytest.mark.parametrize("case", sorted(CERTIFICATE_CASES))
def test_bad_certificate_is_refused_with_a_specific_reason(pki: PkiFolder, case: str) -> None:
    ev_leaf, secc_leaf, refusing_failure, refused_failure = CERTIFICATE_CASES[case]
    _, client, server = session_over_pipe(
        evcc_config(pki, ev_leaf or Entity.VEHICLE_LEAF),
        secc_config(pki, secc_leaf or Entity.SECC_LEAF),
    )
    refusing, refused = (client, server) if secc_leaf is not None else (server, client)
    assert refusing.link is not None and refused.link is not None
    assert refusing.link.failure is not None and refused.link.failure is not None
    assert refusing.link.failure.failure is refusing_failure
    assert not refusing.link.failure.by_peer
    assert DETAILS[refusing_failure] in refusing.link.failure.detail
    assert refusing.closed == [f"tls {refusing_failure}: {refusing.link.failure.detail}"]
    assert refused.link.failure.failure is refused_failure
    assert refused.link.failure.by_peer
    assert refused.closed == [refused.link.failure.reason]
    assert server.received == b""  # no application byte crossed a refused handshake
    assert client.received == b""


def test_wrong_curve_check_is_the_key_type_alone(pki: PkiFolder) -> None:
    """A bench that allows secp256r1 (a -2 style SECC) gets the same leaf accepted."""
    _, client, _server = session_over_pipe(
        evcc_config(pki, peer_key_types=frozenset({Curve.SECP521R1, Curve.SECP256R1})),
        secc_config(pki, Entity.SECC_LEAF_WRONG_CURVE),
    )
    assert client.link is not None and client.link.failure is None
    assert client.received == b"re:hello"


def test_ev_without_certificate_is_refused_by_the_secc(pki: PkiFolder) -> None:
    _, client, server = session_over_pipe(evcc_config(pki, leaf=None), secc_config(pki))
    assert server.link is not None and client.link is not None
    assert server.link.failure is not None and client.link.failure is not None
    assert server.link.failure.failure is TlsFailure.NO_CLIENT_CERTIFICATE
    assert "presented no certificate" in server.closed[0]
    # TLS 1.3: the EVCC finished its side, then hears the SECC's certificate_required alert
    assert client.link.failure.failure is TlsFailure.NO_CLIENT_CERTIFICATE
    assert client.link.failure.by_peer
    assert server.received == b""


# --- misbehaving peers: the standard library's ssl and raw pyOpenSSL -----------------------------


def _stdlib_context(
    pki: PkiFolder, server_side: bool, leaf: Entity, root: Entity
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(pki.path(leaf, "chain"), pki.path(leaf, "key"))
    context.load_verify_locations(pki.path(root))
    context.check_hostname = False
    return context


def test_tls12_client_is_refused_by_the_secc(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    context = _stdlib_context(pki, False, Entity.VEHICLE_LEAF, Entity.V2G_ROOT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    peer = StdlibPeer(pipe.evcc, context, server_side=False)
    pipe.run()
    assert server.link is not None and server.link.failure is not None
    assert server.link.failure.failure is TlsFailure.PROTOCOL_VERSION
    assert "no TLS 1.3" in server.closed[0]
    assert peer.error is not None and "protocol version" in str(peer.error).lower()


def test_tls12_server_refuses_the_evcc_and_the_evcc_says_why(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    context = _stdlib_context(pki, True, Entity.SECC_LEAF, Entity.OEM_ROOT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    peer = StdlibPeer(pipe.secc, context, server_side=True)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    pipe.run()
    assert peer.error is not None  # the TLS 1.2 server found no version in common
    assert client.link is not None and client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.PROTOCOL_VERSION
    assert client.link.failure.by_peer
    assert "TLS 1.3 only" in client.closed[0]


def _raw_context(pki: PkiFolder, server_side: bool, suites: bytes) -> SSL.Context:
    leaf = Entity.SECC_LEAF if server_side else Entity.VEHICLE_LEAF
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD if server_side else SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_tls13_ciphersuites(suites)
    ctx.use_certificate_chain_file(str(pki.path(leaf, "chain")))
    ctx.use_privatekey_file(str(pki.path(leaf, "key")))
    return ctx


def test_client_offering_only_a_suite_outside_v2g20_is_refused(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    peer = OpenSslPeer(pipe.evcc, _raw_context(pki, False, b"TLS_AES_128_GCM_SHA256"), False)
    pipe.run()
    assert server.link is not None and server.link.failure is not None
    assert server.link.failure.failure is TlsFailure.CIPHER_SUITE
    assert (
        "offered none of TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256" in (server.closed[0])
    )
    assert peer.error is not None and "handshake failure" in str(peer.error)


def test_client_offering_other_suites_first_still_gets_a_v2g20_suite(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    offer = b"TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
    ctx = _raw_context(pki, False, offer)
    peer = OpenSslPeer(pipe.evcc, ctx, False)
    pipe.run()
    assert peer.error is None and peer.established
    assert peer.conn.get_cipher_name() == "TLS_CHACHA20_POLY1305_SHA256"
    assert server.link is not None and server.link.failure is None


def test_server_with_only_a_suite_outside_v2g20_refuses_the_evcc(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    peer = OpenSslPeer(pipe.secc, _raw_context(pki, True, b"TLS_AES_128_GCM_SHA256"), True)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    pipe.run()
    assert peer.error is not None and "no shared cipher" in str(peer.error)
    assert client.link is not None and client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.HANDSHAKE_FAILURE
    assert client.link.failure.by_peer


def _server_hello(client_hello_record: bytes, suite: int) -> bytes:
    """A TLS 1.3 ServerHello choosing `suite` (with a throwaway x25519 key share)."""
    records, _ = parse_records(client_hello_record)
    session_id = parse_client_hello(next(iter_handshake_messages(records)).body).session_id
    versions = (43).to_bytes(2, "big") + (2).to_bytes(2, "big") + (0x0304).to_bytes(2, "big")
    share = (0x001D).to_bytes(2, "big") + (32).to_bytes(2, "big") + os.urandom(32)
    extensions = versions + (51).to_bytes(2, "big") + len(share).to_bytes(2, "big") + share
    body = (
        (0x0303).to_bytes(2, "big")
        + os.urandom(32)
        + bytes([len(session_id)])
        + session_id
        + suite.to_bytes(2, "big")
        + b"\x00"
        + len(extensions).to_bytes(2, "big")
        + extensions
    )
    message = bytes([2]) + len(body).to_bytes(3, "big") + body
    return bytes([22, 3, 3]) + len(message).to_bytes(2, "big") + message


def test_server_choosing_a_suite_outside_v2g20_is_refused_by_the_evcc(pki: PkiFolder) -> None:
    """No real server picks a suite the client did not offer; a scripted one does."""
    pipe = MemoryPipe()

    def answer(data: bytes) -> None:
        if data[:1] == b"\x16":  # the ClientHello; the alert that follows is ignored
            pipe.secc.send(_server_hello(data, 0x1301))  # TLS_AES_128_GCM_SHA256

    pipe.secc.set_receiver(answer, lambda reason: None)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    pipe.run()
    assert client.link is not None and client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.CIPHER_SUITE
    assert not client.link.failure.by_peer
    assert "chose a cipher suite we did not offer" in client.closed[0]


def test_refused_handshake_still_logs_its_handshake_secrets(pki: PkiFolder, tmp_path: Path) -> None:
    """A refused handshake still logs the handshake secrets it derived (for the capture)."""
    log = tmp_path / "keys.log"
    _, client, _ = session_over_pipe(
        evcc_config(pki, key_log=log), secc_config(pki, Entity.SECC_LEAF_EXPIRED)
    )
    assert client.link is not None and client.link.failure is not None
    labels = {line.split()[0] for line in log.read_text().splitlines()}
    assert "SERVER_HANDSHAKE_TRAFFIC_SECRET" in labels
