"""tests/benchmarks/figures.py repeats what the benchmarks printed in the terminal summary."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN = Path(__file__).resolve().parent / "benchmarks" / "figures.py"
#: Registered as tests/conftest.py registers it, for a benchmarks folder of the test's own.
CONFTEST = f"""
import importlib.util
from pathlib import Path

def pytest_configure(config):
    spec = importlib.util.spec_from_file_location("_figures", {str(PLUGIN)!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = Path(__file__).parent / "benchmarks"
    config.pluginmanager.register(module.BenchmarkFigures(folder), "benchmark-figures")
"""

BENCHMARK = """
import pytest

@pytest.fixture(scope="module")
def measured():
    print("rig run, one-step plan: 1.23 s")
    return 1.23

def test_floor(measured):
    assert measured < 2.5

@pytest.mark.xfail(strict=False)
def test_machine_bound(measured):
    print("ratio 1.49 against 1.6")
    assert measured < 1.0

def test_silent():
    pass
"""

ELSEWHERE = """
def test_prints():
    print("not a benchmark figure")
"""


def _setup(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    bench = pytester.mkdir("benchmarks")
    (bench / "test_speed.py").write_text(BENCHMARK)
    pytester.makepyfile(test_other=ELSEWHERE)


def _section(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if "benchmark figures" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start + 1 : end]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_printed_figure_appears_once_under_its_test(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    _setup(pytester)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *workers)
    result.assert_outcomes(passed=3, xfailed=1)
    section = _section(result.outlines)
    text = "\n".join(section)
    # The module fixture's line once, though two tests share the fixture; the xfail's own line
    # too (a missed floor says by how much); nothing from outside the benchmarks' folder.
    assert text.count("rig run, one-step plan: 1.23 s") == 1, text
    assert text.count("ratio 1.49 against 1.6") == 1, text
    assert "not a benchmark figure" not in text
    assert any(line.endswith("test_speed.py::test_machine_bound") for line in section), text
    assert not any("test_silent" in line for line in section), text


def test_no_section_when_no_benchmark_printed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other=ELSEWHERE)
    pytester.makeconftest(CONFTEST)
    bench = pytester.mkdir("benchmarks")
    (bench / "test_quiet.py").write_text("def test_quiet():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert not any("benchmark figures" in line for line in result.outlines)
