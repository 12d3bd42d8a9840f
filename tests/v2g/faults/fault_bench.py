"""Whole -20 sessions with a fault injector, for the tests of rig.v2g.faults.

`run(rules)` wraps our EVCC (over a BatteryEv) in a FaultInjector and runs it against our SECC
(over a BenchCharger) through two Connections and a memory pair on a small heap scheduler in
virtual time, until both ends of the link have ended and nothing is due; `side="evse"` wraps the
SECC instead (the EV is then the device judged). Both connections record their trace, with the
JSON form of each message, as the runner's do. `tcp_run(...)` does the same over TCP on ::1 on
an asyncio loop, in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rig.v2g.connection import Connection, Record, RecordKind
from rig.v2g.controllers import EvIntent
from rig.v2g.engine import Engine
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.exi import to_json
from rig.v2g.faults import FaultInjector, FaultRule
from rig.v2g.link import ByteLink
from rig.v2g.quirks import NO_QUIRKS, Quirks
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import Secc, SeccConfig
from rig.v2g.timing import EvccTiming
from rig.v2g.transport.memory import memory_pair
from rig.v2g.vocabulary import ControlMode, Service

EV, EVSE = "ev", "evse"


class _Call:
    __slots__ = ("cancelled", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class HeapScheduler:
    """Virtual time: calls in deadline order (ties in the order they were set); run() jumps
    from one deadline to the next."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _Call]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, t: float, fn: Callable[[], None]) -> _Call:
        call = _Call(fn)
        heapq.heappush(self._heap, (t, next(self._seq), call))
        return call

    def run(self, max_calls: int = 1_000_000) -> None:
        for _ in range(max_calls):
            if not self._heap:
                return
            t, _, call = heapq.heappop(self._heap)
            if call.cancelled:
                continue
            self._now = max(self._now, t)
            call.fn()
        raise AssertionError(f"scheduler still busy after {max_calls} calls (t={self._now})")


def charging(loops: int) -> BatteryEv:
    """An EV that charges for `loops` ChargeLoop exchanges, then stops."""
    return BatteryEv(intents=deque([EvIntent.CHARGE] * (loops - 1) + [EvIntent.STOP]))


@dataclass
class FaultRun:
    """What a run left behind: the engines, controllers, injector and both traces."""

    injector: FaultInjector
    evcc: Evcc
    secc: Secc
    ev: BatteryEv
    evse: BenchCharger
    traces: dict[str, list[Record]]
    connections: dict[str, Connection]
    end_time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def records(self, side: str, kind: RecordKind, name: str | None = None) -> list[Record]:
        return [r for r in self.traces[side] if r.kind is kind and (name is None or r.name == name)]

    def sent(self, side: str, name: str | None = None) -> list[Record]:
        return self.records(side, RecordKind.SENT, name)

    def received(self, side: str, name: str | None = None) -> list[Record]:
        return self.records(side, RecordKind.RECEIVED, name)

    def events(self, side: str, name: str) -> list[Mapping[str, Any]]:
        return [r.data for r in self.records(side, RecordKind.EVENT, name)]

    def event_times(self, side: str, name: str) -> list[float]:
        return [r.time for r in self.records(side, RecordKind.EVENT, name)]

    def faults(self, side: str = EV) -> list[Mapping[str, Any]]:
        return self.events(side, "fault_injected")

    def names(self, side: str) -> list[str]:
        """The element names a side put on the wire, in order."""
        return [r.name for r in self.sent(side)]

    def codes(self, side: str) -> list[tuple[str, str]]:
        """(response name, ResponseCode) of every response a side sent."""
        out = []
        for r in self.sent(side):
            code = r.data[r.name].get("ResponseCode") if isinstance(r.data, Mapping) else None
            if code is not None:
                out.append((r.name, code))
        return out


def engines(
    *,
    ev: BatteryEv | None = None,
    evse: BenchCharger | None = None,
    service: Service = Service.DC_BPT,
    mode: ControlMode = ControlMode.DYNAMIC,
    evse_quirks: Quirks = NO_QUIRKS,
    ev_timing: EvccTiming | None = None,
    seed: int = 7,
) -> tuple[Evcc, Secc, BatteryEv, BenchCharger]:
    ev = ev if ev is not None else charging(4)
    evse = evse if evse is not None else BenchCharger()
    evcc = Evcc(
        ev,
        EvccConfig(services=(service,), control_mode=mode, timing=ev_timing or EvccTiming()),
    )
    secc = Secc(evse, SeccConfig(quirks=evse_quirks), rng=random.Random(seed))
    return evcc, secc, ev, evse


def run(
    rules: Sequence[FaultRule] = (),
    *,
    side: str = EV,
    latency: float = 0.001,
    fault_seed: int = 1,
    **kw: Any,
) -> FaultRun:
    """One whole session with `rules` applied to what `side`'s engine sends (see module doc)."""
    evcc, secc, ev, evse = engines(**kw)
    scheduler = HeapScheduler()
    ev_link, evse_link = memory_pair(scheduler, latency)
    if side not in (EV, EVSE):
        raise ValueError(f"side is {EV!r} or {EVSE!r}")
    injector = FaultInjector(evcc if side == EV else secc, rules, rng=random.Random(fault_seed))
    traces: dict[str, list[Record]] = {EV: [], EVSE: []}
    ev_engine: Engine = injector if side == EV else evcc
    evse_engine: Engine = injector if side == EVSE else secc
    connections = {
        EVSE: Connection(
            evse_engine, evse_link, scheduler, recorder=traces[EVSE].append, to_json=to_json
        ),
        EV: Connection(ev_engine, ev_link, scheduler, recorder=traces[EV].append, to_json=to_json),
    }
    connections[EVSE].start()
    connections[EV].start()
    scheduler.run()
    return FaultRun(injector, evcc, secc, ev, evse, traces, connections, end_time=scheduler.now())


def tcp_run(
    loop: asyncio.AbstractEventLoop,
    rules: Sequence[FaultRule],
    *,
    host: str = "::1",
    timeout: float = 30.0,
    **kw: Any,
) -> FaultRun:
    """One whole session over TCP on `host` (loopback), real time, the EVCC wrapped."""
    from rig.v2g.transport.tcp import TcpServer, open_tcp_link

    evcc, secc, ev, evse = engines(**kw)
    t0 = loop.time()

    class LoopScheduler:
        def now(self) -> float:
            return loop.time() - t0

        def call_at(self, t: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
            return loop.call_at(t0 + t, fn)

    scheduler = LoopScheduler()
    injector = FaultInjector(evcc, rules, rng=random.Random(1))
    traces: dict[str, list[Record]] = {EV: [], EVSE: []}
    connections: dict[str, Connection] = {}
    done: asyncio.Future[None] = loop.create_future()

    def ended(_: Connection) -> None:
        finished = len(connections) == 2 and all(c.ended for c in connections.values())
        if finished and not done.done():
            done.set_result(None)

    def on_link(link: ByteLink) -> None:
        connections[EVSE] = Connection(
            secc, link, scheduler, recorder=traces[EVSE].append, to_json=to_json, on_ended=ended
        )
        connections[EVSE].start()

    server = loop.run_until_complete(TcpServer.start(loop, host, 0, on_link))
    try:
        link = loop.run_until_complete(open_tcp_link(loop, host, server.port))
        connections[EV] = Connection(
            injector, link, scheduler, recorder=traces[EV].append, to_json=to_json, on_ended=ended
        )
        connections[EV].start()
        loop.run_until_complete(asyncio.wait_for(done, timeout))
    finally:
        server.close()
    return FaultRun(injector, evcc, secc, ev, evse, traces, connections, end_time=scheduler.now())
