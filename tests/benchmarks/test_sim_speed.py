"""Benchmark: an hour of simulated V2H on rig.sim costs well under a second of CPU (issue 2, 3).

The scenario is the busy case of a V2H plan: the EVSE follows the home load (a few steps), the grid
drops once and the grid-forming EVSE carries the home until the grid is back and it reconnects;
about 4000 measurement calls sample it. The floor is 1 s of CPU for the whole hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from rig.emulators.direct import DirectSession
from rig.sim import EVSEConfig, HomeConfig, World, WorldConfig

pytestmark = pytest.mark.benchmark

CPU_FLOOR_S = 1.0
HOUR_S = 3600.0
MEASURE_CALLS = 4000


def _one_hour_of_v2h() -> tuple[float, World]:
    config = WorldConfig(
        home=HomeConfig(p_w=1500.0),
        evse=EVSEConfig(generator_mode="grid_forming", reconnect_delay_s=300.0),
    )
    world = World(config, seed=7)
    session = DirectSession(world)
    # (time, action) pairs: home-load steps, one grid loss and its return.
    script: list[tuple[float, Callable[[], None]]] = [
        (600.0, lambda: world.set_home_load(3000.0)),
        (1200.0, lambda: world.set_home_load(5000.0, 500.0)),
        (1800.0, lambda: world.set_grid_output(False)),
        (2100.0, lambda: world.set_grid_output(True)),
        (2700.0, lambda: world.set_home_load(2000.0)),
        (3000.0, lambda: world.set_home_load(4000.0)),
    ]
    points = ("grid", "evse_ac", "home", None)
    period = HOUR_S / MEASURE_CALLS
    started = time.process_time()
    session.start()
    session.follow_home_load()
    for k in range(1, MEASURE_CALLS + 1):
        t = k * period
        while script and script[0][0] <= t:
            at, action = script.pop(0)
            world.advance_to(at)
            action()
        world.advance_to(t)
        point = points[k % 4]
        if point is None:
            world.measure_dc()
        else:
            world.measure_ac(point)
    return time.process_time() - started, world


def test_an_hour_of_v2h_costs_under_a_second_of_cpu() -> None:
    cpu_s, world = _one_hour_of_v2h()
    print(f"\nsimulated {world.now:.0f} s of V2H in {cpu_s:.3f} s CPU")
    # The hour really happened: the backup formed and the unit reconnected after the outage.
    names = [e.name for e in world.drain_events()]
    assert world.now == pytest.approx(HOUR_S)
    assert "grid_forming" in names
    assert "reconnected" in names
    assert world.evse.p_w == pytest.approx(-4000.0, abs=1.0)
    assert cpu_s < CPU_FLOOR_S
