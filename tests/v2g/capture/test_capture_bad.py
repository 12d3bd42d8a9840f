"""Bad captures never crash, hang or allocate what a length field claims: a file cut anywhere,
a frame cut mid-packet, garbage, 4 GB length fields, impossible header lengths. Each problem is
an Undecodable with the frame number it belongs to."""

from __future__ import annotations

import random
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_helpers import EPOCH_NS, EVCC, SECC, v2gtp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcap_craft import (
    MAC_A,
    MAC_B,
    T0_NS,
    A,
    B,
    Record,
    block,
    enhanced_packet,
    interface,
    pcap,
    section_header,
    tcp_frame,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from rig.v2g.capture import CaptureWriter
from rig.v2g.pcapread import (
    Capture,
    Endpoint,
    ProblemKind,
    ReaderLimits,
    read_capture,
    read_frames,
    split_v2gtp,
)


def _small_session(path: Path) -> tuple[bytes, bytes]:
    """A short synthesized session; returns the bytes each side sent."""
    client, server = b"", b""
    with CaptureWriter(path, epoch_ns=EPOCH_NS) as writer:
        sdp = writer.sdp(EVCC, ("fe80::1", 15118))
        sdp.request(0.0, v2gtp(0x9000, b"\x10\x00"))
        session = writer.tcp_session(EVCC, SECC)
        session.open(0.1)
        for i in range(3):
            request, response = v2gtp(0x8002, bytes([i]) * 21), v2gtp(0x8002, bytes([i]) * 13)
            session.data(0.2 + i, True, request)
            session.data(0.3 + i, False, response)
            client, server = client + request, server + response
        session.close(5.0, True)
    return client, server


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    path = tmp_path_factory.mktemp("bad") / "small.pcapng"
    client, server = _small_session(path)
    return path.read_bytes(), client, server


def _block_ends(data: bytes) -> list[int]:
    ends, pos = [], 0
    while pos < len(data):
        pos += struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        ends.append(pos)
    return ends


def _exercise(capture: Capture) -> None:
    """Everything a user would call on a capture, so that nothing downstream raises either."""
    for connection in capture.connections:
        for stream in connection.streams:
            split_v2gtp(stream)
            for run in stream.runs:
                run.mark_at(run.offset)
                run.mark_at(run.end - 1)
    for datagram in capture.sdp:
        split_v2gtp(datagram)


def test_a_pcapng_cut_at_every_byte_reads_what_is_whole(small: tuple[bytes, bytes, bytes]) -> None:
    data, client, server = small
    ends = _block_ends(data)
    packet_ends = ends[2:]  # after the section header and the interface block
    for n in range(len(data) + 1):
        capture = read_capture(data[:n])
        _exercise(capture)
        whole = sum(1 for end in packet_ends if end <= n)
        assert capture.frames == whole, n
        kinds = [
            (u.frame, u.kind) for u in capture.undecodable if u.kind is not ProblemKind.STREAM_GAP
        ]
        if n == 0 or (n < 4):
            assert kinds == [(None, ProblemKind.NOT_A_CAPTURE)], n
        elif n in ends:
            assert kinds == [], n
        else:
            assert kinds == [(whole + 1, ProblemKind.TRUNCATED_FILE)], n
        for connection in capture.connections:
            assert client.startswith(connection.stream_from(Endpoint(*EVCC)).data)
            assert server.startswith(connection.stream_from(Endpoint(*SECC)).data)


def test_a_pcap_cut_at_every_byte_reads_what_is_whole(small: tuple[bytes, bytes, bytes]) -> None:
    data, client, _ = small
    frames, _ = read_frames(data)
    as_pcap = pcap([Record(f.time_ns, f.data) for f in frames])
    record_ends = []
    pos = 24
    for f in frames:
        pos += 16 + len(f.data)
        record_ends.append(pos)
    for n in range(len(as_pcap) + 1):
        capture = read_capture(as_pcap[:n])
        _exercise(capture)
        whole = sum(1 for end in record_ends if end <= n)
        assert capture.frames == whole
        kinds = [
            (u.frame, u.kind) for u in capture.undecodable if u.kind is not ProblemKind.STREAM_GAP
        ]
        if n < 4:
            assert kinds == [(None, ProblemKind.NOT_A_CAPTURE)]
        elif n < 24:
            assert kinds == [(None, ProblemKind.TRUNCATED_FILE)]
        elif n in record_ends or n == 24:
            assert kinds == []
        else:
            assert kinds == [(whole + 1, ProblemKind.TRUNCATED_FILE)]
        for connection in capture.connections:
            assert client.startswith(connection.stream_from(Endpoint(*EVCC)).data)


def _peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _frame(i: int) -> bytes:
    return tcp_frame(A, B, 100 + i, b"x", flags="PA")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # A packet block claiming 4 GB: the file's framing is lost, reading stops at frame 2.
        (
            section_header()
            + interface()
            + enhanced_packet(1, _frame(0))
            + struct.pack("<II", 6, 0xFFFFFFFC),
            [(2, ProblemKind.BAD_BLOCK)],
        ),
        # A section header claiming 4 GB.
        (
            struct.pack("<III", 0x0A0D0D0A, 0xFFFFFFFC, 0x1A2B3C4D) + bytes(64),
            [(1, ProblemKind.BAD_BLOCK)],
        ),
        # A block length that is not a multiple of 4, and one shorter than a block can be.
        (
            section_header() + interface() + struct.pack("<II", 6, 33) + bytes(40),
            [(1, ProblemKind.BAD_BLOCK)],
        ),
        (section_header() + interface() + struct.pack("<II", 6, 8), [(1, ProblemKind.BAD_BLOCK)]),
        # The trailing length differs from the leading one.
        (
            section_header()
            + interface()
            + enhanced_packet(1, _frame(0))[:-4]
            + struct.pack("<I", 4),
            [(1, ProblemKind.BAD_BLOCK)],
        ),
        # A pcap record claiming 4 GB captured.
        (
            pcap([Record(T0_NS, _frame(0))]) + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF),
            [(2, ProblemKind.BAD_BLOCK)],
        ),
        # Not a capture at all, and an unknown byte-order magic.
        (b"GET / HTTP/1.1\r\n\r\n", [(None, ProblemKind.NOT_A_CAPTURE)]),
        (struct.pack("<III", 0x0A0D0D0A, 28, 0xDEADBEEF) + bytes(16), [(1, ProblemKind.BAD_BLOCK)]),
    ],
    ids=[
        "epb-4GB",
        "shb-4GB",
        "odd-length",
        "short-block",
        "trailer",
        "pcap-4GB",
        "garbage",
        "magic",
    ],
)
def test_lengths_that_frame_the_file_stop_the_reading_with_bounded_memory(
    data: bytes, expected: list[tuple[int | None, ProblemKind]]
) -> None:
    captures: list[Capture] = []
    peak = _peak_bytes(lambda: captures.append(read_capture(data)))
    assert [(u.frame, u.kind) for u in captures[0].undecodable] == expected
    assert peak < 1 << 20


def test_lengths_inside_a_whole_block_skip_that_frame_only() -> None:
    good = [enhanced_packet(T0_NS + i, _frame(i)) for i in range(3)]
    lying = bytearray(good[1])
    struct.pack_into("<I", lying, 8 + 12, 0xFFFFFFFF)  # captured length 4 GB in a 100-byte block
    short_idb = block(1, b"\x01\x00")
    secrets = block(0x0A, struct.pack("<II", 0x544C534B, 0xFFFF0000) + b"CLIENT_RANDOM x y\n")
    data = section_header() + interface() + good[0] + bytes(lying) + secrets + good[2] + short_idb
    capture = read_capture(data)
    assert capture.frames == 3
    assert [(u.frame, u.kind) for u in capture.undecodable] == [
        (2, ProblemKind.BAD_FRAME),
        (3, ProblemKind.BAD_BLOCK),  # the secrets block comes before frame 3
        (3, ProblemKind.STREAM_GAP),  # frame 2's byte is missing from the stream
        (4, ProblemKind.BAD_BLOCK),  # the interface block after the last frame
    ]
    assert capture.tls_key_log == b""
    assert capture.connections[0].stream_from(Endpoint(*A)).data == b"xx"


def _ipv6_tcp(patch: Callable[[bytearray], None], wire_extra: int = 0) -> Record:
    frame = bytearray(tcp_frame(A, B, 7, b"payload", flags="PA"))
    patch(frame)
    return Record(T0_NS, bytes(frame), len(frame) + wire_extra or None)


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        (_ipv6_tcp(lambda f: struct.pack_into("!H", f, 18, 0xFFFF)), ProblemKind.BAD_HEADER),
        (
            _ipv6_tcp(lambda f: f.__setitem__(54 + 12, 0xF0)),
            ProblemKind.BAD_HEADER,
        ),  # 60-byte header
        (
            _ipv6_tcp(lambda f: f.__setitem__(54 + 12, 0x30)),
            ProblemKind.BAD_HEADER,
        ),  # 12-byte header
        (_ipv6_tcp(lambda f: f.__setitem__(14, 0x40)), ProblemKind.BAD_HEADER),  # version 4
        (
            _ipv6_tcp(lambda f: struct.pack_into("!H", f, 18, 10)),
            ProblemKind.CUT_FRAME,
        ),  # 10-byte TCP
        (Record(T0_NS, b"\x02\0\0\0\0\x0b"), ProblemKind.CUT_FRAME),
        (Record(T0_NS, tcp_frame(A, B, 7, b"payload")[:30], 81), ProblemKind.CUT_FRAME),
        (
            Record(
                T0_NS,
                bytes(
                    Ether(src=MAC_A, dst=MAC_B)
                    / IPv6(src=A[0], dst=B[0])
                    / UDP(sport=15118, dport=49000, len=4000)
                    / Raw(b"x")
                ),
            ),
            ProblemKind.BAD_HEADER,
        ),
    ],
    ids=[
        "ipv6-length",
        "tcp-offset-60",
        "tcp-offset-12",
        "ip-version",
        "tcp-cut",
        "ethernet-cut",
        "snaplen",
        "udp-length",
    ],
)
def test_impossible_header_lengths_are_undecodable_with_their_frame(
    record: Record, kind: ProblemKind
) -> None:
    data = pcap([Record(T0_NS, _frame(0)), record, Record(T0_NS, _frame(1))])
    capture = read_capture(data)
    assert capture.frames == 3
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(2, kind)]
    assert len(capture.connections) == 1  # the frames around it still count


def test_garbage_of_any_kind_reads_as_nothing_or_as_problems() -> None:
    rng = random.Random(1)
    for prefix in (b"", section_header() + interface(), pcap([])):
        for _ in range(20):
            data = prefix + rng.randbytes(rng.randrange(0, 4096))
            kept: list[Capture] = []
            peak = _peak_bytes(lambda d=data, out=kept: out.append(read_capture(d)))
            _exercise(kept[0])
            assert peak < 2 << 20
            if not prefix:
                assert kept[0].undecodable[0].kind is ProblemKind.NOT_A_CAPTURE


def test_the_problem_list_is_bounded() -> None:
    bad = tcp_frame(A, B, 1, b"z")[:20]  # a cut IPv6 header, 200 times
    data = pcap([Record(T0_NS + i, bad) for i in range(200)])
    capture = read_capture(data, ReaderLimits(max_problems=50))
    assert len(capture.undecodable) == 50 and capture.undecodable_dropped == 150


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mutations=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=255)
        ),
        min_size=1,
        max_size=12,
    ),
    cut=st.integers(min_value=0, max_value=10**6),
    as_pcap=st.booleans(),
)
def test_mutated_captures_never_raise(
    small: tuple[bytes, bytes, bytes], mutations: list[tuple[int, int]], cut: int, as_pcap: bool
) -> None:
    data = small[0]
    if as_pcap:
        data = pcap([Record(f.time_ns, f.data) for f in read_frames(data)[0]])
    mutated = bytearray(data)
    for position, value in mutations:
        mutated[position % len(mutated)] = value
    mutated = mutated[: max(cut % (len(mutated) + 1), len(mutated) // 2)]
    _exercise(read_capture(bytes(mutated)))


def test_reading_from_a_path_and_a_file_object_agree(
    tmp_path: Path, small: tuple[bytes, bytes, bytes]
) -> None:
    path = tmp_path / "copy.pcapng"
    path.write_bytes(small[0])
    with path.open("rb") as f:
        from_file = read_capture(f)
    assert read_capture(path) == from_file == read_capture(small[0])
