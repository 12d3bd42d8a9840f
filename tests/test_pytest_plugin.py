"""The pytest plugin: plans under test_plans/ are items; bad plans fail with file:line; a bench
without a role the plan needs skips the plan instead of failing it."""

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def _setup(pytester: pytest.Pytester) -> Path:
    plans = pytester.path / "test_plans"
    plans.mkdir()
    shutil.copy(REPO / "test_plans/v2h/grid_loss_grid_following.yaml", plans / "island.yaml")
    (plans / "broken.yaml").write_text(
        "title: x\ndut: evse\nev: {capacity: 60 kWh, soc: 50 %, reserve: 30 %}\n"
        "steps:\n  - hold: 1 minute\nchecks:\n  - reserve_floor: {}\n"
    )
    return plans


def test_plans_are_collected_run_and_judged(pytester: pytest.Pytester) -> None:
    _setup(pytester)
    result = pytester.runpytest_subprocess(
        "test_plans",
        "--bench",
        str(REPO / "fixtures/benches/emulated.yaml"),
        "--seed",
        "4",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*broken.yaml:5: steps[[]0].hold: '1 minute': unit 'minute' is not a time*"]
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="islanding:grid_following.verdict" value="pass"' in junit
    assert 'name="protocol" value="ISO 15118-20"' in junit


def test_a_bench_without_a_needed_role_skips_the_plan(pytester: pytest.Pytester) -> None:
    plans = _setup(pytester)
    (plans / "broken.yaml").unlink()
    bench = (REPO / "fixtures/benches/emulated.yaml").read_text()
    cut = bench.index("  grid:\n")
    end = bench.index("  home:\n")
    (pytester.path / "nogrid.yaml").write_text(bench[:cut] + bench[end:])
    result = pytester.runpytest_subprocess(
        "test_plans", "--bench", "nogrid.yaml", "-rs", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs grid_simulator on the bench*"])
