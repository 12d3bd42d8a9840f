"""The in-memory link pair: latency and bandwidth on the scheduler's timeline, order, close."""

from __future__ import annotations

import pytest
from transport_doubles import HeapScheduler

from rig.v2g.link import LinkClosed
from rig.v2g.transport.memory import memory_pair


class Ear:
    """Collects what a link end hears, with the scheduler time."""

    def __init__(self, scheduler: HeapScheduler) -> None:
        self.scheduler = scheduler
        self.data: list[tuple[float, bytes]] = []
        self.closed: list[tuple[float, str]] = []

    def on_data(self, data: bytes) -> None:
        self.data.append((self.scheduler.now(), data))

    def on_closed(self, reason: str) -> None:
        self.closed.append((self.scheduler.now(), reason))


def pair(latency: float = 0.0, bandwidth: float | None = None):  # type: ignore[no-untyped-def]
    s = HeapScheduler()
    a, b = memory_pair(s, latency, bandwidth)
    ear_a, ear_b = Ear(s), Ear(s)
    a.set_receiver(ear_a.on_data, ear_a.on_closed)
    b.set_receiver(ear_b.on_data, ear_b.on_closed)
    return s, a, b, ear_a, ear_b


def test_bytes_arrive_after_the_latency_on_the_scheduler_timeline() -> None:
    s, a, b, ear_a, ear_b = pair(latency=0.005)
    s.run(until=1.0)
    a.send(b"req")
    assert ear_b.data == []  # never inside send()
    s.run()
    assert ear_b.data == [(1.005, b"req")]
    b.send(b"res")
    s.run()
    assert ear_a.data == [(pytest.approx(1.010), b"res")]


def test_order_is_kept_and_bursts_share_one_timer() -> None:
    s, a, _, _, ear_b = pair(latency=0.001)
    for i in range(100):
        a.send(bytes([i]))
    calls = s.calls
    s.run()
    assert [d for _, d in ear_b.data] == [bytes([i]) for i in range(100)]
    assert s.calls - calls == 1


def test_bandwidth_spaces_chunks_by_their_size() -> None:
    s, a, _, _, ear_b = pair(latency=0.01, bandwidth=1000.0)  # 1 kB/s
    a.send(b"x" * 100)  # 0.1 s on the wire
    a.send(b"y" * 50)  # queued behind it: 0.05 s more
    s.run()
    assert [round(t, 6) for t, _ in ear_b.data] == [0.11, 0.16]


def test_close_reaches_the_peer_after_the_bytes_in_flight() -> None:
    s, a, b, ear_a, ear_b = pair(latency=0.002)
    a.send(b"last words")
    a.close("SessionStop done")
    assert a.closed and not b.closed
    with pytest.raises(LinkClosed):
        a.send(b"more")
    a.close("again")  # idempotent
    s.run()
    assert ear_b.data == [(0.002, b"last words")]
    assert ear_b.closed == [(0.002, "peer closed: SessionStop done")]
    assert ear_a.closed == [(0.0, "SessionStop done")]  # ours too, through the scheduler
    assert b.closed
    with pytest.raises(LinkClosed):
        b.send(b"late")


def test_bytes_towards_an_end_that_closed_are_lost() -> None:
    s, a, b, ear_a, ear_b = pair(latency=0.01)
    b.send(b"in flight")
    a.close("gone")
    s.run()
    assert ear_a.data == []
    assert ear_b.closed == [(0.01, "peer closed: gone")]


def test_bytes_before_set_receiver_are_kept_until_it() -> None:
    s = HeapScheduler()
    a, b = memory_pair(s, 0.001, names=("ev", "evse"))
    a.send(b"early")
    s.run()
    ear = Ear(s)
    b.set_receiver(ear.on_data, ear.on_closed)
    assert ear.data == [(0.001, b"early")]
    assert a.peer_name == "memory:evse" and b.peer_name == "memory:ev"


def test_settings_are_checked() -> None:
    s = HeapScheduler()
    with pytest.raises(ValueError, match="latency"):
        memory_pair(s, -1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        memory_pair(s, 0.0, 0.0)
