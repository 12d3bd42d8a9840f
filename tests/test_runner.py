"""The runner: repeatable under a seed, honest about waits that time out, and the same code path
under a RealClock as under a VirtualClock."""

import time
from pathlib import Path

import numpy as np

from rig.bench import load_bench
from rig.clock import RealClock, VirtualClock
from rig.plan import load_plan, loads_plan
from rig.runner import execute, rlc_for

REPO = Path(__file__).resolve().parent.parent
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
ISLAND = REPO / "test_plans/v2h/grid_loss_grid_following.yaml"

HEAD = """\
title: t
dut: evse
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 40 %, reserve: 30 %}
"""


def test_the_same_seed_gives_the_same_run_and_another_seed_another_noise() -> None:
    runs = [execute(load_plan(ISLAND), BENCH, seed=s) for s in (5, 5, 6)]
    series = [r.trace.series("power_analyzer.grid.v_rms") for r in runs]
    assert np.array_equal(series[0][0], series[1][0]) and np.array_equal(series[0][1], series[1][1])
    assert series[0][0].size == series[2][0].size and not np.array_equal(series[0][1], series[2][1])
    assert runs[0].verdicts == runs[1].verdicts


def test_a_wait_that_times_out_is_an_error_naming_the_plan_line() -> None:
    plan = loads_plan(
        HEAD + "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
        "  - wait_for: charge_loop\n  - setpoint: -5 kW\n"
        "  - {wait_for: {soc_below: 39.9 %}, timeout: 30 s}\nchecks:\n  - reserve_floor: {}\n",
        "w.yaml",
    )
    result = execute(plan, BENCH)
    assert result.verdict == "error"
    assert result.error is not None and result.error.startswith(
        "w.yaml:9: wait_for soc_below 0.399 timed out after 30 s"
    )


def test_wait_for_a_measured_soc_ends_when_the_meters_say_so() -> None:
    plan = loads_plan(
        HEAD + "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
        "  - wait_for: charge_loop\n  - setpoint: -10 kW\n"
        "  - {wait_for: {soc_below: 39.9 %}, timeout: 10 min}\n  - mark: done\n"
        "checks:\n  - reserve_floor: {}\n",
        "w.yaml",
    )
    result = execute(plan, BENCH)
    assert result.error is None
    (done,) = [s for s in result.trace.steps if s.action == "mark"]
    # 0.1 % of 60 kWh = 60 Wh; at 10 kW AC (about 10.4 kW from the battery) about 21 s.
    start = next(s.t for s in result.trace.steps if s.action == "setpoint")
    assert 15 < done.t - start < 30


def test_a_late_absolute_step_is_recorded_not_silently_shifted() -> None:
    plan = loads_plan(
        HEAD + "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
        "  - hold: 20 s\n  - {at: 10 s, mark: late}\nchecks:\n  - reserve_floor: {}\n",
        "l.yaml",
    )
    result = execute(plan, BENCH)
    (late,) = result.trace.events_named("step_late")
    assert late.data["planned_t"] == 10.0 and late.data["line"] == 8


def test_rlc_for_is_resonant_at_nominal_frequency_with_the_quality_factor() -> None:
    r, l_h, c_f = rlc_for(3000.0, 1.0, 230.0, 50.0)
    assert r == 230.0**2 / 3000.0
    assert abs(1 / (2 * np.pi * np.sqrt(l_h * c_f)) - 50.0) < 1e-9
    assert abs(r * np.sqrt(c_f / l_h) - 1.0) < 1e-12


def test_virtual_clock_jumps_and_real_clock_sleeps() -> None:
    vc = VirtualClock()
    t0 = time.perf_counter()
    vc.sleep_until(3600.0)
    assert vc.now() == 3600.0 and time.perf_counter() - t0 < 0.01
    vc.sleep_until(10.0)  # never backwards
    assert vc.now() == 3600.0
    rc = RealClock()
    rc.sleep(0.05)
    assert 0.05 <= rc.now() < 0.5


def test_a_short_plan_runs_in_real_time_on_the_same_code_path() -> None:
    plan = loads_plan(
        HEAD + "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: 1 kW}\n"
        "  - hold: 1.5 s\nchecks:\n  - reserve_floor: {}\n",
        "rt.yaml",
    )
    t0 = time.perf_counter()
    result = execute(plan, BENCH, clock=RealClock())
    wall = time.perf_counter() - t0
    assert result.error is None and result.verdict == "pass"
    assert result.simulated_s >= 1.5 and wall >= 1.5
    assert result.trace.series("power_analyzer.home.p_w")[0].size >= 2


def test_a_run_puts_what_it_keeps_out_of_the_collector_s_sight_and_gives_it_back() -> None:
    """The run's kept objects (its trace) are frozen as it goes (rig.runner._settle_heap), so a
    full collection late in a long run does not walk them: the frozen count grows with the
    trace. After the run nothing of it stays frozen and the caller's thresholds are back; outside
    a run the call does nothing."""
    import gc

    import rig.runner as runner

    plan = loads_plan(
        HEAD + "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
        "  - wait_for: charge_loop\n  - setpoint: 5 kW\n  - hold: 2 min\n"
        "checks:\n  - reserve_floor: {}\n",
        "heap.yaml",
    )
    frozen: list[int] = []
    settle = runner._settle_heap

    def counted() -> None:
        settle()
        frozen.append(gc.get_freeze_count())

    gc.collect()
    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    runner._settle_heap = counted
    try:
        result = execute(plan, BENCH, seed=1)
    finally:
        runner._settle_heap = settle
    assert result.error is None and result.messages > 0
    assert len(frozen) >= 10, frozen  # once every AUX_EVERY slow samples
    assert frozen == sorted(frozen) and frozen[-1] - frozen[0] > 10_000, frozen
    assert gc.get_freeze_count() == before and gc.get_threshold() == threshold
    settle()  # outside a run: nothing frozen
    assert gc.get_freeze_count() == before
