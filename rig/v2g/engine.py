"""What a sans-IO ISO 15118-20 engine (EVCC or SECC) takes in and gives out.

An engine does no I/O and reads no clock (the shape of h11, STYLE.md): bytes and the present time
go in, a list of outputs comes back. The connection layer (rig.v2g.connection) turns outputs into
link sends, scheduler timers and trace records; a test can instead pass the bytes of one engine's
Send outputs straight to the other engine and get a whole session with no socket and no thread.

    outputs = engine.start(now)                  # EVCC: the first request; SECC: arms its timers
    outputs = engine.receive_data(data, now)     # bytes from the link, any fragmentation
    outputs = engine.timer_expired(name, now)    # a StartTimer's deadline came
    outputs = engine.connection_lost(reason, now)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rig.v2g.frozen import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Send:
    """A whole V2GTP frame to write to the link, with what it carries (for the trace)."""

    frame: bytes
    payload_type: int
    name: str  # the message's element name, e.g. "DC_ChargeLoopReq"
    message: Any  # the typed message (rig.v2g.exi classes)


@fast_init
@dataclass(frozen=True, slots=True)
class Received:
    """A whole V2GTP frame that arrived and decoded (for the trace); the engine has acted on it."""

    frame: bytes
    payload_type: int
    name: str
    message: Any


@fast_init
@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call timer_expired(name) at `deadline` (seconds on the run's timeline). A timer of the same
    name that is still pending is replaced."""

    name: str
    deadline: float


@fast_init
@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """Something the trace and the runner should know: a session phase change, a response code
    other than OK, a notification obeyed, a malformed input and what was done about it."""

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class Close:
    """The engine is done with the link (after SessionStop, or on an error it cannot recover)."""

    reason: str


Output = Send | Received | StartTimer | CancelTimer | Event | Close


class Engine(Protocol):
    """An EVCC or SECC as seen by the connection layer."""

    def start(self, now: float) -> Sequence[Output]: ...

    def receive_data(self, data: bytes, now: float) -> Sequence[Output]: ...

    def timer_expired(self, name: str, now: float) -> Sequence[Output]: ...

    def connection_lost(self, reason: str, now: float) -> Sequence[Output]: ...

    @property
    def finished(self) -> bool:
        """True once the session has ended (normally or not); no more outputs will come."""
        ...
