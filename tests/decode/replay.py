"""Captures made from the real-car captures' own bytes, for the decode tests and the benchmark.

`replay(source, target)` writes a pcapng (rig.v2g.capture.CaptureWriter) holding the source's
SLAC frames as they were, an SDP exchange, and the V2GTP messages of its session resent through
a synthesized TCP connection: `mss` splits messages over several segments; `loop_until_s`
repeats the charge loop's request/response pairs (at the car's own pace) until the capture is
that long, which makes a long session out of a real one.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

from rig.v2g.capture import CaptureWriter
from rig.v2g.pcapread import read_capture, read_frames, split_v2gtp
from rig.v2g.sdp import SdpRequest, SdpResponse, Security

EV = ("fe80::2", 49200)
EVSE = ("fe80::1", 15118)
SECC_PORT = 61000


def replay(
    source: Path, target: Path, *, mss: int = 1400, loop_until_s: float | None = None
) -> int:
    """Write `target`; returns the number of V2GTP messages written."""
    frames, _ = read_frames(source)
    capture = read_capture(source)
    t0 = frames[0].time_ns
    session = capture.data_connections[0]
    assert session.client is not None
    to_evse = split_v2gtp(session.stream_from(session.client)).frames
    to_ev = split_v2gtp(next(s for s in session.streams if s.src != session.client)).frames
    messages = sorted(
        [(f.end_ns, True, f) for f in to_evse] + [(f.end_ns, False, f) for f in to_ev],
        key=lambda m: m[0],
    )
    written = 0
    with CaptureWriter(target, epoch_ns=t0) as writer:
        for frame in frames:
            if frame.data[12:14] == b"\x88\xe1":
                writer.write_frame((frame.time_ns - t0) / 1e9, frame.data)
        first = (messages[0][0] - t0) / 1e9
        sdp = writer.sdp(EV, EVSE)
        sdp.request(first - 0.2, SdpRequest(Security.NO_TLS).encode())
        sdp.response(
            first - 0.199, SdpResponse(IPv6Address(EVSE[0]), SECC_PORT, Security.NO_TLS).encode()
        )
        tcp = writer.tcp_session(EV, (EVSE[0], SECC_PORT), mss=mss)
        tcp.open(first - 0.1)
        loop = [m for m in messages if _is_loop(m[2].payload)]
        last_t = (messages[-1][0] - t0) / 1e9
        shift = 0.0
        for end_ns, from_ev, frame in messages:
            t = (end_ns - t0) / 1e9 + shift
            tcp.data(t, from_ev, _v2gtp(frame.payload_type, frame.payload))
            written += 1
            if loop_until_s is None or not loop or end_ns != loop[-1][0]:
                continue
            # Go on with the loop's own messages at their own pace until the session, ended by
            # what followed the loop in the original, is `loop_until_s` long.
            target = loop_until_s - (last_t - (end_ns - t0) / 1e9)
            i = 0
            while t < target:
                step = (loop[i % len(loop)][0] - loop[i % len(loop) - 1][0]) / 1e9
                t += max(step, 0.001)
                _, loop_from_ev, loop_frame = loop[i % len(loop)]
                tcp.data(t, loop_from_ev, _v2gtp(loop_frame.payload_type, loop_frame.payload))
                written += 1
                i += 1
            shift = t - (end_ns - t0) / 1e9
        tcp.close((messages[-1][0] - t0) / 1e9 + shift + 0.1, True)
    return written


def _is_loop(payload: bytes) -> bool:
    # The charge loop's messages are the bulk of a session; the codec tells them apart, but a
    # benchmark helper only needs the sizes: DIN / -2 CurrentDemand Req/Res (30-60 bytes).
    from rig.v2g import exi

    for ns in ("iso2", "din"):
        try:
            doc = exi.decode(ns, payload)
        except exi.EXIError:
            continue
        name = type(doc.Body.BodyElement).__name__ if hasattr(doc, "Body") else ""
        return name.startswith("CurrentDemand")
    return False


def _v2gtp(payload_type: int, payload: bytes) -> bytes:
    return b"\x01\xfe" + payload_type.to_bytes(2, "big") + len(payload).to_bytes(4, "big") + payload
