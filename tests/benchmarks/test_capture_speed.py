"""Benchmark: an hour of ChargeLoop written as a synthesized pcapng, and read back.

The hour: 14,400 request/response pairs of V2GTP frames (~80 and ~60 bytes) 250 ms apart over one
TCP connection, each message acknowledged at once by a pure ACK (ack_delay=0): 57,606 frames with
the handshake and the close, 8.2 MB. Floors (wall time, the quietest of three rounds, since the
machine is shared and contention only ever adds time):
- writing it, flushed after every packet (the writer's default), < 1.0 s: the budget a plan run
  has for its capture;
- reading it back (read_capture, then split_v2gtp on both directions) < 1.5 s (rig's own choice).
Also printed, not floored: no pure ACKs, batched flushing, and what scapy costs to build one such
frame (the reason the writer packs its own headers).
`python tests/benchmarks/test_capture_speed.py` prints the figures without asserting.
"""

from __future__ import annotations

import random
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.v2g.capture import CaptureWriter
from rig.v2g.pcapread import Endpoint, read_capture, split_v2gtp

pytestmark = pytest.mark.benchmark

WRITE_FLOOR_S = 1.0
READ_FLOOR_S = 1.5
PAIRS = 14_400
EVCC = ("fe80::211:22ff:fe33:4455", 49153)
SECC = ("fe80::1", 64109)


def _v2gtp(payload: bytes) -> bytes:
    return b"\x01\xfe" + struct.pack("!HI", 0x8004, len(payload)) + payload


_RNG = random.Random(3600)
REQUESTS = [_v2gtp(_RNG.randbytes(72 + i % 3)) for i in range(16)]  # 80-82 bytes on the wire
RESPONSES = [_v2gtp(_RNG.randbytes(52 + i % 2)) for i in range(16)]  # 60-61 bytes


def write_hour(path: Path, *, ack_delay: float | None = 0.0, flush_every: int = 1) -> int:
    with CaptureWriter(path, epoch_ns=1_718_716_446_000_000_000, flush_every=flush_every) as writer:
        session = writer.tcp_session(EVCC, SECC, ack_delay=ack_delay)
        session.open(0.0)
        t = 1.0
        for i in range(PAIRS):
            session.data(t, True, REQUESTS[i & 15])
            session.data(t + 0.02, False, RESPONSES[i & 15])
            t += 0.25
        session.close(t, True)
    return writer.packets_written


def read_hour(path: Path) -> tuple[int, int]:
    """(V2GTP frames EVCC -> SECC, SECC -> EVCC) found in the file."""
    connection = read_capture(path).connections[0]
    return (
        len(split_v2gtp(connection.stream_from(Endpoint(*EVCC))).frames),
        len(split_v2gtp(connection.stream_from(Endpoint(*SECC))).frames),
    )


def _quietest(fn: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def scapy_build_us(frames: int = 500) -> float:
    """Microseconds for scapy to build one ChargeLoop request frame (Ether/IPv6/TCP/payload)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    def build() -> None:
        for i in range(frames):
            bytes(
                Ether(src="00:11:22:33:44:55", dst="02:00:00:00:00:01")
                / IPv6(src=EVCC[0], dst=SECC[0])
                / TCP(sport=EVCC[1], dport=SECC[1], seq=1000 + 80 * i, ack=5000, flags="PA")
                / Raw(REQUESTS[i & 15])
            )

    return _quietest(build, 2) / frames * 1e6


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.pcapng"
        frames: list[int] = []
        figures = {"write_s": _quietest(lambda: frames.append(write_hour(path)))}
        figures["frames"] = float(frames[-1])
        figures["megabytes"] = path.stat().st_size / 1e6
        assert read_hour(path) == (PAIRS, PAIRS)
        figures["read_s"] = _quietest(lambda: read_hour(path))
        # For comparison only: one round each.
        figures["write_batched_64_s"] = _quietest(lambda: write_hour(path, flush_every=64), 1)
        figures["write_no_pure_acks_s"] = _quietest(lambda: write_hour(path, ack_delay=None), 1)
    figures["scapy_build_us_per_frame"] = scapy_build_us()
    figures["scapy_hour_estimate_s"] = figures["scapy_build_us_per_frame"] * figures["frames"] / 1e6
    return figures


def test_an_hour_of_charge_loop_is_written_and_read_back_within_the_floors() -> None:
    figures = measure()
    for key, value in figures.items():
        print(f"capture {key}: {value:.3f}")
    assert figures["frames"] == 4 * PAIRS + 6
    assert figures["write_s"] < WRITE_FLOOR_S, f"writing took {figures['write_s']:.3f} s"
    assert figures["read_s"] < READ_FLOOR_S, f"reading took {figures['read_s']:.3f} s"


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:28s} {value:10.3f}")
