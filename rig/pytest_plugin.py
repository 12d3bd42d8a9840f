"""pytest plugin: every test plan (test_plans/**/*.yaml) is a test item run on the bench.

Options: ``--bench FILE`` (default fixtures/benches/emulated.yaml), ``--seed N``, ``--defect NAME``
(repeatable; emulated DUT only), ``--rig-out DIR`` (traces, figures, record.json),
``--allow-skips``, ``--max-duration``/``--max-samples`` (raise the plan bounds). With pytest-html
each plan's row carries its figure and verdict table; with ``--junitxml`` each check's figures are
JUnit properties. A plan that needs an instrument role the bench lacks is skipped, and a run with a
skipped plan does not pass unless ``--allow-skips`` says skips are expected.

SIGINT, SIGTERM and SIGHUP stop the run through rig.signals: the plan that was running ends with its
bench safe and appears in record.json as "interrupted", and no further plan starts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

_RESULTS = pytest.StashKey[list[Any]]()
_SKIPPED = pytest.StashKey[list[str]]()
_STOPPED = pytest.StashKey[str]()
_ROOT = Path(__file__).resolve().parent.parent


def default_bench() -> Path:
    """The embedded emulated bench, found from the package's own location (not the cwd)."""
    return _ROOT / "fixtures/benches/emulated.yaml"


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
    group.addoption(
        "--allow-skips",
        action="store_true",
        default=False,
        help="a plan skipped because the bench lacks a role does not fail the run",
    )
    group.addoption(
        "--allow-expired-calibration",
        action="store_true",
        default=False,
        help="run with instruments past their calibration due date (every verdict says so)",
    )
    group.addoption(
        "--max-duration", default=None, metavar="TIME", help="longest plan accepted (default 7 d)"
    )
    group.addoption(
        "--max-samples", type=float, default=None, help="most samples a plan may take (5e6)"
    )


def pytest_configure(config: pytest.Config) -> None:
    from rig.signals import GUARD

    config.stash[_RESULTS] = []
    config.stash[_SKIPPED] = []
    GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    from rig.signals import GUARD

    GUARD.uninstall()


def plan_limits(config: pytest.Config) -> Any:
    from rig import units
    from rig.plan import DEFAULT_LIMITS, PlanLimits

    duration = config.getoption("--max-duration")
    samples = config.getoption("--max-samples")
    return PlanLimits(
        max_duration_s=units.parse(duration, "time") if duration else DEFAULT_LIMITS.max_duration_s,
        max_samples=int(samples) if samples else DEFAULT_LIMITS.max_samples,
    )


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


def output_stem(path: Path, root: Path) -> str:
    """A plan's output name, unique in a run: its path (relative to the rootdir when below it)
    without the suffix, folders joined by "__" (two plans of the same file name in different
    folders never overwrite each other's trace and figure)."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(*path.resolve().parts[1:])
    text = "__".join(rel.with_suffix("").parts)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


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
        from rig.runner import execute

        config = self.config
        plan = load_plan(self.path, plan_limits(config))
        bench = load_bench(config.getoption("--bench") or str(default_bench()))
        missing = bench.missing_roles(plan.needed_roles())
        if missing:
            config.stash[_SKIPPED].append(f"{self.path}: needs {', '.join(missing)}")
            pytest.skip(f"needs {', '.join(missing)} on the bench")
        out = config.getoption("--rig-out")
        out_dir = Path(out) if out else None
        stem = output_stem(self.path, config.rootpath)
        result = execute(
            plan,
            bench,
            seed=config.getoption("--seed"),
            defects=tuple(config.getoption("--defect")),
            out_dir=out_dir,
            out_stem=stem,
            allow_expired_calibration=config.getoption("--allow-expired-calibration"),
        )
        config.stash[_RESULTS].append(result)
        if result.interrupted:
            reason = f"interrupted by {result.interrupted}"
            config.stash[_STOPPED] = result.interrupted
            self.session.shouldstop = reason
            raise PlanError(f"{reason}; the bench was brought to its safe state")
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
        self._rig_result = result
        self._draw(result, out_dir, stem, plan.title)
        if result.error:
            raise PlanError(result.error)
        failed = [v for v in result.verdicts if not v.passed]
        if failed:
            from rig.report.table import as_text

            raise PlanFailed(
                f"{len(failed)} of {len(result.verdicts)} criteria not met:\n"
                + as_text(result.verdicts)
            )

    def _draw(self, result: Any, out_dir: Path | None, stem: str, title: str) -> None:
        """The plan's figure and verdict table for the report. A figure that cannot be drawn or
        written makes the plan an error: the record never says pass for a run it cannot show."""
        from rig.report.figure import render_png
        from rig.report.table import as_html

        try:
            png = render_png(result.trace, result.context, result.verdicts, f"{stem}: {title}")
            if out_dir is not None:
                fig_path = out_dir / f"{stem}.png"
                fig_path.write_bytes(png)
                result.figure_path = fig_path
            self._rig_png = png
        except Exception as exc:
            result.error = result.error or f"the report figure could not be made: {exc!r}"
        self._rig_html = as_html(result.verdicts, protocol=result.protocol, error=result.error)

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
    config = session.config
    skipped = config.stash.get(_SKIPPED, [])
    if skipped and not config.getoption("--allow-skips") and exitstatus == pytest.ExitCode.OK:
        # A skipped plan is not a pass (the bench could not run it).
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    out = config.getoption("--rig-out")
    results = config.stash.get(_RESULTS, [])
    if not out or not (results or skipped):
        return
    import sys

    from rig.report.record import write_record

    bench = config.getoption("--bench") or str(default_bench())
    try:
        write_record(
            Path(out) / "record.json",
            seed=config.getoption("--seed"),
            bench=str(bench),
            runs=[r.as_plan_run() for r in results],
            stopped_by=config.stash.get(_STOPPED, None),
            skipped=skipped,
        )
    except OSError as exc:
        print(f"rig: record.json could not be written: {exc}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_SKIPPED, [])
    if skipped and not config.getoption("--allow-skips"):
        terminalreporter.write_line(
            f"{len(skipped)} plan(s) skipped — not a pass (use --allow-skips if expected):",
            red=True,
        )
        for line in skipped:
            terminalreporter.write_line(f"  {line}")
