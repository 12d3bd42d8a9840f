"""The emulated RP7900: voltage priority, signed limits to World magnitudes, MEAS/FETC."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.rp7900 import RP7900Twin


@pytest.fixture
def rp(world: FakeWorld, clock: Clock) -> RP7900Twin:
    return RP7900Twin(world, clock.now, options={"noise": False})


def test_limits_reach_the_world_as_magnitudes(rp: RP7900Twin, world: FakeWorld) -> None:
    rp.handle(
        "FUNC VOLT;:VOLT 420;:CURR:LIM 30;:CURR:LIM:NEG -25;:POW:LIM 11000;:POW:LIM:NEG -9000"
    )
    assert rp.errors == []
    assert world.dc_limits == {
        "voltage_v": 420.0,
        "source_current_a": 30.0,
        "sink_current_a": 25.0,
        "source_power_w": 11000.0,
        "sink_power_w": 9000.0,
    }


def test_a_positive_negative_limit_and_current_priority_are_refused(rp: RP7900Twin) -> None:
    rp.handle("CURR:LIM:NEG 25")
    rp.handle("FUNC CURR")
    rp.handle("VOLT 501")
    assert [code for code, _ in rp.errors] == [-222, -221, -222]


def test_measure_then_fetch_from_one_acquisition_in_the_units_sign(
    rp: RP7900Twin, world: FakeWorld, clock: Clock
) -> None:
    assert rp.handle("FETC:CURR?") is None and rp.errors[0][0] == -230
    world.dc_output, world.evse_p_w = True, 4000.0  # EV charging: the RP7900 sinks
    rp.handle("OUTP ON")
    clock.t = 0.1
    assert rp.handle("MEAS:VOLT?;:FETC:CURR?;:FETC:POW?") == (
        "+4.000000E+02;-1.000000E+01;-4.000000E+03"
    )


def test_rst_switches_off_and_zeroes(rp: RP7900Twin, world: FakeWorld) -> None:
    rp.handle("VOLT 400;:OUTP ON;*RST")
    assert not rp.output_on and not world.dc_output and rp.voltage_set == 0.0
