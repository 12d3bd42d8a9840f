"""Helpers of the host tests: driving the real-time clock, engine factories, reading records."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rig.clock import RealClock
from rig.v2g.connection import RecordKind
from rig.v2g.controllers import EvIntent
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.host import HostRecord
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import Secc, SeccConfig
from rig.v2g.sessions import PausedSession, SessionStore
from rig.v2g.timing import EvccTiming
from rig.v2g.vocabulary import ControlMode, Service

#: Quick pacing so that a session of a few ChargeLoops takes a fraction of a second.
FAST = EvccTiming(charge_loop_interval=0.02, ongoing_interval=0.02)


def drive(clock: RealClock, until: Callable[[], bool], timeout: float = 15.0) -> float:
    """Run the clock's loop in short slices until `until()` holds; AssertionError after
    `timeout` wall seconds (so that a host that hangs fails the test instead of hanging it)."""
    started = time.monotonic()
    while not until():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not done within {timeout} s")
        clock.run_until(clock.now() + 0.01)
    return time.monotonic() - started


def battery(loops: int, last: EvIntent = EvIntent.STOP, **kw: Any) -> BatteryEv:
    """A BatteryEv that charges for `loops` ChargeLoops and then does `last`."""
    return BatteryEv(intents=deque([EvIntent.CHARGE] * (loops - 1) + [last]), **kw)


def evcc_factory(
    ev: BatteryEv,
    service: Service = Service.DC_BPT,
    mode: ControlMode = ControlMode.DYNAMIC,
    timing: EvccTiming = FAST,
    **config: Any,
) -> Callable[[PausedSession | None], Evcc]:
    cfg = EvccConfig(services=(service,), control_mode=mode, timing=timing, **config)
    return lambda resume: Evcc(ev, cfg, resume=resume)


def secc_factory(
    charger: BenchCharger, store: SessionStore | None = None, **config: Any
) -> Callable[[], Secc]:
    store = store if store is not None else SessionStore()
    cfg = SeccConfig(**config)
    return lambda: Secc(charger, cfg, store=store)


@dataclass
class Trace:
    """What a host recorded, with the questions the tests ask of it."""

    records: list[HostRecord] = field(default_factory=list)

    def __call__(self, record: HostRecord) -> None:
        self.records.append(record)

    def messages(self, kind: RecordKind, connection: int | None = None) -> list[str]:
        return [
            r.record.name
            for r in self.records
            if r.record.kind is kind and (connection is None or r.connection == connection)
        ]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            dict(r.record.data or {})
            for r in self.records
            if r.record.kind is RecordKind.EVENT and r.record.name == name
        ]

    def kinds(self) -> set[RecordKind]:
        return {r.record.kind for r in self.records}

    def closed_reasons(self) -> list[str]:
        return [r.record.name for r in self.records if r.record.kind is RecordKind.LINK_CLOSED]
