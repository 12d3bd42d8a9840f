"""pytest plugin: every test plan (test_plans/**/*.yaml) is a test item run on the bench.

Options: ``--bench FILE`` (default fixtures/benches/emulated.yaml), ``--seed N``, ``--defect NAME``
(repeatable; emulated DUT only), ``--rig-out DIR`` (traces, figures, and at the end record.json,
report.html and junit.xml), ``--allow-skips``, ``--max-duration``/``--max-samples`` (raise the
plan bounds), ``--rig-display quiet|normal|verbose`` (the rig's terminal instead of pytest's, as
`rig run` uses it), ``--rig-commands`` (log every instrument command per plan). A plan that needs
an instrument role the bench lacks is skipped, and a run with a skipped plan does not pass unless
``--allow-skips`` says skips are expected. With pytest-html each plan's row also carries its
figure and verdict table; with ``--junitxml`` each check's figures are JUnit properties.

Where a plan runs (this process, or a pytest-xdist worker) it is summarized (rig.report.summary)
and the summary rides on the pytest report to the process that writes the run's one record.json,
report.html and junit.xml: results and files are the same with ``-n 0`` and ``-n N``. Every plan
runs with the run's seed whatever worker takes it.

SIGINT, SIGTERM and SIGHUP stop the run through rig.signals: the plan that was running ends with
its bench safe and appears in record.json as "interrupted", and no further plan starts. Under
xdist the controller takes the signal and forwards it to every worker (as SIGRTMIN + the signal's
number, so that a terminal's Ctrl-C that reaches the workers too is not counted twice); the
workers' plans go safe, report, and the controller writes the partial record and report.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import datetime as dt

    from rig.identity import RunIdentity
    from rig.report.summary import PlanSummary
    from rig.terminal import Display

_STATE = pytest.StashKey["RunState"]()
_ROOT = Path(__file__).resolve().parent.parent
#: Forwarded signals arrive in workers as FORWARD_BASE + the signal's number (Linux real-time
#: signals; SIGRTMIN + 15 is well below SIGRTMAX).
FORWARD_BASE = getattr(signal, "SIGRTMIN", 0)
#: A plan with at most this many plans per worker is placed by estimated duration up front; more
#: plans are handed out in chunks as workers free up (pytest-xdist's load scheduling).
STATIC_PLACEMENT_PER_WORKER = 8


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
        "--rig-out",
        default=None,
        metavar="DIR",
        help="write traces, figures, record.json, report.html and junit.xml here",
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
    group.addoption(
        "--rig-display",
        default=None,
        choices=("quiet", "normal", "verbose"),
        help="the rig's own terminal (live line per plan, verdict lines); used by `rig run`",
    )
    group.addoption(
        "--rig-commands",
        action="store_true",
        default=False,
        help="log every instrument command and reply to <plan>.commands.log in --rig-out",
    )


# ------------------------------------------------------------------------------------ run state
@dataclass
class RunState:
    """This process's view of the run. In a worker only `worker` matters; the controller (or the
    single process of a serial run) collects the summaries and writes the files."""

    worker: bool
    xdist_controller: bool
    started: dt.datetime
    order: list[str] = field(default_factory=list)
    plan_paths: dict[str, Path] = field(default_factory=dict)
    summaries: dict[str, PlanSummary] = field(default_factory=dict)
    stopped_by: str | None = None
    signals: int = 0
    worker_pids: set[int] = field(default_factory=set)
    display: Display | None = None
    identity: RunIdentity | None = None
    restore: list[tuple[int, Any]] = field(default_factory=list)
    guard_installed: bool = False


def _state(config: pytest.Config) -> RunState:
    return config.stash[_STATE]


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def pytest_configure(config: pytest.Config) -> None:
    from rig.identity import utc_now
    from rig.signals import GUARD

    worker = hasattr(config, "workerinput")
    state = RunState(worker, _is_xdist_controller(config), utc_now())
    config.stash[_STATE] = state
    # A run that writes its output (`rig run`, or --rig-out) takes the stop signals over in every
    # process it has; another pytest session (the rig's own tests under -n) keeps pytest's way.
    plan_run = bool(config.getoption("--rig-out"))
    if state.xdist_controller and plan_run:
        _install_forwarding(state)
    elif not state.xdist_controller:
        state.guard_installed = GUARD.install()
        if worker and plan_run:
            _install_worker_signals(state)
            from rig.process import collect_less_often

            collect_less_often()  # as the `rig` command does: its first plan imports the most
    mode = config.getoption("--rig-display")
    if mode and not worker:
        from rig.terminal import Display, Mode

        state.display = Display(Mode(mode), sys.stdout)
    if not worker:
        config.pluginmanager.register(RunReporter(config, state), "rig-run-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    from rig.signals import GUARD

    state = config.stash.get(_STATE, None)
    if state is not None:
        if state.display is not None:
            state.display.close()
        for sig, previous in reversed(state.restore):
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, previous)
        state.restore.clear()
        # Only the session that installed the guard removes it: a `rig run` inside another pytest
        # session (the rig's own tests) must leave that session's guard in place.
        if state.guard_installed:
            GUARD.uninstall()
        if state.worker and config.getoption("--rig-out"):
            # A `rig run -n N` worker has sent its last report: its exit need not free what it
            # held (the controller waits for it before writing the merged report).
            from rig.process import leave_after_exit_handlers

            leave_after_exit_handlers()


# ---------------------------------------------------------------------------------- signals/xdist
def _install_forwarding(state: RunState) -> None:
    """The xdist controller runs no plan: a signal is recorded and passed on to every worker,
    whose running plan then goes safe and reports; the controller keeps receiving until the
    workers are done, then writes the partial record. A third signal stops waiting."""
    from rig.process import children
    from rig.signals import ABORT_AT, HANDLED

    def forward(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        state.signals += 1
        state.stopped_by = state.stopped_by or name
        for pid in sorted(state.worker_pids or children()):  # the xdist workers
            with contextlib.suppress(OSError):
                os.kill(pid, FORWARD_BASE + signum)
        if state.display is not None:
            state.display.message(
                f"rig: {name}: every running plan is being stopped (its bench goes to its safe "
                "state); no further plan starts"
            )
        if state.signals >= ABORT_AT:
            raise KeyboardInterrupt(name)

    if _on_main_thread():
        for sig in HANDLED:
            state.restore.append((sig, signal.signal(sig, forward)))


def _install_worker_signals(state: RunState) -> None:
    """In a worker the controller decides: a signal forwarded by it interrupts the plan as that
    signal would; a signal from the terminal (which reached the controller too) is left to the
    controller — unless the controller is gone, and then it is acted on here."""
    from rig.signals import GUARD, HANDLED

    if not _on_main_thread() or not FORWARD_BASE:
        return
    controller = os.getppid()

    def direct(signum: int, frame: Any) -> None:
        if os.getppid() == controller:
            return  # the controller forwards it
        GUARD._handle(signum, frame)

    def forwarded(signum: int, frame: Any) -> None:
        GUARD._handle(signum - FORWARD_BASE, frame)

    for sig in HANDLED:
        state.restore.append((sig, signal.signal(sig, direct)))
        state.restore.append((FORWARD_BASE + sig, signal.signal(FORWARD_BASE + sig, forwarded)))


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


#: A -20 ChargeLoop exchange (every 250 ms once a session runs) costs about what 1.4 analyzer
#: samples cost on the emulated bench (tests/benchmarks/test_session_hour.py: one hour is 1.8 s of
#: samples and 4.3 s of 14,300 exchanges).
EXCHANGE_COST = 1.4
EXCHANGES_PER_S = 4.0


def plan_cost(path: Path) -> float:
    """A plan's estimated cost in samples (what an emulated run spends its time on): the slow
    samples over the whole plan, the fast windows after each step that changes the bench, the
    -20 session's exchanges, times the cases of a block, plus a fixed part for opening the bench
    and drawing the figure. Unreadable plans cost the fixed part."""
    from rig.plan import KIND_OF_ACTION, load_plan, longest_duration

    fixed = 1500.0
    try:
        plan = load_plan(path)
    except Exception:
        return fixed
    physical = sum(
        1 for s in plan.steps if any(KIND_OF_ACTION[type(a)].physical for a in s.actions)
    )
    duration = longest_duration(plan.steps)
    fast = (physical + 1) * plan.fast_window_s / max(plan.fast_period_s, 1e-6)
    session = duration * EXCHANGES_PER_S * EXCHANGE_COST
    cases = 1
    if plan.block is not None:
        from rig.procedure import known_case_count

        cases = known_case_count(plan.block)
    return fixed + cases * (duration / max(plan.sample_period_s, 1e-6) + fast + session)


def _plan_scheduling(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScheduling

    class PlanScheduling(LoadScheduling):  # type: ignore[misc]
        """xdist's load scheduling with plans placed longest first: when there are few plans per
        worker, each goes up front onto the worker with the least estimated work (a worker must
        know its next plan before it runs one, so few plans cannot be balanced as they finish);
        with many, they are handed out in chunks as workers free up, longest first."""

        collection: list[str] | None
        maxschedchunk: int | None
        pending: list[int]
        node2collection: dict[Any, list[str]]
        node2pending: dict[Any, list[int]]

        def schedule(self) -> None:
            if self.collection is not None:
                super().schedule()
                return
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            collection = list(next(iter(self.node2collection.values())))
            self.collection = collection
            if self.maxschedchunk is None:  # as xdist's own first schedule() sets it
                self.maxschedchunk = len(collection)
            root = config.rootpath
            costs = [plan_cost(root / nodeid.split("::")[0]) for nodeid in collection]
            order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
            nodes = self.nodes
            if not order:
                return
            if len(order) > STATIC_PLACEMENT_PER_WORKER * len(nodes):
                self.pending[:] = order
                super().schedule()  # collection set: fills each node from the pending list
                return
            load = {n: 0.0 for n in nodes}
            placed: dict[Any, list[int]] = {n: [] for n in nodes}
            for i in order:
                target = min(nodes, key=lambda n: (load[n], nodes.index(n)))
                placed[target].append(i)
                load[target] += costs[i]
            self.pending[:] = []
            for n in nodes:
                if placed[n]:
                    self.node2pending[n].extend(placed[n])
                    n.send_runtest_some(placed[n])
            for n in nodes:
                n.shutdown()

    return PlanScheduling(config, log)


# ------------------------------------------------------------------------------------ collection
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


def classname(path: Path, root: Path) -> str:
    """The junit class of a plan: its folders, dotted — relative to the rig's tree for its own
    plans ("test_plans.v2h"), else to the folder above the run's root ("plans.a")."""
    resolved = path.resolve()
    for base in (_ROOT, root.resolve().parent):
        try:
            parts = resolved.relative_to(base).parent.parts
        except ValueError:
            continue
        return ".".join(parts) or base.name
    return resolved.parent.name


def shown_plan(path: Path) -> str:
    from rig.identity import shown_path

    return shown_path(path)


class PlanFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield PlanItem.from_parent(self, name=self.path.stem)


class PlanError(Exception):
    """The run could not be judged (bad plan, bad bench, an instrument or step failed)."""


class PlanFailed(Exception):
    """At least one check failed, or came out inconclusive or not judged: never a pass."""


class PlanItem(pytest.Item):
    _rig_summary: PlanSummary | None = None
    _rig_html: str | None = None
    _rig_png: bytes | None = None

    def runtest(self) -> None:
        from rig.bench import load_bench
        from rig.plan import load_plan
        from rig.report.outcome import Outcome
        from rig.report.table import as_text
        from rig.runner import execute

        config = self.config
        plan = load_plan(self.path, plan_limits(config))
        bench = load_bench(config.getoption("--bench") or str(default_bench()))
        missing = bench.missing_roles(plan.needed_roles())
        if missing:
            pytest.skip(f"needs {', '.join(missing)} on the bench")
        if plan.dut in ("evse", "ev") and plan.dut != bench.dut.side:
            pytest.skip(
                f"written for the {plan.dut} as the DUT; this bench's DUT is the {bench.dut.side}"
            )
        out = config.getoption("--rig-out")
        out_dir = Path(out) if out else None
        stem = output_stem(self.path, config.rootpath)
        with _command_log(config, out_dir, stem):
            result = execute(
                plan,
                bench,
                seed=config.getoption("--seed"),
                defects=tuple(config.getoption("--defect")),
                out_dir=out_dir,
                out_stem=stem,
                allow_expired_calibration=config.getoption("--allow-expired-calibration"),
            )
        summary = self._summarize(result, out_dir, stem)
        self._rig_summary = summary
        for c in summary.checks:
            name = c.get("name", "?")
            self.user_properties.append((f"{name}.verdict", c.get("verdict", "")))
            for key in ("measured", "limit"):
                value = c.get(key)
                self.user_properties.append(
                    (f"{name}.{key}", "" if not isinstance(value, int | float) else f"{value:.6g}")
                )
            self.user_properties.append((f"{name}.unit", c.get("unit", "")))
        self.user_properties.append(("simulated_s", f"{result.simulated_s:.3f}"))
        self.user_properties.append(("protocol", result.protocol))
        if summary.outcome is Outcome.INTERRUPTED:
            self.session.shouldstop = f"interrupted by {result.interrupted}"
            raise PlanError(summary.headline)
        if summary.outcome is Outcome.ERROR:
            raise PlanError(summary.error or summary.headline)
        if summary.outcome is not Outcome.PASS:
            failing = [
                c for c in summary.checks if Outcome.of(c.get("verdict")) is not Outcome.PASS
            ]
            raise PlanFailed(
                f"{len(failing)} of {len(summary.checks)} criteria not met:\n"
                + as_text(summary.checks)
            )

    def _summarize(self, result: Any, out_dir: Path | None, stem: str) -> PlanSummary:
        """The plan's figure (written beside its trace) and summary. A figure that cannot be drawn
        or written makes the plan an error: the record never says pass for a run it cannot show."""
        from rig.report.dutevents import dut_marks, figure_marks
        from rig.report.figureserver import draw
        from rig.report.outcome import decisive, plan_outcome
        from rig.report.summary import headline, summarize
        from rig.report.table import as_html, records

        checks = records(result.verdicts)
        outcome = plan_outcome(result.verdict, checks)
        which = decisive(checks)
        line = headline(
            outcome,
            checks,
            which,
            error=result.error,
            interrupted=result.interrupted,
            simulated_s=result.simulated_s,
        )
        png: bytes | None = None
        figure_error: str | None = None
        try:
            marks, _ = dut_marks(result.trace.events)
            png = draw(
                result.trace,
                result.context,
                result.verdicts,
                f"{self.name}: {result.plan.title}",
                outcome=outcome,
                headline=line,
                marks=figure_marks(marks),
            )
            if out_dir is not None:
                fig_path = out_dir / f"{stem}.png"
                fig_path.write_bytes(png)
                result.figure_path = fig_path
        except Exception as exc:
            figure_error = f"the report figure could not be made: {exc!r}"
        summary = summarize(
            result,
            nodeid=self.nodeid,
            plan=shown_plan(self.path),
            classname=classname(self.path, self.config.rootpath),
            stem=stem,
            out_dir=out_dir,
            png=png,
            figure_error=figure_error,
        )
        self._rig_png = png
        self._rig_html = as_html(summary.checks, decisive=summary.decisive)
        return summary

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from rig.yamlsrc import SourceError

        if isinstance(excinfo.value, PlanFailed | PlanError | SourceError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"plan {self.name}"


@contextlib.contextmanager
def _command_log(config: pytest.Config, out_dir: Path | None, stem: str) -> Iterator[None]:
    """With --rig-commands, every instrument command and reply of the plan goes to
    <plan>.commands.log (instruments.roles.IO_LOG at DEBUG)."""
    if out_dir is None or not config.getoption("--rig-commands"):
        yield
        return
    import logging

    from instruments.roles import IO_LOG

    handler = logging.FileHandler(out_dir / f"{stem}.commands.log", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = IO_LOG.level, IO_LOG.propagate
    IO_LOG.addHandler(handler)
    IO_LOG.setLevel(logging.DEBUG)
    IO_LOG.propagate = False  # the file has them; the terminal shows them from there
    try:
        yield
    finally:
        IO_LOG.removeHandler(handler)
        IO_LOG.setLevel(level)
        IO_LOG.propagate = propagate
        handler.close()


# -------------------------------------------------------------------------------------- reporting
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not isinstance(item, PlanItem):
        return
    report.rig_summary = _summary_of(item, report).to_wire()
    if not item.config.pluginmanager.hasplugin("html"):
        return
    from pytest_html import extras

    found = list(getattr(report, "extras", []))
    if item._rig_html:
        found.append(extras.html(item._rig_html))
    if item._rig_png:
        found.append(extras.png(base64.b64encode(item._rig_png).decode("ascii"), name=item.name))
    report.extras = found


def _summary_of(item: PlanItem, report: pytest.TestReport) -> PlanSummary:
    """The plan's summary; for a plan that never reached the bench (a bad plan or bench file, a
    skip, a rig error) one made from what pytest reports."""
    from rig.report.outcome import Outcome
    from rig.report.summary import error_summary

    if item._rig_summary is not None:
        return item._rig_summary
    plan = shown_plan(item.path)
    cls = classname(item.path, item.config.rootpath)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        return error_summary(
            item.nodeid, plan, reason, name=item.name, classname=cls, outcome=Outcome.SKIPPED
        )
    text = report.longreprtext or "the plan ended without a result"
    return error_summary(item.nodeid, plan, text, name=item.name, classname=cls)


def _ordered(state: RunState) -> list[PlanSummary]:
    """Summaries in collection order (not completion order: a parallel run lists like a serial)."""
    seen = [state.summaries[n] for n in state.order if n in state.summaries]
    extra = [s for n, s in state.summaries.items() if n not in state.order]
    return seen + extra


def _identity(config: pytest.Config, state: RunState) -> RunIdentity:
    from rig.identity import run_identity

    bench_path = config.getoption("--bench") or str(default_bench())
    try:
        from rig.bench import load_bench

        bench_name = load_bench(bench_path).name
    except Exception:
        bench_name = Path(bench_path).name
    return run_identity(
        bench_path=bench_path,
        bench_name=bench_name,
        plans=[state.plan_paths[n] for n in state.order],
        seed=config.getoption("--seed"),
        defects=config.getoption("--defect"),
        started=state.started,
    ).finished()


def _write_outputs(
    out: Path, state: RunState, summaries: list[PlanSummary], skipped: list[str]
) -> tuple[Path | None, bool]:
    """record.json, junit.xml and report.html of the run (each whole or not at all); returns the
    report's path if it was written and whether anything failed."""
    from rig.report.html import render_report
    from rig.report.junit import build_junit, write_junit
    from rig.report.record import build_record, write_record

    identity = state.identity
    assert identity is not None  # set by the reporter's sessionfinish before writing
    not_run = (
        [shown_plan(state.plan_paths[n]) for n in state.order if n not in state.summaries]
        if state.stopped_by
        else []
    )
    failed = False
    writers: list[tuple[str, Callable[[], None]]] = [
        (
            "record.json",
            lambda: write_record(
                out / "record.json",
                build_record(
                    identity,
                    summaries,
                    stopped_by=state.stopped_by,
                    not_run=not_run,
                    skipped=skipped,
                ),
            ),
        ),
        (
            "junit.xml",
            lambda: write_junit(
                out / "junit.xml", build_junit(identity, summaries, stopped_by=state.stopped_by)
            ),
        ),
        (
            "report.html",
            lambda: _write_text(
                out / "report.html",
                render_report(identity, summaries, stopped_by=state.stopped_by, not_run=not_run),
            ),
        ),
    ]
    report_path: Path | None = None
    for name, write in writers:
        try:
            write()
        except OSError as exc:
            failed = True
            print(f"rig: {name} could not be written: {exc}", file=sys.stderr)
        else:
            if name == "report.html":
                report_path = out / name
    return report_path, failed


def _write_text(path: Path, text: str) -> None:
    from rig.outdir import atomic_write

    atomic_write(path, text)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """The run's files are written with the stop signals held back (delivered right after): a
    Ctrl-C never leaves half a report."""
    from rig.signals import HANDLED

    if not _on_main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    report.title = "V2H test rig report"


class RunReporter:
    """The hooks of the process that reports the run (the single process of a serial run, or the
    xdist controller): it follows the plans, shows them on the rig's terminal, gathers their
    summaries and writes record.json, junit.xml and report.html at the end."""

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state

    # -- which plans there are ----------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not _is_xdist_controller(self.config):
            self._collected([i.nodeid for i in session.items if isinstance(i, PlanItem)])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.state.order:
            self._collected([i for i in ids if i.split("::")[0].endswith((".yaml", ".yml"))])

    def _collected(self, nodeids: list[str]) -> None:
        self.state.order = list(nodeids)
        self.state.plan_paths = {n: self.config.rootpath / n.split("::")[0] for n in nodeids}
        if self.state.display is not None:
            self.state.display.start()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        """A worker is up: remember its pid to forward signals to (execnet's popen handle)."""
        pid = getattr(getattr(getattr(node.gateway, "_io", None), "popen", None), "pid", None)
        if isinstance(pid, int):
            self.state.worker_pids.add(pid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """`rig run -n N`: plans placed by their estimated duration (PlanScheduling)."""
        if not config.getoption("--rig-out"):
            return None  # a plain `pytest -n` of something else: xdist's own scheduling
        return _plan_scheduling(config, log)

    # -- as they run ----------------------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        state = self.state
        if state.display is None or nodeid not in state.plan_paths:
            return
        path = state.plan_paths[nodeid]
        out = self.config.getoption("--rig-out")
        stem = output_stem(path, self.config.rootpath)
        steps, planned = _plan_outline(path)
        state.display.plan_started(
            nodeid,
            path.stem,
            trace=Path(out) / f"{stem}.trace.jsonl" if out else None,
            commands=Path(out) / f"{stem}.commands.log" if out else None,
            steps_total=steps,
            planned_s=planned,
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        wire = getattr(report, "rig_summary", None)
        if wire is None and report.nodeid not in state.plan_paths:
            return  # not a plan (the rig's own tests): nothing to import or note
        from rig.report.outcome import Outcome
        from rig.report.summary import PlanSummary, error_summary

        summary: PlanSummary | None = None
        if wire is not None:
            summary = PlanSummary.from_wire(wire)
        elif (
            report.failed
            and report.nodeid in state.plan_paths
            and report.nodeid not in state.summaries
        ):
            # A worker that died under a plan (xdist reports the crash without a summary).
            path = state.plan_paths[report.nodeid]
            summary = error_summary(
                report.nodeid,
                shown_plan(path),
                report.longreprtext or "the plan's process ended without a result",
                name=path.stem,
                classname=classname(path, self.config.rootpath),
            )
        if summary is None:
            return
        state.summaries[report.nodeid] = summary
        if summary.outcome is Outcome.INTERRUPTED and not state.stopped_by:
            state.stopped_by = summary.interrupted or "a signal"
        if state.display is not None:
            state.display.plan_finished(report.nodeid, summary)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and self.state.display is not None:
            self.state.display.message(f"ERROR collecting {report.nodeid}: {report.longreprtext}")

    # -- at the end ---------------------------------------------------------------------------------
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from rig.report.outcome import Outcome

        config, state = self.config, self.state
        summaries = _ordered(state)
        skipped = [
            f"{s.plan}: {s.error or 'skipped'}" for s in summaries if s.outcome is Outcome.SKIPPED
        ]
        if skipped and not config.getoption("--allow-skips") and exitstatus == pytest.ExitCode.OK:
            # A skipped plan is not a pass (the bench could not run it).
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if exitstatus == pytest.ExitCode.INTERRUPTED and not state.stopped_by:
            from rig.signals import GUARD

            state.stopped_by = GUARD.interrupted or "SIGINT"
        if not state.order and not summaries:
            if state.display is not None:
                state.display.close()
            return  # not a plan run (the rig's plugin in some other pytest session)
        state.identity = _identity(config, state)
        out = config.getoption("--rig-out")
        report_path: Path | None = None
        if out:
            with _signals_held():
                report_path, failed = _write_outputs(Path(out), state, summaries, skipped)
            if failed:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if state.display is not None:
            from rig.report.record import run_outcome
            from rig.terminal import counts_text

            state.display.finish(
                outcome=run_outcome(summaries, stopped_by=state.stopped_by),
                counts=counts_text([s.outcome for s in summaries]),
                stopped_by=state.stopped_by,
                report=report_path,
            )
            if skipped and not config.getoption("--allow-skips"):
                state.display.message(
                    f"{len(skipped)} plan(s) skipped — not a pass (use --allow-skips if expected):"
                )
                for line in skipped:
                    state.display.message(f"  {line}")

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        from rig.report.outcome import Outcome

        skipped = [s for s in self.state.summaries.values() if s.outcome is Outcome.SKIPPED]
        if skipped and not self.config.getoption("--allow-skips"):
            terminalreporter.write_line(
                f"{len(skipped)} plan(s) skipped — not a pass (use --allow-skips if expected):",
                red=True,
            )
            for s in skipped:
                terminalreporter.write_line(f"  {s.plan}: {s.error}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """With pytest-html: the run's verdict, a line per plan and the run identity at the top of
        its page, above pytest-html's own table."""
        state = self.state
        if state.identity is None:
            return
        from rig.report.html import identity_block, run_header, scoped_css, summary_table

        summaries = _ordered(state)
        prefix.append(
            f"<style>{scoped_css('.rig-run')}</style><div class=rig-run>"
            + run_header(state.identity, summaries, stopped_by=state.stopped_by)
            + summary_table(summaries)
            + identity_block(state.identity, summaries)
            + "</div>"
        )

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """With pytest-html on a run of plans: its Environment table names the rig, the bench, the
        seed and the defects instead of Python's plugins (pytest-html reads it after this)."""
        if not _runs_plans(self.config):
            return
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:
            return
        metadata = self.config.stash.get(metadata_key, None)
        if metadata is None:
            return
        from rig.identity import rig_identity

        bench = self.config.getoption("--bench") or str(default_bench())
        metadata.clear()
        metadata.update(
            {
                "rig": rig_identity().describe(),
                "bench file": bench,
                "seed": str(self.config.getoption("--seed")),
                "defects": ", ".join(self.config.getoption("--defect")) or "none",
            }
        )


def _runs_plans(config: pytest.Config) -> bool:
    """A session given plans (not the rig's own test suite)."""
    return bool(config.getoption("--rig-out")) or any(
        "test_plans" in str(a) or str(a).split("::")[0].endswith((".yaml", ".yml"))
        for a in config.args
    )


def _plan_outline(path: Path) -> tuple[int | None, float | None]:
    """Steps and longest duration of a plan, for the live line (None when it cannot be read)."""
    from rig.plan import load_plan, longest_duration

    try:
        plan = load_plan(path)
    except Exception:
        return None, None
    return len(plan.steps), longest_duration(plan.steps)
