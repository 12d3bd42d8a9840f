"""The connection layer: one sans-IO Engine bound to one ByteLink and one Scheduler.

    connection = Connection(engine, link, scheduler, recorder=trace.append)
    connection.start()

It turns the engine's outputs into actions and the world's happenings into engine inputs:

    engine.start(now)                      <- start()
    engine.receive_data(bytes, now)        <- the link delivered bytes
    engine.timer_expired(name, now)        <- a StartTimer's deadline came (scheduler.call_at)
    engine.connection_lost(reason, now)    <- the link ended, for any reason
    Send -> link.send    Close -> link.close    StartTimer / CancelTimer -> one timer per name
    Send, Received, Event, Close and the end of the link -> recorder(Record)

Layers slot in without this module or the engines knowing: a TLS layer or a fault injector on
the byte level is a ByteLink that wraps a ByteLink; a fault injector on the message level is an
Engine that wraps an Engine (it sees and may alter, hold back or add outputs and inputs).

Re-entrancy: an input that arrives while the engine is being served (a link that delivers inside
send(), a scheduler that runs a due call inside call_at()) is queued and served right after, in
order; the engine is never entered twice and the stack never grows with the exchange.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, assert_never

from rig.v2g.engine import CancelTimer, Close, Engine, Event, Output, Received, Send, StartTimer
from rig.v2g.frozen import fast_init
from rig.v2g.link import ByteLink, LinkClosed
from rig.v2g.scheduler import Scheduler, TimerHandle


class RecordKind(Enum):
    """What a trace record is about."""

    SENT = "sent"  # a frame written to the link
    RECEIVED = "received"  # a frame the engine decoded and acted on
    EVENT = "event"  # an engine Event (phase change, malformed input, ...)
    CLOSE = "close"  # the engine ended the link
    LINK_CLOSED = "link_closed"  # the link ended (either side, or an error): the engine is told
    DROPPED = "dropped"  # a Send after the link had ended: not written
    ENGINE_ERROR = "engine_error"  # the engine raised: the link is closed, the session is over


@fast_init
@dataclass(frozen=True, slots=True)
class Record:
    """One line of the protocol trace. `raw` is the whole frame for SENT/RECEIVED/DROPPED;
    `data` is the caller's JSON form of the message (or the Event's data), `message` the
    decoded message itself."""

    time: float
    kind: RecordKind
    name: str  # message name, event name, or the reason for CLOSE / LINK_CLOSED / ENGINE_ERROR
    payload_type: int | None = None
    raw: bytes | None = None
    data: Any = None
    message: Any = None

    @property
    def hex(self) -> str:
        return self.raw.hex() if self.raw is not None else ""


Recorder = Callable[[Record], None]
ToJson = Callable[[Any], Any]


class Connection:
    """Serves one engine over one link on one scheduler (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        link: ByteLink,
        scheduler: Scheduler,
        *,
        recorder: Recorder | None = None,
        to_json: ToJson | None = None,
        on_ended: Callable[[Connection], None] | None = None,
    ) -> None:
        self.engine = engine
        self.link = link
        self.scheduler = scheduler
        self._recorder = recorder
        self._to_json = to_json
        self._on_ended = on_ended
        self._timers: dict[str, tuple[TimerHandle, int]] = {}
        self._timer_generation = 0
        self._inbox: deque[tuple[_Step, Any]] = deque()
        self._busy = False
        self._started = False
        self._link_ended = False
        self._ended_reported = False
        self.link_close_reason: str | None = None
        self.engine_error: BaseException | None = None

    # --- control ---

    def start(self) -> None:
        """Attach to the link and start the engine (EVCC: its first request goes out)."""
        if self._started:
            raise RuntimeError("connection already started")
        self._started = True
        self._busy = True
        try:
            # Deliveries during set_receiver() or engine.start() queue up behind the start.
            self.link.set_receiver(self._on_data, self._on_link_closed)
            _start(self, None)
            self._drain()
        finally:
            self._busy = False

    def close(self, reason: str = "closed by the rig") -> None:
        """End the link from outside (a plan step, a teardown); the engine hears of it as a
        connection_lost when the link reports its end."""
        self.link.close(reason)

    @property
    def finished(self) -> bool:
        return self.engine.finished

    @property
    def ended(self) -> bool:
        """The link has ended and the engine has been told."""
        return self._link_ended

    @property
    def pending_timers(self) -> tuple[str, ...]:
        return tuple(self._timers)

    # --- inputs ---

    def _on_data(self, data: bytes) -> None:
        self._input(_receive, data)

    def _on_link_closed(self, reason: str) -> None:
        self._input(_lost, reason)

    def _on_timer(self, name: str, generation: int) -> None:
        entry = self._timers.get(name)
        if entry is None or entry[1] != generation:
            return  # replaced or cancelled after the scheduler had picked it up
        del self._timers[name]
        if self.engine.finished:
            return
        self._input(_expire, name)

    def _input(self, step: _Step, arg: Any) -> None:
        if self._busy:
            self._inbox.append((step, arg))
            return
        self._busy = True
        try:
            step(self, arg)
            if self._inbox:
                self._drain()
        finally:
            self._busy = False

    def _drain(self) -> None:
        inbox = self._inbox
        while inbox:
            step, arg = inbox.popleft()
            step(self, arg)

    # --- outputs ---

    def _call(self, fn: Callable[..., Sequence[Output]], *args: Any) -> None:
        """Run one engine input and act on its outputs; an engine that raises ends the link."""
        now = self.scheduler.now()
        try:
            outputs = fn(*args, now)
        except Exception as exc:
            self.engine_error = exc
            self._record(now, RecordKind.ENGINE_ERROR, f"{type(exc).__name__}: {exc}")
            self._cancel_all_timers()
            if not self._link_ended:
                self.link.close(f"engine error: {type(exc).__name__}")
            return
        self._apply(outputs, now)
        if self.engine.finished and self._timers:
            self._cancel_all_timers()
        self._check_ended()

    def _apply(self, outputs: Sequence[Output], now: float) -> None:
        recorder = self._recorder
        for out in outputs:
            match out:
                case Send():
                    if self._link_ended or self.link.closed:
                        self._record_frame(now, RecordKind.DROPPED, out)
                        continue
                    if recorder is not None:
                        self._record_frame(now, RecordKind.SENT, out)
                    try:
                        self.link.send(out.frame)
                    except LinkClosed:
                        self._record_frame(now, RecordKind.DROPPED, out)
                case Received():
                    if recorder is not None:
                        self._record_frame(now, RecordKind.RECEIVED, out)
                case StartTimer():
                    self._start_timer(out.name, out.deadline)
                case CancelTimer():
                    entry = self._timers.pop(out.name, None)
                    if entry is not None:
                        entry[0].cancel()
                case Event():
                    if recorder is not None:
                        recorder(Record(now, RecordKind.EVENT, out.name, data=out.data))
                case Close():
                    self._record(now, RecordKind.CLOSE, out.reason)
                    self.link.close(out.reason)
                case _:
                    assert_never(out)

    def _start_timer(self, name: str, deadline: float) -> None:
        old = self._timers.get(name)
        if old is not None:
            old[0].cancel()
        self._timer_generation += 1
        generation = self._timer_generation
        # Entered before call_at(): a scheduler may run a due call inside call_at().
        self._timers[name] = (_NO_HANDLE, generation)
        handle = self.scheduler.call_at(deadline, lambda: self._on_timer(name, generation))
        entry = self._timers.get(name)
        if entry is not None and entry[1] == generation:
            self._timers[name] = (handle, generation)

    def _cancel_all_timers(self) -> None:
        timers, self._timers = self._timers, {}
        for handle, _ in timers.values():
            handle.cancel()

    def _check_ended(self) -> None:
        if self._link_ended and not self._ended_reported and self._on_ended is not None:
            self._ended_reported = True
            self._on_ended(self)

    def _record(self, now: float, kind: RecordKind, name: str) -> None:
        if self._recorder is not None:
            self._recorder(Record(now, kind, name))

    def _record_frame(self, now: float, kind: RecordKind, out: Send | Received) -> None:
        if self._recorder is None:
            return
        message = out.message
        data = self._to_json(message) if self._to_json is not None else None
        self._recorder(Record(now, kind, out.name, out.payload_type, out.frame, data, message))


class _NoHandle:
    def cancel(self) -> None:
        pass


_NO_HANDLE = _NoHandle()

# The engine inputs, as plain functions so that the inbox holds (function, argument) pairs.
_Step = Callable[[Connection, Any], None]


def _start(connection: Connection, _: None) -> None:
    connection._call(connection.engine.start)


def _receive(connection: Connection, data: bytes) -> None:
    if connection.engine.finished:
        return
    connection._call(connection.engine.receive_data, data)


def _expire(connection: Connection, name: str) -> None:
    if connection.engine.finished:
        return
    connection._call(connection.engine.timer_expired, name)


def _lost(connection: Connection, reason: str) -> None:
    if connection._link_ended:
        return
    connection._link_ended = True
    connection.link_close_reason = reason
    connection._record(connection.scheduler.now(), RecordKind.LINK_CLOSED, reason)
    if connection.engine.finished or connection.engine_error is not None:
        connection._cancel_all_timers()
        connection._check_ended()
        return
    connection._call(connection.engine.connection_lost, reason)
