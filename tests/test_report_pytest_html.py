"""Plain `pytest test_plans/ --html=...`: pytest-html stays the frame for pytest users, with the run's
verdict, a line per plan and the run identity at the top, and the bench instead of Python's plugins
in its Environment table."""

import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def test_pytest_html_pages_carry_the_run_summary_and_identity(pytester: pytest.Pytester) -> None:
    plans = pytester.path / "test_plans"
    plans.mkdir()
    shutil.copy(REPO / "test_plans/v2h/grid_loss_grid_following.yaml", plans / "island.yaml")
    result = pytester.runpytest_subprocess(
        "test_plans",
        "--bench",
        str(REPO / "fixtures/benches/emulated.yaml"),
        "--seed",
        "3",
        "--html=page.html",
        "--self-contained-html",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    page = (pytester.path / "page.html").read_text()
    assert "1 plan(s) on Embedded emulated bench: 1 pass" in page
    assert "Run identity" in page
    # The decisive figure against its limit (the check closest to its limit on this unit).
    assert re.search(r"(islanding:grid_following|transition_time) [\d.]+ m?s \(limit ≤ ", page)
    # The style of the rig's part is scoped: pytest-html's own classes keep theirs.
    assert ".rig-run .error {" in page and "\n.error {" not in page
    # Environment: the rig, the bench file, the seed, the defects (pytest-html's JSON data blob).
    assert "bench file" in page and "&#34;seed&#34;: &#34;3&#34;" in page
    assert "&#34;Plugins&#34;" not in page
