"""TCP reassembly and the capture formats of the reader, on hand-made captures: out-of-order and
retransmitted segments, overlaps, a segment cut by the capture, lost bytes, reopened ports,
sequence wrap-around, missing SYNs; pcap and pcapng variants and the link types seen in the field."""

from __future__ import annotations

import struct

from capture_helpers import v2gtp
from pcap_craft import (
    MAC_A,
    MAC_B,
    T0_NS,
    A,
    B,
    Record,
    enhanced_packet,
    interface,
    old_packet,
    pcap,
    section_header,
    simple_packet,
    tcp4_frame,
    tcp_frame,
)
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from rig.v2g.pcapread import (
    Endpoint,
    ProblemKind,
    ReaderLimits,
    read_capture,
    split_v2gtp,
)

ISN_A = 1000
ISN_B = 5000
EP_A = Endpoint(*A)
EP_B = Endpoint(*B)


def handshake(isn_a: int = ISN_A, isn_b: int = ISN_B) -> list[bytes]:
    return [
        tcp_frame(A, B, isn_a, flags="S"),
        tcp_frame(B, A, isn_b, ack=isn_a + 1, flags="SA"),
        tcp_frame(A, B, isn_a + 1, ack=isn_b + 1),
    ]


def capture_of(frames: list[bytes], wire: dict[int, int] | None = None) -> bytes:
    """A pcap of the frames, 1 ms apart; `wire` gives frames (by index) a longer wire length."""
    wire = wire or {}
    return pcap([Record(T0_NS + i * 1_000_000, f, wire.get(i)) for i, f in enumerate(frames)])


def data_a(offset: int, payload: bytes, isn: int = ISN_A) -> bytes:
    return tcp_frame(A, B, isn + 1 + offset, payload, ack=ISN_B + 1, flags="PA")


def test_out_of_order_segments_are_put_in_order_and_keep_their_own_times() -> None:
    frames = [*handshake(), data_a(0, b"aaaa"), data_a(8, b"cccc"), data_a(4, b"bbbb")]
    capture = read_capture(capture_of(frames))
    stream = capture.connections[0].stream_from(EP_A)
    assert stream.data == b"aaaabbbbcccc" and stream.complete
    (run,) = stream.runs
    assert [(m.offset, m.frame) for m in run.marks] == [(0, 4), (4, 6), (8, 5)]
    assert run.mark_at(9).time_ns == T0_NS + 4 * 1_000_000  # frame 5 is index 4
    assert capture.undecodable == ()


def test_retransmissions_and_overlaps_are_counted_once_and_conflicts_noted() -> None:
    frames = [
        *handshake(),
        data_a(0, b"0123456789"),
        data_a(0, b"0123456789"),  # an exact retransmission
        data_a(5, b"56789ABCDE"),  # overlaps the first by five bytes
        data_a(0, b"01234XXXXX"),  # a retransmission whose bytes differ
    ]
    stream = read_capture(capture_of(frames)).connections[0].stream_from(EP_A)
    assert stream.data == b"0123456789ABCDE"
    assert stream.retransmitted_bytes == 10 + 5 + 10
    assert stream.conflicting_retransmissions == 1
    assert stream.segments == 4


def test_a_segment_cut_by_the_capture_leaves_a_gap_and_the_next_frame_resyncs() -> None:
    first = v2gtp(0x8002, b"A" * 60)
    second = v2gtp(0x8002, b"B" * 30)
    frames = [*handshake(), data_a(0, first), data_a(len(first), second)]
    cut = frames[3][: len(frames[3]) - 40]  # snaplen cut: 40 bytes of the first frame missing
    capture = read_capture(
        pcap(
            [Record(T0_NS + i, f) for i, f in enumerate(frames[:3])]
            + [Record(T0_NS + 3, cut, len(frames[3])), Record(T0_NS + 4, frames[4])]
        )
    )
    assert [(u.frame, u.kind) for u in capture.undecodable] == [
        (4, ProblemKind.CUT_FRAME),
        (5, ProblemKind.STREAM_GAP),
    ]
    stream = capture.connections[0].stream_from(EP_A)
    assert [(g.offset, g.length, g.frame) for g in stream.gaps] == [(len(first) - 40, 40, 5)]
    assert not stream.complete
    assert [r.data for r in stream.runs] == [first[:-40], second]
    split = split_v2gtp(stream)
    assert [(u.frame, u.kind) for u in split.undecodable] == [(4, ProblemKind.V2GTP_INCOMPLETE)]
    assert "before a gap" in split.undecodable[0].detail
    assert [f.payload for f in split.frames] == [b"B" * 30]
    assert split.frames[0].first_frame == 5


def test_an_incomplete_trailing_frame_is_undecodable_with_its_frame_number() -> None:
    whole = v2gtp(0x8002, b"W" * 20)
    partial = v2gtp(0x8002, b"P" * 50)[:30]  # the capture stops before the rest was sent
    frames = [*handshake(), data_a(0, whole), data_a(len(whole), partial)]
    capture = read_capture(capture_of(frames))
    assert capture.undecodable == ()  # as far as TCP knows, the stream is complete
    split = split_v2gtp(capture.connections[0].stream_from(EP_A))
    assert [f.payload for f in split.frames] == [b"W" * 20]
    (problem,) = split.undecodable
    assert (problem.frame, problem.kind) == (5, ProblemKind.V2GTP_INCOMPLETE)
    assert "58 bytes has 30 at the end of the stream" in problem.detail


def test_a_last_segment_cut_by_the_capture_is_a_trailing_gap() -> None:
    payload = v2gtp(0x8002, b"Z" * 100)
    frames = [*handshake(), data_a(0, payload)]
    capture = read_capture(capture_of([*frames[:3], frames[3][:-50]], wire={3: len(frames[3])}))
    stream = capture.connections[0].stream_from(EP_A)
    assert [(g.offset, g.length) for g in stream.gaps] == [(len(payload) - 50, 50)]
    assert {u.kind for u in capture.undecodable} == {ProblemKind.CUT_FRAME, ProblemKind.STREAM_GAP}
    assert split_v2gtp(stream).undecodable[0].frame == 4


def test_lost_bytes_never_retransmitted_become_a_gap_at_the_end() -> None:
    frames = [*handshake(), data_a(0, b"x" * 10), data_a(20, b"z" * 10), data_a(30, b"w" * 5)]
    capture = read_capture(capture_of(frames))
    stream = capture.connections[0].stream_from(EP_A)
    assert [(g.offset, g.length, g.frame) for g in stream.gaps] == [(10, 10, 5)]
    assert [(r.offset, r.data) for r in stream.runs] == [(0, b"x" * 10), (20, b"z" * 10 + b"w" * 5)]
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(5, ProblemKind.STREAM_GAP)]


def test_a_reset_then_a_new_syn_on_the_same_ports_is_a_new_connection() -> None:
    frames = [
        tcp_frame(A, B, ISN_A, flags="S"),
        tcp_frame(B, A, 777_777, ack=1, flags="A"),  # a stale ACK, as in the VW capture
        tcp_frame(A, B, 1, flags="R"),
        *handshake(),  # the same ISN again
        data_a(0, b"hello"),
        tcp_frame(A, B, ISN_A + 6, ack=ISN_B + 1, flags="FA"),
        tcp_frame(B, A, ISN_B + 1, ack=ISN_A + 7, flags="FA"),
        tcp_frame(A, B, ISN_A + 7, ack=ISN_B + 2),
        tcp_frame(A, B, 90_000, flags="S"),  # after both FINs: a third connection
    ]
    capture = read_capture(capture_of(frames))
    assert [(c.first_frame, c.last_frame, c.reset) for c in capture.connections] == [
        (1, 3, True),
        (4, 10, False),
        (11, 11, False),
    ]
    assert [c.index for c in capture.data_connections] == [1]
    session = capture.connections[1]
    assert session.client == EP_A
    assert session.stream_from(EP_A).data == b"hello" and session.stream_from(EP_A).fin
    assert session.stream_from(EP_B).fin and session.stream_from(EP_B).isn == ISN_B


def test_a_retransmitted_syn_stays_in_its_connection() -> None:
    frames = [tcp_frame(A, B, ISN_A, flags="S"), *handshake(), data_a(0, b"abc")]
    capture = read_capture(capture_of(frames))
    assert len(capture.connections) == 1
    assert capture.connections[0].stream_from(EP_A).data == b"abc"


def test_sequence_numbers_wrap_around() -> None:
    isn = 2**32 - 7
    frames = [
        tcp_frame(A, B, isn, flags="S"),
        tcp_frame(B, A, ISN_B, ack=isn + 1, flags="SA"),
        data_a(0, b"0123456789", isn=isn),  # seq 2**32 - 6, crossing zero
        data_a(20, b"KLMNO", isn=isn),  # out of order across the wrap
        data_a(10, b"ABCDEFGHIJ", isn=isn),
    ]
    stream = read_capture(capture_of(frames)).connections[0].stream_from(EP_A)
    assert stream.data == b"0123456789ABCDEFGHIJKLMNO" and stream.complete


def test_a_capture_that_starts_mid_connection_begins_at_the_first_segment() -> None:
    frames = [
        data_a(100, b"middle"),
        tcp_frame(B, A, ISN_B + 50, b"reply", flags="PA"),
        data_a(106, b"!"),
    ]
    capture = read_capture(capture_of(frames))
    (connection,) = capture.connections
    assert connection.client is None and not connection.syn
    assert connection.endpoints == (EP_A, EP_B)
    stream = connection.stream_from(EP_A)
    assert (stream.data, stream.isn, stream.complete) == (b"middle!", None, True)
    assert connection.stream_from(EP_B).data == b"reply"


def test_a_segment_far_ahead_of_its_stream_is_refused() -> None:
    frames = [*handshake(), data_a(0, b"ok"), data_a(2**30, b"far away")]
    capture = read_capture(capture_of(frames))
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(5, ProblemKind.SEQUENCE_JUMP)]
    assert capture.connections[0].stream_from(EP_A).data == b"ok"


def test_held_back_segments_are_bounded() -> None:
    # Segment 0 is lost; 20 segments of 100 bytes wait behind it; the bound is 1000 bytes.
    frames = [*handshake(), *[data_a(100 * i, bytes([i]) * 100) for i in range(1, 21)]]
    capture = read_capture(capture_of(frames), ReaderLimits(max_out_of_order=1000))
    stream = capture.connections[0].stream_from(EP_A)
    assert [(g.offset, g.length) for g in stream.gaps] == [(0, 100)]
    assert stream.runs[0].offset == 100 and len(stream.runs[0].data) == 2000
    assert capture.undecodable[0].kind is ProblemKind.STREAM_GAP


def test_a_stream_over_its_limit_stops_keeping_bytes() -> None:
    frames = [*handshake(), *[data_a(100 * i, b"s" * 100) for i in range(5)]]
    capture = read_capture(capture_of(frames), ReaderLimits(max_stream=250))
    assert len(capture.connections[0].stream_from(EP_A).data) == 200
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(6, ProblemKind.LIMIT)]


def test_v2gtp_garbage_and_impossible_lengths_are_skipped_to_the_next_frame() -> None:
    good = v2gtp(0x8002, b"g" * 10)
    huge = b"\x01\xfe\x80\x02\xff\xff\xff\xff" + b"\0" * 4  # a 4 GB payload length
    stream_bytes = b"garbage!" + good + huge + good
    frames = [*handshake(), data_a(0, stream_bytes[:20]), data_a(20, stream_bytes[20:])]
    split = split_v2gtp(read_capture(capture_of(frames)).connections[0].stream_from(EP_A))
    assert [f.offset for f in split.frames] == [8, 8 + len(good) + len(huge)]
    assert [(u.frame, u.kind) for u in split.undecodable] == [
        (4, ProblemKind.V2GTP_HEADER),
        (5, ProblemKind.V2GTP_LENGTH),
    ]
    assert [(f.first_frame, f.last_frame) for f in split.frames] == [(4, 5), (5, 5)]


# -- formats and link types -----------------------------------------------------------------------


def _session(payload: bytes = b"payload") -> list[bytes]:
    return [*handshake(), data_a(0, payload)]


def test_pcap_in_nanoseconds_and_big_endian() -> None:
    frames = _session()
    records = [Record(T0_NS + 123_456_789 + i, f) for i, f in enumerate(frames)]
    for nanoseconds, order in ((True, "<"), (False, ">"), (True, ">")):
        capture = read_capture(pcap(records, nanoseconds=nanoseconds, order=order))
        stream = capture.connections[0].stream_from(EP_A)
        assert stream.data == b"payload"
        expected = T0_NS + 123_456_789 + 3 if nanoseconds else T0_NS + 123_456_000
        assert stream.runs[0].marks[0].time_ns == expected


def test_linux_cooked_raw_ip_vlan_and_ipv4_link_layers() -> None:
    ipv6_frames = [f[14:] for f in _session()]  # the IPv6 packets without Ethernet
    sll = [b"\0\0\0\x01\0\x06" + b"\x02\0\0\0\0\x0a\0\0" + b"\x86\xdd" + p for p in ipv6_frames]
    sll2 = [
        b"\x86\xdd\0\0" + b"\0\0\0\x02" + b"\0\x01\0\x06" + b"\x02\0\0\0\0\x0a\0\0" + p
        for p in ipv6_frames
    ]
    vlan = [bytes(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=7) / IPv6(p)) for p in ipv6_frames]
    for linktype, frames in (
        (113, sll),
        (276, sll2),
        (229, ipv6_frames),
        (101, ipv6_frames),
        (1, vlan),
    ):
        capture = read_capture(
            pcap([Record(T0_NS + i, f) for i, f in enumerate(frames)], linktype=linktype)
        )
        assert capture.connections[0].stream_from(EP_A).data == b"payload", linktype
        assert capture.undecodable == ()
    four = [tcp4_frame(("192.0.2.1", 40000), ("192.0.2.2", 15118), 10, b"over IPv4")]
    padded = four[0] + b"\0" * 6  # Ethernet padding or an FCS after the IP packet
    capture = read_capture(pcap([Record(T0_NS, padded)]))
    stream = capture.connections[0].stream_from(Endpoint("192.0.2.1", 40000))
    assert stream.data == b"over IPv4"


def test_ipv6_extension_headers_are_walked_and_fragments_refused() -> None:
    hop_by_hop = bytes(
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src=A[0], dst=B[0])
        / IPv6ExtHdrHopByHop()
        / TCP(sport=A[1], dport=B[1], seq=77, flags="PA")
        / Raw(b"behind an extension")
    )
    fragment = bytes(
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src=A[0], dst=B[0])
        / IPv6ExtHdrFragment(offset=0, m=1)
        / Raw(b"\0" * 24)
    )
    capture = read_capture(pcap([Record(T0_NS, hop_by_hop), Record(T0_NS + 1, fragment)]))
    assert capture.connections[0].stream_from(EP_A).data == b"behind an extension"
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(2, ProblemKind.FRAGMENT)]


def test_pcapng_interfaces_resolutions_offsets_and_old_block_types() -> None:
    frames = _session()
    data = (
        section_header()
        + interface(tsresol=9)  # interface 0: nanoseconds
        + interface(tsresol=0x80 | 20, tsoffset=1_000)  # interface 1: 2**-20 s, +1000 s
        + enhanced_packet(T0_NS + 5, frames[0], interface_id=0)
        + enhanced_packet(3 << 20, frames[1], interface_id=1)  # 3 s + 1000 s
        + old_packet(T0_NS + 7, frames[2])  # obsolete Packet Block, interface 0
        + simple_packet(frames[3])  # no timestamp: time 0
        + enhanced_packet(0, frames[3], interface_id=9)  # an interface that does not exist
    )
    capture = read_capture(data)
    assert capture.frames == 5
    assert [(u.frame, u.kind) for u in capture.undecodable] == [(5, ProblemKind.BAD_FRAME)]
    connection = capture.connections[0]
    assert connection.stream_from(EP_A).data == b"payload"
    assert connection.stream_from(EP_A).runs[0].marks[0].time_ns == 0
    # A second section (big-endian) starts over with its own interfaces.
    second = (
        section_header(">")
        + interface(order=">")
        + enhanced_packet(2_000_000, frames[3], order=">")
    )
    capture = read_capture(data + second)
    assert capture.frames == 6 and capture.undecodable[0].frame == 5


def test_a_simple_packet_block_respects_the_snapshot_length() -> None:
    frame = _session()[3]
    data = section_header() + interface(snaplen=70) + simple_packet(frame)
    capture = read_capture(data)
    assert capture.frames == 1
    assert [u.kind for u in capture.undecodable] == [ProblemKind.CUT_FRAME]


def test_the_hop_limit_and_checksums_are_not_the_readers_business() -> None:
    # Captures of offloading NICs carry wrong checksums on sent frames; the reader takes them.
    frame = bytearray(_session()[3])
    struct.pack_into("!H", frame, 14 + 40 + 16, 0xDEAD)
    capture = read_capture(
        pcap([Record(T0_NS + i, f) for i, f in enumerate([*handshake(), bytes(frame)])])
    )
    assert capture.connections[0].stream_from(EP_A).data == b"payload"
    assert capture.undecodable == ()
