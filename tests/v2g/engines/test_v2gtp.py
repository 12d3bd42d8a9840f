"""V2GTP framing: frame(), and a FrameReader fed bytes in any fragmentation, one error per defect."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.v2g.v2gtp import (
    HEADER_SIZE,
    SESSION_PAYLOAD_TYPES,
    FrameReader,
    PayloadTooLong,
    PayloadType,
    ReaderSpent,
    TruncatedFrame,
    UnknownPayloadType,
    WrongInverseVersion,
    WrongProtocolVersion,
    frame,
)


def test_frame_layout_is_version_inverse_type_length_payload() -> None:
    assert frame(PayloadType.DC, b"\x80\x01\x02") == bytes.fromhex("01fe800400000003800102")
    assert frame(0x9000, b"") == bytes.fromhex("01fe900000000000")
    with pytest.raises(ValueError):
        frame(0x10000, b"")


def test_payload_types_have_the_wire_codes() -> None:
    assert (PayloadType.SAP, PayloadType.COMMON, PayloadType.AC, PayloadType.DC) == (
        0x8001,
        0x8002,
        0x8003,
        0x8004,
    )
    assert (PayloadType.SDP_REQUEST, PayloadType.SDP_RESPONSE) == (0x9000, 0x9001)
    assert {0x8001, 0x8002, 0x8003, 0x8004} == SESSION_PAYLOAD_TYPES


def test_whole_frames_in_one_feed() -> None:
    reader = FrameReader()
    data = (
        frame(PayloadType.SAP, b"abc")
        + frame(PayloadType.COMMON, b"")
        + frame(PayloadType.DC, b"x" * 300)
    )
    frames = reader.feed(data)
    assert [(f.payload_type, f.payload) for f in frames] == [
        (PayloadType.SAP, b"abc"),
        (PayloadType.COMMON, b""),
        (PayloadType.DC, b"x" * 300),
    ]
    assert b"".join(f.data for f in frames) == data
    assert reader.buffered == 0
    reader.end()  # nothing pending: no error


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(
        st.tuples(st.sampled_from(sorted(SESSION_PAYLOAD_TYPES)), st.binary(max_size=40)),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_fragmentation_gives_the_same_frames(
    payloads: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(frame(t, p) for t, p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = FrameReader()
    got = []
    for a, b in itertools.pairwise(points):
        got.extend(reader.feed(stream[a:b]))
        assert reader.buffered <= HEADER_SIZE + 40
    assert [(int(f.payload_type), f.payload) for f in got] == payloads
    reader.end()


def test_one_byte_at_a_time() -> None:
    reader = FrameReader()
    stream = frame(PayloadType.AC, b"hello") + frame(PayloadType.SAP, b"!")
    got = []
    for i in range(len(stream)):
        got.extend(reader.feed(stream[i : i + 1]))
    assert [f.payload for f in got] == [b"hello", b"!"]


def test_wrong_protocol_version() -> None:
    reader = FrameReader()
    with pytest.raises(WrongProtocolVersion) as info:
        reader.feed(bytes.fromhex("02fe800100000000"))
    assert info.value.version == 2
    assert info.value.offset == 0


def test_wrong_inverse_version_after_a_good_frame() -> None:
    reader = FrameReader()
    good = frame(PayloadType.SAP, b"ok")
    with pytest.raises(WrongInverseVersion) as info:
        reader.feed(good + bytes.fromhex("01ff800100000000"))
    assert info.value.inverse == 0xFF
    assert info.value.offset == len(good)  # the offending frame, not the stream start


def test_unknown_payload_type() -> None:
    with pytest.raises(UnknownPayloadType) as info:
        FrameReader().feed(bytes.fromhex("01fe123400000000"))
    assert info.value.payload_type == 0x1234
    # a known type this stream does not carry is refused the same way
    with pytest.raises(UnknownPayloadType):
        FrameReader().feed(frame(PayloadType.SDP_REQUEST, b"\x00\x00"))
    assert FrameReader(accepted=[PayloadType.SDP_REQUEST]).feed(frame(0x9000, b"\x10\x00"))


def test_accepted_types_must_be_known() -> None:
    with pytest.raises(ValueError):
        FrameReader(accepted=[0xA000])


def test_a_4gb_length_is_refused_from_the_header_alone() -> None:
    reader = FrameReader(max_payload=65_536)
    header = bytes.fromhex("01fe8004ffffffff")
    with pytest.raises(PayloadTooLong) as info:
        reader.feed(header[:5])  # not yet a whole header: nothing to judge
        reader.feed(header[5:] + b"\x00" * 1000)
    assert info.value.length == 0xFFFFFFFF
    assert info.value.limit == 65_536
    assert reader.buffered == 0  # no body byte kept


def test_the_limit_is_inclusive() -> None:
    reader = FrameReader(max_payload=10)
    assert reader.feed(frame(PayloadType.DC, b"x" * 10))[0].payload == b"x" * 10
    with pytest.raises(PayloadTooLong):
        FrameReader(max_payload=10).feed(frame(PayloadType.DC, b"x" * 11)[:8])


def test_truncated_frame_then_end_of_stream() -> None:
    reader = FrameReader()
    data = frame(PayloadType.COMMON, b"0123456789")
    assert reader.feed(data[:13]) == []
    assert reader.mid_frame
    with pytest.raises(TruncatedFrame) as info:
        reader.end()
    assert (info.value.have, info.value.need) == (13, 18)


def test_truncated_header_then_end_of_stream() -> None:
    reader = FrameReader()
    reader.feed(b"\x01\xfe\x80")
    with pytest.raises(TruncatedFrame) as info:
        reader.end()
    assert (info.value.have, info.value.need) == (3, HEADER_SIZE)


def test_a_reader_is_spent_after_an_error_or_the_end() -> None:
    reader = FrameReader()
    with pytest.raises(WrongProtocolVersion):
        reader.feed(b"\x00" * 8)
    with pytest.raises(ReaderSpent):
        reader.feed(frame(PayloadType.SAP, b""))
    ended = FrameReader()
    ended.end()
    with pytest.raises(ReaderSpent):
        ended.feed(frame(PayloadType.SAP, b""))
    ended.end()  # idempotent
