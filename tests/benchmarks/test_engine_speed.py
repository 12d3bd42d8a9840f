"""Benchmark: an hour of DC_BPT Dynamic ChargeLoop between our EVCC and SECC (14,400 exchanges at
the 0.25 s pace, real EXI both ways, two engines passing bytes, virtual time advanced by hand).

The lead's budget for a one-hour plan is under 6 s in total including the physics, so the engines
(with the codec: ~12 us encode / ~19 us decode per DC_ChargeLoopReq, about as much again for the
response) must cost well under 3 s of CPU here. The reference EV and charger doubles stand in for
the physics and are counted in. CPU time is the floor (the machine is shared; contention only adds
wall time); the wall time is printed beside it. The floor is machine-bound, with a strict guard
above it (tests/benchmarks/machine_bound.py). `python tests/benchmarks/test_engine_speed.py`
prints the figures without asserting.
"""

from __future__ import annotations

import random
import time
from collections import deque

import pytest
from machine_bound import GUARD_FACTOR, MACHINE_BOUND

from rig.v2g.controllers import EvIntent
from rig.v2g.engine import CancelTimer, Output, Send, StartTimer
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import Secc, SeccConfig
from rig.v2g.vocabulary import ControlMode, Service

EXCHANGES = 14_400  # one hour at 0.25 s
CPU_FLOOR_S = 3.0


class _HourEv(BatteryEv):
    """Charges, then discharges for the home, for `loops` exchanges, then stops."""

    def __init__(self, loops: int) -> None:
        super().__init__(soc=50.0, capacity_wh=80_000.0, reserve_soc=20.0)
        self.loops = loops
        self.asked = 0

    def intent(self, now: float) -> EvIntent:
        self.asked += 1
        return EvIntent.CHARGE if self.asked < self.loops else EvIntent.STOP


def one_hour(loops: int = EXCHANGES) -> dict[str, float]:
    """CPU and wall seconds for `loops` ChargeLoop exchanges (setup and teardown excluded)."""
    ev, evse = _HourEv(loops), BenchCharger(setpoint=7_000.0)
    evcc = Evcc(ev, EvccConfig(services=(Service.DC_BPT,), control_mode=ControlMode.DYNAMIC))
    secc = Secc(evse, SeccConfig(), rng=random.Random(1))
    engines = {"ev": evcc, "evse": secc}
    other = {"ev": "evse", "evse": "ev"}
    timers: dict[tuple[str, str], float] = {}
    wire: deque[tuple[str, bytes]] = deque()
    now = 0.0

    def take(side: str, outputs: list[Output]) -> None:
        for out in outputs:
            kind = out.__class__
            if kind is Send:
                wire.append((other[side], out.frame))  # type: ignore[union-attr]
            elif kind is StartTimer:
                timers[(side, out.name)] = out.deadline  # type: ignore[union-attr]
            elif kind is CancelTimer:
                timers.pop((side, out.name), None)  # type: ignore[union-attr]

    def pump() -> None:
        while wire:
            to, data = wire.popleft()
            take(to, engines[to].receive_data(data, now))

    take("evse", secc.start(now))
    take("ev", evcc.start(now))
    cpu0 = wall0 = 0.0
    pacing = ("ev", "evcc.next_request")
    while not evcc.finished:
        pump()
        if pacing not in timers:  # no loop pending: let the earliest timer fire (setup, stop)
            if not timers:
                break
            side, name = min(timers, key=timers.__getitem__)
            now = timers.pop((side, name))
            take(side, engines[side].timer_expired(name, now))
            continue
        if evcc.loops == 1 and not cpu0:  # the first exchange also compiles the codec: skip it
            cpu0, wall0 = time.process_time(), time.perf_counter()
        now = timers.pop(pacing)
        if now == 1800.0:
            evse.setpoint = -7_000.0  # half way: the home needs the battery
        take("ev", evcc.timer_expired(pacing[1], now))
    pump()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert evcc.loops == loops and ev.asked == loops, (evcc.loops, ev.asked)
    assert secc.closure is not None and secc.closure.value == "terminated"
    return {
        "exchanges": float(evcc.loops - 1),
        "cpu_s": cpu,
        "wall_s": wall,
        "us_per_exchange": cpu / (evcc.loops - 1) * 1e6,
        "soc_end": ev.soc,
        "virtual_s": now,
    }


@pytest.fixture(scope="module")
def best() -> dict[str, float]:
    best = one_hour()
    if best["cpu_s"] >= CPU_FLOOR_S:  # a second try before failing: a busy machine inflates CPU too
        best = min(best, one_hour(), key=lambda f: f["cpu_s"])
    print(
        f"engines: {best['exchanges']:.0f} DC_BPT dynamic ChargeLoop exchanges in "
        f"{best['cpu_s']:.2f} s CPU ({best['us_per_exchange']:.0f} us each), {best['wall_s']:.2f} s wall, "
        f"{best['virtual_s']:.0f} s virtual"
    )
    return best


@pytest.mark.benchmark
def test_an_hour_of_charge_loop_runs_its_exchanges_within_the_guard(best: dict[str, float]) -> None:
    assert best["virtual_s"] == pytest.approx(3600.0, abs=10.0)  # setup and stop add a few s
    assert best["cpu_s"] < GUARD_FACTOR * CPU_FLOOR_S


@pytest.mark.benchmark
@MACHINE_BOUND
def test_an_hour_of_dc_bpt_charge_loop_costs_well_under_3_s(best: dict[str, float]) -> None:
    assert best["cpu_s"] < CPU_FLOOR_S


if __name__ == "__main__":
    for key, value in one_hour().items():
        print(f"{key:16s} {value:10.3f}")
