"""The emulated InfiniiVision: captures of the World's waveforms around a trigger."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import pyvisa

from instruments.emulated.infiniivision import InfiniiVisionTwin
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.keysight.infiniivision import InfiniiVision
from instruments.registry import MODELS
from instruments.roles import TriggerSlope
from rig.checks.waveform import clearing_time
from rig.clock import VirtualClock
from rig.sim import World, WorldConfig, balanced_rlc


@dataclass
class ScopeBench:
    world: World
    clock: VirtualClock
    twin: InfiniiVisionTwin
    scope: InfiniiVision
    library: EmulatedVisaLibrary


def _bench(**options: object) -> ScopeBench:
    world = World(WorldConfig(), seed=2)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    twin = InfiniiVisionTwin(
        world,
        clock.now,
        options={
            "channels": {1: "evse_ac.v", 2: "evse_ac.i"},
            "record_length": 100_000,
            **options,
        },
    )
    name = library.add(MODELS["keysight_infiniivision"].emulated_resource("MY1"), twin)
    scope = InfiniiVision(pyvisa.ResourceManager(library).open_resource(name))
    scope.configure_channel(1, per_div=100.0, probe=100.0)
    # 5 A/div: a 0.05 p.u. current (0.9 A peak) stays well above the offset and noise.
    scope.configure_channel(2, per_div=5.0, probe=10.0, unit="A")
    return ScopeBench(world, clock, twin, scope, library)


@pytest.fixture
def bench() -> Iterator[ScopeBench]:
    yield _bench()


def _island(bench: ScopeBench) -> None:
    """A grid-following EVSE exporting 3 kW into a balanced 3 kW RLC tank (IEEE 1547.1 5.10)."""
    world = bench.world
    tank = balanced_rlc(3000.0)
    world.set_home_rlc(r_ohm=tank.r_ohm, l_h=tank.l_h, c_f=tank.c_f)
    world.enable_power_stage(True)
    world.command_setpoint(-3000.0)
    bench.clock.sleep_until(5.0)
    world.advance_to(5.0)


def test_an_s3_trigger_captures_the_island_and_its_clearing(bench: ScopeBench) -> None:
    _island(bench)
    scope, clock, world = bench.scope, bench.clock, bench.world
    scope.set_timebase(seconds_per_div=0.1, delay_s=0.4)  # -0.1 s .. 0.9 s around the trigger
    scope.set_edge_trigger("EXT", level=1.0, slope=TriggerSlope.FALLING)
    scope.arm()
    clock.sleep(1.0)
    world.advance_to(clock.now())
    t_open = clock.now()
    world.set_grid_output(False)  # S3 opens: the island stands on the EVSE alone
    assert not scope.acquisition_complete()
    clock.sleep(2.0)
    assert scope.acquisition_complete()
    v, i = scope.fetch(1), scope.fetch(2)
    assert bench.twin.last is not None and bench.twin.last.t_trigger == pytest.approx(t_open)
    assert v.unit == "V" and i.unit == "A" and len(v) == 100_000
    assert v.sample_rate_hz == pytest.approx(100_000.0, rel=1e-3)
    before = v.y[v.t < -0.01]
    assert np.abs(before).max() == pytest.approx(230.0 * math.sqrt(2), rel=0.05)
    result = clearing_time(v.t, v.y, i.y, t_event=0.0, v_nominal_rms=230.0, i_rated_rms=13.0)
    assert result.clearing_s is not None
    # The emulated DUT detects the island after 0.5 s (+ up to 5 ms jitter), ceases within a
    # cycle, and the tank rings down in a few milliseconds.
    assert 0.5 < result.clearing_s < 0.56
    assert bench.twin.errors == []


def test_a_channel_edge_trigger_lands_on_a_rising_zero_crossing(bench: ScopeBench) -> None:
    _island(bench)
    scope = bench.scope
    scope.set_timebase(seconds_per_div=0.002)  # 20 ms: one cycle centred on the trigger
    scope.set_edge_trigger("CHAN1", level=0.0, slope=TriggerSlope.RISING)
    captured = scope.capture([1])  # :DIGitize: the library lets virtual time pass
    wave = captured[1]
    k = int(np.searchsorted(wave.t, 0.0))
    # At 5 MSa/s the 8-bit ADC steps 3.9 V: compare 1 ms either side of the trigger.
    assert abs(wave.y[k]) < 10.0 and wave.y[k + 5000] > 50.0 > -50.0 > wave.y[k - 5000]
    assert bench.twin.errors == []


def test_a_forced_trigger_is_the_moment_it_is_sent(bench: ScopeBench) -> None:
    scope, clock = bench.scope, bench.clock
    scope.set_timebase(seconds_per_div=0.01)
    scope.set_edge_trigger("CHAN2", level=1000.0)  # never reached
    scope.arm()
    clock.sleep(0.3)
    scope.force_trigger()
    t_forced = clock.now()
    clock.sleep(0.1)
    assert scope.acquisition_complete()
    assert bench.twin.last is not None and bench.twin.last.t_trigger == t_forced


def test_byte_and_ascii_formats_and_decimated_points() -> None:
    bench = _bench(vertical_noise=0.0)
    resource = bench.scope.resource
    bench.scope.set_timebase(seconds_per_div=0.01)
    bench.scope.arm()
    bench.scope.force_trigger()
    bench.clock.sleep(0.2)
    resource.write(":WAV:SOUR CHAN1;:WAV:FORM ASC;:WAV:POIN:MODE NORM;:WAV:POIN 1000")
    preamble = resource.query(":WAV:PRE?").split(",")
    assert preamble[0] == "4" and int(preamble[2]) == 1000
    values = [float(x) for x in resource.query(":WAV:DATA?").split(",")]
    assert len(values) == 1000 and max(values) == pytest.approx(325.3, rel=0.03)
    assert bench.twin.errors == []


def test_without_time_to_pass_a_digitize_fails_instead_of_hanging() -> None:
    world = World(WorldConfig(), seed=2)
    clock = VirtualClock()
    twin = InfiniiVisionTwin(world, clock.now, options={"channels": {1: "grid.v"}})
    assert twin.handle(":TRIG:SWE NORM;:TRIG:EDGE:SOUR CHAN1;:TRIG:EDGE:LEV 1000;:DIG") is None
    assert twin.blocked_until is not None
    assert twin.resume(forced=True) is None
    assert twin.errors[-1][0] == -200


def test_fetching_before_any_acquisition_is_an_error() -> None:
    world = World(WorldConfig(), seed=2)
    twin = InfiniiVisionTwin(world, VirtualClock().now)
    twin.handle(":WAV:PRE?")
    assert twin.errors[0][0] == -230
