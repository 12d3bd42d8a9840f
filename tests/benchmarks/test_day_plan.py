"""Issue 13's floors: a 24-hour day plan over ISO 15118-20 (250 ms ChargeLoop) in virtual time
under 60 s wall, and the optimum of a day at one-minute resolution under 1 s.

The day plan is test_plans/management/evse/weekday_tou.yaml (DUT = EVSE, TLS 1.3 as the embedded
bench has it): 345,600 ChargeLoop exchanges. The good emulated DUT must pass it (every check),
and the day figure is drawn. The optimum's figure is the best of ROUNDS solves.

`python tests/benchmarks/test_day_plan.py` prints the figures without asserting (and a cProfile
summary of the day plan with --profile).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.checks.tariff import optimum_for
from rig.plan import load_plan
from rig.report.figure import render_png
from rig.runner import RunResult, context_for, execute

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "test_plans/management/evse/weekday_tou.yaml"
BENCH = REPO / "fixtures/benches/emulated.yaml"
FLOOR_DAY_S = 60.0
FLOOR_OPTIMUM_S = 1.0
ROUNDS = 5
#: 86,400 s of ChargeLoop: the EV waits 250 ms after each response, and a round trip on the
#: emulated link takes 1 ms, so about 344,200 requests and as many responses.
MIN_MESSAGES = 2 * 344_000

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


def day_run() -> tuple[float, RunResult]:
    t0 = time.perf_counter()
    result = execute(load_plan(PLAN), load_bench(BENCH), seed=1)
    return time.perf_counter() - t0, result


def optimum_wall() -> float:
    plan = load_plan(PLAN)
    ctx = context_for(plan, load_bench(BENCH))
    assert plan.day is not None and plan.day.resolution_s == 60.0 and plan.day.steps == 1440
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        optimum_for(ctx, 0.95)
        best = min(best, time.perf_counter() - t0)
    return best


def test_the_optimum_of_a_day_at_one_minute_resolution_is_under_a_second() -> None:
    wall = optimum_wall()
    print(f"\noptimum of a 1,440-step day: {wall * 1000:.0f} ms (floor {FLOOR_OPTIMUM_S:g} s)")
    assert wall < FLOOR_OPTIMUM_S


@pytest.fixture(scope="module")
def day() -> tuple[float, RunResult]:
    wall, result = day_run()
    print(
        f"\n24 h day plan over -20: {wall:.1f} s wall, {result.messages} messages, "
        f"verdict {result.verdict} (floor {FLOOR_DAY_S:g} s)"
    )
    return wall, result


def test_a_24_hour_day_plan_over_iso15118_20_passes_on_the_good_dut(
    day: tuple[float, RunResult],
) -> None:
    _, result = day
    assert result.error is None, result.error
    assert result.simulated_s >= 86_400.0 and result.messages >= MIN_MESSAGES
    assert result.verdict == "pass", [(v.name, v.verdict, v.detail) for v in result.verdicts]
    png = render_png(result.trace, result.context, result.verdicts, result.plan.title)
    assert png.startswith(b"\x89PNG")


#: The process's peak resident memory after the day, its whole trace held for the checks and the
#: report (688,508 messages): 0.96 GB on 2026-12-06 once the trace held each message as its frame
#: and decoded message (rig.dut.MessageData), 3.1 GB before, when it held their JSON form.
MAX_RSS_BYTES = 2 * 1024**3


def test_the_day_s_trace_stays_within_its_memory_bound(day: tuple[float, RunResult]) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(f"\npeak resident memory with the day's trace: {peak / 1e9:.2f} GB")
    assert day[1].messages >= MIN_MESSAGES
    assert peak < MAX_RSS_BYTES


# Not met yet (issue 13 stays open): the -20 path with TLS costs about 0.3 ms CPU per ChargeLoop
# exchange, so 345,600 exchanges take 104 s (90 s in the clear) on a fast day of the development
# machine, 122-131 s on a slow one (2026-12-06, after the run stopped walking its trace in full
# collections: 143 s before, back to back), not 60 s; 180-200 s in a slow afternoon of that day
# (a 2 h slice of the plan: 15.1-17.0 s). The profile is flat (OpenSSL's wrapper 8 %, engines
# 12 %, EXI 20 %, connection, transport and clock 15 %, physics per message 15 %, sampling 8 %).
@pytest.mark.xfail(reason="issue 13's 60 s floor is not met yet (the -20 hot path)", strict=False)
def test_a_24_hour_day_plan_over_iso15118_20_in_under_60_s(day: tuple[float, RunResult]) -> None:
    assert day[0] < FLOOR_DAY_S


if __name__ == "__main__":
    print(f"optimum: {optimum_wall() * 1000:.0f} ms")
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        wall, result = day_run()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    else:
        wall, result = day_run()
    print(f"day plan: {wall:.1f} s wall, {result.messages} messages, verdict {result.verdict}")
    for v in result.verdicts:
        print(f"  {v.name}: {v.verdict} {v.detail}")
