"""Issue 2's floor, measured: a simulated hour of V2H in under 10 s wall, judged by the checks
(a machine-bound floor with a strict guard above it: tests/benchmarks/machine_bound.py).

The seed sweep and the defect table of issue 2 grew into tests/benchmarks/test_defect_matrix.py
(20 seeds, every plan, every defect). Run with `-s` to see the figures:
`pytest tests/benchmarks/test_v2h_floors.py -s`.
"""

import time
from pathlib import Path

import pytest
from machine_bound import GUARD_FACTOR, MACHINE_BOUND

from rig.bench import load_bench
from rig.checks import run_checks
from rig.plan import load_plan
from rig.runner import RunResult, execute

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


FLOOR_S = 10.0


@pytest.fixture(scope="module")
def hour() -> tuple[float, RunResult]:
    plan = load_plan(REPO / "fixtures/plans/one_hour_v2h.yaml")
    t0 = time.perf_counter()
    result = execute(plan, BENCH, seed=1)
    wall = time.perf_counter() - t0
    samples = result.trace.series("power_analyzer.evse_ac.p_w")[0].size
    t1 = time.perf_counter()
    run_checks(result.trace, result.context, [(c.name, c.params) for c in plan.checks])
    judging = time.perf_counter() - t1
    print(
        f"\none hour of V2H: {result.simulated_s:.0f} s simulated in {wall:.2f} s wall "
        f"({result.simulated_s / wall:.0f}x real time, {samples} analyzer readings; the checks "
        f"take {judging:.2f} s of it)"
    )
    return wall, result


def test_one_simulated_hour_passes_its_checks_within_the_guard(
    hour: tuple[float, RunResult],
) -> None:
    wall, result = hour
    assert result.error is None and result.verdict == "pass", result.verdicts
    assert result.simulated_s >= 3600
    assert wall < GUARD_FACTOR * FLOOR_S


@MACHINE_BOUND
def test_one_simulated_hour_runs_in_under_10_s_wall(hour: tuple[float, RunResult]) -> None:
    assert hour[0] < FLOOR_S
