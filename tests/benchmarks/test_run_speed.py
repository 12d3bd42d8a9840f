"""Issue 11's floors for `rig run`, measured from command to exit (a new process each time):

- a one-step plan under 2.5 s (it took about 3 s before: the hypothesis pytest plugin, pytest-html,
  assertion rewriting and pyplot were loaded for nothing), a machine-bound floor with a strict
  guard above it (tests/benchmarks/machine_bound.py): 1.72 s on 2026-12-06, 2.72 s in that day's
  slowest clean-clone CI, for the same code; 1.30-1.60 s once the run's helper made the emulated
  PKI and imported matplotlib beside the run;
- `rig run -n 2` over the default plans against `-n 0`, in one test: the issue asks for 1.6 times
  faster. The four default plans hold about 7.6 s of work in all (execution with the run's files,
  and figures; a worker's pair 3.6-4.0 s), and a run pays about 1 s that two workers cannot share
  (the command's start before its workers start, each worker's own start, the merged report);
  two CPU-bound processes on this machine's two cores also run 15-19 % slower each than one
  alone. The floor asserted strictly is PARALLEL_FLOOR; the issue's 1.6 is a machine-bound test
  (XPASS when met, XFAIL when not), and the figure measured is printed. See the module constant.

Each figure is the best of ROUNDS runs, alternating serial and parallel, so that another process
on the machine cannot make one side look better than it is. A speedup from two workers exists
only where two cores are free: when other processes already keep more than BUSY_CORES cores busy,
the parallel test skips and says so instead of measuring the neighbours. Run with `-s` to see the
figures.
"""

import compileall
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from machine_bound import GUARD_FACTOR, MACHINE_BOUND

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 3
PARALLEL_ROUNDS = 3
ONE_STEP_FLOOR_S = 2.5
#: Cores other processes may keep busy before a parallel speedup is not measurable here.
BUSY_CORES = 0.4
#: The issue's target is 1.6 and is not met (issue 11 stays open). Measured 1.52-1.58 on
#: 2026-12-06 once the run's helper drew the workers' figures at the same time (eight runs; a
#: ninth, whose serial rounds spread from 9.5 to 12.2 s, 1.38), 1.41-1.57 that morning, when a
#: worker could wait for the other's figure, 1.44 and 1.32 earlier. This floor guards the speedup
#: that exists.
PARALLEL_FLOOR = 1.2
ISSUE_PARALLEL_TARGET = 1.6

ONE_STEP_PLAN = """\
title: One step, for the start-up floor
dut: evse
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 60 %, reserve: 30 %}
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: 1 kW}
checks:
  - reserve_floor: {}
"""

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _compiled_bytecode() -> None:
    """Measured as an installed rig runs: with its modules' bytecode compiled. pip compiles a
    wheel's modules as it installs them and an editable install compiles each on first import,
    unless PYTHONDONTWRITEBYTECODE is set (as it is in some CI images): every process would then
    compile the rig's ~800 modules again (0.3-0.4 s here), once per worker under -n."""
    for package in ("rig", "instruments"):
        assert compileall.compile_dir(REPO / package, quiet=1)


def _timed_run(*args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rig", "run", "-q", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    return wall


@pytest.fixture(scope="module")
def one_step_walls(tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    """ROUNDS runs of a one-step plan, each from command to exit (a new process)."""
    tmp = tmp_path_factory.mktemp("one_step")
    plan = tmp / "one_step.yaml"
    plan.write_text(ONE_STEP_PLAN)
    walls = [_timed_run(str(plan), "--out", str(tmp / f"out{k}")) for k in range(ROUNDS)]
    print(
        f"\nrig run, one-step plan: {min(walls):.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)})"
    )
    assert (tmp / "out0/report.html").is_file() and (tmp / "out0/record.json").is_file()
    return walls


def test_a_one_step_plan_runs_from_command_to_exit_within_the_guard(
    one_step_walls: list[float],
) -> None:
    assert min(one_step_walls) < GUARD_FACTOR * ONE_STEP_FLOOR_S


@MACHINE_BOUND
def test_a_one_step_plan_runs_from_command_to_exit_in_under_2_5_s(
    one_step_walls: list[float],
) -> None:
    assert min(one_step_walls) < ONE_STEP_FLOOR_S


def _cores_busy(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over `seconds` (this one sleeps meanwhile): /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)


@pytest.fixture(scope="module")
def parallel_ratio(tmp_path_factory: pytest.TempPathFactory) -> float:
    """min(serial) / min(parallel) over PARALLEL_ROUNDS alternated runs of the default plans."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: two workers cannot run at once")
    busy = _cores_busy()
    if busy > BUSY_CORES:
        pytest.skip(
            f"other processes keep {busy:.1f} of {os.cpu_count()} cores busy: a speedup from "
            "two workers cannot be measured now"
        )
    tmp = tmp_path_factory.mktemp("parallel")
    serial: list[float] = []
    parallel: list[float] = []
    for k in range(PARALLEL_ROUNDS):
        serial.append(_timed_run("-n", "0", "--out", str(tmp / f"s{k}")))
        parallel.append(_timed_run("-n", "2", "--out", str(tmp / f"p{k}")))
    ratio = min(serial) / min(parallel)
    print(
        f"\nrig run over the default plans: -n 0 {min(serial):.2f} s, -n 2 {min(parallel):.2f} s: "
        f"{ratio:.2f} times faster (issue target {ISSUE_PARALLEL_TARGET}, floor {PARALLEL_FLOOR}); "
        f"serial runs {', '.join(f'{w:.2f}' for w in serial)}, "
        f"parallel {', '.join(f'{w:.2f}' for w in parallel)}"
    )
    return ratio


def test_two_workers_run_the_default_plans_faster_than_one_process(parallel_ratio: float) -> None:
    assert parallel_ratio >= PARALLEL_FLOOR


@MACHINE_BOUND
def test_two_workers_run_the_default_plans_1_6_times_faster(parallel_ratio: float) -> None:
    """Issue 11's target, shown in every run (XPASS when met, XFAIL when not)."""
    assert parallel_ratio >= ISSUE_PARALLEL_TARGET
