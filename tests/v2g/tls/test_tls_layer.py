"""The TLS layer over an in-memory pipe: mutual authentication, data both ways, -20 policy on the
wire (TLS 1.3 only, the two suites only), key log, closing, bounds and malformed input."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls_harness import MemoryPipe, attach, evcc_config, secc_config, session_over_pipe

from rig.v2g.link import LinkClosed
from rig.v2g.pki import Entity, PkiFolder
from rig.v2g.tls_records import (
    HandshakeType,
    iter_handshake_messages,
    parse_client_hello,
    parse_records,
    parse_server_hello,
)
from rig.v2g.transport.tls import (
    V2G20_CIPHER_SUITES,
    CipherSuite,
    TlsConfig,
    TlsContext,
    TlsFailure,
)


def test_mutual_auth_handshake_carries_data_both_ways(pki: PkiFolder) -> None:
    _pipe, client, server = session_over_pipe(
        evcc_config(pki), secc_config(pki), b"SessionSetupReq"
    )
    assert server.received == b"SessionSetupReq"
    assert client.received == b"re:SessionSetupReq"
    assert client.link is not None and server.link is not None
    assert client.link.established and server.link.established
    assert client.closed == [] and server.closed == []
    # each side saw the other's leaf: mutual authentication
    assert client.session is not None and server.session is not None
    assert client.session.version == server.session.version == "TLSv1.3"
    assert client.session.cipher_suite is CipherSuite.TLS_AES_256_GCM_SHA384
    assert client.session.peer_common_name == "DE*V2H*E0001*1"
    assert server.session.peer_common_name == "WMIV1234567890ABCDEX"


def test_more_exchanges_and_large_messages_after_the_handshake(pki: PkiFolder) -> None:
    pipe, client, server = session_over_pipe(evcc_config(pki), secc_config(pki))
    assert client.link is not None
    big = bytes(range(256)) * 300  # 76,800 bytes: several TLS records
    client.link.send(big)
    pipe.run()
    assert server.received == b"hello" + big
    assert client.received == b"re:hello" + b"re:" + big


def test_chacha20_is_negotiated_when_the_evcc_offers_only_it(pki: PkiFolder) -> None:
    only = (CipherSuite.TLS_CHACHA20_POLY1305_SHA256,)
    _, client, server = session_over_pipe(evcc_config(pki, cipher_suites=only), secc_config(pki))
    assert client.session is not None and server.session is not None
    assert client.session.cipher_suite is CipherSuite.TLS_CHACHA20_POLY1305_SHA256
    assert server.received == b"hello"


def test_client_hello_offers_exactly_the_v2g20_suites_and_only_tls13(pki: PkiFolder) -> None:
    pipe, _, _ = session_over_pipe(evcc_config(pki), secc_config(pki))
    records, _ = parse_records(pipe.stream("evcc"))
    hello = next(iter_handshake_messages(records))
    assert hello.msg_type == HandshakeType.CLIENT_HELLO
    offer = parse_client_hello(hello.body)
    # [V2G20-1856, V2G20-2459]: nothing but these two, in -20's order of preference
    assert offer.cipher_suites == tuple(s.code for s in V2G20_CIPHER_SUITES) == (0x1302, 0x1303)
    assert offer.supported_versions == (0x0304,)
    assert 0 not in offer.extensions  # no server_name: no SNI for a link-local SECC
    records, _ = parse_records(pipe.stream("secc"))
    server_hello = parse_server_hello(next(iter_handshake_messages(records)).body)
    assert server_hello.selected_version == 0x0304
    assert server_hello.cipher_suite == 0x1302


def test_config_refuses_cipher_suites_outside_v2g20(pki: PkiFolder) -> None:
    with pytest.raises(ValueError, match="V2G20-1856"):
        evcc_config(pki, cipher_suites=(CipherSuite.TLS_AES_128_GCM_SHA256,))
    with pytest.raises(ValueError, match="subset"):
        evcc_config(pki, cipher_suites=())


def test_config_refuses_a_secc_without_certificate_or_trust(pki: PkiFolder) -> None:
    root = pki.certificate(Entity.OEM_ROOT)
    with pytest.raises(ValueError, match="SECC"):
        TlsConfig.secc((), None, (root,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trust anchor"):
        TlsConfig.secc(pki.chain(Entity.SECC_LEAF), pki.private_key(Entity.SECC_LEAF), ())


def test_key_log_callback_gets_the_five_nss_labels_of_one_session(pki: PkiFolder) -> None:
    lines: list[str] = []
    pipe, _client, _ = session_over_pipe(evcc_config(pki, key_log=lines.append), secc_config(pki))
    labels = sorted(line.split()[0] for line in lines)
    assert labels == [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_TRAFFIC_SECRET_0",
    ]
    records, _ = parse_records(pipe.stream("evcc"))
    client_random = parse_client_hello(next(iter_handshake_messages(records)).body).random
    assert {line.split()[1] for line in lines} == {client_random.hex()}
    assert all(len(bytes.fromhex(line.split()[2])) == 48 for line in lines)  # SHA-384 secrets


def test_key_log_file_is_created_0600_and_appended(pki: PkiFolder, tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    session_over_pipe(evcc_config(pki), secc_config(pki, key_log=path))
    session_over_pipe(evcc_config(pki), secc_config(pki, key_log=path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 10
    assert len({line.split()[1] for line in lines}) == 2  # two sessions, two client randoms


def test_data_sent_before_the_handshake_is_queued_then_delivered(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    assert client.link is not None
    client.link.send(b"one ")
    client.link.send(b"two")
    assert not client.link.established
    pipe.run()
    assert server.received == b"one two"


def test_queue_before_the_handshake_is_bounded(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    attach(TlsContext(secc_config(pki)), pipe.secc)
    client = attach(TlsContext(evcc_config(pki, max_pending_bytes=1000)), pipe.evcc)
    assert client.link is not None
    client.link.send(b"x" * 1000)
    with pytest.raises(LinkClosed, match="overflow"):
        client.link.send(b"y")
    pipe.run()
    assert client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.OVERFLOW
    assert client.closed == [client.link.failure.reason]


def test_close_sends_close_notify_and_both_sides_report_once(pki: PkiFolder) -> None:
    pipe, client, server = session_over_pipe(evcc_config(pki), secc_config(pki))
    assert client.link is not None and server.link is not None
    client.link.close("SessionStop done")
    with pytest.raises(LinkClosed):
        client.link.send(b"late")
    pipe.run()
    assert client.closed == ["SessionStop done"]
    assert server.closed == ["peer closed the TLS session (close_notify)"]
    assert server.link.peer_sent_close_notify
    assert client.link.failure is None and server.link.failure is None


def test_lower_link_ending_without_close_notify_is_named(pki: PkiFolder) -> None:
    pipe, _client, server = session_over_pipe(evcc_config(pki), secc_config(pki))
    pipe.evcc.close("cable pulled")  # below TLS: no close_notify
    pipe.run()
    assert server.closed == ["peer closed: cable pulled (without TLS close_notify)"]


def test_close_during_the_handshake_drops_queued_data_and_says_so(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    assert client.link is not None
    client.link.send(b"never sent")
    client.link.close("gave up")
    pipe.run()
    assert client.closed == ["gave up"]
    assert server.received == b""
    assert server.closed == [
        "tls link_closed: the link ended during the TLS handshake (peer closed: gave up)"
    ]


def test_lower_link_ending_during_the_handshake_is_a_failure(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    pipe.secc.set_receiver(lambda data: pipe.secc.close("no TLS here"), lambda reason: None)
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    pipe.run()
    assert client.link is not None and client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.LINK_CLOSED
    assert client.closed == [
        "tls link_closed: the link ended during the TLS handshake (peer closed: no TLS here)"
    ]
    assert server.closed == []  # its receiver was replaced: nothing reached the TLS server


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # not TLS at all
        b"\x16\x03\x01\xff\xff" + b"\x00" * 64,  # a record longer than TLS allows
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # a ClientHello that ends inside itself
        b"\x17\x03\x03\x00\x10" + b"\xaa" * 16,  # application data before any handshake
    ],
)
def test_malformed_input_refuses_the_link_with_a_protocol_error(
    pki: PkiFolder, garbage: bytes
) -> None:
    pipe = MemoryPipe()
    server = attach(TlsContext(secc_config(pki)), pipe.secc)
    pipe.evcc.set_receiver(lambda data: None, lambda reason: None)
    pipe.evcc.send(garbage)
    pipe.run()
    assert server.link is not None and server.link.failure is not None
    assert server.link.failure.failure is TlsFailure.PROTOCOL_ERROR
    assert len(server.closed) == 1 and server.closed[0].startswith("tls protocol_error: ")


def test_peer_common_name_pin_refuses_another_secc(pki: PkiFolder) -> None:
    _, client, server = session_over_pipe(
        evcc_config(pki, peer_common_name="DE*OTHER*E9"), secc_config(pki)
    )
    assert client.link is not None and client.link.failure is not None
    assert client.link.failure.failure is TlsFailure.BAD_CERTIFICATE
    assert "expected 'DE*OTHER*E9'" in client.closed[0]
    assert server.received == b""


def test_events_before_set_receiver_are_held_and_delivered(pki: PkiFolder) -> None:
    pipe = MemoryPipe()
    server_link = TlsContext(secc_config(pki)).wrap(pipe.secc)  # no receiver yet
    client = attach(TlsContext(evcc_config(pki)), pipe.evcc)
    assert client.link is not None
    pipe.run()  # the handshake completes while the server's layer above is not there yet
    client.link.send(b"early")
    client.link.close("bye")
    pipe.run()
    got: list[object] = []
    server_link.set_receiver(got.append, got.append)
    assert got == [b"early", "peer closed the TLS session (close_notify)"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=6))
def test_arbitrary_bytes_from_a_peer_never_raise(pki: PkiFolder, chunks: list[bytes]) -> None:
    """Whatever arrives, the SECC either waits for more (at most one partial record) or ends
    the link with a tls reason; nothing escapes as an exception."""
    context = _SECC_CONTEXT.get(pki) or _SECC_CONTEXT.setdefault(pki, TlsContext(secc_config(pki)))
    pipe = MemoryPipe()
    server = attach(context, pipe.secc)
    pipe.evcc.set_receiver(lambda data: None, lambda reason: None)
    for chunk in chunks:
        if pipe.evcc.closed:
            break
        pipe.evcc.send(chunk)
        pipe.run()
    assert server.link is not None
    if server.closed:
        assert server.closed[0].startswith("tls ")
        assert server.link.failure is not None


_SECC_CONTEXT: dict[PkiFolder, TlsContext] = {}
