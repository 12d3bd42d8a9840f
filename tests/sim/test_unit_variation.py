"""Seeds that matter: each seed draws another unit; part-load efficiency and standby draw; the
unit's own tracking error; AC_BPT's inverter in the EV."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_helpers import MakeWorld, response_time_90, sample

from rig.sim import (
    Conversion,
    EVSEConfig,
    NoiseConfig,
    UnitVariation,
    World,
    WorldConfig,
)

SPREAD = UnitVariation(
    island_detection=0.25,
    transfer=0.25,
    lag=0.25,
    ramp_rate=0.2,
    efficiency=0.005,
    power_gain=0.005,
    power_offset_w=20.0,
)


def _unit(seed: int, variation: UnitVariation = SPREAD) -> EVSEConfig:
    world = World(WorldConfig(variation=variation, noise=NoiseConfig.none()), seed=seed)
    return world.config.evse


def test_twenty_seeds_are_twenty_different_units_within_the_spreads() -> None:
    base = EVSEConfig()
    units = [_unit(seed) for seed in range(1, 21)]
    detections = {u.island_detection_s for u in units}
    assert len(detections) == 20
    for u in units:
        assert abs(u.island_detection_s / base.island_detection_s - 1) <= 0.25
        assert abs(u.transfer_s / base.transfer_s - 1) <= 0.25
        assert abs(u.lag_s / base.lag_s - 1) <= 0.25
        assert abs(u.ramp_w_per_s / base.ramp_w_per_s - 1) <= 0.2
        assert abs(u.efficiency - base.efficiency) <= 0.005
        assert abs(u.power_gain) <= 0.005 and abs(u.power_offset_w) <= 20.0
    spread = np.ptp([u.island_detection_s for u in units]) / base.island_detection_s
    assert spread > 0.3  # they really spread over the population, not a hair around one unit


def test_the_same_seed_is_the_same_unit_and_no_spread_is_the_configured_unit() -> None:
    assert _unit(7) == _unit(7)
    assert _unit(7, UnitVariation()) == EVSEConfig()


def test_a_changed_spread_does_not_move_the_other_draws() -> None:
    only_detection = UnitVariation(island_detection=0.25)
    wider_lag = dataclasses.replace(only_detection, lag=0.1)
    assert _unit(4, only_detection).island_detection_s == _unit(4, wider_lag).island_detection_s


def test_spreads_are_validated() -> None:
    with pytest.raises(ValueError, match="lag"):
        UnitVariation(lag=1.5)
    with pytest.raises(ValueError, match="power_offset_w"):
        UnitVariation(power_offset_w=-1.0)


def test_draws_reach_the_behaviour_the_response_and_the_detection_differ() -> None:
    times = []
    for seed in (1, 2):
        config = WorldConfig(variation=SPREAD, noise=NoiseConfig.none())
        world = World(config, seed=seed)
        world.enable_power_stage(True)
        world.command_setpoint(7000.0)
        times.append(response_time_90(sample(world, 3.0), 0.0, 7000.0))
    assert times[0] != pytest.approx(times[1], abs=1e-3)


def test_the_unit_tracks_a_command_with_its_own_gain_and_offset(make_world: MakeWorld) -> None:
    world = make_world(evse={"power_gain": 0.004, "power_offset_w": 15.0})
    world.command_setpoint(-5000.0)
    world.advance_to(5.0)
    assert world.evse.p_w == pytest.approx(-5000.0 * 1.004 - 15.0)
    world.command_setpoint(0.0)
    world.advance_to(10.0)
    assert world.evse.p_w == 0.0  # an idle command is idle: no offset


def test_part_load_efficiency_falls_at_light_load_and_matches_at_rated() -> None:
    conv = Conversion(0.96, no_load_loss_w=40.0, rated_w=11_000.0)
    assert conv.dc_of(11_000.0) == pytest.approx(11_000.0 * 0.96)
    assert conv.dc_of(0.0) == 0.0
    light = conv.dc_of(300.0) / 300.0
    assert light < 0.88
    assert conv.dc_of(4000.0) / 4000.0 > 0.96  # best between a third and half of rated
    # The inverses: what AC a DC limit allows, both ways.
    assert conv.dc_of(-conv.ac_export_for(5000.0)) == pytest.approx(-5000.0)
    assert conv.dc_of(conv.ac_import_for(5000.0)) == pytest.approx(5000.0)
    constant = Conversion(0.9, rated_w=11_000.0)
    assert constant.dc_of(5000.0) == pytest.approx(4500.0)
    assert constant.dc_of(-4500.0) == pytest.approx(-5000.0)


def test_the_world_converts_through_the_curve_and_draws_standby(make_world: MakeWorld) -> None:
    world = make_world(home_w=1000.0, evse={"no_load_loss_w": 40.0, "standby_w": 8.0})
    assert world.measure_ac("evse_ac").p_w == pytest.approx(8.0)  # idle: the auxiliary draw
    assert world.measure_ac("grid").p_w == pytest.approx(1008.0)
    assert world.measure_dc().p_w == 0.0
    world.command_setpoint(-3000.0)
    world.advance_to(5.0)
    dc = world.measure_dc().p_w
    assert dc < -3000.0 and dc == pytest.approx(-3000.0 - 40.0 - (440.0 - 40.0) * (3 / 11) ** 2)
    assert world.measure_ac("evse_ac").p_w == pytest.approx(-3000.0 + 8.0)


def test_ac_bpt_puts_the_inverter_in_the_ev_and_the_evses_inverter_defects_do_nothing() -> None:
    def clearing(inverter_in_ev: bool) -> float:
        config = WorldConfig(inverter_in_ev=inverter_in_ev, noise=NoiseConfig.none())
        world = World(config, defects=("no_island_detection", "slow_ramp"))
        world.enable_power_stage(True)
        world.set_home_load(3000.0)
        world.command_setpoint(-3000.0)
        world.advance_to(10.0)
        world.set_grid_output(False)
        world.advance_to(15.0)
        return world.measure_ac("evse_ac").v_rms

    assert clearing(inverter_in_ev=False) > 200.0  # the EVSE's own inverter never detects
    assert clearing(inverter_in_ev=True) == 0.0  # the EV's inverter (a good one) ceases
    ev_side = World(WorldConfig(inverter_in_ev=True), defects=("wrong_discharge_sign",))
    assert ev_side.firmware.flips_discharge  # the EVSE still commands the wrong sign
