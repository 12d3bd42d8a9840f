"""The emulated Chroma 61800: phase configuration, per-phase setpoints, relay and output."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.c61800 import C61800Twin


@pytest.fixture
def grid(world: FakeWorld, clock: Clock) -> C61800Twin:
    return C61800Twin(world, clock.now, options={"noise": False})


def test_the_site_gets_the_grid_only_with_relay_and_output_on(
    grid: C61800Twin, world: FakeWorld
) -> None:
    grid.handle("OUTP:STAT OFF;:OUTP:REL OFF")
    assert not world.grid_output
    grid.handle("OUTP:STAT ON")
    assert not world.grid_output  # the relay is still open
    grid.handle("OUTP:REL ON;:OUTP:STAT ON")
    assert world.grid_output and grid.handle("OUTP:STAT?;:OUTP:REL?") == "1;1"


def test_three_phase_setpoints_the_balanced_world_gets_their_mean(
    grid: C61800Twin, world: FakeWorld
) -> None:
    grid.handle("INST:PHAS THREE;:INST:EDIT ALL;:SOUR:VOLT:LEV:IMM:AMPL:AC 230")
    grid.handle("INST:EDIT P2;:SOUR:VOLT:LEV:IMM:AMPL:AC 200")
    assert grid.errors == []
    assert grid.state()["voltage_p2_v"] == 200.0 and grid.state()["voltage_p1_v"] == 230.0
    assert world.grid_voltage_setpoint == pytest.approx(220.0)
    assert grid.handle("SOUR:VOLT:LEV:IMM:AMPL:AC?") == "200.0000"


def test_angles_need_independent_phases(grid: C61800Twin) -> None:
    grid.handle("INST:PHAS THREE;:SOUR:PHAS:P12 110")
    assert grid.errors[0][0] == -221
    grid.handle("SOUR:PHAS:THREE INDEPEND;:SOUR:PHAS:P12 110;:SOUR:PHAS:P13 250")
    assert grid.handle("SOUR:PHAS:P12?;:SOUR:PHAS:P13?") == "110.0000;250.0000"


def test_slew_rates_are_per_millisecond(grid: C61800Twin, world: FakeWorld, clock: Clock) -> None:
    grid.handle("OUTP:SLEW:FREQ 0.001;:SOUR:FREQ 51")  # 1 Hz/s
    clock.t = 0.5
    grid.handle("*OPC?")
    assert world.grid_frequency_setpoint == pytest.approx(50.5, abs=0.01)  # 10 ms steps


def test_single_phase_has_no_p2(grid: C61800Twin) -> None:
    grid.handle("INST:EDIT P2")
    assert grid.errors[0][0] == -221
