"""The terminal of `rig run`: a live line per running plan (its current step, simulated time against
wall time and their ratio), a verdict line per plan with its decisive figure, and a closing line.

`quiet` prints only what is not a pass and the closing line (CI); `verbose` adds a log of every
step, DUT event and instrument command. The live lines are drawn with rich only when the output
is a terminal; elsewhere (a CI log, a pipe) a plain progress line is written now and then instead,
so a 12-hour hold is never 12 hours of silence.

The display learns what a plan does by reading the files the plan writes as it goes (its trace,
and in verbose mode its command log): the same way whether the plan runs in this process or in a
pytest-xdist worker, and without a hook in the runner. A poller thread reads only what was
appended since its last look and parses only step and event lines, so it costs the run little.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rig.clock import Stopwatch
from rig.report.outcome import Outcome
from rig.report.table import as_text, fmt_duration

if TYPE_CHECKING:
    from rig.report.summary import PlanSummary

#: How often the poller looks at the running plans' files (wall seconds).
POLL_S = 0.25
#: Without a terminal, a progress line per running plan at most this often (wall seconds).
PROGRESS_EVERY_S = 30.0
#: The most a poll reads of one file: a plan writing faster than this is read over several polls.
MAX_READ = 8 << 20
#: Longest line of a verdict or log, in characters (a terminal line, not a report).
MAX_LINE = 400


class Mode(StrEnum):
    QUIET = "quiet"
    NORMAL = "normal"
    VERBOSE = "verbose"


class Tail:
    """The whole lines appended to a growing file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(MAX_READ)
        except OSError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        *whole, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_READ:  # no newline in 8 MiB: not a line file; drop it
            self._partial = b""
        return whole


def _json(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _step_text(action: str, args: Any) -> str:
    """A plan step in the plan's own words: "hold 45 min", "setpoint -3 kW", "grid off"."""
    a = args if isinstance(args, dict) else {}

    def num(key: str) -> float | None:
        v = a.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    if action == "hold" and num("duration_s") is not None:
        return f"hold {fmt_duration(num('duration_s'))}"
    p_w = num("p_w")
    if action == "setpoint" and p_w is not None:
        return f"setpoint {p_w / 1e3:+g} kW"
    if action == "home_load" and p_w is not None:
        return f"home_load {p_w / 1e3:g} kW"
    if action == "grid":
        if a.get("on") is False:
            return "grid off"
        volts = num("voltage_v")
        return "grid on" + (f" {volts:g} V" if volts else "")
    if action == "wait_for":
        value = a.get("value")
        return f"wait_for {a.get('condition', '?')}" + ("" if value is None else f" {value}")
    if action == "follow_home_load":
        return "follow_home_load " + ("on" if a.get("on") else "off")
    if action == "session":
        return f"session {a.get('command', '?')}"
    return action


@dataclass
class Running:
    """What the display knows of one running plan."""

    key: str
    name: str
    trace: Tail | None
    commands: Tail | None
    steps_total: int | None = None
    planned_s: float | None = None
    watch: Stopwatch = field(default_factory=Stopwatch)
    t: float = 0.0
    step: str = "starting"
    step_index: int | None = None
    step_t: float = 0.0
    step_hold_s: float | None = None
    phase: str = ""
    last_progress: float = 0.0

    def line(self) -> str:
        wall = self.watch.elapsed()
        ratio = f"{self.t / wall:,.0f}×" if wall > 0.05 and self.t > 0 else "—"
        step = self.step
        if self.step_hold_s and self.t >= self.step_t:
            step += f" ({fmt_duration(self.t - self.step_t)} of {fmt_duration(self.step_hold_s)})"
        where = (
            f"step {self.step_index + 1}/{self.steps_total} "
            if self.step_index is not None and self.steps_total
            else ""
        )
        planned = f" of ≤{fmt_duration(self.planned_s)}" if self.planned_s else ""
        phase = f" · {self.phase}" if self.phase else ""
        return (
            f"{self.name}  {where}{step}{phase} · {fmt_duration(self.t)}{planned} simulated "
            f"in {fmt_duration(wall)} wall ({ratio})"
        )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


class Display:
    """The rig's terminal for one run. Thread-safe: hooks call it from the main thread while its
    poller (and rich's refresher) run beside."""

    def __init__(self, mode: Mode, stream: IO[str], *, live: bool | None = None) -> None:
        self.mode = mode
        self.stream = stream
        is_tty = bool(getattr(stream, "isatty", lambda: False)())
        self.live = (is_tty if live is None else live) and mode is not Mode.QUIET
        self._lock = threading.RLock()
        self._running: dict[str, Running] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._live: Any = None
        self._console: Any = None
        self.results: list[PlanSummary] = []

    # -- output ------------------------------------------------------------------------------------
    def _print(self, text: str, style: str | None = None) -> None:
        with self._lock:
            if self._console is not None:
                self._console.print(
                    text, style=style, markup=False, highlight=False, soft_wrap=True
                )
            else:
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write(text + "\n")
                    self.stream.flush()

    def message(self, text: str) -> None:
        """Something the user must see whatever the mode (a collection error, a signal)."""
        self._print(_clip(text))

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.stream, highlight=False)
            self._live = Live(
                get_renderable=self._render,
                console=self._console,
                refresh_per_second=4,
                transient=True,
            )
            self._live.start()
        if not self._tails:
            return  # quiet and not live: nothing reads the plans' traces while they run
        self._poller = threading.Thread(target=self._poll_loop, name="rig-terminal", daemon=True)
        self._poller.start()

    @property
    def _tails(self) -> bool:
        """Whether the display follows the running plans' traces (not in a quiet, non-live run)."""
        return self.live or self.mode is not Mode.QUIET

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=2.0)
            self._poller = None
        if self._tails:
            self._poll_once()
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.stop()
            self._live = None

    # -- plans -------------------------------------------------------------------------------------
    def plan_started(
        self,
        key: str,
        name: str,
        *,
        trace: Path | None = None,
        commands: Path | None = None,
        steps_total: int | None = None,
        planned_s: float | None = None,
    ) -> None:
        with self._lock:
            self._running[key] = Running(
                key,
                name,
                Tail(trace) if trace is not None else None,
                Tail(commands) if commands is not None and self.mode is Mode.VERBOSE else None,
                steps_total,
                planned_s,
            )
        if self.mode is Mode.VERBOSE:
            self._print(f"▶ {name} started")

    def plan_finished(self, key: str, summary: PlanSummary) -> None:
        with self._lock:
            running = self._running.pop(key, None)
        if running is not None and self._tails:
            self._poll(running)  # the last steps and commands before its verdict line
        self.results.append(summary)
        if self.mode is Mode.QUIET and summary.outcome is Outcome.PASS:
            return
        o = summary.outcome
        timing = ""
        if summary.simulated_s is not None and summary.wall_s:
            timing = f"  · {fmt_duration(summary.simulated_s)} in {fmt_duration(summary.wall_s)}"
        style = {Outcome.PASS: "bold green", Outcome.FAIL: "bold red"}.get(o, "bold yellow")
        self._print(_clip(f"{o.label:<12} {summary.name}  {summary.headline}{timing}"), style)
        if o is not Outcome.PASS and summary.checks:
            failing = [
                c for c in summary.checks if Outcome.of(c.get("verdict")) is not Outcome.PASS
            ]
            for line in as_text(failing).splitlines():
                self._print(_clip(line))

    def finish(
        self, *, outcome: Outcome, counts: str, stopped_by: str | None, report: Path | None
    ) -> None:
        self.close()
        where = f"  report: {report}" if report is not None else ""
        stop = f" (stopped by {stopped_by})" if stopped_by else ""
        self._print(f"{outcome.label}: {counts}{stop}{where}", "bold")

    # -- polling -----------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll_once()

    def _poll_once(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for r in running:
            self._poll(r)
            if not self.live and self.mode is Mode.NORMAL:
                wall = r.watch.elapsed()
                if wall - r.last_progress >= PROGRESS_EVERY_S:
                    r.last_progress = wall
                    self._print(_clip("… " + r.line()))

    def _poll(self, r: Running) -> None:
        log: list[str] = []
        verbose = self.mode is Mode.VERBOSE
        if r.trace is not None:
            lines = r.trace.lines()
            for raw in lines:
                if b'"k":"step"' in raw or b'"k":"event"' in raw:
                    rec = _json(raw)
                    if rec is not None:
                        self._note(r, rec, log if verbose else None)
            for raw in reversed(lines):
                rec = _json(raw)
                if rec is not None and isinstance(rec.get("t"), int | float):
                    r.t = max(r.t, float(rec["t"]))
                    break
        if r.commands is not None:
            log.extend(
                f"  {r.name} {line.decode('utf-8', 'replace')}" for line in r.commands.lines()
            )
        for line in log:
            self._print(_clip(line))

    def _note(self, r: Running, rec: dict[str, Any], log: list[str] | None) -> None:
        t = rec.get("t")
        t_text = f"{t:.3f} s" if isinstance(t, int | float) else "?"
        if rec.get("k") == "step":
            text = _step_text(str(rec.get("action", "?")), rec.get("args"))
            index = rec.get("i")
            r.step, r.step_index = text, index if isinstance(index, int) else None
            r.step_t = float(t) if isinstance(t, int | float) else r.t
            args = rec.get("args")
            hold = args.get("duration_s") if isinstance(args, dict) else None
            r.step_hold_s = (
                float(hold)
                if rec.get("action") == "hold" and isinstance(hold, int | float)
                else None
            )
            if log is not None:
                log.append(f"[{t_text}] {r.name} step {index} (line {rec.get('line')}): {text}")
        else:
            raw_data = rec.get("data")
            data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
            name = str(rec.get("name", "?"))
            if rec.get("src") == "dut" and name == "session_state":
                r.phase = str(data.get("state", ""))[:40]
            if log is not None and rec.get("src") in ("dut", "v2g", "runner"):
                brief = ", ".join(
                    f"{k}={v}" for k, v in list(data.items())[:6] if not isinstance(v, dict | list)
                )
                log.append(f"[{t_text}] {r.name} {rec.get('src')} {name} {brief}".rstrip())

    def _render(self) -> Any:
        from rich.text import Text

        with self._lock:
            lines = [r.line() for r in self._running.values()]
        return Text("\n".join("▶ " + line for line in lines) if lines else "", style="cyan")


def counts_text(outcomes: Sequence[Outcome]) -> str:
    tally: dict[Outcome, int] = {}
    for o in outcomes:
        tally[o] = tally.get(o, 0) + 1
    if not tally:
        return "no plan ran"
    parts = ", ".join(
        f"{n} {o.label.lower()}" for o, n in sorted(tally.items(), key=lambda kv: kv[0].severity)
    )
    return f"{len(outcomes)} plan(s): {parts}"
