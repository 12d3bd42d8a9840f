"""Test doubles for the transport tests: two schedulers and two tiny V2GTP engines.

- HeapScheduler: virtual time, a bare heap; run() jumps from deadline to deadline.
- LoopScheduler: real time on an asyncio loop (what the lead's real clock will provide).
- PingEngine (EV-like) sends numbered requests and checks each answer; EchoEngine (SECC-like)
  answers each request with the same payload. Both frame with the V2GTP header, bound their
  receive buffer, report malformed input and the end of the link as Events, and arm timers
  (the EV's response timeout, the SECC's communication setup timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import struct
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from rig.v2g.connection import Connection, Record
from rig.v2g.engine import (
    CancelTimer,
    Close,
    Engine,
    Event,
    Output,
    Received,
    Send,
    StartTimer,
)
from rig.v2g.transport.tcp import TcpLink, TcpServer, open_tcp_link

# --- schedulers ---


class HeapTimer:
    __slots__ = ("cancelled", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class HeapScheduler:
    """Virtual time: calls run in deadline order (ties in the order they were set)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, HeapTimer]] = []
        self._seq = itertools.count()
        self.calls = 0

    def now(self) -> float:
        return self._now

    def call_at(self, t: float, fn: Callable[[], None]) -> HeapTimer:
        timer = HeapTimer(fn)
        heapq.heappush(self._heap, (t, next(self._seq), timer))
        return timer

    def run(self, until: float = float("inf"), max_calls: int = 10_000_000) -> None:
        """Serve calls up to `until` (or until none are left)."""
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            t, _, timer = pop(heap)
            if timer.cancelled:
                continue
            if t > self._now:
                self._now = t
            self.calls += 1
            if self.calls > max_calls:
                raise RuntimeError("scheduler ran away")
            timer.fn()
        if until != float("inf") and until > self._now:
            self._now = until

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)


class LoopScheduler:
    """Real time on an asyncio loop: seconds since creation, calls through loop.call_at."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._t0 = loop.time()

    def now(self) -> float:
        return self.loop.time() - self._t0

    def call_at(self, t: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_at(self._t0 + t, fn)


# --- V2GTP framing for the doubles (the real one is rig.v2g.v2gtp) ---

HEADER = struct.Struct(">BBHI")
PING_TYPE = 0x8004
MAX_PAYLOAD = 8192


def frame(payload_type: int, payload: bytes) -> bytes:
    return HEADER.pack(0x01, 0xFE, payload_type, len(payload)) + payload


class Malformed(ValueError):
    pass


class FrameReader:
    """Cuts whole frames out of a byte stream; never holds more than one frame's worth."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.buffer = bytearray()
        self.max_payload = max_payload

    def feed(self, data: bytes) -> list[tuple[int, bytes, bytes]]:
        """(payload type, payload, whole frame) for each frame completed by `data`."""
        buffer = self.buffer
        buffer += data
        frames = []
        while len(buffer) >= 8:
            version, inverse, payload_type, length = HEADER.unpack_from(buffer)
            if version != 0x01 or inverse != 0xFE:
                raise Malformed(f"bad V2GTP header {bytes(buffer[:8]).hex()}")
            if length > self.max_payload:
                raise Malformed(f"payload length {length} over {self.max_payload}")
            end = 8 + length
            if len(buffer) < end:
                break
            whole = bytes(buffer[:end])
            del buffer[:end]
            frames.append((payload_type, whole[8:], whole))
        return frames


# --- engines ---


@dataclass
class PingEngine:
    """EV-like: sends `count` numbered requests, `period` seconds apart (0: as soon as the answer
    comes), each answer due within `response_timeout`; then closes ("done")."""

    count: int
    period: float = 0.0
    response_timeout: float = 2.0
    payload_size: int = 16

    def __post_init__(self) -> None:
        self.reader = FrameReader()
        self.sent = 0
        self.answered = 0
        self.sent_at = 0.0
        self.round_trips: list[float] = []
        self.end_reason: str | None = None
        self.events: list[str] = []
        self._finished = False
        self._padding = bytes(max(0, self.payload_size - 4))

    @property
    def finished(self) -> bool:
        return self._finished

    def _request(self, now: float) -> list[Output]:
        self.sent += 1
        self.sent_at = now
        data = frame(PING_TYPE, struct.pack(">I", self.sent) + self._padding)
        return [
            Send(data, PING_TYPE, "PingReq", self.sent),
            StartTimer("response", now + self.response_timeout),
        ]

    def start(self, now: float) -> Sequence[Output]:
        return self._request(now)

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        try:
            frames = self.reader.feed(data)
        except Malformed as exc:
            return self._end(f"malformed: {exc}", Event("malformed", {"error": str(exc)}))
        out: list[Output] = []
        for payload_type, payload, whole in frames:
            (number,) = struct.unpack_from(">I", payload)
            if number != self.sent:
                return self._end(f"answer {number} to request {self.sent}")
            self.answered += 1
            self.round_trips.append(now - self.sent_at)
            out.append(Received(whole, payload_type, "PingRes", number))
            out.append(CancelTimer("response"))
            if self.answered >= self.count:
                out.extend(self._end("done"))
            elif self.period > 0:
                out.append(StartTimer("next", self.sent_at + self.period))
            else:
                out.extend(self._request(now))
        return out

    def timer_expired(self, name: str, now: float) -> Sequence[Output]:
        if name == "next":
            return self._request(now)
        return self._end(f"no answer to request {self.sent} in time")

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]:
        self.events.append(f"connection_lost: {reason}")
        self._finished = True
        if self.end_reason is None:
            self.end_reason = f"link ended: {reason}"
        return [Event("connection_lost", {"reason": reason})]

    def _end(self, reason: str, *events: Event) -> list[Output]:
        self.end_reason = reason
        self._finished = True
        return [*events, CancelTimer("response"), CancelTimer("next"), Close(reason)]


@dataclass
class EchoEngine:
    """SECC-like: answers every request with its payload; closes if the first request does not
    come within `setup_timeout`; bounds its receive buffer (FrameReader)."""

    setup_timeout: float = 20.0
    max_payload: int = MAX_PAYLOAD

    def __post_init__(self) -> None:
        self.reader = FrameReader(self.max_payload)
        self.requests = 0
        self.end_reason: str | None = None
        self.partial_bytes_at_end = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self, now: float) -> Sequence[Output]:
        return [StartTimer("setup", now + self.setup_timeout)]

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]:
        try:
            frames = self.reader.feed(data)
        except Malformed as exc:
            self.end_reason = f"malformed: {exc}"
            self._finished = True
            return [Event("malformed", {"error": str(exc)}), Close(self.end_reason)]
        out: list[Output] = []
        for payload_type, payload, whole in frames:
            if self.requests == 0:
                out.append(CancelTimer("setup"))
            self.requests += 1
            out.append(Received(whole, payload_type, "PingReq", self.requests))
            out.append(Send(frame(payload_type, payload), payload_type, "PingRes", self.requests))
        return out

    def timer_expired(self, name: str, now: float) -> Sequence[Output]:
        self.end_reason = "communication setup timeout"
        self._finished = True
        return [Event("timeout", {"timer": name}), Close(self.end_reason)]

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]:
        self.partial_bytes_at_end = len(self.reader.buffer)
        if self.end_reason is None:
            self.end_reason = f"link ended: {reason}"
        self._finished = True
        detail = {"reason": reason, "partial_bytes": self.partial_bytes_at_end}
        return [Event("connection_lost", detail)]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- a whole session over TCP, on a loop the test owns ---


@dataclass
class TcpSession:
    scheduler: LoopScheduler
    ev: Connection
    evse: Connection
    ev_trace: list[Record]
    evse_trace: list[Record]
    server: TcpServer


def tcp_session(
    loop: asyncio.AbstractEventLoop,
    ping: Engine,
    echo: Engine,
    host: str = "::1",
    server_interface: str | None = None,
    client_interface: str | None = None,
    server_side: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    client_side: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    timeout: float = 60.0,
) -> TcpSession:
    """Serve `echo` on host:<free port>, connect `ping` to it, run until both links ended.
    `server_side` / `client_side` are entered while each side's sockets are made (namespaces)."""
    scheduler = LoopScheduler(loop)
    ev_trace: list[Record] = []
    evse_trace: list[Record] = []
    done: asyncio.Future[None] = loop.create_future()
    ended: list[Connection] = []
    evse_connections: list[Connection] = []

    def on_ended(connection: Connection) -> None:
        ended.append(connection)
        if len(ended) == 2 and not done.done():
            done.set_result(None)

    def on_link(link: TcpLink) -> None:
        connection = Connection(
            echo, link, scheduler, recorder=evse_trace.append, on_ended=on_ended
        )
        evse_connections.append(connection)
        connection.start()

    with server_side():
        server = loop.run_until_complete(
            TcpServer.start(loop, host, 0, on_link, interface=server_interface)
        )
    try:
        with client_side():
            link = loop.run_until_complete(
                open_tcp_link(loop, host, server.port, interface=client_interface)
            )
        ev = Connection(ping, link, scheduler, recorder=ev_trace.append, on_ended=on_ended)
        ev.start()
        loop.run_until_complete(asyncio.wait_for(done, timeout))
    finally:
        server.close()
    return TcpSession(scheduler, ev, evse_connections[0], ev_trace, evse_trace, server)
