"""Twins misbehaving on command, and drivers naming the instrument and the command that failed.

The three faults of a lab: an instrument that does not answer (a VISA timeout), a connection that
drops, and an instrument error appearing mid-run; each through the in-process VISA library and
over TCP sockets with pyvisa-py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pyvisa

from instruments.emulated.server import serve
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.registry import MODELS, make_twin, open_instrument
from instruments.roles import (
    DCSource,
    GridSimulator,
    InstrumentConnectionLost,
    InstrumentError,
    InstrumentTimeout,
)
from rig.clock import RealClock, VirtualClock
from rig.sim import World, WorldConfig


@pytest.fixture
def in_process() -> Iterator[tuple[dict[str, object], GridSimulator, DCSource]]:
    world = World(WorldConfig(), seed=4)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    rm = pyvisa.ResourceManager(library)
    twins: dict[str, object] = {}
    drivers = {}
    for name, key in (("grid", "keysight_ac6900"), ("battery", "ea_psb10000")):
        twins[name] = twin = make_twin(key, world, clock.now, serial=name)
        resource = rm.open_resource(library.add(MODELS[key].emulated_resource(name), twin))
        drivers[name] = open_instrument(key, resource, name=name)
    grid, battery = drivers["grid"], drivers["battery"]
    assert isinstance(grid, GridSimulator) and isinstance(battery, DCSource)
    yield twins, grid, battery
    rm.close()


def test_a_muted_instrument_is_a_timeout_naming_it_and_the_query(
    in_process: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, _ = in_process
    twins["grid"].faults.mute()  # type: ignore[attr-defined]
    with pytest.raises(InstrumentTimeout) as caught:
        grid.output_enabled()
    assert caught.value.instrument == "grid (Keysight Technologies AC6900)"
    assert caught.value.command == "OUTP?"
    twins["grid"].faults.clear()  # type: ignore[attr-defined]
    assert grid.output_enabled() is True


def test_a_muted_message_is_not_executed_either(
    in_process: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, _ = in_process
    twins["grid"].faults.mute(1)  # type: ignore[attr-defined]
    grid.set_voltage(207)  # VOLT 207 is lost; the error check after it is answered
    assert twins["grid"].voltage_setpoint == 230.0  # type: ignore[attr-defined]


def test_a_dropped_connection_stays_dropped(
    in_process: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, battery = in_process
    twins["battery"].faults.drop()  # type: ignore[attr-defined]
    with pytest.raises(InstrumentConnectionLost) as caught:
        battery.set_voltage(400)
    assert caught.value.instrument == "battery (EA Elektro-Automatik PSB 10000)"
    assert caught.value.command == "SYST:LOCK ON"
    with pytest.raises(InstrumentConnectionLost):
        battery.output_enabled()
    assert grid.output_enabled()  # the other instruments carry on


def test_an_error_pushed_mid_run_surfaces_at_the_next_check_naming_the_command(
    in_process: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, _, battery = in_process
    battery.set_voltage(400)
    twins["battery"].inject_error(201, "Overtemperature")  # type: ignore[attr-defined]
    with pytest.raises(InstrumentError) as caught:
        battery.set_output(True)
    assert caught.value.errors == ((201, "Overtemperature"),)
    assert caught.value.command == "OUTP ON"
    battery.set_output(False)  # the queue was drained: the next command is clean


def test_a_flood_of_errors_ends_in_the_queue_overflow_error(
    in_process: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, _ = in_process
    for code in range(1, 30):
        twins["grid"].inject_error(code, "Hardware fault")  # type: ignore[attr-defined]
    with pytest.raises(InstrumentError) as caught:
        grid.set_frequency(50)
    assert len(caught.value.errors) == 10
    assert caught.value.errors[-1] == (-350, "Queue overflow")


@pytest.fixture
def over_tcp() -> Iterator[tuple[dict[str, object], GridSimulator, DCSource]]:
    world = World(WorldConfig(), seed=4)
    clock = RealClock()
    twins = {
        "grid": make_twin("keysight_ac6900", world, clock.now),
        "battery": make_twin("ea_psb10000", world, clock.now),
    }
    with serve(twins, sleep_until=clock.sleep_until) as handle:
        rm = pyvisa.ResourceManager("@py")
        grid = open_instrument(
            "keysight_ac6900", rm.open_resource(handle.address("grid"), timeout=300), name="grid"
        )
        battery = open_instrument(
            "ea_psb10000",
            rm.open_resource(handle.address("battery"), timeout=300),
            name="battery",
        )
        assert isinstance(grid, GridSimulator) and isinstance(battery, DCSource)
        yield twins, grid, battery
        rm.close()


def test_over_tcp_a_muted_instrument_is_a_timeout(
    over_tcp: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, battery = over_tcp
    twins["grid"].faults.mute()  # type: ignore[attr-defined]
    with pytest.raises(InstrumentTimeout, match=r"grid .*no answer within 300 ms after 'OUTP\?'"):
        grid.output_enabled()
    assert battery.output_enabled() in (True, False)  # the other instrument still answers


def test_over_tcp_a_dropped_connection_is_named_as_such(
    over_tcp: tuple[dict[str, object], GridSimulator, DCSource],
) -> None:
    twins, grid, _ = over_tcp
    twins["grid"].faults.drop()  # type: ignore[attr-defined]
    with pytest.raises(InstrumentConnectionLost) as caught:
        grid.output_enabled()
    assert caught.value.command == "OUTP?"
