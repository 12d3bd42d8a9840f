"""The emulated AC6900: grid setpoints (steps and ramps), the relay in series with S3, and
acquisitions for MEASure/FETCh."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.ac6900 import AC6900Twin


@pytest.fixture
def ac(world: FakeWorld, clock: Clock) -> AC6900Twin:
    return AC6900Twin(world, clock.now, options={"noise": False})


def test_starts_mirroring_the_worlds_grid(ac: AC6900Twin) -> None:
    assert ac.output_on and ac.voltage_setpoint == 230.0 and ac.frequency_set == 50.0
    assert ac.handle("OUTP?;:VOLT?;:FREQ?") == "1;+2.30000E+02;+5.00000E+01"


def test_setpoints_and_relay_reach_the_world(ac: AC6900Twin, world: FakeWorld) -> None:
    ac.handle("VOLT 207;:FREQ 50.5;:OUTP OFF")
    assert (world.grid_voltage_setpoint, world.grid_frequency_setpoint) == (207.0, 50.5)
    assert not world.grid_output and not ac.output_on


def test_a_voltage_ramp_moves_the_world_in_simulated_time(
    ac: AC6900Twin, world: FakeWorld, clock: Clock
) -> None:
    ac.handle("VOLT:SLEW 100;:VOLT 210")  # 20 V at 100 V/s: 0.2 s
    assert ac.handle("VOLT?") == "+2.10000E+02"  # the programmed value at once
    assert world.grid_voltage_setpoint == 230.0  # the output still where it was
    clock.t = 0.1
    ac.handle("*OPC?")
    assert world.grid_voltage_setpoint == pytest.approx(220.0)
    clock.t = 0.5
    ac.handle("*OPC?")
    assert world.grid_voltage_setpoint == 210.0


def test_a_new_setpoint_cancels_a_ramp_and_max_slew_steps(
    ac: AC6900Twin, world: FakeWorld, clock: Clock
) -> None:
    ac.handle("FREQ:SLEW 1;:FREQ 51")
    clock.t = 0.5
    ac.handle("FREQ:SLEW MAX;:FREQ 49.5")
    assert world.grid_frequency_setpoint == 49.5
    clock.t = 2.0
    ac.handle("*OPC?")
    assert world.grid_frequency_setpoint == 49.5  # the cancelled ramp does not come back


def test_ranges_are_enforced(ac: AC6900Twin, world: FakeWorld) -> None:
    ac.handle("VOLT 400")
    ac.handle("FREQ 10")
    assert [code for code, _ in ac.errors] == [-222, -222]
    assert world.grid_voltage_setpoint == 230.0


def test_fetch_reads_the_acquisition_taken_by_measure(
    ac: AC6900Twin, world: FakeWorld, clock: Clock
) -> None:
    assert ac.handle("FETC:VOLT:AC?") is None
    assert ac.errors[0][0] == -230
    world.home_on, world.home_p_w = True, 2300.0
    ac.handle("*OPC?")
    clock.t = 0.5
    assert ac.handle("MEAS:VOLT:AC?;:FETC:CURR:AC?;:FETC:POW:AC?") == (
        "+2.30000E+02;+1.00000E+01;+2.30000E+03"
    )
    world.home_p_w = 0.0  # a later change is not seen until the next MEASure
    ac.handle("*OPC?")
    clock.t = 1.0
    assert ac.handle("FETC:POW:AC:REAL?") == "+2.30000E+03"
    assert ac.handle("MEAS:POW:AC?") == "+0.00000E+00"


def test_with_s3_open_the_source_holds_its_voltage_into_nothing(
    ac: AC6900Twin, world: FakeWorld, clock: Clock
) -> None:
    world.home_on, world.home_p_w = True, 2300.0
    ac.site.set_s3(False)
    assert not world.grid_output and ac.output_on  # the site lost the grid, the source did not
    clock.t = 0.5
    assert ac.handle("MEAS:VOLT:AC?;:FETC:CURR:AC?") == "+2.30000E+02;+0.00000E+00"
    ac.site.set_s3(True)
    assert world.grid_output


def test_rst_opens_the_relay(ac: AC6900Twin, world: FakeWorld) -> None:
    ac.handle("*RST")
    assert not ac.output_on and not world.grid_output and ac.voltage_setpoint == 0.0
