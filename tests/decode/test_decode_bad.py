"""Bad frames in a capture: recorded as undecodable with their frame number, never a crash.

Truncated SLAC messages, an unknown MMTYPE, a V2GTP message split over many TCP segments (which
must decode), a capture cut in the middle of a frame, an encrypted session without keys, EXI
bytes that are not EXI."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from replay import replay

from rig.decode.capture import decode_capture
from rig.v2g.capture import CaptureWriter
from rig.v2g.slac import messages as m

VW = "tux-evse__vw-ac-iso2.pcap"
T0 = 1_700_000_000 * 10**9


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    return out


EV, EVSE = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")


def test_truncated_and_unknown_slac_frames_are_undecodable_with_their_frame() -> None:
    good = m.encode(m.BROADCAST, EV, m.SlacParmReq(run_id=b"ABCDEFGH"))
    match_cnf = m.encode(EV, EVSE, m.SlacMatchCnf(nmk=bytes(range(16))), pad=False)
    wrong = bytearray(good)
    wrong[15:17] = (0x60FF).to_bytes(2, "little")
    bad_profile = m.encode(EVSE, EVSE, m.AttenProfileInd(pev_mac=EV, aag=(20,) * 58), pad=False)
    frames = [good, match_cnf[:40], bytes(wrong), bad_profile[:30], good[:16], good]
    d = decode_capture(_pcap(frames))
    kinds = {p.frame: p.kind for p in d.problems}
    assert kinds == {
        2: "SLAC_CUT",  # the match's fields cut
        3: "SLAC_UNKNOWN_MMTYPE",
        4: "SLAC_BAD_LENGTH",  # NumGroups 58 with 7 bytes of groups
        5: "SLAC_HEADER_CUT",
    }
    assert d.slac == 2
    assert [e.data["frame"] for e in d.events if e.src == "slac"] == [1, 6]


def test_a_v2gtp_message_split_over_tcp_segments_decodes(shared: Path, tmp_path: Path) -> None:
    target = tmp_path / "split.pcapng"
    assert replay(shared / "pcaps" / VW, target, mss=16) == 18
    d = decode_capture(target)
    assert d.problems == [] and d.exi_failed == 0 and d.exi_decoded == 18
    spans = [(e.data["first_frame"], e.data["frame"]) for e in d.events if e.src == "v2gtp"]
    assert sum(first < last for first, last in spans) >= 10  # most took several segments


def test_a_capture_cut_mid_frame_keeps_what_came_before(shared: Path) -> None:
    raw = (shared / "pcaps" / VW).read_bytes()
    cut = raw[: len(raw) - 30]  # inside the last record
    d = decode_capture(cut)
    assert d.frames == 99
    assert [(p.frame, p.kind) for p in d.problems] == [(100, "TRUNCATED_FILE")]
    assert d.exi_failed == 0 and d.v2gtp == 18


def test_a_stream_cut_mid_message_is_incomplete_not_a_crash(shared: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut.pcapng"
    with CaptureWriter(target, epoch_ns=T0) as writer:
        tcp = writer.tcp_session(("fe80::2", 50000), ("fe80::1", 61000))
        tcp.open(0.0)
        tcp.data(0.1, True, b"\x01\xfe\x80\x01\x00\x00\x00\x40" + b"\x80" * 10)  # 64 announced
    d = decode_capture(target)
    assert [p.kind for p in d.problems] == ["V2GTP_INCOMPLETE"]
    assert d.problems[0].frame == 4


def test_exi_that_does_not_decode_is_counted_and_kept_as_hex(tmp_path: Path) -> None:
    target = tmp_path / "garbage.pcapng"
    with CaptureWriter(target, epoch_ns=T0) as writer:
        tcp = writer.tcp_session(("fe80::2", 50000), ("fe80::1", 61000))
        tcp.open(0.0)
        tcp.data(0.1, True, b"\x01\xfe\x80\x01\x00\x00\x00\x04" + b"\xff\xff\xff\xff")
    d = decode_capture(target)
    assert d.exi_failed == 1 and d.exi_decoded == 0
    assert [p.kind for p in d.problems] == ["EXI"]
    event = next(e for e in d.events if e.src == "v2gtp")
    assert event.name == "undecoded" and event.data["exi"] == "ffffffff"


def test_tls_without_keys_is_undecodable_not_a_crash(tmp_path: Path) -> None:
    target = tmp_path / "tls.pcapng"
    with CaptureWriter(target, epoch_ns=T0) as writer:
        tcp = writer.tcp_session(("fe80::2", 50000), ("fe80::1", 61000))
        tcp.open(0.0)
        tcp.data(0.1, True, b"\x16\x03\x01\x00\x05hello")
        tcp.data(0.2, False, b"\x16\x03\x03\x00\x05world")
    d = decode_capture(target)
    assert d.tls_connections == 1 and d.tls_decrypted == 0
    assert [p.kind for p in d.problems] == ["TLS_NO_KEYS"]
    d = decode_capture(target, key_log="CLIENT_RANDOM " + "00" * 32 + " " + "11" * 48 + "\n")
    assert [p.kind for p in d.problems] == ["TLS"]


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00" * 3, b"not a capture at all", b"\x0a\x0d\x0d\x0a"]
)
def test_files_that_are_not_captures_decode_to_nothing(garbage: bytes) -> None:
    d = decode_capture(garbage)
    assert d.frames == 0 and d.v2gtp == 0 and d.problems
