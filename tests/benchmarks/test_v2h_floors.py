"""Issue 2's floors, measured: a simulated hour in under 10 s wall; every default plan passes under
five seeds; every defect fails exactly the plans that exercise it, on the check it breaks.

Run with `-s` to see the figures: `pytest tests/benchmarks/test_v2h_floors.py -s`.
"""

import time
from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.sim import DEFECTS

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
PLANS = sorted(p.stem for p in (REPO / "test_plans/v2h").glob("*.yaml"))

#: defect -> {plan that exercises it: the verdict row that must fail}
EXERCISED = {
    "ignores_reserve": {"home_load_to_reserve": "reserve_floor:soc"},
    "slow_ramp": {"charge_discharge_reversal": "transition_time"},
    "overshoot": {"charge_discharge_reversal": "transition_time:overshoot"},
    "wrong_discharge_sign": {"charge_discharge_reversal": "transition_time"},
    "slow_island_detection": {
        "grid_loss_grid_following": "islanding:grid_following",
        "grid_loss_backup": "islanding:grid_forming",
    },
    "no_island_detection": {
        "grid_loss_grid_following": "islanding:grid_following",
        "grid_loss_backup": "islanding:grid_forming",
    },
    "slow_backup_transfer": {"grid_loss_backup": "islanding:grid_forming"},
    # Judged by its conformance plan (the default plans' EV announces what its pack can do).
    "exceeds_discharge_limit": {},
}

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


def test_one_simulated_hour_runs_in_under_10_s_wall() -> None:
    plan = load_plan(REPO / "fixtures/plans/one_hour_v2h.yaml")
    t0 = time.perf_counter()
    result = execute(plan, BENCH, seed=1)
    wall = time.perf_counter() - t0
    samples = result.trace.series("power_analyzer.evse_ac.p_w")[0].size
    print(
        f"\none hour of V2H: {result.simulated_s:.0f} s simulated in {wall:.2f} s wall "
        f"({result.simulated_s / wall:.0f}x real time, {samples} analyzer readings)"
    )
    assert result.error is None and result.verdict == "pass", result.verdicts
    assert result.simulated_s >= 3600
    assert wall < 10.0


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_default_plan_passes_with_a_good_dut(seed: int) -> None:
    for name in PLANS:
        result = execute(load_plan(REPO / f"test_plans/v2h/{name}.yaml"), BENCH, seed=seed)
        assert result.verdict == "pass", (name, seed, result.error, result.verdicts)


def test_defect_table_is_complete() -> None:
    assert set(EXERCISED) == set(DEFECTS)
    for defect, plans in EXERCISED.items():
        for row in plans.values():
            assert row.split(":")[0] in DEFECTS[defect].breaks


@pytest.mark.parametrize("defect", sorted(EXERCISED))
def test_each_defect_fails_the_plans_that_exercise_it_on_the_check_it_breaks(defect: str) -> None:
    figures = []
    for name in PLANS:
        result = execute(
            load_plan(REPO / f"test_plans/v2h/{name}.yaml"), BENCH, seed=2, defects=(defect,)
        )
        assert result.error is None, result.error
        rows = {v.name: v for v in result.verdicts}
        failing = sorted(n for n, v in rows.items() if v.verdict != "pass")
        expected = EXERCISED[defect].get(name)
        if expected is None:
            assert failing == [], (defect, name, failing)
            continue
        assert expected in failing, (defect, name, failing)
        # Only rows of the check the defect breaks may fail.
        assert {f.split(":")[0] for f in failing} <= set(DEFECTS[defect].breaks), failing
        m = rows[expected].measured
        figures.append(
            f"{name}: {expected} = {'never' if m is None else f'{m:.3g} {rows[expected].unit}'}"
        )
    print(f"\n{defect}: " + "; ".join(figures))
