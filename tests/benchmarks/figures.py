"""The benchmarks' figures, gathered at the end of the run's terminal output.

Each benchmark prints what it measured (a wall time against its floor, a ratio, a rate). pytest
keeps a passing test's output to itself, and a wall floor is an expected failure on a slow day
(machine_bound.py) whose summary line gives the mark's reason, not the figure: without this, a CI
log says that a floor was missed but not by how much, and the figures had to be measured again by
hand. BenchmarkFigures repeats every line a benchmark printed, in its fixtures' setup or in the
test itself, once under "benchmark figures" in the terminal summary, with the test that printed
it. tests/conftest.py registers it: a conftest beside the benchmarks would not be loaded by
pytest-xdist's controlling process, which collects nothing, yet is the one that writes the
summary from the reports its workers send.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SECTION = "benchmark figures"
#: Where a benchmark's own output is in a test report (setup holds a module fixture's prints).
CAPTURED = ("Captured stdout setup", "Captured stdout call")


class BenchmarkFigures:
    """A pytest plugin for the tests in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        #: Per test, per captured section: a later phase's report carries the earlier phases'
        #: sections again, so each is kept once.
        self.figures: dict[str, dict[str, list[str]]] = {}

    def _in_folder(self, report: pytest.TestReport) -> bool:
        path = Path(report.fspath)
        if not path.is_absolute():
            path = Path.cwd() / path
        return path.resolve().parent == self.folder

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or not self._in_folder(report):
            return
        for title, text in report.sections:
            if title not in CAPTURED:
                continue
            lines = [line.rstrip() for line in text.splitlines() if line.strip()]
            if lines:
                self.figures.setdefault(report.nodeid, {})[title] = lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.figures:
            return
        terminalreporter.write_sep("=", SECTION)
        seen: set[str] = set()
        for nodeid, sections in self.figures.items():
            # A module fixture prints once; its lines are not repeated for the tests sharing it.
            fresh = [line for t in CAPTURED for line in sections.get(t, ()) if line not in seen]
            if not fresh:
                continue
            seen.update(fresh)
            terminalreporter.write_line(nodeid)
            for line in fresh:
                terminalreporter.write_line(f"    {line}")
