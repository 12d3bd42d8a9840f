"""pytest plugin: every test plan (test_plans/**/*.yaml) is a test item run on the bench.

Options: ``--bench FILE`` (default fixtures/benches/emulated.yaml), ``--seed N``, ``--defect NAME``
(repeatable; emulated DUT only), ``--rig-out DIR`` (traces, figures, record.json). With pytest-html
each plan's row carries its figure and verdict table; with ``--junitxml`` each check's figures are
JUnit properties. A plan that needs an instrument role the bench lacks is skipped, not failed.
"""

from __future__ import annotations

import base64
import signal
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

_RESULTS = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rig", "V2H test rig")
    group.addoption(
        "--bench", default=None, help="bench file (default: fixtures/benches/emulated.yaml)"
    )
    group.addoption(
        "--seed", type=int, default=1, help="seed of the emulated bench (noise, jitter)"
    )
    group.addoption(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="seed a defect into the emulated DUT (repeatable; see `rig defects`)",
    )
    group.addoption(
        "--rig-out", default=None, metavar="DIR", help="write traces, figures and record.json here"
    )


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    # SIGTERM must unwind like Ctrl-C so that every instrument's safe_state() runs (DESIGN.md,
    # "Safe state first"); the default action would kill the process with outputs still on.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = []
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def _is_plan(path: Path, config: pytest.Config) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    if "test_plans" in path.parts:
        return True
    # A YAML file named explicitly on the command line is a plan too.
    args = {Path(a.split("::")[0]).resolve() for a in config.args}
    return path.resolve() in args


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_plan(file_path, parent.config):
        return PlanFile.from_parent(parent, path=file_path)
    return None


class PlanFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield PlanItem.from_parent(self, name=self.path.stem)


class PlanError(Exception):
    """The run could not be judged (bad plan, bad bench, an instrument or step failed)."""


class PlanFailed(Exception):
    """At least one check failed."""


class PlanItem(pytest.Item):
    def runtest(self) -> None:
        from rig.bench import load_bench
        from rig.plan import load_plan
        from rig.report.figure import render_png
        from rig.report.table import as_html
        from rig.runner import execute

        config = self.config
        plan = load_plan(self.path)
        bench_path = config.getoption("--bench") or str(
            config.rootpath / "fixtures/benches/emulated.yaml"
        )
        bench = load_bench(bench_path)
        missing = bench.missing_roles(plan.needed_roles())
        if missing:
            pytest.skip(f"needs {', '.join(missing)} on the bench")
        out = config.getoption("--rig-out")
        out_dir = Path(out) if out else None
        result = execute(
            plan,
            bench,
            seed=config.getoption("--seed"),
            defects=tuple(config.getoption("--defect")),
            out_dir=out_dir,
        )
        config.stash[_RESULTS].append(result)
        for v in result.verdicts:
            self.user_properties.append((f"{v.name}.verdict", v.verdict))
            self.user_properties.append(
                (f"{v.name}.measured", "" if v.measured is None else f"{v.measured:.6g}")
            )
            self.user_properties.append(
                (f"{v.name}.limit", "" if v.limit is None else f"{v.limit:.6g}")
            )
            self.user_properties.append((f"{v.name}.unit", v.unit))
        self.user_properties.append(("simulated_s", f"{result.simulated_s:.3f}"))
        self.user_properties.append(("protocol", result.protocol))
        png = render_png(
            result.trace, result.context, result.verdicts, f"{plan.name}: {plan.title}"
        )
        if out_dir is not None:
            fig_path = out_dir / f"{plan.name}.png"
            fig_path.write_bytes(png)
            result.figure_path = fig_path
        self._rig_html = as_html(result.verdicts, protocol=result.protocol, error=result.error)
        self._rig_png = png
        if result.error:
            raise PlanError(result.error)
        failed = [v for v in result.verdicts if not v.passed]
        if failed:
            from rig.report.table import as_text

            raise PlanFailed(
                f"{len(failed)} of {len(result.verdicts)} criteria not met:\n"
                + as_text(result.verdicts)
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from rig.yamlsrc import SourceError

        if isinstance(excinfo.value, PlanFailed | PlanError | SourceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"plan {self.name}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not isinstance(item, PlanItem):
        return
    html = getattr(item, "_rig_html", None)
    png = getattr(item, "_rig_png", None)
    try:
        from pytest_html import extras
    except ImportError:
        return
    found = list(getattr(report, "extras", []))
    if html:
        found.append(extras.html(html))
    if png:
        found.append(extras.png(base64.b64encode(png).decode("ascii"), name=item.name))
    report.extras = found


def pytest_html_report_title(report: Any) -> None:
    report.title = "V2H test rig report"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = session.config.getoption("--rig-out")
    results = session.config.stash.get(_RESULTS, [])
    if not out or not results:
        return
    from rig.report.record import write_record

    bench = session.config.getoption("--bench") or "fixtures/benches/emulated.yaml"
    write_record(
        Path(out) / "record.json",
        seed=session.config.getoption("--seed"),
        bench=str(bench),
        runs=[r.as_plan_run() for r in results],
    )
