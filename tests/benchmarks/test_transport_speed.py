"""Speed floors of the transports and the connection layer.

- Virtual time: 14,400 ChargeLoop-like round trips (one simulated hour at 250 ms) between two
  tiny engines over the memory pair and the connection layer, every frame recorded, cost less
  than FLOOR_MEMORY_HOUR_S of wall time (the brief: "well under 1 s"; measured ~0.25 s here).
- Real time, TCP on ::1: p99 of 2,000 request/response round trips through the connection
  layer (both ends in this process, one loop) below FLOOR_LOOPBACK_P99_MS. The lead's goal for
  the SECC's ChargeLoop answer over a veth pair is 5 ms p99 including EXI; this layer's share
  must stay a small part of it (measured ~0.06 ms here).
- Real time, across processes over a veth pair (fe80::2 -> fe80::1, our echo responder running
  in the EVSE namespace; root needed): p99 below FLOOR_VETH_P99_MS. Here the OS scheduler's
  wake-ups dominate, not this layer: 0.6 ms measured on the idle machine, 2.5 ms with the two
  cores at load 7. The floor is the lead's whole 5 ms budget: a bare transport that cannot
  make it leaves nothing for EXI and the engine.

The machine is shared: each figure is the best of a few rounds (contention only ever adds
time). `python tests/benchmarks/test_transport_speed.py` prints the figures without asserting.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
if str(TESTS / "v2g" / "transport") not in sys.path:
    sys.path.insert(0, str(TESTS / "v2g" / "transport"))

import netns  # noqa: E402
from transport_doubles import (  # noqa: E402
    EchoEngine,
    HeapScheduler,
    LoopScheduler,
    PingEngine,
    percentile,
    tcp_session,
)

from rig.v2g.connection import Connection, Record  # noqa: E402
from rig.v2g.transport.memory import memory_pair  # noqa: E402
from rig.v2g.transport.tcp import open_tcp_link  # noqa: E402

pytestmark = pytest.mark.benchmark

HOUR_ROUND_TRIPS = 14_400  # 3600 s / 0.25 s
FLOOR_MEMORY_HOUR_S = 1.0
EXCHANGES = 2_000
FLOOR_LOOPBACK_P99_MS = 1.0
FLOOR_VETH_P99_MS = 5.0
ROUNDS = 3
RESPONDER = TESTS / "v2g" / "transport" / "echo_responder.py"


def memory_hour() -> float:
    """Wall seconds for one simulated hour of 250 ms round trips, every frame recorded."""
    scheduler = HeapScheduler()
    ev_link, evse_link = memory_pair(scheduler, latency=0.001)
    ping = PingEngine(count=HOUR_ROUND_TRIPS, period=0.25)
    echo = EchoEngine()
    trace: list[Record] = []
    Connection(echo, evse_link, scheduler, recorder=trace.append).start()
    Connection(ping, ev_link, scheduler, recorder=trace.append).start()
    started = time.perf_counter()
    scheduler.run()
    wall = time.perf_counter() - started
    assert ping.answered == HOUR_ROUND_TRIPS and ping.end_reason == "done"
    assert scheduler.now() == pytest.approx(3600.0, abs=0.3)
    # Two frames per side per trip; then Close, both ends of the link, the EVSE engine's Event.
    assert len(trace) == 4 * HOUR_ROUND_TRIPS + 4
    return wall


def loopback_p99_ms() -> float:
    loop = asyncio.new_event_loop()
    try:
        ping = PingEngine(count=EXCHANGES, payload_size=64)
        tcp_session(loop, ping, EchoEngine(), "::1")
    finally:
        loop.close()
    assert ping.answered == EXCHANGES
    return percentile(ping.round_trips, 0.99) * 1e3


def veth_p99_ms(pair: netns.VethPair) -> float:
    """Our echo responder in the EVSE namespace, our EV-side double in this process."""
    responder = pair.spawn(
        "evse",
        [sys.executable, str(RESPONDER), pair.evse_address, "--interface", pair.evse_interface],
        name="echo-responder",
    )
    try:
        port = int(responder.wait_for(r"^ready (\d+)$", timeout=30).group(1))
        loop = asyncio.new_event_loop()
        try:
            with pair.entered("ev"):
                link = loop.run_until_complete(
                    open_tcp_link(loop, pair.evse_address, port, interface=pair.ev_interface)
                )
            ping = PingEngine(count=EXCHANGES, payload_size=64)
            done = loop.create_future()
            Connection(
                ping, link, LoopScheduler(loop), on_ended=lambda _: done.set_result(None)
            ).start()
            loop.run_until_complete(asyncio.wait_for(done, 60))
        finally:
            loop.close()
        responder.wait_for(rf"^ended {EXCHANGES} requests", timeout=10)
    finally:
        responder.stop()
    assert ping.answered == EXCHANGES
    return percentile(ping.round_trips, 0.99) * 1e3


def test_an_hour_of_round_trips_in_virtual_time_costs_well_under_a_second() -> None:
    best = min(memory_hour() for _ in range(ROUNDS))
    print(f"\nmemory + connection layer: {HOUR_ROUND_TRIPS} round trips in {best:.3f} s wall")
    assert best < FLOOR_MEMORY_HOUR_S


def test_tcp_loopback_p99_round_trip() -> None:
    best = min(loopback_p99_ms() for _ in range(ROUNDS))
    print(f"\nTCP ::1 through the connection layer: p99 {best:.3f} ms over {EXCHANGES}")
    assert best < FLOOR_LOOPBACK_P99_MS


def test_veth_p99_round_trip_across_processes(tmp_path: Path) -> None:
    gen = netns.veth_fixture(tmp_path)
    pair = next(gen)
    try:
        best = min(veth_p99_ms(pair) for _ in range(ROUNDS))
    finally:
        gen.close()
    print(f"\nTCP over veth, two processes: p99 {best:.3f} ms over {EXCHANGES}")
    assert best < FLOOR_VETH_P99_MS


if __name__ == "__main__":
    print(f"memory hour: {min(memory_hour() for _ in range(ROUNDS)):.3f} s wall")
    print(f"loopback p99: {min(loopback_p99_ms() for _ in range(ROUNDS)):.3f} ms")
    reason = netns.unavailable_reason()
    if reason is None:
        with netns.veth_pair() as pair:
            print(
                f"veth p99 (two processes): {min(veth_p99_ms(pair) for _ in range(ROUNDS)):.3f} ms"
            )
    else:
        print(f"veth: skipped ({reason})")
