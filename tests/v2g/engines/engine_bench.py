"""Two engines passing bytes under virtual time, no sockets: the test bench of tests/v2g/engines.

`Bench(evcc, secc).run()` starts both, hands every Send's bytes to the other side (optionally cut
into fragments), keeps each side's timers in a heap and fires them in deadline order, and turns a
Close into the other side's connection_lost. It records the transcript (who sent which message
with which response code, when) and every Event, and never sleeps: time jumps to the next
deadline. A test asserts on `bench.names()`, `bench.codes()`, `bench.events(...)`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rig.v2g.controllers import EvIntent
from rig.v2g.engine import CancelTimer, Close, Event, Output, Received, Send, StartTimer
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.messages import DischargeSign, decode_payload, encode_frame
from rig.v2g.quirks import NO_QUIRKS, Quirks
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import Secc, SeccConfig, SeccState
from rig.v2g.sessions import PausedSession, SessionStore
from rig.v2g.v2gtp import HEADER_SIZE, PayloadType
from rig.v2g.vocabulary import ControlMode, Service

EV, EVSE = "ev", "evse"

#: Element names of every message any bench sent, each checked to decode back to itself.
ROUND_TRIPPED: set[str] = set()


@dataclass(frozen=True)
class Sent:
    """One message on the wire: time, sender, element name, response code (None for requests)."""

    time: float
    side: str
    name: str
    code: str | None
    message: Any


class Bench:
    """Runs an EVCC against an SECC (see the module docstring)."""

    def __init__(
        self,
        evcc: Evcc,
        secc: Secc,
        *,
        fragment: Callable[[bytes], list[bytes]] | None = None,
        tamper: Callable[[str, bytes], bytes | None] | None = None,
        start: float = 1_000.0,
    ) -> None:
        self.engines: dict[str, Any] = {EV: evcc, EVSE: secc}
        self.evcc, self.secc = evcc, secc
        self.now = start
        self.fragment = fragment
        self.tamper = tamper  # (sender, frame) -> bytes to deliver instead, or None to drop
        self.sent: list[Sent] = []
        self.all_events: list[tuple[float, str, Event]] = []
        self.outputs: dict[str, list[Output]] = {EV: [], EVSE: []}
        self.closed: dict[str, str | None] = {EV: None, EVSE: None}
        self.silenced: set[str] = set()  # sides whose Sends are dropped (a peer that stops)
        self.hung: set[str] = set()  # sides that do nothing at all any more (TCP stays open)
        self._timers: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, int, str, str]] = []
        self._serial = itertools.count()
        self._inbox: deque[tuple[str, str, bytes | None]] = deque()  # (to, kind, data)
        self.steps = 0
        self._started = False

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._take(EVSE, self.secc.start(self.now))
        self._take(EV, self.evcc.start(self.now))

    def step(self, until: float | None = None) -> bool:
        """One delivery or one timer; False when nothing is left to do (or `until` is reached)."""
        self.start()
        self.steps += 1
        if self._inbox:
            to, kind, data = self._inbox.popleft()
            engine = self.engines[to]
            if not engine.finished and to not in self.hung:
                if kind == "data":
                    assert data is not None
                    self._take(to, engine.receive_data(data, self.now))
                else:
                    self._take(to, engine.connection_lost("peer closed", self.now))
            return True
        if all(e.finished or side in self.hung for side, e in self.engines.items()):
            return False
        due = self._next_timer()
        if due is None:
            return False
        deadline, side, name = due
        if until is not None and deadline > until:
            self.now = until
            self._timers[(side, name)] = deadline
            heapq.heappush(self._heap, (deadline, next(self._serial), side, name))
            return False
        self.now = max(self.now, deadline)
        engine = self.engines[side]
        if not engine.finished and side not in self.hung:
            self._take(side, engine.timer_expired(name, self.now))
        return True

    def run(self, until: float | None = None, max_steps: int = 200_000) -> Bench:
        """Run until both ends finished, nothing is due, or time `until`."""
        for _ in range(max_steps):
            if not self.step(until):
                return self
        raise AssertionError(f"no end after {max_steps} steps (at t={self.now})")

    def run_until(self, predicate: Callable[[], bool], max_steps: int = 200_000) -> Bench:
        """Run step by step until `predicate()` holds."""
        for _ in range(max_steps):
            if predicate():
                return self
            if not self.step():
                break
        assert predicate(), "condition never reached"
        return self

    def inject(self, to: str, data: bytes) -> None:
        """Deliver raw bytes to one side (as if its peer had sent them)."""
        self._take(to, self.engines[to].receive_data(data, self.now))

    def _next_timer(self) -> tuple[float, str, str] | None:
        while self._heap:
            deadline, _, side, name = heapq.heappop(self._heap)
            if self._timers.get((side, name)) == deadline:
                del self._timers[(side, name)]
                return deadline, side, name
        return None

    def _take(self, side: str, outputs: list[Output]) -> None:
        other = EVSE if side == EV else EV
        self.outputs[side].extend(outputs)
        for out in outputs:
            if isinstance(out, Send):
                # what we send decodes, with the codec, to what we meant
                back = decode_payload(PayloadType(out.payload_type), out.frame[HEADER_SIZE:])
                assert back == out.message, f"{out.name} does not round-trip"
                ROUND_TRIPPED.add(out.name)
                code = getattr(out.message, "ResponseCode", None)
                self.sent.append(
                    Sent(self.now, side, out.name, None if code is None else code.name, out.message)
                )
                if side in self.silenced:
                    continue
                data: bytes | None = out.frame
                if self.tamper is not None:
                    data = self.tamper(side, out.frame)
                if data is None:
                    continue
                for piece in self.fragment(data) if self.fragment else [data]:
                    self._inbox.append((other, "data", piece))
            elif isinstance(out, StartTimer):
                assert out.deadline >= self.now - 1e-9, f"{side} timer {out.name} in the past"
                self._timers[(side, out.name)] = out.deadline
                heapq.heappush(self._heap, (out.deadline, next(self._serial), side, out.name))
            elif isinstance(out, CancelTimer):
                self._timers.pop((side, out.name), None)
            elif isinstance(out, Event):
                self.all_events.append((self.now, side, out))
            elif isinstance(out, Close):
                self.closed[side] = out.reason
                self._inbox.append((other, "lost", None))
            else:
                assert isinstance(out, Received)

    # --- looking at what happened ---------------------------------------------------------------

    def names(self, side: str | None = None) -> list[str]:
        return [s.name for s in self.sent if side is None or s.side == side]

    def codes(self) -> list[tuple[str, str]]:
        """(response name, code) for every response sent by the SECC."""
        return [(s.name, s.code) for s in self.sent if s.code is not None]

    def events(self, name: str, side: str | None = None) -> list[Event]:
        return [e for _, s, e in self.all_events if e.name == name and (side is None or s == side)]

    def phases(self, side: str) -> list[str]:
        return [e.data["phase"] for e in self.events("session_phase", side)]

    def squeezed(self, side: str | None = None) -> list[str]:
        """Message names with runs of the same name collapsed ("DC_ChargeLoopReq*3")."""
        out: list[str] = []
        for name, group in itertools.groupby(self.names(side)):
            n = len(list(group))
            out.append(name if n == 1 else f"{name}*{n}")
        return out

    def requests(self) -> Iterator[str]:
        return (s.name for s in self.sent if s.side == EV)


def no_errors(bench: Bench) -> None:
    """Assert that neither side reported an internal or protocol error."""
    bad = {
        "controller_error",
        "response_error",
        "malformed_message",
        "v2gtp_error",
        "sequence_error",
        "unexpected_message",
        "unknown_session",
        "timeout",
        "discharge_sign_mismatch",
    }
    found = [(side, e) for _, side, e in bench.all_events if e.name in bad]
    assert not found, found


def session(
    service: Service = Service.DC_BPT,
    mode: ControlMode = ControlMode.DYNAMIC,
    *,
    ev: BatteryEv | None = None,
    evse: BenchCharger | None = None,
    ev_sign: DischargeSign = DischargeSign.MAGNITUDE,
    evse_sign: DischargeSign = DischargeSign.MAGNITUDE,
    ev_config: EvccConfig | None = None,
    secc_config: SeccConfig | None = None,
    ev_quirks: Quirks = NO_QUIRKS,
    evse_quirks: Quirks = NO_QUIRKS,
    store: SessionStore | None = None,
    resume: PausedSession | None = None,
    seed: int = 7,
    **bench: Any,
) -> Bench:
    """A Bench of the reference EV and charger for one service and control mode."""
    import random

    ev = ev if ev is not None else BatteryEv()
    evse = evse if evse is not None else BenchCharger()
    ev_config = ev_config or EvccConfig(
        services=(service,), control_mode=mode, sign=ev_sign, quirks=ev_quirks
    )
    secc_config = secc_config or SeccConfig(sign=evse_sign, quirks=evse_quirks)
    evcc = Evcc(ev, ev_config, resume=resume)
    secc = Secc(evse, secc_config, store=store, rng=random.Random(seed))
    return Bench(evcc, secc, **bench)


def at(state: SeccState, **kw: Any) -> Bench:
    """A session run until the SECC has just entered `state` (its answer not yet delivered)."""
    kw.setdefault("ev", BatteryEv(intents=deque([EvIntent.CHARGE] * 50)))
    bench = session(**kw)
    bench.run_until(lambda: bench.secc.state is state)
    return bench


def to_secc(bench: Bench, data: bytes | Any) -> list[Output]:
    """Bytes (or a message, framed) straight into the SECC, as if from the EV."""
    raw = data if isinstance(data, bytes) else encode_frame(data)[1]
    return list(bench.secc.receive_data(raw, bench.now))


def sends(outs: list[Output]) -> list[Send]:
    return [o for o in outs if isinstance(o, Send)]


def events(outs: list[Output], name: str) -> list[Event]:
    return [o for o in outs if isinstance(o, Event) and o.name == name]


def answered(outs: list[Output]) -> tuple[str, str]:
    (send,) = sends(outs)
    return send.name, send.message.ResponseCode.name
