"""rig.v2g.tls_records: a session's wire bytes and its key log give back the plaintext, both
suites, both directions; KeyUpdate; and every malformed input ends in TlsDecodeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls_harness import evcc_config, secc_config, session_over_pipe

from rig.v2g.pki import PkiFolder
from rig.v2g.tls_records import (
    MAX_CIPHERTEXT,
    SUITES,
    ContentType,
    Direction,
    Epoch,
    KeyLog,
    KeyLogLabel,
    RecordReader,
    TlsDecodeError,
    application_data,
    decode_streams,
    hkdf_expand_label,
    next_traffic_secret,
    parse_records,
    traffic_keys,
)
from rig.v2g.transport.tls import CipherSuite

REQUEST = b"\x01\xfe\x80\x02\x00\x00\x00\x10SessionSetupReq!"  # a V2GTP-looking frame


def _session(pki: PkiFolder, suite: CipherSuite) -> tuple[str, bytes, bytes]:
    """(key log, client->server bytes, server->client bytes) of a session with two exchanges
    and a close_notify each way."""
    lines: list[str] = []
    pipe, client, _ = session_over_pipe(
        evcc_config(pki, key_log=lines.append, cipher_suites=(suite,)), secc_config(pki), REQUEST
    )
    assert client.link is not None
    client.link.send(b"x" * 20_000)  # longer than one record
    pipe.run()
    client.link.close("done")
    pipe.run()
    return "\n".join(lines) + "\n", pipe.stream("evcc"), pipe.stream("secc")


@pytest.mark.parametrize(
    "suite", [CipherSuite.TLS_AES_256_GCM_SHA384, CipherSuite.TLS_CHACHA20_POLY1305_SHA256]
)
def test_key_log_decrypts_both_directions(pki: PkiFolder, suite: CipherSuite) -> None:
    key_log, client_bytes, server_bytes = _session(pki, suite)
    decoder, records = decode_streams(KeyLog.parse(key_log), client_bytes, server_bytes)
    assert decoder.suite is not None and decoder.suite.name == suite.value
    assert application_data(records, Direction.CLIENT) == REQUEST + b"x" * 20_000
    assert application_data(records, Direction.SERVER) == b"re:" + REQUEST + b"re:" + b"x" * 20_000
    # handshake then application keys, sequence numbers counting from 0 under each
    for direction in Direction:
        mine = [r for r in records if r.direction is direction and r.epoch is not Epoch.PLAINTEXT]
        epochs = [r.epoch for r in mine]
        assert epochs == sorted(epochs, key=[Epoch.HANDSHAKE, Epoch.APPLICATION].index)
        for epoch in (Epoch.HANDSHAKE, Epoch.APPLICATION):
            assert [r.sequence for r in mine if r.epoch is epoch] == list(
                range(sum(r.epoch is epoch for r in mine))
            )
        # each side ends with an encrypted close_notify alert (level 1, description 0)
        assert (mine[-1].content_type, mine[-1].data) == (ContentType.ALERT, b"\x01\x00")


def test_decoding_needs_the_right_secrets(pki: PkiFolder) -> None:
    key_log, client_bytes, server_bytes = _session(pki, CipherSuite.TLS_AES_256_GCM_SHA384)
    other_log, _, _ = _session(pki, CipherSuite.TLS_AES_256_GCM_SHA384)
    with pytest.raises(TlsDecodeError, match=r"no (SERVER|CLIENT)_HANDSHAKE_TRAFFIC_SECRET"):
        decode_streams(KeyLog.parse(other_log), client_bytes, server_bytes)
    # right client random, wrong secret: the AEAD tag says so
    random_hex = key_log.split()[1]
    forged = "\n".join(
        f"{label} {random_hex} {'00' * 48}" for label in KeyLogLabel if "TRAFFIC" in label
    )
    with pytest.raises(TlsDecodeError, match="does not decrypt"):
        decode_streams(KeyLog.parse(forged), client_bytes, server_bytes)


def test_corrupted_record_does_not_decrypt(pki: PkiFolder) -> None:
    key_log, client_bytes, server_bytes = _session(pki, CipherSuite.TLS_AES_256_GCM_SHA384)
    damaged = bytearray(server_bytes)
    damaged[-3] ^= 0x01  # inside the last record's tag
    with pytest.raises(TlsDecodeError, match="does not decrypt"):
        decode_streams(KeyLog.parse(key_log), client_bytes, bytes(damaged))


def _seal(secret: bytes, suite_code: int, sequence: int, content: bytes, ctype: int) -> bytes:
    """Protect one record the way RFC 8446 5.2-5.4 says (the test's own sender)."""
    suite = SUITES[suite_code]
    key, iv = traffic_keys(secret, suite)
    inner = content + bytes([ctype]) + b"\x00" * 3  # with some padding
    header = bytes([23, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, sequence.to_bytes(12, "big"), strict=True))
    return header + suite.aead(key).encrypt(nonce, inner, header)


def test_key_update_switches_to_the_next_traffic_secret(pki: PkiFolder) -> None:
    key_log, client_bytes, server_bytes = _session(pki, CipherSuite.TLS_AES_256_GCM_SHA384)
    log = KeyLog.parse(key_log)
    decoder, records = decode_streams(log, client_bytes[:-24], server_bytes)  # without the alert
    assert decoder.client_hello is not None
    secret = log.secret(decoder.client_hello.random, KeyLogLabel.CLIENT_TRAFFIC_SECRET_0)
    sent = [r for r in records if r.direction is Direction.CLIENT and r.epoch is Epoch.APPLICATION]
    next_seq = len(sent)
    key_update = bytes([24, 0, 0, 1, 0])  # KeyUpdate(update_not_requested)
    extra = _seal(secret, 0x1302, next_seq, key_update, ContentType.HANDSHAKE)
    updated = next_traffic_secret(secret, SUITES[0x1302])
    extra += _seal(updated, 0x1302, 0, b"after the update", ContentType.APPLICATION_DATA)
    _, again = decode_streams(log, client_bytes[:-24] + extra, server_bytes)
    tail = [r for r in again if r.direction is Direction.CLIENT][-2:]
    assert tail[0].content_type == ContentType.HANDSHAKE and tail[0].data == key_update
    assert (tail[1].data, tail[1].sequence) == (b"after the update", 0)


def test_hkdf_expand_label_matches_its_definition() -> None:
    """RFC 8446 7.1, spelled out by hand for one case: HKDF-Expand's first block is
    HMAC(secret, info || 0x01) when the output fits in one hash length."""
    from cryptography.hazmat.primitives import hashes, hmac

    secret = bytes(range(48))
    info = (12).to_bytes(2, "big") + bytes([len(b"tls13 iv")]) + b"tls13 iv" + b"\x00"
    mac = hmac.HMAC(secret, hashes.SHA384())
    mac.update(info + b"\x01")
    assert hkdf_expand_label(secret, b"iv", b"", 12, hashes.SHA384()) == mac.finalize()[:12]


def test_record_reader_bounds_and_fragmentation() -> None:
    reader = RecordReader("test")
    record = bytes([22, 3, 1, 0, 3]) + b"abc"
    assert reader.feed(record[:2]) == [] and reader.pending == 2
    (whole,) = reader.feed(record[2:])
    assert (whole.content_type, whole.fragment, whole.offset) == (22, b"abc", 0)
    assert whole.header == record[:5]
    with pytest.raises(TlsDecodeError, match="not TLS"):
        RecordReader().feed(b"GET / HTTP/1.1\r\n")
    too_long = bytes([23, 3, 3]) + (MAX_CIPHERTEXT + 1).to_bytes(2, "big")
    with pytest.raises(TlsDecodeError, match="record length"):
        RecordReader().feed(too_long)
    records, tail = parse_records(record + record[:4])
    assert len(records) == 1 and tail == record[:4]


def test_truncated_stream_is_an_error() -> None:
    with pytest.raises(TlsDecodeError, match="ends inside a record"):
        decode_streams(KeyLog(), bytes([22, 3, 1, 0, 9, 1]), b"")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("CLIENT_TRAFFIC_SECRET_0 zz 00", "not hex"),
        ("CLIENT_TRAFFIC_SECRET_0 00 00", "not 32 bytes"),
        ("ONLY_TWO fields", "expected"),
        ("X " + "0" * 2000, "longer than"),
    ],
)
def test_malformed_key_log_lines_are_named(text: str, match: str) -> None:
    with pytest.raises(TlsDecodeError, match=match):
        KeyLog.parse(text)


def test_key_log_ignores_comments_and_blank_lines() -> None:
    random = "11" * 32
    log = KeyLog.parse(f"# a comment\n\nEXPORTER_SECRET {random} {'22' * 48}\n")
    assert bytes.fromhex(random) in log and len(log) == 1
    assert log.secret(bytes.fromhex(random), KeyLogLabel.EXPORTER_SECRET) == bytes.fromhex(
        "22" * 48
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_arbitrary_bytes_decode_or_fail_cleanly(client: bytes, server: bytes) -> None:
    with contextlib.suppress(TlsDecodeError):
        decode_streams(KeyLog(), client, server)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_sessions_decode_or_fail_cleanly(pki: PkiFolder, data: st.DataObject) -> None:
    key_log, client_bytes, server_bytes = _SESSION.get(pki) or _SESSION.setdefault(
        pki, _session(pki, CipherSuite.TLS_AES_256_GCM_SHA384)
    )
    which = data.draw(st.sampled_from(["client", "server"]))
    stream = bytearray(client_bytes if which == "client" else server_bytes)
    position = data.draw(st.integers(0, len(stream) - 1))
    stream[position] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(stream)))
    streams = (
        (bytes(stream[:cut]), server_bytes)
        if which == "client"
        else (client_bytes, bytes(stream[:cut]))
    )
    with contextlib.suppress(TlsDecodeError):
        decode_streams(KeyLog.parse(key_log), *streams)


_SESSION: dict[PkiFolder, tuple[str, bytes, bytes]] = {}
