"""The World: energy balance, SoC integration, energy manager, limits, determinism, cost."""

from __future__ import annotations

import itertools
import math

import pytest
from sim_helpers import MakeWorld, response_time_90, sample

from rig.sim import NoiseConfig, World, WorldConfig, balanced_rlc
from rig.sim.power_stage import dc_power


def settle(world: World, seconds: float = 5.0) -> None:
    world.advance_to(world.now + seconds)


def test_grid_import_is_home_plus_evse_in_p_and_q(make_world: MakeWorld) -> None:
    world = make_world(home_w=2500.0)
    rlc = balanced_rlc(2500.0)
    world.set_home_rlc(r_ohm=rlc.r_ohm, l_h=rlc.l_h, c_f=(rlc.c_f or 0.0) * 0.9)
    world.command_setpoint(-4000.0)
    for t in (0.05, 0.2, 0.37, 1.0, 5.0):
        world.advance_to(t)
        grid, home, evse = (world.measure_ac(p) for p in ("grid", "home", "evse_ac"))
        assert grid.p_w == pytest.approx(home.p_w + evse.p_w, abs=1e-9)
        assert grid.q_var == pytest.approx(home.q_var + evse.q_var, abs=1e-9)
    assert world.measure_ac("grid").p_w == pytest.approx(2500.0 - 4000.0)
    assert world.measure_ac("home").q_var > 0.0  # C at 90 %: net inductive


def test_ac_measurement_is_consistent(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0)
    world.set_home_load(3000.0, 1000.0)
    m = world.measure_ac("home")
    assert m.v_rms == 230.0 and m.f_hz == 50.0
    assert m.s_va == pytest.approx(math.hypot(3000.0, 1000.0))
    assert m.i_rms == pytest.approx(m.s_va / 230.0)
    assert m.pf == pytest.approx(3000.0 / m.s_va)


def test_soc_integrates_dc_power(make_world: MakeWorld) -> None:
    world = make_world()
    e0 = world.battery.energy_wh
    world.command_setpoint(-7000.0)
    dt = 1e-3
    energy = 0.0
    p_prev = world.measure_dc().p_w
    for k in range(1, 3001):  # 3 s of ramp and lag, sampled every substep
        world.advance_to(k * dt)
        p = world.measure_dc().p_w
        energy += 0.5 * (p + p_prev) * dt / 3600.0
        p_prev = p
    assert world.battery.energy_wh - e0 == pytest.approx(energy, rel=1e-9)
    # and in closed form while nothing moves: an hour of constant power in one jump
    e1, p_dc = world.battery.energy_wh, world.measure_dc().p_w
    assert p_dc == pytest.approx(dc_power(-7000.0, 0.96))
    world.advance_to(3.0 + 3600.0)
    assert world.battery.energy_wh - e1 == pytest.approx(p_dc, rel=1e-9)


def test_dc_power_is_ac_power_through_the_efficiency(make_world: MakeWorld) -> None:
    world = make_world(evse={"efficiency": 0.9})
    world.command_setpoint(5000.0)
    settle(world)
    assert world.measure_dc().p_w == pytest.approx(5000.0 * 0.9)
    world.command_setpoint(-5000.0)
    settle(world)
    assert world.measure_dc().p_w == pytest.approx(-5000.0 / 0.9)


def test_follow_home_holds_grid_import_at_zero(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0)
    world.command_follow_home()
    settle(world)
    assert world.measure_ac("grid").p_w == pytest.approx(0.0, abs=0.01)
    assert world.evse.p_w == pytest.approx(-3000.0, abs=0.01)
    world.set_home_load(5000.0)
    # the step takes effect at once at the home and the grid picks it up until the EVSE follows
    assert world.measure_ac("grid").p_w == pytest.approx(2000.0, abs=0.01)
    settle(world)
    assert world.measure_ac("grid").p_w == pytest.approx(0.0, abs=0.01)


def test_follow_home_charges_from_a_surplus_only_when_told(make_world: MakeWorld) -> None:
    world = make_world(home_w=-2000.0)  # the home exports (PV)
    world.command_follow_home()
    settle(world)
    assert world.evse.p_w == 0.0
    world.command_follow_home(allow_charge=True)
    settle(world)
    assert world.evse.p_w == pytest.approx(2000.0, abs=0.01)
    assert world.measure_ac("grid").p_w == pytest.approx(0.0, abs=0.01)


def test_the_grid_supplies_what_the_ev_cannot(make_world: MakeWorld) -> None:
    world = make_world(home_w=8000.0, battery={"max_discharge_w": 5000.0})
    world.command_follow_home()
    settle(world)
    assert world.measure_dc().p_w == pytest.approx(-5000.0)
    assert world.evse.p_w == pytest.approx(-5000.0 * 0.96)
    assert world.measure_ac("grid").p_w == pytest.approx(8000.0 - 4800.0)


def test_evse_rating_limits_the_target(make_world: MakeWorld) -> None:
    world = make_world(evse={"max_discharge_w": 3000.0})
    world.command_setpoint(-7000.0)
    settle(world)
    assert world.evse.p_w == pytest.approx(-3000.0)


def test_discharge_stops_exactly_at_the_reserve(make_world: MakeWorld) -> None:
    # 300 Wh above a 30 % reserve of 10 kWh; 3 kW AC = 3125 W DC out of the pack.
    world = make_world(home_w=3000.0, battery={"capacity_wh": 10_000.0, "soc": 0.33})
    world.command_follow_home()
    world.advance_to(3600.0)
    assert world.battery.soc == pytest.approx(0.30, abs=1e-12)
    assert world.battery.soc >= 0.30
    assert world.evse.p_w == 0.0
    assert world.measure_ac("grid").p_w == pytest.approx(3000.0)
    events = [e for e in world.drain_events() if e.name == "reserve_reached"]
    assert len(events) == 1
    # The ramp took its share at the start; the rest ran at 3125 W DC in closed form.
    assert 340.0 < events[0].t < 350.0


def test_dc_source_off_stops_power_and_its_limits_bound_it(make_world: MakeWorld) -> None:
    world = make_world()
    world.command_setpoint(7000.0)
    settle(world)
    world.set_dc_limits(sink_power_w=2000.0)
    world.advance_to(world.now + 1e-3)
    assert world.measure_dc().p_w == pytest.approx(2000.0)
    world.set_dc_output(False)
    world.advance_to(world.now + 1e-3)
    assert world.evse.p_w == 0.0
    assert world.measure_dc() == type(world.measure_dc())(0.0, 0.0, 0.0)


def test_before_a_voltage_is_set_the_terminals_are_the_packs(make_world: MakeWorld) -> None:
    world = make_world()  # OCV 392 V at 80 %, 0.1 ohm
    world.command_setpoint(7000.0)
    settle(world)
    dc = world.measure_dc()
    battery = world.battery
    assert dc.v == pytest.approx(battery.ocv_v + dc.i * 0.1)
    assert dc.v * dc.i == pytest.approx(7000.0 * 0.96)


def test_dc_voltage_setting_is_a_cv_target_that_moves_the_current(make_world: MakeWorld) -> None:
    world = make_world()
    world.command_setpoint(7000.0)
    settle(world)
    right = world.measure_dc()
    energy_before = world.battery.energy_wh
    world.set_dc_limits(voltage_v=450.0)  # a setting left at the station's 450 V
    settle(world, 1.0)
    wrong = world.measure_dc()
    assert wrong.v == 450.0
    assert wrong.p_w == pytest.approx(right.p_w)  # the EVSE still moves its power...
    assert wrong.i == pytest.approx(right.p_w / 450.0)  # ...but at the wrong current
    assert wrong.i < right.i * 0.9
    assert world.battery.energy_wh > energy_before  # the energy goes in all the same
    world.set_dc_limits(voltage_v=0.0)  # no DC bus: nothing moves
    settle(world, 1.0)
    assert world.evse.p_w == 0.0


def test_current_limits_bind_at_the_held_voltage(make_world: MakeWorld) -> None:
    world = make_world()
    world.set_dc_limits(voltage_v=400.0, sink_current_a=10.0)
    world.command_setpoint(7000.0)
    settle(world)
    dc = world.measure_dc()
    assert dc.i == pytest.approx(10.0)
    assert dc.p_w == pytest.approx(4000.0)


def test_ramp_rate_and_step_response_in_the_world(make_world: MakeWorld) -> None:
    world = make_world()
    world.command_setpoint(7000.0)
    settle(world)
    world.command_setpoint(-7000.0)
    trace = sample(world, world.now + 3.0)
    assert response_time_90(trace, 7000.0, -7000.0) == pytest.approx(1.26 + 0.1, abs=2e-3)
    fastest = max(abs(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(trace))
    assert fastest <= 10_000.0 * (1 + 1e-6)


def test_advance_to_the_past_is_a_no_op_and_nan_is_refused(make_world: MakeWorld) -> None:
    world = make_world()
    world.advance_to(5.0)
    world.advance_to(2.0)
    assert world.now == 5.0
    with pytest.raises(ValueError):
        world.advance_to(math.nan)


def test_unknown_points_are_refused(make_world: MakeWorld) -> None:
    world = make_world()
    with pytest.raises(ValueError, match="grid"):
        world.measure_ac("meter7")
    with pytest.raises(ValueError, match="evse_dc"):
        world.measure_dc("battery2")


def script(world: World) -> list[tuple[float, ...]]:
    world.enable_power_stage(True)
    world.command_setpoint(-5000.0)
    out: list[tuple[float, ...]] = []
    for k in range(1, 200):
        world.advance_to(k * 0.05)
        if k == 100:
            world.set_grid_output(False)
        a, d = world.measure_ac("evse_ac"), world.measure_dc()
        out.append((a.v_rms, a.p_w, a.f_hz, d.v, d.i))
    out.append(tuple(e.t for e in world.drain_events()))
    return out


def test_same_seed_and_calls_give_the_same_numbers() -> None:
    def run(seed: int) -> list[tuple[float, ...]]:
        return script(World(WorldConfig(), seed=seed))

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_physics_jitter_does_not_depend_on_how_often_one_measures() -> None:
    def detection_time(measures: int) -> float:
        world = World(WorldConfig(), seed=11)
        world.enable_power_stage(True)
        world.command_setpoint(-2000.0)
        world.advance_to(2.0)
        for _ in range(measures):
            world.measure_ac("grid")
        world.set_grid_output(False)
        world.advance_to(5.0)
        return next(e.t for e in world.drain_events() if e.name == "island_detected")

    assert detection_time(0) == detection_time(50)


def test_noise_is_small_and_centred(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0, noise=True, seed=5)
    readings = [world.measure_ac("home") for _ in range(2000)]
    mean_v = sum(r.v_rms for r in readings) / len(readings)
    mean_p = sum(r.p_w for r in readings) / len(readings)
    assert mean_v == pytest.approx(230.0, abs=0.01)
    assert mean_p == pytest.approx(3000.0, abs=0.2)
    assert {r.p_w for r in readings} != {3000.0}
    assert max(abs(r.v_rms - 230.0) for r in readings) < 1.0  # 0.05 % + 0.02 V at 1 sigma


def test_no_noise_gives_ideal_values() -> None:
    world = World(WorldConfig(noise=NoiseConfig.none()))
    assert world.measure_ac("grid").v_rms == 230.0


def count_calls(world: World) -> dict[str, int]:
    counts = {"substep": 0, "jump": 0}
    substep, jump = world._substep, world._jump

    def counted_substep(*args: object, **kwargs: object) -> None:
        counts["substep"] += 1
        substep(*args, **kwargs)  # type: ignore[arg-type]

    def counted_jump(horizon: float) -> None:
        counts["jump"] += 1
        jump(horizon)

    world._substep = counted_substep  # type: ignore[method-assign]
    world._jump = counted_jump  # type: ignore[method-assign]
    return counts


def test_a_quiescent_hour_costs_a_few_hundred_closed_form_jumps(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0)
    world.command_follow_home()
    world.advance_to(5.0)
    counts = count_calls(world)
    world.advance_to(3605.0)
    assert counts["substep"] == 0
    assert counts["jump"] <= math.ceil(3600.0 / World.MAX_JUMP_S) + 1


def test_substeps_only_while_the_stage_moves(make_world: MakeWorld) -> None:
    world = make_world(home_w=3000.0)
    world.command_follow_home()
    world.advance_to(5.0)
    counts = count_calls(world)
    world.set_home_load(6000.0)
    world.advance_to(65.0)
    # 3 kW at 10 kW/s is 0.3 s of ramp, then the lag settles within about 1.3 s
    assert 300 < counts["substep"] < 2000
    assert counts["jump"] <= 10
