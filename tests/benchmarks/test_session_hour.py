"""Issues 7 and 8: the one-hour DC_BPT dynamic plan over ISO 15118-20 in virtual time.

One run measures the same plan (fixtures/plans/one_hour_v2h.yaml: 250 ms ChargeLoop, home load
steps, a reversal, a grid outage) on the emulated bench three ways: protocol none (the physics
and instruments alone), -20 in the clear, and -20 over TLS 1.3 with mutual authentication.
Floors: -20 under 6 s wall, -20 over TLS under 8 s wall; the ratio to protocol none is printed.
Each figure is the best of ROUNDS runs (a shared machine only ever adds time; five rounds, as
the -20 figure has about 4 % margin against a run-to-run spread of about as much).

`python tests/benchmarks/test_session_hour.py` prints the figures without asserting.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from rig.bench import BenchConfig, load_bench
from rig.plan import load_plan
from rig.runner import RunResult, execute

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "fixtures/plans/one_hour_v2h.yaml"
FLOOR_CLEAR_S = 6.0
FLOOR_TLS_S = 8.0
ROUNDS = 5
#: 3,600 s at a 250 ms ChargeLoop: 14,400 requests and as many responses, a little less for the
#: setup before the loop and the time the EV is idle during the outage's transfer.
MIN_MESSAGES = 2 * 14_000

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


def benches() -> dict[str, BenchConfig]:
    tls = load_bench(REPO / "fixtures/benches/emulated.yaml")
    assert tls.dut.tls and tls.protocol == "iso15118-20"
    clear = dataclasses.replace(tls, dut=dataclasses.replace(tls.dut, tls=False))
    none = dataclasses.replace(clear, protocol="none")
    return {"none": none, "iso15118-20": clear, "iso15118-20+tls": tls}


def best_run(bench: BenchConfig, rounds: int = ROUNDS) -> tuple[float, RunResult]:
    plan = load_plan(PLAN)
    best: tuple[float, RunResult] | None = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = execute(plan, bench, seed=1)
        wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, result)
    assert best is not None
    return best


def measure(rounds: int = ROUNDS) -> dict[str, tuple[float, RunResult]]:
    figures = {name: best_run(bench, rounds) for name, bench in benches().items()}
    base = figures["none"][0]
    print()
    for name, (wall, result) in figures.items():
        print(
            f"one hour, {name:<16} {wall:5.2f} s wall ({wall / base:4.2f}x protocol none), "
            f"{result.messages} -20 messages, verdict {result.verdict}"
        )
    return figures


@pytest.fixture(scope="module")
def figures() -> dict[str, tuple[float, RunResult]]:
    measured = measure()
    for name, (_, result) in measured.items():
        assert result.error is None and result.verdict == "pass", (name, result.verdicts)
        assert result.simulated_s >= 3600, name
    assert measured["none"][1].messages == 0
    for name in ("iso15118-20", "iso15118-20+tls"):
        assert measured[name][1].messages >= MIN_MESSAGES, (name, measured[name][1].messages)
    return measured


# Issue 7's floor, 6 s: 5.72-5.92 s best of three on the 2-core development machine over two
# sessions and in CI (6.1-6.4 s before the last rounds of work on the hot path).
def test_one_hour_over_iso15118_20(figures: dict[str, tuple[float, RunResult]]) -> None:
    assert figures["iso15118-20"][0] < FLOOR_CLEAR_S


def test_one_hour_over_iso15118_20_with_tls(figures: dict[str, tuple[float, RunResult]]) -> None:
    assert figures["iso15118-20+tls"][0] < FLOOR_TLS_S


if __name__ == "__main__":
    measure(rounds=1)
