"""Cost of talking to emulated instruments: through pyvisa in-process, and over TCP sockets.

Floors: a query round trip through the in-process VISA library under 50 us (median), through the
TCP server on loopback with pyvisa-py under 1 ms (median); one simulated hour on the emulated
bench in under 10 s wall needs about 20,000 queries per simulated hour, so the in-process share
must stay a fraction of that budget. Each benchmark prints what it measured.
"""

from __future__ import annotations

import statistics
import time

import pytest
import pyvisa
from pyvisa.resources import MessageBasedResource

from instruments.emulated.server import serve
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.registry import MODELS, make_twin, open_instrument
from rig.clock import RealClock, VirtualClock
from rig.sim import World, WorldConfig

QUERIES_PER_SIMULATED_HOUR = 20_000
WIRING = {
    "elements": {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"},
    "dc_elements": [4],
    "update_interval": "50 ms",
}
BENCH = ("yokogawa_wt5000", "ea_psb10000", "keysight_ac6900", "chroma_63800")


def _bench() -> tuple[World, VirtualClock, dict[str, object], pyvisa.ResourceManager]:
    world = World(WorldConfig(), seed=11)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    rm = pyvisa.ResourceManager(library)
    drivers: dict[str, object] = {}
    for index, key in enumerate(BENCH, start=1):
        options = WIRING if key == "yokogawa_wt5000" else {}
        twin = make_twin(key, world, clock.now, serial=f"EMU{index:04d}", options=options)
        name = library.add(MODELS[key].emulated_resource(f"EMU{index:04d}"), twin)
        drivers[key] = open_instrument(key, rm.open_resource(name), options=options)
    return world, clock, drivers, rm


def _median_round_trip_us(resource: MessageBasedResource, count: int) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        resource.query("OUTP?")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


@pytest.mark.benchmark
def test_query_round_trip_through_the_in_process_visa_library() -> None:
    _, _, _, rm = _bench()
    resource = rm.open_resource(MODELS["keysight_ac6900"].emulated_resource("EMU0003"))
    assert isinstance(resource, MessageBasedResource)
    resource.read_termination = resource.write_termination = "\n"
    count = QUERIES_PER_SIMULATED_HOUR
    start = time.perf_counter()
    median_us = _median_round_trip_us(resource, count)
    elapsed = time.perf_counter() - start
    print(
        f"\nin-process VISA query round trip: median {median_us:.1f} us/query; "
        f"{count} queries (one simulated hour) cost {elapsed:.3f} s wall"
    )
    assert median_us < 50.0
    # 20,000 queries must stay within a fifth of the 10 s budget for the whole hour.
    assert elapsed < 2.0


@pytest.mark.benchmark
def test_query_round_trip_over_tcp_with_pyvisa_py() -> None:
    world = World(WorldConfig(), seed=11)
    clock = RealClock()
    twins = {"grid": make_twin("keysight_ac6900", world, clock.now)}
    with serve(twins, sleep_until=clock.sleep_until) as handle:
        rm = pyvisa.ResourceManager("@py")
        resource = rm.open_resource(handle.address("grid"))
        assert isinstance(resource, MessageBasedResource)
        resource.read_termination = resource.write_termination = "\n"
        _median_round_trip_us(resource, 200)  # warm up
        median_us = _median_round_trip_us(resource, 2000)
        resource.close()
        rm.close()
    print(f"\nTCP (loopback, pyvisa-py) query round trip: median {median_us:.0f} us/query")
    assert median_us < 1000.0


@pytest.mark.benchmark
def test_one_simulated_hour_of_sampling_every_instrument_each_second() -> None:
    world, clock, drivers, _ = _bench()
    world.enable_power_stage(True)
    world.command_setpoint(-3000.0)
    analyzer, battery = drivers["yokogawa_wt5000"], drivers["ea_psb10000"]
    grid, home = drivers["keysight_ac6900"], drivers["chroma_63800"]
    samples = 3600
    start = time.perf_counter()
    for second in range(1, samples + 1):
        clock.sleep_until(float(second))
        analyzer.read()  # type: ignore[attr-defined]
        battery.measure()  # type: ignore[attr-defined]
        grid.measure()  # type: ignore[attr-defined]
        home.measure()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    queries = samples * 6
    print(
        f"\none simulated hour, 4 instruments sampled at 1 Hz ({queries} queries, the "
        f"analyzer waiting for each fresh update, World physics included): {elapsed:.3f} s "
        f"wall, {elapsed / queries * 1e6:.1f} us/query"
    )
    assert world.now >= 3600.0
    assert elapsed < 5.0
