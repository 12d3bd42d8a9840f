"""Unintentional islanding (IEEE 1547.1-2020 5.10, IEC 62116) and V2H backup on the World."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sim_helpers import V_NOM, MakeWorld, balanced_island, clearing_time

from rig.sim import World


def names(world: World) -> list[str]:
    return [e.name for e in world.drain_events()]


def test_balanced_rlc_load_grid_import_is_nil_before_the_test(make_world: MakeWorld) -> None:
    world = balanced_island(make_world)
    grid = world.measure_ac("grid")
    assert abs(grid.p_w) < 0.02 * 3000.0 and abs(grid.q_var) < 0.02 * 3000.0  # 1547.1: 0.02 p.u.


def test_balanced_island_persists_without_active_detection(make_world: MakeWorld) -> None:
    # 1547.1 5.10: with the load balanced, voltage and frequency stay put, so the passive
    # voltage/frequency trips never see the island.
    world = balanced_island(make_world, islanding_method="passive")
    assert clearing_time(world, 10.0) is None
    home = world.measure_ac("home")
    assert home.v_rms == pytest.approx(V_NOM, rel=1e-6)
    assert home.f_hz == pytest.approx(50.0, abs=1e-6)
    assert world.evse.energized and world.evse.islanded
    assert "island_detected" not in names(world)


def test_active_detection_ceases_within_detection_time(make_world: MakeWorld) -> None:
    world = balanced_island(make_world, islanding_method="active")
    t = clearing_time(world, 3.0)
    assert t is not None
    # detection 0.5 s + up to 5 ms of jitter, then the current is gone within one cycle
    assert 0.5 + 0.02 <= t <= 0.5 + 0.005 + 0.02 + 2e-3
    events = world.drain_events()
    detected = next(e for e in events if e.name == "island_detected")
    ceased = next(e for e in events if e.name == "ceased_to_energize")
    assert detected.data["method"] == "active"
    assert ceased.t - detected.t == pytest.approx(0.02)


@pytest.mark.parametrize("c_scale", [0.95, 0.98, 1.02, 1.05])
def test_reactive_mismatch_moves_the_island_to_the_load_resonance(
    make_world: MakeWorld, c_scale: float
) -> None:
    # 1547.1 5.10 sweeps the reactive load over 95..105 %: the frequency settles at the load's
    # resonance, inside OF1/UF1 (300 s), so passive protection does not clear it.
    world = balanced_island(make_world, islanding_method="passive", c_scale=c_scale)
    assert clearing_time(world, 5.0) is None
    assert world.measure_ac("home").f_hz == pytest.approx(50.0 / math.sqrt(c_scale), abs=1e-3)
    assert world.measure_ac("home").v_rms == pytest.approx(V_NOM, rel=1e-6)


def test_unbalanced_power_trips_the_passive_voltage_protection(make_world: MakeWorld) -> None:
    # Twice the load's power: V = sqrt(2) p.u. > OV2 (1.20 p.u.), cleared in 0.16 s.
    world = balanced_island(make_world, islanding_method="passive", evse_p_w=6000.0)
    t = clearing_time(world, 2.0)
    assert t is not None and t == pytest.approx(0.16 + 0.02, abs=2e-3)
    detected = next(e for e in world.drain_events() if e.name == "island_detected")
    assert detected.data == {"method": "passive", "trip": "OV2", "after_s": pytest.approx(0.16)}


def test_an_evse_that_charges_cannot_hold_the_island(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0, evse={"islanding_method": "passive"})
    world.command_setpoint(5000.0)
    world.advance_to(5.0)
    world.set_grid_output(False)
    assert world.measure_ac("home").v_rms == 0.0  # collapses at once
    world.advance_to(5.3)
    detected = next(e for e in world.drain_events() if e.name == "island_detected")
    assert detected.data["trip"] == "UV2"
    assert detected.t == pytest.approx(5.16)


def test_the_grid_back_before_detection_is_ridden_through(make_world: MakeWorld) -> None:
    world = balanced_island(make_world)
    world.set_grid_output(False)
    world.advance_to(5.2)
    world.set_grid_output(True)
    world.advance_to(8.0)
    assert "island_detected" not in names(world)
    assert world.evse.p_w == pytest.approx(-3000.0)


def grid_forming_world(
    make_world: MakeWorld,
    home_w: float = 3000.0,
    *,
    evse: dict[str, Any] | None = None,
    **battery: Any,
) -> World:
    world = make_world(
        home_w=home_w,
        battery=battery,
        evse={
            "generator_mode": "grid_forming",
            "transfer_s": 0.2,
            "reconnect_delay_s": 20.0,
            **(evse or {}),
        },
    )
    world.command_follow_home()
    world.advance_to(5.0)
    return world


def test_grid_forming_restores_the_home_voltage_within_the_transfer_time(
    make_world: MakeWorld,
) -> None:
    world = grid_forming_world(make_world)
    world.set_grid_output(False)
    world.advance_to(7.0)
    events = {e.name: e for e in world.drain_events()}
    t_detect = events["island_detected"].t
    assert events["transfer_open"].t == t_detect
    assert events["grid_forming"].t == pytest.approx(t_detect + 0.2)
    assert not world.transfer_switch_closed
    home = world.measure_ac("home")
    assert home.v_rms == pytest.approx(V_NOM) and home.f_hz == pytest.approx(50.0)
    assert world.evse.p_w == pytest.approx(-3000.0)  # carries the home from the battery
    assert world.measure_dc().p_w == pytest.approx(-3000.0 / 0.96)
    assert world.measure_ac("grid").p_w == 0.0


def test_the_home_is_dark_between_detection_and_forming(make_world: MakeWorld) -> None:
    world = grid_forming_world(make_world)
    world.set_grid_output(False)
    volts = []
    for k in range(1, 1001):
        world.advance_to(5.0 + k * 1e-3)
        volts.append((world.now, world.measure_ac("home").v_rms))
    dark = [t for t, v in volts if v < 0.9 * V_NOM]
    assert dark, "the transfer switch opens before the EVSE forms the island"
    assert max(dark) - min(dark) == pytest.approx(0.2, abs=2e-3)
    assert volts[-1][1] == pytest.approx(V_NOM)


def test_grid_forming_reconnects_after_the_delay_and_resumes(make_world: MakeWorld) -> None:
    world = grid_forming_world(make_world)
    world.set_grid_output(False)
    world.advance_to(30.0)
    world.set_grid_output(True)
    world.advance_to(49.9)
    assert not world.transfer_switch_closed  # still waiting out the enter-service delay
    world.advance_to(50.1)
    assert world.transfer_switch_closed
    reconnected = next(e for e in world.drain_events() if e.name == "reconnected")
    assert reconnected.t == pytest.approx(50.0)
    world.advance_to(55.0)
    assert world.measure_ac("grid").p_w == pytest.approx(0.0, abs=0.01)  # follows the home again


def test_grid_forming_beyond_the_battery_sags_the_voltage(make_world: MakeWorld) -> None:
    # A generous current limit: the battery's 11 kW DC is what binds.
    world = grid_forming_world(make_world, home_w=3000.0, evse={"ac_current_limit_a": 100.0})
    world.set_grid_output(False)
    world.advance_to(7.0)
    world.set_home_load(12_000.0)
    capacity = 11_000.0 * 0.96  # the EV's 11 kW DC through the inverter
    assert world.measure_ac("home").v_rms == pytest.approx(V_NOM * math.sqrt(capacity / 12_000.0))
    assert world.evse.p_w == pytest.approx(-capacity)


def test_grid_forming_overload_sags_to_the_current_limit_then_trips(make_world: MakeWorld) -> None:
    world = grid_forming_world(make_world, home_w=3000.0)
    world.set_grid_output(False)
    world.advance_to(7.0)
    world.set_home_load(12_000.0)  # 52 A at 230 V against the 47.8 A limit (11 kW / 230 V)
    limit_a = 11_000.0 / V_NOM
    home = world.measure_ac("home")
    assert home.v_rms == pytest.approx(V_NOM * limit_a / (12_000.0 / V_NOM))
    assert home.i_rms == pytest.approx(limit_a)
    world.advance_to(7.0 + 1.99)  # held at the limit for the inverter's 2 s overload time
    assert world.measure_ac("home").v_rms > 200.0
    world.advance_to(7.0 + 2.01)
    assert world.measure_ac("home").v_rms == 0.0
    trip = next(e for e in world.drain_events() if e.name == "overload_trip")
    assert trip.t == pytest.approx(9.0)


def test_a_brief_overload_recovers_without_a_trip(make_world: MakeWorld) -> None:
    world = grid_forming_world(make_world, home_w=3000.0)
    world.set_grid_output(False)
    world.advance_to(7.0)
    world.set_home_load(12_000.0)
    world.advance_to(8.0)
    world.set_home_load(4000.0)
    world.advance_to(20.0)
    assert world.measure_ac("home").v_rms == pytest.approx(V_NOM)
    assert "overload_trip" not in names(world)


def test_grid_forming_goes_dark_at_the_reserve(make_world: MakeWorld) -> None:
    # 20 Wh above the reserve: 3125 W DC empties it in 23 s.
    world = grid_forming_world(make_world, capacity_wh=10_000.0, soc=0.302)
    world.set_grid_output(False)
    world.advance_to(60.0)
    assert world.battery.soc == pytest.approx(0.30)
    assert world.measure_ac("home").v_rms == 0.0
    assert "reserve_reached" in names(world)


def test_a_grid_trip_ceases_and_reconnects_once_the_grid_is_back_in_range(
    make_world: MakeWorld,
) -> None:
    world = make_world(evse={"reconnect_delay_s": 10.0})
    world.command_setpoint(-5000.0)
    world.advance_to(5.0)
    world.set_grid(voltage_v=1.15 * V_NOM)  # OV1: 2 s
    world.advance_to(8.0)
    events = {e.name: e.t for e in world.drain_events()}
    assert events["trip"] == pytest.approx(7.0)
    assert events["ceased_to_energize"] == pytest.approx(7.02)
    assert world.evse.p_w == 0.0
    world.advance_to(30.0)
    assert world.evse.p_w == 0.0  # 1.15 p.u. is outside the enter-service range
    world.set_grid(voltage_v=V_NOM)
    world.advance_to(39.9)
    assert world.evse.p_w == 0.0
    world.advance_to(45.0)
    assert world.evse.p_w == pytest.approx(-5000.0)
    assert "reconnected" in names(world)


def test_with_anti_islanding_disabled_the_balanced_island_persists(make_world: MakeWorld) -> None:
    # 1547.1 5.10 first confirms, with the unit's anti-islanding disabled, that the island
    # the balanced RLC load makes is sustained; the active method is what the setting turns off.
    world = balanced_island(make_world, islanding_method="active")
    world.evse.anti_islanding = False
    assert clearing_time(world, 10.0) is None
    assert world.evse.energized and "island_detected" not in names(world)
    # Back on, the next loss is detected as before.
    world.set_grid_output(True)
    world.advance_to(world.now + 10.0)
    world.evse.anti_islanding = True
    t = clearing_time(world, 3.0)
    assert t is not None and t < 0.6
