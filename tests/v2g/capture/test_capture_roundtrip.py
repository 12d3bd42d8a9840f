"""A synthesized session (SDP, handshake, V2GTP frames both ways, FIN) written as pcapng, read back
by scapy (an independent reader and packet builder) and by our reader, byte for byte and to the
timestamp written."""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import (
    EPOCH_NS,
    EVCC,
    SECC,
    SECC_SDP,
    Script,
    session_script,
    stamp,
    v2gtp,
    write_script,
)
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from rig.v2g.capture import (
    DEFAULT_MSS,
    SNAPLEN,
    CaptureStateError,
    CaptureWriter,
    TappedLink,
    TcpState,
    TimestampResolution,
    inject_tls_keys,
    mac_for_address,
)
from rig.v2g.pcapread import Endpoint, read_capture, read_frames, split_v2gtp


@pytest.fixture(scope="module")
def script() -> Script:
    return session_script()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, script: Script) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("capture") / "v2g.pcapng"
    count = write_script(path, script)
    return path, count


def _checksums_recomputed(packet: Any) -> bytes:
    """The frame as scapy builds it when it computes the IPv6 payload length, the UDP length and
    the TCP or UDP checksum itself."""
    copy = packet.copy()
    del copy[IPv6].plen
    if copy.haslayer(TCP):
        del copy[TCP].chksum
    else:
        del copy[UDP].chksum
        del copy[UDP].len
    return bytes(Ether(bytes(copy)))


def test_scapy_reads_every_frame_with_the_lengths_and_checksums_it_computes(
    written: tuple[Path, int],
) -> None:
    path, count = written
    packets = rdpcap(str(path))
    assert len(packets) == count
    for packet in packets:
        assert packet.haslayer(IPv6)
        assert _checksums_recomputed(packet) == bytes(packet)


def test_scapy_sees_consistent_sequence_and_acknowledgement_numbers(
    written: tuple[Path, int], script: Script
) -> None:
    path, _ = written
    segments = [p for p in rdpcap(str(path)) if p.haslayer(TCP)]
    next_seq: dict[int, int] = {}
    client_port = EVCC[1]
    for p in segments:
        tcp = p[TCP]
        sender, receiver = tcp.sport, tcp.dport
        payload = bytes(tcp.payload)
        assert len(payload) <= DEFAULT_MSS
        if tcp.flags.S:
            next_seq[sender] = tcp.seq
            assert any(kind == "MSS" and value == DEFAULT_MSS for kind, value in tcp.options)
        assert tcp.seq == next_seq[sender], f"frame of {sender}: seq {tcp.seq}"
        if tcp.flags.A:
            assert tcp.ack == next_seq[receiver]
        next_seq[sender] = (
            tcp.seq + len(payload) + (1 if tcp.flags.S or tcp.flags.F else 0)
        ) % 2**32
    # Every byte went once: the final sequence numbers count the script's bytes (+ SYN + FIN).
    isn = {p[TCP].sport: p[TCP].seq for p in segments if p[TCP].flags.S}
    client_sent = (next_seq[client_port] - isn[client_port] - 2) % 2**32
    server_sent = (next_seq[SECC[1]] - isn[SECC[1]] - 2) % 2**32
    assert client_sent == len(script.stream(True))
    assert server_sent == len(script.stream(False))
    # PSH marks the last segment of each message: one per message.
    pushes = [p for p in segments if p[TCP].flags.P]
    assert len(pushes) == len(script.messages)


def test_scapy_reads_the_timestamps_written(written: tuple[Path, int], script: Script) -> None:
    path, _ = written
    packets = rdpcap(str(path))
    times_ns = [int(Decimal(str(p.time)) * 10**9) for p in packets]
    assert times_ns[0] == stamp(script.sdp_request[0])
    assert times_ns[1] == stamp(script.sdp_response[0])
    assert times_ns[2:5] == [stamp(script.open_t)] * 3
    assert times_ns[-1] == stamp(script.close_t)
    assert times_ns == sorted(times_ns)


def test_sdp_goes_to_all_nodes_multicast_and_comes_back_unicast(
    written: tuple[Path, int], script: Script
) -> None:
    path, _ = written
    request, response = [p for p in rdpcap(str(path)) if p.haslayer(UDP)]
    assert request[Ether].dst == "33:33:00:00:00:01"
    assert (request[IPv6].dst, request[UDP].dport, request[UDP].sport) == (
        "ff02::1",
        15118,
        EVCC[1],
    )
    assert bytes(request[UDP].payload) == script.sdp_request[1]
    assert request[Ether].src == "00:11:22:33:44:55"  # from the EVCC's EUI-64 address
    assert (response[IPv6].src, response[IPv6].dst) == (SECC_SDP[0], EVCC[0])
    assert (response[UDP].sport, response[UDP].dport) == (15118, EVCC[1])
    assert response[Ether].dst == request[Ether].src
    assert bytes(response[UDP].payload) == script.sdp_response[1]


def test_reader_reassembles_exactly_the_bytes_written(
    written: tuple[Path, int], script: Script
) -> None:
    path, count = written
    capture = read_capture(path)
    assert capture.format == "pcapng"
    assert capture.frames == count
    assert capture.undecodable == ()
    (connection,) = capture.connections
    client = Endpoint(EVCC[0], EVCC[1])
    server = Endpoint(SECC[0], SECC[1])
    assert connection.client == client and connection.syn and not connection.reset
    to_server = connection.stream_from(client)
    to_client = connection.stream_from(server)
    assert to_server.data == script.stream(True)
    assert to_client.data == script.stream(False)
    for stream in (to_server, to_client):
        assert stream.complete and stream.fin
        assert stream.retransmitted_bytes == 0


def test_reader_splits_v2gtp_frames_with_the_times_written(
    written: tuple[Path, int], script: Script
) -> None:
    path, _ = written
    connection = read_capture(path).connections[0]
    for from_client, src in ((True, Endpoint(*EVCC)), (False, Endpoint(*SECC))):
        split = split_v2gtp(connection.stream_from(src))
        expected = [m for m in script.messages if m.from_client == from_client]
        assert split.undecodable == ()
        assert [v2gtp(f.payload_type, f.payload) for f in split.frames] == [
            m.frame for m in expected
        ]
        assert [f.start_ns for f in split.frames] == [stamp(m.t) for m in expected]
        assert [f.end_ns for f in split.frames] == [stamp(m.t) for m in expected]
        # The big response spans several segments: its first and last frame numbers differ.
        spans = [f.last_frame - f.first_frame for f in split.frames]
        assert max(spans) == (0 if from_client else 3)


def test_reader_gives_sdp_payloads_and_times(written: tuple[Path, int], script: Script) -> None:
    path, _ = written
    request, response = read_capture(path).sdp
    assert (request.payload, request.time_ns) == (
        script.sdp_request[1],
        stamp(script.sdp_request[0]),
    )
    assert (response.payload, response.time_ns) == (
        script.sdp_response[1],
        stamp(script.sdp_response[0]),
    )
    assert request.dst == Endpoint("ff02::1", 15118)
    assert [split_v2gtp(d).frames[0].payload_type for d in (request, response)] == [0x9000, 0x9001]


def test_nanosecond_resolution_keeps_every_nanosecond(tmp_path: Path, script: Script) -> None:
    path = tmp_path / "ns.pcapng"
    write_script(path, script, resolution=TimestampResolution.NANOSECONDS)
    split = split_v2gtp(read_capture(path).connections[0].stream_from(Endpoint(*EVCC)))
    ns = TimestampResolution.NANOSECONDS
    assert [f.start_ns for f in split.frames] == [
        stamp(m.t, ns) for m in script.messages if m.from_client
    ]
    assert stamp(script.messages[0].t, ns) % 1000 != 0  # the script's times are not whole us
    packets = rdpcap(str(path))
    assert int(Decimal(str(packets[-1].time)) * 10**9) == stamp(script.close_t, ns)


def test_the_same_script_writes_the_same_file(tmp_path: Path, script: Script) -> None:
    write_script(tmp_path / "a.pcapng", script)
    write_script(tmp_path / "b.pcapng", script)
    assert (tmp_path / "a.pcapng").read_bytes() == (tmp_path / "b.pcapng").read_bytes()


def test_each_packet_is_on_disk_before_the_writer_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "live.pcapng"
    writer = CaptureWriter(path, epoch_ns=EPOCH_NS)
    session = writer.tcp_session(EVCC, SECC)
    session.open(0.0)
    session.data(0.1, True, v2gtp(0x8002, b"x" * 70))
    # Nothing closed, nothing flushed by hand: a crash now keeps these five frames.
    frames, problems = read_frames(path.read_bytes())
    assert (len(frames), problems) == (5, [])
    session.data(0.2, False, v2gtp(0x8002, b"y" * 50))
    assert len(read_frames(path.read_bytes())[0]) == 7
    writer.close()


def test_batched_flushing_holds_at_most_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "batched.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS, flush_every=8) as writer:
        session = writer.tcp_session(EVCC, SECC)
        session.open(0.0)  # 3 frames
        for i in range(3):  # 2 frames each
            session.data(0.1 * i, True, b"abc")
        assert len(read_frames(path.read_bytes())[0]) == 8
        session.data(1.0, True, b"abc")
        assert len(read_frames(path.read_bytes())[0]) == 8
    assert len(read_frames(path.read_bytes())[0]) == 11


def _pure_acks(path: Path) -> list[tuple[int, int, int]]:
    """(frame index, sender port, ack) of every segment without payload, SYN or FIN."""
    out = []
    for i, p in enumerate(rdpcap(str(path))):
        if p.haslayer(TCP) and not bytes(p[TCP].payload) and not (p[TCP].flags.S or p[TCP].flags.F):
            out.append((i, p[TCP].sport, p[TCP].ack))
    return out


def test_delayed_acks_are_piggybacked_or_sent_late_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "delayed.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC, ack_delay=0.04)
        session.open(0.0)  # frames 0-2; 2 is the handshake's ACK
        session.data(1.0, True, b"q" * 80)  # 3; the answer comes within 40 ms...
        session.data(1.02, False, b"r" * 60)  # 4 ...and carries the ACK
        session.data(2.0, True, b"q" * 80)  # the client's ACK of 4 was due at 1.06: 5, then 6
        session.data(2.5, False, b"r" * 60)  # the SECC's ACK due at 2.04 (7), then 8
        session.close(3.0, True)  # the client's ACK due at 2.54 (9); FIN 10, FIN 11, ACK 12
    acks = _pure_acks(path)
    assert [(i, port) for i, port, _ in acks] == [
        (2, EVCC[1]),
        (5, EVCC[1]),
        (7, SECC[1]),
        (9, EVCC[1]),
        (12, EVCC[1]),
    ]
    times = [int(Decimal(str(p.time)) * 10**9) for p in rdpcap(str(path))]
    assert times == sorted(times)
    assert [times[i] for i in (5, 7, 9)] == [stamp(1.06), stamp(2.04), stamp(2.54)]
    assert 4 not in [i for i, _, _ in acks]


def test_without_pure_acks_only_data_and_fin_acknowledge(tmp_path: Path) -> None:
    path = tmp_path / "noack.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC, ack_delay=None)
        session.open(0.0)
        for i in range(4):
            session.data(i, True, b"q" * 80)
            session.data(i + 0.5, False, b"r" * 60)
        session.close(5.0, False)
    assert [i for i, _, _ in _pure_acks(path)] == [2, 13]  # the handshake's and the close's


def test_a_large_write_is_acknowledged_before_the_window_fills(tmp_path: Path) -> None:
    path = tmp_path / "large.pcapng"
    blob = bytes(range(256)) * 800  # 204,800 bytes: more than three 64 KiB windows
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC, ack_delay=None)
        session.open(0.0)
        session.data(1.0, False, blob)
        session.close(2.0, True)
    in_flight_max = 0
    acked = None
    for p in rdpcap(str(path)):
        tcp = p[TCP]
        if tcp.sport == EVCC[1] and tcp.flags.A:
            acked = tcp.ack
        elif tcp.sport == SECC[1] and acked is not None:
            in_flight_max = max(in_flight_max, (tcp.seq + len(bytes(tcp.payload)) - acked) % 2**32)
    assert 60_000 < in_flight_max < 65535
    stream = read_capture(path).connections[0].stream_from(Endpoint(*SECC))
    assert stream.data == blob


def test_reset_ends_the_connection_with_one_rst(tmp_path: Path) -> None:
    path = tmp_path / "reset.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC)
        session.open(0.0)
        session.data(0.5, True, b"partial")
        session.reset(1.0, from_client=False)
        assert session.state is TcpState.RESET
    last = rdpcap(str(path))[-1][TCP]
    assert last.sport == SECC[1] and last.flags.R and last.flags.A
    connection = read_capture(path).connections[0]
    assert connection.reset and connection.stream_from(Endpoint(*EVCC)).data == b"partial"


@pytest.mark.parametrize(
    "misuse",
    [
        lambda s: s.data(0.0, True, b"x"),
        lambda s: s.close(0.0, True),
        lambda s: s.reset(0.0),
    ],
)
def test_a_connection_refuses_traffic_before_open(
    tmp_path: Path, misuse: Callable[[Any], None]
) -> None:
    with CaptureWriter(tmp_path / "x.pcapng", epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC)
        with pytest.raises(CaptureStateError, match="new"):
            misuse(session)


def test_a_connection_refuses_traffic_after_close_and_a_closed_writer_refuses_all(
    tmp_path: Path,
) -> None:
    writer = CaptureWriter(tmp_path / "x.pcapng", epoch_ns=EPOCH_NS)
    session = writer.tcp_session(EVCC, SECC)
    session.open(0.0)
    with pytest.raises(CaptureStateError, match="established"):
        session.open(0.1)
    session.close(1.0, True)
    with pytest.raises(CaptureStateError, match="closed"):
        session.data(2.0, True, b"late")
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(CaptureStateError):
        writer.write_frame(3.0, bytes(60))


def test_bad_endpoints_and_options_are_refused(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path / "x.pcapng", epoch_ns=EPOCH_NS) as writer:
        with pytest.raises(ValueError, match="IPv6"):
            writer.tcp_session(("192.0.2.1", 1), SECC)
        with pytest.raises(ValueError, match="port"):
            writer.tcp_session((EVCC[0], 0), SECC)
        with pytest.raises(ValueError, match="MAC"):
            writer.tcp_session(EVCC, SECC, client_mac="00:11")
        with pytest.raises(ValueError, match="window"):
            writer.tcp_session(EVCC, SECC, mss=1440, window=1000)
    with pytest.raises(ValueError, match="flush_every"):
        CaptureWriter(tmp_path / "y.pcapng", epoch_ns=0, flush_every=0)


def test_macs_come_from_eui64_addresses_or_a_stable_hash() -> None:
    assert mac_for_address("fe80::211:22ff:fe33:4455") == bytes.fromhex("001122334455")
    assert mac_for_address("fe80::27d:faff:fe06:ab91%eth0") == bytes.fromhex("007dfa06ab91")
    derived = mac_for_address("fe80::1")
    assert derived[0] == 0x02 and derived == mac_for_address("fe80::1")
    assert derived != mac_for_address("fe80::2")


def test_given_macs_and_scoped_addresses_are_used(tmp_path: Path) -> None:
    path = tmp_path / "mac.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(
            ("fe80::2%veth0", 50000), ("fe80::1%veth0", 15000), client_mac="0a:0b:0c:0d:0e:0f"
        )
        session.open(0.0)
    syn = rdpcap(str(path))[0]
    assert syn[Ether].src == "0a:0b:0c:0d:0e:0f"
    assert (syn[IPv6].src, syn[IPv6].dst) == ("fe80::2", "fe80::1")


def test_interface_block_names_the_synthesis_and_its_resolution(written: tuple[Path, int]) -> None:
    data = written[0].read_bytes()
    shb_length = struct.unpack("<I", data[4:8])[0]
    idb = data[shb_length:]
    block_type, length, linktype, _, snaplen = struct.unpack("<IIHHI", idb[:16])
    assert (block_type, linktype, snaplen) == (1, 1, SNAPLEN)
    options = idb[16 : length - 4]
    assert b"v2g-synthesized" in options and b"synthesized by the v2h rig" in options
    assert struct.pack("<HHB", 9, 1, 6) in options  # if_tsresol = 6 (microseconds)


def test_injected_tls_keys_sit_before_the_first_packet(tmp_path: Path, script: Script) -> None:
    path = tmp_path / "tls.pcapng"
    write_script(path, script)
    before = read_capture(path)
    key_log = "CLIENT_TRAFFIC_SECRET_0 " + "00" * 32 + " " + "11" * 48
    inject_tls_keys(path, key_log)
    data = path.read_bytes()
    shb_length = struct.unpack("<I", data[4:8])[0]
    idb_length = struct.unpack("<I", data[shb_length + 4 : shb_length + 8])[0]
    dsb = data[shb_length + idb_length :]
    assert struct.unpack("<III", dsb[:12])[0::2] == (0x0A, 0x544C534B)
    after = read_capture(path)
    assert after.tls_key_log == key_log.encode() + b"\n"
    assert after.frames == before.frames and after.connections == before.connections


def test_tls_keys_go_into_a_file_cut_by_a_crash(tmp_path: Path, script: Script) -> None:
    path = tmp_path / "cut.pcapng"
    write_script(path, script)
    whole = read_capture(path).frames
    path.write_bytes(path.read_bytes()[:-100])  # the last packet block is cut short
    inject_tls_keys(path, "CLIENT_RANDOM 00 11")
    capture = read_capture(path)
    assert capture.frames == whole - 1
    assert capture.tls_key_log == b"CLIENT_RANDOM 00 11\n"
    assert [(u.frame, u.kind.name) for u in capture.undecodable] == [(whole, "TRUNCATED_FILE")]


def test_keys_are_injected_only_into_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "not.pcapng"
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    with pytest.raises(ValueError, match="not a pcapng"):
        inject_tls_keys(path, "CLIENT_RANDOM 00 11")


def test_a_streamed_secrets_block_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "dsb.pcapng"
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        writer.write_tls_keys("SERVER_HANDSHAKE_TRAFFIC_SECRET aa bb\n")
        writer.write_tls_keys(b"CLIENT_TRAFFIC_SECRET_0 aa cc")
    assert read_capture(path).tls_key_log == (
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET aa bb\nCLIENT_TRAFFIC_SECRET_0 aa cc\n"
    )


class _Pipe:
    """Two ends of an in-memory ByteLink; delivery is immediate (enough for the tap)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.other: _Pipe | None = None
        self.on_data: Callable[[bytes], None] | None = None
        self.on_closed: Callable[[str], None] | None = None
        self._closed = False

    @staticmethod
    def pair() -> tuple[_Pipe, _Pipe]:
        a, b = _Pipe("memory:evcc"), _Pipe("memory:secc")
        a.other, b.other = b, a
        return a, b

    def set_receiver(
        self, on_data: Callable[[bytes], None], on_closed: Callable[[str], None]
    ) -> None:
        self.on_data, self.on_closed = on_data, on_closed

    def send(self, data: bytes) -> None:
        assert self.other is not None and self.other.on_data is not None and not self._closed
        self.other.on_data(data)

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        assert self.other is not None
        self.other.close(reason)
        if self.on_closed is not None:
            self.on_closed(reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        assert self.other is not None
        return self.other.name


def test_a_tapped_link_records_both_directions_and_the_close(tmp_path: Path) -> None:
    path = tmp_path / "tap.pcapng"
    clock = [10.0]
    evcc_end, secc_end = _Pipe.pair()
    received: list[bytes] = []
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        session = writer.tcp_session(EVCC, SECC)
        link = TappedLink(evcc_end, session, lambda: clock[0], local_is_client=True)
        link.set_receiver(received.append, lambda reason: None)
        secc_end.set_receiver(lambda data: secc_end.send(b"res:" + data), lambda reason: None)
        for i in range(3):
            clock[0] += 0.25
            link.send(v2gtp(0x8002, bytes([i]) * 40))
        clock[0] += 1.0
        secc_end.close("SessionStop")  # the peer closes: recorded as the SECC's FIN
        assert link.closed and link.peer_name == "memory:secc"
        link.close()  # nothing more to record
        assert link.capture_error is None
    connection = read_capture(path).connections[0]
    sent = b"".join(v2gtp(0x8002, bytes([i]) * 40) for i in range(3))
    assert connection.stream_from(Endpoint(*EVCC)).data == sent
    assert connection.stream_from(Endpoint(*SECC)).data == b"".join(received)
    assert received == [b"res:" + v2gtp(0x8002, bytes([i]) * 40) for i in range(3)]
    packets = rdpcap(str(path))
    fin = next(p for p in packets if p[TCP].flags.F)
    assert fin[TCP].sport == SECC[1]
    assert int(Decimal(str(fin.time)) * 10**9) == stamp(11.75)
    assert int(Decimal(str(packets[0].time)) * 10**9) == stamp(10.0)  # opened when wrapped


def test_a_tap_whose_capture_fails_keeps_the_link_working(tmp_path: Path) -> None:
    evcc_end, secc_end = _Pipe.pair()
    got: list[bytes] = []
    secc_end.set_receiver(got.append, lambda reason: None)
    writer = CaptureWriter(tmp_path / "tap.pcapng", epoch_ns=EPOCH_NS)
    link = TappedLink(evcc_end, writer.tcp_session(EVCC, SECC), lambda: 0.0, local_is_client=True)
    link.set_receiver(lambda data: None, lambda reason: None)
    writer.close()
    link.send(b"still delivered")
    assert got == [b"still delivered"]
    assert isinstance(link.capture_error, CaptureStateError)
