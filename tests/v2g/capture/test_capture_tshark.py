"""Synthesized captures as Wireshark sees them: tshark (Debian's, 4.0 here) opens them with every
checksum verified and raises no warning or error, follows the TCP stream to the bytes written,
and decrypts a TLS 1.3 session with the key log injected into the file."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from capture_helpers import (
    EPOCH_NS,
    EVCC,
    SECC,
    WARNING_SEVERITY,
    Script,
    missing,
    run_tshark,
    session_script,
    stamp,
    tshark,
    tshark_expert,
    tshark_follow,
    v2gtp,
    write_script,
)

from rig.v2g.capture import CaptureWriter, inject_tls_keys

#: The only expert notes a clean session raises: its orderly close.
CLOSING_NOTES = {
    "This frame initiates the connection closing",
    "This frame undergoes the connection closing",
}


@pytest.fixture(scope="module")
def script() -> Script:
    return session_script()


def _assert_clean(path: Path) -> list[tuple[int, int, str]]:
    items = tshark_expert(path)
    assert [i for i in items if i[1] >= WARNING_SEVERITY] == []
    notes = {message for _, severity, message in items if 0x00400000 <= severity < WARNING_SEVERITY}
    assert notes <= CLOSING_NOTES, notes
    return items


@pytest.mark.parametrize("ack_delay", [0.0, 0.04, None], ids=["immediate", "delayed", "none"])
def test_tshark_verifies_every_checksum_and_finds_nothing_wrong(
    tmp_path: Path, script: Script, ack_delay: float | None
) -> None:
    tshark()
    path = tmp_path / "v2g.pcapng"
    count = write_script(path, script, ack_delay=ack_delay)
    items = _assert_clean(path)
    # The check can fail: tshark reports the handshake and the comments we wrote.
    assert any("SYN" in message for _, _, message in items)
    statuses = run_tshark(
        path,
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "tcp.checksum.status",
        "-e",
        "udp.checksum.status",
    ).splitlines()
    assert len(statuses) == count
    for line in statuses:
        _, tcp_status, udp_status = line.split("\t")
        assert (tcp_status or udp_status) == "1", line  # 1 = Good


def test_tshark_follows_the_stream_to_the_bytes_written(tmp_path: Path, script: Script) -> None:
    tshark()
    path = tmp_path / "v2g.pcapng"
    write_script(path, script)
    client, server = tshark_follow(path, 0)
    assert client == script.stream(True)
    assert server == script.stream(False)


def test_tshark_reads_the_timestamps_and_protocols_written(tmp_path: Path, script: Script) -> None:
    tshark()
    path = tmp_path / "v2g.pcapng"
    write_script(path, script)
    rows = run_tshark(
        path,
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
        "-e",
        "frame.protocols",
        "-e",
        "frame.comment",
    ).splitlines()
    epochs = [row.split("\t")[0] for row in rows]
    assert epochs[0] == f"{stamp(0.0) // 10**9}.{stamp(0.0) % 10**9:09d}"
    assert epochs[-1] == f"{stamp(script.close_t) // 10**9}.{stamp(script.close_t) % 10**9:09d}"
    protocols = [row.split("\t")[1] for row in rows]
    assert protocols[:2] == ["eth:ethertype:ipv6:udp:data"] * 2
    assert set(protocols[2:]) <= {"eth:ethertype:ipv6:tcp", "eth:ethertype:ipv6:tcp:data"}
    comments = [row.split("\t")[2] for row in rows if row.split("\t")[2]]
    assert comments == [f"message {i}" for i in range(len(script.messages))]


def test_tshark_finds_nothing_wrong_with_a_large_write_or_a_reset(tmp_path: Path) -> None:
    tshark()
    path = tmp_path / "large.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        first = writer.tcp_session(EVCC, SECC, ack_delay=None)
        first.open(0.0)
        first.data(1.0, False, bytes(range(256)) * 800)
        first.close(2.0, True)
        second = writer.tcp_session((EVCC[0], EVCC[1] + 1), SECC)
        second.open(3.0)
        second.data(3.1, True, v2gtp(0x8001, b"x" * 40))
        second.reset(3.2, from_client=False)
    items = tshark_expert(path)
    assert [i for i in items if i[1] > WARNING_SEVERITY] == []
    # The RST is the one warning tshark always gives ("Connection reset (RST)").
    assert [m for _, s, m in items if s == WARNING_SEVERITY] == ["Connection reset (RST)"]


# -- TLS ------------------------------------------------------------------------------------------


def _tls_exchange(tmp_path: Path) -> tuple[list[tuple[bool, bytes]], str, bytes, bytes]:
    """A TLS 1.3 session between two in-memory ends (Python's ssl over memory BIOs), with the key
    log the client wrote: (records on the wire in order, key log, client plaintext, server's)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            str(openssl), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-nodes", "-subj", "/CN=secc.test",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_3
    server_context.load_cert_chain(cert, key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.minimum_version = ssl.TLSVersion.TLSv1_3
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    key_log_path = tmp_path / "keylog.txt"
    client_context.keylog_filename = str(key_log_path)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_side=False)
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    wire: list[tuple[bool, bytes]] = []

    def pump() -> None:
        if data := c_out.read():
            wire.append((True, data))
            s_in.write(data)
        if data := s_out.read():
            wire.append((False, data))
            c_in.write(data)

    for _ in range(6):
        for end in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):  # waiting for the other end
                end.do_handshake()
        pump()
    assert client.version() == "TLSv1.3"
    request, response = v2gtp(0x8002, b"SessionSetupReq" * 3), v2gtp(0x8002, b"SessionSetupRes" * 2)
    client.write(request)
    pump()
    assert server.read(4096) == request
    server.write(response)
    pump()
    assert client.read(4096) == response
    return wire, key_log_path.read_text(), request, response


def _write_tls(path: Path, wire: list[tuple[bool, bytes]], keys_first: str | None) -> None:
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        if keys_first is not None:
            writer.write_tls_keys(keys_first)
        session = writer.tcp_session(EVCC, SECC)
        session.open(0.0)
        for i, (from_client, data) in enumerate(wire):
            session.data(0.01 * (i + 1), from_client, data)
        session.close(1.0, True)


def _decrypted(path: Path) -> list[bytes]:
    out = run_tshark(path, "-Y", "tls.app_data", "-T", "fields", "-e", "data.data")
    return [bytes.fromhex(line.replace(",", "")) for line in out.splitlines() if line.strip()]


def test_tshark_decrypts_tls_with_the_key_log_injected_into_the_file(tmp_path: Path) -> None:
    tshark()
    wire, key_log, request, response = _tls_exchange(tmp_path)
    path = tmp_path / "tls.pcapng"
    _write_tls(path, wire, keys_first=None)
    assert _decrypted(path) == []  # no keys, no plaintext: the check below can fail
    inject_tls_keys(path, key_log)
    assert _decrypted(path) == [request, response]
    _assert_clean(path)


def test_tshark_decrypts_tls_with_a_secrets_block_written_before_the_handshake(
    tmp_path: Path,
) -> None:
    tshark()
    wire, key_log, request, response = _tls_exchange(tmp_path)
    path = tmp_path / "tls-streamed.pcapng"
    _write_tls(path, wire, keys_first=key_log)
    assert _decrypted(path) == [request, response]
