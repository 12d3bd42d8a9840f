"""The connection layer: engine outputs to link, scheduler and trace; inputs back to the engine.

The same two engines (transport_doubles.PingEngine / EchoEngine) run over a memory pair in
virtual time here and over TCP in real time in test_tcp_link.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from transport_doubles import EchoEngine, HeapScheduler, PingEngine, frame

from rig.v2g.connection import Connection, Record, RecordKind
from rig.v2g.engine import (
    CancelTimer,
    Close,
    Engine,
    Event,
    Output,
    Send,
    StartTimer,
)
from rig.v2g.link import ByteLink, ClosedCallback, DataCallback, LinkClosed
from rig.v2g.transport.memory import memory_pair


def run_memory_session(
    ping: Engine,
    echo: Engine,
    latency: float = 0.002,
    wrap_link: Callable[[ByteLink], ByteLink] = lambda link: link,
    wrap_engine: Callable[[Engine], Engine] = lambda engine: engine,
) -> tuple[HeapScheduler, list[Record], list[Record], Connection, Connection]:
    s = HeapScheduler()
    ev_link, evse_link = memory_pair(s, latency)
    ev_trace: list[Record] = []
    evse_trace: list[Record] = []
    evse = Connection(wrap_engine(echo), wrap_link(evse_link), s, recorder=evse_trace.append)
    ev = Connection(wrap_engine(ping), wrap_link(ev_link), s, recorder=ev_trace.append)
    evse.start()
    ev.start()
    s.run()
    return s, ev_trace, evse_trace, ev, evse


def kinds(trace: Sequence[Record]) -> list[tuple[str, str]]:
    return [(r.kind.value, r.name) for r in trace]


# --- a whole exchange in virtual time ---


def test_ping_echo_session_over_a_memory_pair_in_virtual_time() -> None:
    ping, echo = PingEngine(count=20, period=0.25), EchoEngine()
    s, ev_trace, evse_trace, ev, evse = run_memory_session(ping, echo, latency=0.002)

    assert ping.answered == 20 and ping.end_reason == "done"
    assert ping.round_trips == [pytest.approx(0.004)] * 20  # two one-way latencies, exactly
    assert echo.requests == 20 and echo.end_reason == "link ended: peer closed: done"
    sends = [r.time for r in ev_trace if r.kind is RecordKind.SENT]
    assert sends == [pytest.approx(0.25 * i) for i in range(20)]
    assert kinds(ev_trace[:2]) == [("sent", "PingReq"), ("received", "PingRes")]
    assert kinds(ev_trace[-2:]) == [("close", "done"), ("link_closed", "done")]
    assert kinds(evse_trace[:2]) == [("received", "PingReq"), ("sent", "PingRes")]
    assert kinds(evse_trace[-2:]) == [
        ("link_closed", "peer closed: done"),
        ("event", "connection_lost"),
    ]
    assert ev.ended and evse.ended and ev.finished and evse.finished
    assert s.pending == 0  # no timer left behind
    assert ev.pending_timers == () and evse.pending_timers == ()


def test_records_carry_time_payload_type_raw_bytes_and_the_callers_json() -> None:
    s = HeapScheduler()
    a, b = memory_pair(s, 0.001)
    trace: list[Record] = []
    Connection(EchoEngine(), b, s).start()
    conn = Connection(
        PingEngine(count=1, payload_size=4),
        a,
        s,
        recorder=trace.append,
        to_json=lambda number: {"PingReq": {"Number": number}},
    )
    conn.start()
    s.run()
    sent = trace[0]
    assert sent.kind is RecordKind.SENT and sent.payload_type == 0x8004
    assert sent.raw == frame(0x8004, b"\x00\x00\x00\x01")
    assert sent.hex == "01fe80040000000400000001"
    assert sent.data == {"PingReq": {"Number": 1}}
    assert trace[1].kind is RecordKind.RECEIVED and trace[1].time == pytest.approx(0.002)


# --- wrappers slot in without changing engines or the connection layer ---


@dataclass
class PassThroughLink:
    """A ByteLink over a ByteLink, as a TLS or a byte-level fault layer is: here it only counts."""

    inner: ByteLink
    bytes_down: int = 0
    bytes_up: int = 0

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        def up(data: bytes) -> None:
            self.bytes_up += len(data)
            on_data(data)

        self.inner.set_receiver(up, on_closed)

    def send(self, data: bytes) -> None:
        self.bytes_down += len(data)
        self.inner.send(data)

    def close(self, reason: str = "closed") -> None:
        self.inner.close(reason)

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def peer_name(self) -> str:
        return self.inner.peer_name


@dataclass
class PassThroughEngine:
    """An Engine over an Engine, as a message-level fault injector is: here it only counts."""

    inner: Engine
    outputs_seen: int = 0

    def _see(self, outputs: Sequence[Output]) -> Sequence[Output]:
        self.outputs_seen += len(outputs)
        return outputs

    def start(self, now: float) -> Sequence[Output]:
        return self._see(self.inner.start(now))

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        return self._see(self.inner.receive_data(data, now))

    def timer_expired(self, name: str, now: float) -> Sequence[Output]:
        return self._see(self.inner.timer_expired(name, now))

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]:
        return self._see(self.inner.connection_lost(reason, now))

    @property
    def finished(self) -> bool:
        return self.inner.finished


def test_pass_through_wrappers_on_link_and_engine_leave_the_session_unchanged() -> None:
    plain = run_memory_session(PingEngine(count=10, period=0.25), EchoEngine())
    links: list[PassThroughLink] = []
    engines: list[PassThroughEngine] = []

    def wrap_link(link: ByteLink) -> ByteLink:
        links.append(PassThroughLink(link))
        return links[-1]

    def wrap_engine(engine: Engine) -> Engine:
        engines.append(PassThroughEngine(engine))
        return engines[-1]

    wrapped = run_memory_session(
        PingEngine(count=10, period=0.25),
        EchoEngine(),
        wrap_link=wrap_link,
        wrap_engine=wrap_engine,
    )
    assert wrapped[1] == plain[1] and wrapped[2] == plain[2]  # both traces, record for record
    assert all(link.bytes_down > 0 and link.bytes_up > 0 for link in links)
    assert all(engine.outputs_seen > 0 for engine in engines)


# --- re-entrancy ---


class SyncLink:
    """A link that delivers inside send() and close(): the worst case for re-entrancy."""

    def __init__(self) -> None:
        self.peer: SyncLink = self
        self._closed = False
        self.on_data: DataCallback | None = None
        self.on_closed: ClosedCallback | None = None

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self.on_data, self.on_closed = on_data, on_closed

    def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed("closed")
        if self.peer.on_data is not None and not self.peer._closed:
            self.peer.on_data(data)

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        if self.on_closed is not None:
            self.on_closed(reason)
        if not self.peer._closed:
            self.peer._closed = True
            if self.peer.on_closed is not None:
                self.peer.on_closed(f"peer closed: {reason}")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        return "sync"


def test_synchronous_delivery_does_not_recurse_with_the_exchange() -> None:
    """5,000 round trips through a link that delivers inside send(): with re-entrant serving
    the stack would grow by a few frames per message and overflow long before."""
    s = HeapScheduler()
    a, b = SyncLink(), SyncLink()
    a.peer, b.peer = b, a
    ping, echo = PingEngine(count=5000), EchoEngine()
    trace: list[Record] = []
    Connection(echo, b, s).start()
    Connection(ping, a, s, recorder=trace.append).start()
    assert ping.answered == 5000 and ping.end_reason == "done"
    assert echo.end_reason == "link ended: peer closed: done"
    numbers = [r.raw[8:12] for r in trace if r.kind is RecordKind.SENT and r.raw is not None]
    assert numbers == [n.to_bytes(4, "big") for n in range(1, 5001)]


@dataclass
class ScriptEngine:
    """Plays given outputs for start and for each timer; records what it was told."""

    on_start: list[Output]
    on_timer: dict[str, list[Output]] = field(default_factory=dict)
    on_lost: list[Output] = field(default_factory=list)
    finish_on_lost: bool = True
    told: list[tuple[str, Any, float]] = field(default_factory=list)
    _finished: bool = False

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self, now: float) -> Sequence[Output]:
        self.told.append(("start", None, now))
        return self.on_start

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        self.told.append(("data", data, now))
        return []

    def timer_expired(self, name: str, now: float) -> Sequence[Output]:
        self.told.append(("timer", name, now))
        outputs = self.on_timer.get(name, [])
        if any(isinstance(o, Close) for o in outputs):
            self._finished = True
        return outputs

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]:
        self.told.append(("lost", reason, now))
        self._finished = self.finish_on_lost
        return self.on_lost


class EagerScheduler(HeapScheduler):
    """Runs a call that is already due inside call_at() (the protocol allows it)."""

    def call_at(self, t: float, fn: Callable[[], None]):  # type: ignore[no-untyped-def]
        if t <= self.now():
            fn()
            return HeapScheduler().call_at(t, lambda: None)
        return super().call_at(t, fn)


def test_a_timer_run_inside_call_at_is_not_lost() -> None:
    s = EagerScheduler()
    a, _ = memory_pair(s)
    engine = ScriptEngine([StartTimer("due", 0.0)], {"due": [Event("fired"), Close("timer done")]})
    trace: list[Record] = []
    Connection(engine, a, s, recorder=trace.append).start()
    s.run()
    assert ("timer", "due", 0.0) in engine.told
    assert kinds(trace)[:2] == [("event", "fired"), ("close", "timer done")]


# --- timers ---


def test_one_pending_timer_per_name_and_cancel() -> None:
    s = HeapScheduler()
    a, _ = memory_pair(s)
    engine = ScriptEngine(
        [
            StartTimer("response", 5.0),
            StartTimer("response", 3.0),  # replaces the first
            StartTimer("sequence", 4.0),
            CancelTimer("sequence"),
            CancelTimer("never-started"),
        ]
    )
    connection = Connection(engine, a, s)
    connection.start()
    assert connection.pending_timers == ("response",)
    s.run()
    assert [t for t in engine.told if t[0] == "timer"] == [("timer", "response", 3.0)]
    assert connection.pending_timers == ()


def test_a_timer_after_the_link_ended_is_harmless_and_its_send_is_dropped() -> None:
    s = HeapScheduler()
    a, b = memory_pair(s, 0.01)
    late = Send(frame(0x8002, b"x"), 0x8002, "SessionStopReq", None)
    engine = ScriptEngine(
        [StartTimer("late", 10.0)], {"late": [late, Close("gave up")]}, finish_on_lost=False
    )
    trace: list[Record] = []
    connection = Connection(engine, a, s, recorder=trace.append)
    connection.start()
    s.call_at(1.0, lambda: b.close("EVSE went away"))
    s.run()
    assert ("lost", "peer closed: EVSE went away", pytest.approx(1.01)) in engine.told
    assert ("timer", "late", 10.0) in engine.told
    assert kinds(trace) == [
        ("link_closed", "peer closed: EVSE went away"),
        ("dropped", "SessionStopReq"),
        ("close", "gave up"),
    ]


def test_timers_of_a_finished_engine_are_cancelled() -> None:
    s = HeapScheduler()
    a, b = memory_pair(s)
    engine = ScriptEngine([StartTimer("a", 5.0), StartTimer("b", 6.0)])
    connection = Connection(engine, a, s)
    connection.start()
    b.close("bye")
    s.run()
    assert [t[0] for t in engine.told] == ["start", "lost"]
    assert connection.pending_timers == () and s.pending == 0


# --- failures ---


class RaisingEngine(EchoEngine):
    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        raise ValueError("decoder bug")


def test_an_engine_that_raises_ends_the_link_and_is_recorded() -> None:
    ping, broken = PingEngine(count=3), RaisingEngine()
    s, _, evse_trace, ev, evse = run_memory_session(ping, broken)
    assert kinds(evse_trace)[:2] == [
        ("engine_error", "ValueError: decoder bug"),
        ("link_closed", "engine error: ValueError"),
    ]
    assert isinstance(evse.engine_error, ValueError)
    assert ping.end_reason == "link ended: peer closed: engine error: ValueError"
    assert ev.ended and evse.ended and s.pending == 0


def test_closing_from_outside_tells_the_engine() -> None:
    s = HeapScheduler()
    a, _ = memory_pair(s)
    ended: list[Connection] = []
    ping = PingEngine(count=100, period=1.0, response_timeout=10.0)  # nobody answers
    connection = Connection(ping, a, s, on_ended=ended.append)
    connection.start()
    s.call_at(2.5, lambda: connection.close("plan step: unplug"))
    s.run()
    assert ping.events == ["connection_lost: plan step: unplug"]
    assert ended == [connection] and connection.link_close_reason == "plan step: unplug"


def test_start_only_once() -> None:
    s = HeapScheduler()
    a, _ = memory_pair(s)
    connection = Connection(EchoEngine(), a, s)
    connection.start()
    with pytest.raises(RuntimeError):
        connection.start()
