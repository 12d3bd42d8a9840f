"""The emulated bench end to end: registry twins over the real rig.sim World, through pyvisa."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import pyvisa

from instruments.emulated.psb10000 import PSB10000Twin
from instruments.emulated.server import serve
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.registry import MODELS, make_twin, open_instrument
from instruments.roles import (
    ACLoad,
    DcReading,
    DCSource,
    GridSimulator,
    LimitError,
    Limits,
    PowerAnalyzer,
)
from rig.clock import RealClock, VirtualClock
from rig.sim import NoiseConfig, NoiseSpec, World, WorldConfig

WIRING = {"elements": {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}, "dc_elements": [4]}
QUIET = NoiseConfig(*(NoiseSpec(rel=0.0, offset=0.0) for _ in range(6)))
#: The four instruments of the embedded bench, as ideal instruments (no accuracy errors).
KEYS = ("yokogawa_wt5000", "ea_psb10000", "keysight_ac6900", "chroma_63800")


@dataclass
class EmulatedBench:
    world: World
    clock: VirtualClock
    twins: dict[str, object]
    analyzer: PowerAnalyzer
    battery: DCSource
    grid: GridSimulator
    home: ACLoad
    rm: pyvisa.ResourceManager


@pytest.fixture
def bench() -> Iterator[EmulatedBench]:
    world = World(WorldConfig(noise=QUIET), seed=7)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    rm = pyvisa.ResourceManager(library)
    drivers = {}
    twins: dict[str, object] = {}
    for index, key in enumerate(KEYS, start=1):
        options = {**(WIRING if key == "yokogawa_wt5000" else {}), "noise": False}
        serial = f"EMU{index:04d}"
        twin = make_twin(key, world, clock.now, serial=serial, options=options)
        twins[key] = twin
        name = library.add(MODELS[key].emulated_resource(serial), twin)
        drivers[key] = open_instrument(key, rm.open_resource(name), options=options)
    yield EmulatedBench(
        world,
        clock,
        twins,
        drivers["yokogawa_wt5000"],  # type: ignore[arg-type]
        drivers["ea_psb10000"],  # type: ignore[arg-type]
        drivers["keysight_ac6900"],  # type: ignore[arg-type]
        drivers["chroma_63800"],  # type: ignore[arg-type]
        rm,
    )
    rm.close()


def test_the_analyzer_and_the_battery_emulator_agree_with_the_world(bench: EmulatedBench) -> None:
    bench.battery.set_voltage(450)
    bench.battery.set_current_limits(source_a=30, sink_a=30)
    bench.battery.set_output(True)
    bench.world.enable_power_stage(True)
    bench.world.command_setpoint(7000.0)  # charging, rig sign +
    bench.clock.sleep(10.0)

    readings = bench.analyzer.read()
    truth = bench.world.measure_dc()
    dc = readings["evse_dc"]
    assert isinstance(dc, DcReading)
    assert dc.p_w > 6000 and dc.p_w == pytest.approx(truth.p_w, rel=1e-4)
    assert bench.battery.measure().i == pytest.approx(truth.i, abs=0.01)
    assert readings["evse_ac"].p_w == pytest.approx(7000.0, rel=1e-3)
    assert readings["grid"].p_w == pytest.approx(readings["evse_ac"].p_w, rel=1e-3)
    assert bench.grid.measure().p_w == pytest.approx(readings["grid"].p_w, rel=1e-3)


def test_virtual_time_flows_into_the_world_on_every_message(bench: EmulatedBench) -> None:
    bench.world.enable_power_stage(True)
    bench.world.command_setpoint(7000.0)
    soc_before = bench.world.battery.soc
    bench.clock.sleep(3600.0)
    bench.analyzer.read()
    assert bench.world.now == 3600.0
    assert bench.world.battery.soc > soc_before + 0.05


def test_the_home_load_and_the_grid_source_drive_the_world(bench: EmulatedBench) -> None:
    bench.home.set_power(3000)
    bench.home.set_input(True)
    bench.grid.set_voltage(230)
    bench.clock.sleep(1.0)
    assert bench.home.measure().p_w == pytest.approx(3000.0, rel=1e-3)
    assert bench.analyzer.read()["grid"].p_w == pytest.approx(3000.0, rel=1e-3)
    bench.grid.set_output(False)
    bench.clock.sleep(5.0)
    assert not bench.world.grid_output
    assert bench.grid.measure().v_rms == 0.0


def test_safe_state_leaves_every_output_off_in_twins_and_world(bench: EmulatedBench) -> None:
    bench.battery.set_voltage(420)
    bench.battery.set_output(True)
    bench.home.set_power(2000)
    bench.home.set_input(True)
    for driver in (bench.home, bench.grid, bench.battery, bench.analyzer):
        driver.safe_state()
    assert not bench.world.dc_output
    assert not bench.world.grid_output
    assert not bench.world.home_load_on
    states = {key: twin.state() for key, twin in bench.twins.items()}  # type: ignore[attr-defined]
    assert states["ea_psb10000"]["output_on"] is False
    assert states["keysight_ac6900"]["output_on"] is False
    assert states["chroma_63800"]["input_on"] is False


def test_bench_limits_refuse_before_the_twin_sees_anything(bench: EmulatedBench) -> None:
    key = "ea_psb10000"
    resource = bench.rm.open_resource(MODELS[key].emulated_resource("EMU0002"))
    battery = open_instrument(key, resource, limits=Limits.from_mapping({"voltage_v": 500}))
    assert isinstance(battery, DCSource)
    with pytest.raises(LimitError, match="outside the bench limits"):
        battery.set_voltage(600)
    twin = bench.twins[key]
    assert isinstance(twin, PSB10000Twin) and twin.voltage_set == 0.0 and not twin.locked


def test_the_tcp_server_serves_the_real_world_in_real_time() -> None:
    world = World(WorldConfig(noise=QUIET), seed=3)
    clock = RealClock()
    twins = {
        "grid": make_twin("keysight_ac6900", world, clock.now, options={"noise": False}),
        "battery": make_twin("ea_psb10000", world, clock.now),
    }
    with serve(twins, sleep_until=clock.sleep_until) as handle:
        rm = pyvisa.ResourceManager("@py")
        grid = open_instrument("keysight_ac6900", rm.open_resource(handle.address("grid")))
        battery = open_instrument("ea_psb10000", rm.open_resource(handle.address("battery")))
        assert isinstance(grid, GridSimulator) and isinstance(battery, DCSource)
        try:
            grid.set_frequency(50.2)
            clock.sleep(0.25)  # a measurement window (100 ms) at the new frequency
            assert grid.measure().f_hz == pytest.approx(50.2)
            battery.safe_state()
            assert not world.dc_output
            assert world.now > 0.0  # the twins advanced the world to the wall clock
        finally:
            grid.close()
            battery.close()
