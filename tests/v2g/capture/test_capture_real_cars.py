"""The real-car captures in ../shared/pcaps read and reassembled, with the counts pinned.

The counts were taken from this reader and checked against tshark 4.0 (conversations, homeplug-av
MMTYPEs, data frames per direction); scapy's reader and tshark's stream follower recheck them here.
A TCP connection is a SYN (or the first segment seen) on a 4-tuple until RST or both FINs: the VW
capture opens its one session twice (the first SYN draws a stale ACK and the EV resets), and the
Audi's EV tries 165 connections to a closed port besides its session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from capture_helpers import tshark, tshark_follow
from scapy.utils import rdpcap

from rig.v2g.pcapread import read_capture, split_v2gtp


@dataclass(frozen=True)
class Expected:
    format: str
    frames: int
    connections: int  # TCP connections, data-carrying or not
    resets: int
    client_frames: int  # V2GTP frames EV -> EVSE in the session's connection
    server_frames: int
    client_bytes: int
    server_bytes: int
    homeplug: dict[int | None, int]  # MMTYPE -> frames (0x60xx: SLAC; 0xA0xx: vendor)


#: CM_SET_KEY.REQ/CNF 0x6008/9, CM_SLAC_PARM.REQ/CNF 0x6064/5, CM_START_ATTEN_CHAR.IND 0x606A,
#: CM_ATTEN_CHAR.IND/RSP 0x606E/F, CM_MNBC_SOUND.IND 0x6076, CM_SLAC_MATCH.REQ/CNF 0x607C/D,
#: CM_ATTEN_PROFILE.IND 0x6086 (as tshark's homeplug-av dissector names them).
TUX_EVSE_SLAC = {
    0x6008: 3, 0x6009: 3, 0x6064: 1, 0x6065: 1, 0x606A: 3, 0x606E: 1, 0x606F: 1,
    0x6076: 10, 0x607C: 1, 0x607D: 1, 0x6086: 10,
}  # fmt: skip

EXPECTED = {
    "pyPLC__2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng": Expected(
        "pcapng", 1223, 1, 0, 93, 93, 4033, 3144,
        {0x6008: 1, 0x6009: 1, 0x6064: 1, 0x6065: 1, 0x606A: 3, 0x606E: 11, 0x606F: 1,
         0x6076: 10, 0x607C: 1, 0x607D: 1, 0x6086: 10, 0xA14E: 10},
    ),
    "tux-evse__audi-dc-iso2.pcap": Expected(
        "pcap", 4176, 166, 165, 746, 746, 33429, 50794, TUX_EVSE_SLAC
    ),
    "tux-evse__vw-ac-iso2.pcap": Expected("pcap", 100, 2, 1, 9, 9, 278, 240, TUX_EVSE_SLAC),
}  # fmt: skip


@pytest.fixture(params=sorted(EXPECTED), ids=lambda name: name.split("__")[1][:16])
def car(request: pytest.FixtureRequest, shared: Path) -> tuple[Path, Expected]:
    path = shared / "pcaps" / request.param
    if not path.is_file():
        pytest.fail(f"shared capture {path} is missing")
    return path, EXPECTED[request.param]


def test_counts_of_a_real_car_capture(car: tuple[Path, Expected]) -> None:
    path, expected = car
    capture = read_capture(path)
    assert capture.format == expected.format
    assert capture.frames == expected.frames
    assert capture.undecodable == ()
    assert len(capture.connections) == expected.connections
    assert sum(c.reset for c in capture.connections) == expected.resets
    (session,) = capture.data_connections
    assert session.syn and session.client is not None
    to_evse = session.stream_from(session.client)
    to_ev = next(s for s in session.streams if s is not to_evse)
    for stream, frames, size in (
        (to_evse, expected.client_frames, expected.client_bytes),
        (to_ev, expected.server_frames, expected.server_bytes),
    ):
        assert stream.complete and stream.retransmitted_bytes == 0
        assert len(stream.data) == size
        split = split_v2gtp(stream)
        assert split.undecodable == ()
        assert len(split.frames) == frames
        # DIN 70121 and -2 carry every message as payload type 0x8001 (EXI).
        assert {f.payload_type for f in split.frames} == {0x8001}
    # One SDP exchange: a request to ff02::1 and the answer naming the session's port.
    request, response = capture.sdp
    assert (split_v2gtp(request).frames[0].payload_type, request.dst.address) == (0x9000, "ff02::1")
    answer = split_v2gtp(response).frames[0]
    assert answer.payload_type == 0x9001 and response.dst == request.src
    assert (
        int.from_bytes(answer.payload[16:18], "big") == session.stream_from(session.client).dst.port
    )
    assert Counter(h.mmtype for h in capture.homeplug) == expected.homeplug


def test_requests_and_responses_alternate_in_time(car: tuple[Path, Expected]) -> None:
    path, _ = car
    session = read_capture(path).data_connections[0]
    assert session.client is not None
    to_evse = split_v2gtp(session.stream_from(session.client)).frames
    to_ev = split_v2gtp(next(s for s in session.streams if s.src != session.client)).frames
    for request, response in zip(to_evse, to_ev, strict=True):
        assert request.end_ns < response.start_ns
    round_trips_ms = [(b.end_ns - a.end_ns) / 1e6 for a, b in zip(to_evse, to_ev, strict=True)]
    assert min(round_trips_ms) > 0 and max(round_trips_ms) < 2000  # the EV's usual 2 s timeout


def test_scapy_reads_the_same_frames_times_and_slac_frames(car: tuple[Path, Expected]) -> None:
    path, _ = car
    packets = rdpcap(str(path))
    capture = read_capture(path)
    assert len(packets) == capture.frames
    slac = [
        i + 1
        for i, p in enumerate(packets)
        if len(bytes(p)) > 14 and bytes(p)[12:14] == b"\x88\xe1"
    ]
    assert slac == [h.frame for h in capture.homeplug]
    times = {h.frame: h.time_ns for h in capture.homeplug}
    for number in slac[:5]:
        assert int(Decimal(str(packets[number - 1].time)) * 10**9) == times[number]


def test_tshark_follows_the_session_to_the_same_bytes(car: tuple[Path, Expected]) -> None:
    tshark()
    path, _ = car
    session = read_capture(path).data_connections[0]
    assert session.client is not None
    first, second = tshark_follow(path, 0)
    assert first == session.stream_from(session.client).data
    assert second == next(s for s in session.streams if s.src != session.client).data
