"""Seeded defects: each is known by name, says which check it breaks, and changes what it claims."""

from __future__ import annotations

import pytest
from sim_helpers import MakeWorld, balanced_island, clearing_time, response_time_90, sample

from rig.checks import REGISTRY
from rig.sim import DEFECTS, World, WorldConfig, firmware_for

CHECKS = set(REGISTRY)
#: The checks the physics defects must exercise (the protocol ones have protocol defects; a slow
#: ramp also stops late on Standby, which `sequence` judges).
PHYSICS_CHECKS = {
    "reserve_floor",
    "transition_time",
    "islanding",
    "discharge_limits",
    "power_direction",
    "home_supply",
    "sequence",
}
REQUIRED = {
    "ignores_reserve",
    "slow_ramp",
    "overshoot",
    "slow_island_detection",
    "no_island_detection",
    "slow_backup_transfer",
}


def test_every_required_defect_exists_and_names_the_checks_it_breaks() -> None:
    assert set(DEFECTS) >= REQUIRED
    for name, defect in DEFECTS.items():
        assert defect.name == name
        assert defect.summary
        assert defect.breaks and set(defect.breaks) <= CHECKS
    assert {c for d in DEFECTS.values() for c in d.breaks} == PHYSICS_CHECKS


def test_an_unknown_defect_is_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(ValueError, match="slow_ramp") as info:
        World(WorldConfig(), defects=["slow_rampp"])
    assert "slow_rampp" in str(info.value)


def test_no_defect_is_a_good_unit() -> None:
    good = firmware_for(())
    assert good.respects_reserve and good.detects_islands and good.ramp_factor == 1.0


# --- reserve_floor -------------------------------------------------------------------------------
def drain_to_reserve(make_world: MakeWorld, defects: tuple[str, ...]) -> World:
    world = make_world(
        home_w=3000.0, battery={"capacity_wh": 10_000.0, "soc": 0.33}, defects=defects
    )
    world.command_follow_home()
    world.advance_to(3600.0)
    return world


def test_ignores_reserve_discharges_below_the_reserve(make_world: MakeWorld) -> None:
    good = drain_to_reserve(make_world, ())
    bad = drain_to_reserve(make_world, ("ignores_reserve",))
    assert good.battery.soc == pytest.approx(0.30)
    assert bad.battery.soc < 0.05  # 3125 W DC for most of an hour out of 3.3 kWh
    assert bad.evse.p_w == pytest.approx(-3000.0)
    # the EV said so; the EVSE did not listen
    assert "reserve_reached" in [e.name for e in bad.drain_events()]


# --- transition_time -----------------------------------------------------------------------------
def step_response(make_world: MakeWorld, defects: tuple[str, ...], seconds: float) -> float:
    world = make_world(defects=defects)
    world.command_setpoint(7000.0)
    world.advance_to(40.0)
    world.command_setpoint(-7000.0)
    return response_time_90(sample(world, world.now + seconds), 7000.0, -7000.0)


def test_slow_ramp_takes_ten_times_longer_to_reach_90_percent(make_world: MakeWorld) -> None:
    good = step_response(make_world, (), 3.0)
    slow = step_response(make_world, ("slow_ramp",), 20.0)
    assert good == pytest.approx(0.9 * 14_000 / 10_000 + 0.1, abs=2e-3)
    assert slow == pytest.approx(0.9 * 14_000 / 1_000 + 0.1, abs=2e-3)


def test_overshoot_overshoots_a_step_by_25_to_30_percent(make_world: MakeWorld) -> None:
    def peak(defects: tuple[str, ...]) -> float:
        world = make_world(defects=defects)
        world.command_setpoint(-6000.0)
        trace = sample(world, 3.0)
        return (min(p for _, p in trace) - -6000.0) / -6000.0

    assert peak(()) == pytest.approx(0.0, abs=1e-9)
    assert 0.25 <= peak(("overshoot",)) <= 0.30


def test_wrong_discharge_sign_charges_when_told_to_discharge(make_world: MakeWorld) -> None:
    world = make_world(defects=("wrong_discharge_sign",))
    world.command_setpoint(-5000.0)
    world.advance_to(5.0)
    assert world.evse.p_w == pytest.approx(5000.0)
    world.command_setpoint(3000.0)
    world.advance_to(10.0)
    assert world.evse.p_w == pytest.approx(3000.0)  # charging is unaffected


# --- islanding -------------------------------------------------------------------------------------
def test_slow_island_detection_clears_after_3_s(make_world: MakeWorld) -> None:
    good = clearing_time(balanced_island(make_world), 5.0)
    slow = clearing_time(balanced_island(make_world, defects=("slow_island_detection",)), 5.0)
    assert good is not None and good < 2.0
    assert slow is not None and slow == pytest.approx(3.0 + 0.02, abs=0.01)


def test_slow_island_detection_also_delays_passive_trips(make_world: MakeWorld) -> None:
    world = balanced_island(
        make_world, evse_p_w=6000.0, islanding_method="passive", defects=("slow_island_detection",)
    )
    t = clearing_time(world, 5.0)
    assert t is not None and t == pytest.approx(3.0 + 0.02, abs=2e-3)


def test_no_island_detection_keeps_a_balanced_island_energized(make_world: MakeWorld) -> None:
    world = balanced_island(make_world, defects=("no_island_detection",))
    assert clearing_time(world, 10.0) is None
    assert world.evse.p_w == pytest.approx(-3000.0)
    assert "island_detected" not in [e.name for e in world.drain_events()]


def test_no_island_detection_never_transfers_in_grid_forming(make_world: MakeWorld) -> None:
    world = make_world(
        home_w=3000.0, evse={"generator_mode": "grid_forming"}, defects=("no_island_detection",)
    )
    world.command_follow_home()
    world.advance_to(5.0)
    world.set_grid_output(False)
    world.advance_to(30.0)
    assert world.transfer_switch_closed  # the home stays tied to the dead grid side
    assert "transfer_open" not in [e.name for e in world.drain_events()]


def test_slow_backup_transfer_forms_the_island_ten_times_later(make_world: MakeWorld) -> None:
    def transfer(defects: tuple[str, ...]) -> float:
        world = make_world(home_w=3000.0, evse={"generator_mode": "grid_forming"}, defects=defects)
        world.command_follow_home()
        world.advance_to(5.0)
        world.set_grid_output(False)
        world.advance_to(10.0)
        events = {e.name: e.t for e in world.drain_events()}
        return events["grid_forming"] - events["transfer_open"]

    assert transfer(()) == pytest.approx(0.2)
    assert transfer(("slow_backup_transfer",)) == pytest.approx(2.0)
