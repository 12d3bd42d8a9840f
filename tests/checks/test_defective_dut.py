"""The meta-test, per plan: a good DUT passes every default plan, and every seeded defect that
changes what the DUT does in a plan makes a check of that plan fail (tests/checks/defect_table.py
says which; tests/benchmarks/test_defect_matrix.py repeats it over 20 seeds and checks the pairs
said to be unchanged).

The DUT is the emulated EVSE on the embedded emulated bench, reached through the same drivers and
pyvisa as real instruments; the checks judge only what the instruments measured.
"""

from __future__ import annotations

import pytest
from benches import EMULATED, noisier
from defect_table import ALL_DEFECTS, CAUGHT, PLANS, RUN_ERROR, UNCHANGED, expectation

from rig.checks import REGISTRY
from rig.plan import load_plan
from rig.runner import RunResult, execute

SEED = 3


def _run(plan: str, *defects: str) -> RunResult:
    return execute(load_plan(PLANS[plan]), EMULATED, seed=SEED, defects=defects)


def test_the_table_names_every_defect_and_every_check_can_fail() -> None:
    assert set(CAUGHT) == set(ALL_DEFECTS) == set(UNCHANGED)
    failing_checks = {row.split(":")[0] for rows in CAUGHT.values() for row in rows.values()}
    # The pilot checks judge plans with a cable (link:): tests/link/test_cable_plans.py.
    pilot = {name for name, spec in REGISTRY.items() if spec.fn.__module__ == "rig.checks.pilot"}
    # The day checks judge day plans (test_plans/management): tests/management/.
    day_modules = ("rig.checks.departure", "rig.checks.tariff", "rig.checks.outage")
    day = {name for name, spec in REGISTRY.items() if spec.fn.__module__ in day_modules}
    assert failing_checks == set(REGISTRY) - pilot - day
    for defect, rows in CAUGHT.items():
        assert set(rows) <= set(PLANS), defect
        for row in rows.values():
            assert row.split(":")[0] in ALL_DEFECTS[defect].breaks, (defect, row)
    assert {d for d, _ in RUN_ERROR} <= set(ALL_DEFECTS)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_a_good_dut_passes_every_check_of_every_plan(plan: str) -> None:
    result = _run(plan)
    assert result.error is None, result.error
    assert result.verdict == "pass", [(v.name, v.verdict, v.detail) for v in result.verdicts]


PAIRS = [
    (defect, plan)
    for defect in sorted(ALL_DEFECTS)
    for plan in sorted(PLANS)
    if expectation(defect, plan)[0] in ("fail", "error")
]


@pytest.mark.parametrize(("defect", "plan"), PAIRS, ids=[f"{d}-{p}" for d, p in PAIRS])
def test_a_defect_fails_the_check_that_judges_it_in_every_plan_it_changes(
    defect: str, plan: str
) -> None:
    kind, what = expectation(defect, plan)
    result = _run(plan, defect)
    if kind == "error":
        assert result.verdict in ("error", "not judged"), (defect, plan, result.verdict)
        return
    assert result.error is None, result.error
    rows = {v.name: v for v in result.verdicts}
    assert rows[what].verdict == "fail", (defect, plan, rows[what].detail)
    assert result.verdict != "pass"


def test_at_five_times_the_datasheet_noise_a_good_dut_never_fails() -> None:
    """The small version of the matrix's noise sweep (one seed): inconclusive at worst."""
    noisy = noisier(EMULATED, 5.0)
    for plan, path in PLANS.items():
        result = execute(load_plan(path), noisy, seed=SEED)
        assert result.error is None, (plan, result.error)
        outcomes = {v.name: v.verdict for v in result.verdicts}
        assert set(outcomes.values()) <= {"pass", "inconclusive"}, (plan, outcomes)


def test_two_seeds_are_two_units_with_different_figures() -> None:
    """The small version of the matrix's spread: the seed draws the unit, not just the noise."""
    figures = []
    for seed in (1, 2):
        result = execute(load_plan(PLANS["grid_loss_backup"]), EMULATED, seed=seed)
        rows = {v.name: v.measured for v in result.verdicts}
        figures.append((rows["islanding:grid_forming"], rows["transition_time"]))
    assert figures[0][0] != figures[1][0] and figures[0][1] != figures[1][1]
