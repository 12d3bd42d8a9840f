"""The emulated PSB 10000: remote lock, ratings, forwarding to the World, PSB sign."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.psb10000 import PSB10000Twin


@pytest.fixture
def psb(world: FakeWorld, clock: Clock) -> PSB10000Twin:
    return PSB10000Twin(world, clock.now, options={"noise": False})


def test_setpoints_are_refused_until_remote_control_is_locked(
    psb: PSB10000Twin, world: FakeWorld
) -> None:
    psb.handle("VOLT 400")
    assert psb.errors[0][0] == -203
    assert psb.voltage_set == 0.0 and "voltage_v" not in world.dc_limits
    psb.handle("SYST:LOCK ON;:VOLT 400")
    assert psb.voltage_set == 400.0 and world.dc_limits["voltage_v"] == 400.0


def test_source_and_sink_setpoints_reach_the_world_limits(
    psb: PSB10000Twin, world: FakeWorld
) -> None:
    psb.handle("SYST:LOCK ON;:CURR 30;:SINK:CURR 20;:POW 11000;:SINK:POW 7400;:OUTP ON")
    assert world.dc_limits == {
        "source_current_a": 30.0,
        "sink_current_a": 20.0,
        "source_power_w": 11000.0,
        "sink_power_w": 7400.0,
    }
    assert psb.output_on and world.dc_output
    assert psb.handle("OUTP?;:SINK:CURR?;:VOLT?") == "ON;20.00A;0.00V"


def test_ratings_are_enforced_like_the_real_unit(psb: PSB10000Twin, world: FakeWorld) -> None:
    psb.handle("SYST:LOCK ON;:VOLT 800")  # a PSB 10750-120 goes to 750 V (+2 %)
    assert psb.handle("SYST:ERR?") == '-222,"Data out of range;800"'
    assert psb.voltage_set == 0.0 and "voltage_v" not in world.dc_limits


def test_measurements_read_negative_current_and_power_while_sinking(
    psb: PSB10000Twin, world: FakeWorld, clock: Clock
) -> None:
    world.dc_output, world.evse_p_w = True, 7000.0  # EV charging = PSB sinking
    psb.handle("*OPC?")  # the World records the change now (t = 0)
    clock.t = 0.1  # past the unit's 10 ms measurement interval
    assert psb.handle("MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?") == "400.00V;-17.50A;-7000.00W"
    assert psb.handle("MEAS:ARR?") == "400.00V, -17.50A, -7000.00W"
    world.evse_p_w = -4000.0
    psb.handle("*OPC?")
    clock.t = 0.2
    assert psb.handle("MEAS:CURR?") == "10.00A"


def test_rst_switches_the_output_off_and_zeroes_the_setpoints(
    psb: PSB10000Twin, world: FakeWorld
) -> None:
    psb.handle("SYST:LOCK ON;:VOLT 400;:OUTP ON")
    psb.handle("*RST")
    assert not psb.output_on and not world.dc_output
    assert psb.voltage_set == 0.0 and world.dc_limits["voltage_v"] == 0.0


def test_ratings_are_options(world: FakeWorld, clock: Clock) -> None:
    small = PSB10000Twin(
        world, clock.now, options={"model": "PSB 10060-60", "voltage_rating": "60 V"}
    )
    assert small.handle("*IDN?") == (
        "EA Elektro-Automatik GmbH & Co. KG,PSB 10060-60,EMU0001,V3.02"
    )
    small.handle("SYST:LOCK ON;:VOLT 61.2")
    assert small.errors == [] and small.voltage_set == 61.2
    small.handle("VOLT 61.3")
    assert small.errors[0][0] == -222
