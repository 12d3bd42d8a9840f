"""The runner: executes a plan on an open bench under one clock, writing one trace.

Time advances only through the clock. Between steps the runner samples the instruments: every
`sample_period` normally, every `fast_period` for `fast_window` after a step that changes the
bench (where the milliseconds of a transition or an island matter). Events the DUT reports are
drained onto the same timeline. Whatever happens (a check fails, a step raises, Ctrl-C, SIGTERM),
the bench goes to its safe state, time-bounded, and the trace is closed on disk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rig import __version__
from rig.bench import BenchConfig, OpenBench, open_bench
from rig.checks import Context, Verdict, run_checks
from rig.checks.reserve import OnlineSoC
from rig.clock import Clock, RealClock, Stopwatch, VirtualClock
from rig.plan import (
    ACTION_NAMES,
    Action,
    FollowHomeLoad,
    GridOutput,
    GridSet,
    Hold,
    HomeLoad,
    HomeRLC,
    Mark,
    Plan,
    SessionControl,
    Setpoint,
    Step,
    WaitFor,
)
from rig.report.record import InstrumentRecord, PlanRun
from rig.trace import Trace, TraceWriter

#: How often a wait_for re-evaluates its condition (simulated or real seconds).
POLL_S = 0.05
#: The grid simulator's and the load's own meters duplicate the analyzer's points: read them at a
#: tenth of the sample rate (they document what the sources said they delivered).
AUX_EVERY = 10


class StepError(RuntimeError):
    """A step could not be carried out (timeout of a wait, an instrument refused, a limit)."""


@dataclass
class RunResult:
    plan: Plan
    verdicts: list[Verdict]
    trace: Trace
    context: Context
    simulated_s: float
    wall_s: float
    error: str | None
    protocol: str
    defects: tuple[str, ...]
    instruments: list[InstrumentRecord] = field(default_factory=list)
    trace_path: Path | None = None
    figure_path: Path | None = None

    @property
    def verdict(self) -> str:
        if self.error or any(v.verdict == "error" for v in self.verdicts):
            return "error"
        return "pass" if all(v.passed for v in self.verdicts) else "fail"

    def as_plan_run(self) -> PlanRun:
        return PlanRun(
            plan=self.plan.path,
            title=self.plan.title,
            verdict=self.verdict,
            simulated_s=self.simulated_s,
            wall_s=self.wall_s,
            checks=self.verdicts,
            protocol=self.protocol,
            error=self.error,
            defects=self.defects,
            trace=str(self.trace_path) if self.trace_path else None,
            figure=str(self.figure_path) if self.figure_path else None,
            instruments=self.instruments,
        )


def _flatten(reading: Any, prefix: str = "") -> dict[str, float]:
    """AcReading/DcReading (or a mapping of them by point) -> {"evse_ac.p_w": ...}."""
    if isinstance(reading, Mapping):
        out: dict[str, float] = {}
        for key, value in reading.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {f"{prefix}{f.name}": float(getattr(reading, f.name)) for f in fields(reading)}


class Runner:
    def __init__(self, plan: Plan, bench: OpenBench, clock: Clock, writer: TraceWriter) -> None:
        self.plan = plan
        self.bench = bench
        self.clock = clock
        self.writer = writer
        self._next_slow = 0.0
        self._next_fast = math.inf
        self._fast_until = -math.inf
        self.soc = OnlineSoC(plan.ev.capacity_wh, plan.ev.soc)
        self._slow_count = 0

    # -- time and sampling ------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Let time pass until t, sampling and draining events on the way."""
        while True:
            nxt = min(
                self._next_slow,
                self._next_fast if self._next_fast <= self._fast_until else math.inf,
            )
            if nxt > t:
                break
            self.clock.sleep_until(nxt)
            fast_only = nxt < self._next_slow
            self.sample(fast_only=fast_only)
            now = self.clock.now()
            if nxt >= self._next_slow:
                self._next_slow = nxt + self.plan.sample_period_s
            if self._next_fast <= nxt:
                self._next_fast = nxt + self.plan.fast_period_s
            if now > nxt + 1.0 and not self.clock.virtual:
                # Real time fell behind (slow instrument): skip missed ticks instead of bursting.
                self._next_slow = max(self._next_slow, now)
                self._next_fast = max(self._next_fast, now)
        self.clock.sleep_until(t)
        self.drain()

    def sample(self, *, fast_only: bool = False) -> None:
        t = self.clock.now()
        b = self.bench
        if b.analyzer is not None:
            self.writer.sample(t, "power_analyzer", _flatten(b.analyzer.read()))
        if b.dc_source is not None:
            dc = b.dc_source.measure()
            self.writer.sample(t, "dc_source", {"v": dc.v, "i": dc.i, "p_w": dc.p_w})
            self.soc.update(t, dc.p_w)
        if not fast_only:
            self._slow_count += 1
        if not fast_only and self._slow_count % AUX_EVERY == 1:
            if b.grid is not None:
                self.writer.sample(t, "grid_simulator", _flatten(b.grid.measure()))
            if b.load is not None:
                self.writer.sample(t, "ac_load", _flatten(b.load.measure()))
        self.drain()

    def drain(self) -> None:
        for ev in self.bench.dut.poll(self.clock.now()):
            self.writer.event(ev.t, "dut", ev.name, ev.data)

    def _fast_window(self) -> None:
        now = self.clock.now()
        self._fast_until = now + self.plan.fast_window_s
        self._next_fast = now + self.plan.fast_period_s

    # -- steps ------------------------------------------------------------------------------------
    def run(self) -> None:
        autostart = not any(
            isinstance(a, SessionControl) and a.command == "start"
            for s in self.plan.steps
            for a in s.actions
        )
        self.sample()
        self._next_slow = self.clock.now() + self.plan.sample_period_s
        prev_end = self.clock.now()
        for step in self.plan.steps:
            target = prev_end
            if step.at_s is not None:
                target = prev_end + step.at_s if step.relative else step.at_s
            if target < self.clock.now() - 1e-9:
                self.writer.event(
                    self.clock.now(),
                    "runner",
                    "step_late",
                    {"step": step.index, "line": step.line, "planned_t": target},
                )
            self.advance_to(max(target, self.clock.now()))
            self.apply(step)
            if autostart and step.index == 0:
                self._session_start(step)
                autostart = False
            prev_end = self.clock.now()

    def apply(self, step: Step) -> None:
        physical = any(not isinstance(a, Mark | WaitFor | Hold) for a in step.actions)
        if physical:
            self.sample()  # the value just before the change: Y0 of a step response
        for action in step.actions:
            self.writer.step(
                self.clock.now(), step.index, step.line, ACTION_NAMES[type(action)], _args(action)
            )
            try:
                self._do(action, step)
            except StepError:
                raise
            except Exception as exc:
                raise StepError(
                    f"{self.plan.path}:{step.line}: step {step.index} "
                    f"({ACTION_NAMES[type(action)]}): {exc}"
                ) from exc
        if physical:
            self._fast_window()

    def _session_start(self, step: Step) -> None:
        self.writer.step(
            self.clock.now(), step.index, step.line, "session", {"command": "start", "auto": True}
        )
        self.bench.dut.start()
        self._fast_window()

    def _do(self, action: Action, step: Step) -> None:
        b = self.bench
        if isinstance(action, GridSet):
            grid = b.require("grid_simulator")
            if action.voltage_v is not None:
                grid.set_voltage(action.voltage_v)
            if action.frequency_hz is not None:
                grid.set_frequency(action.frequency_hz)
            if not grid.output_enabled():
                grid.set_output(True)
        elif isinstance(action, GridOutput):
            b.require("grid_simulator").set_output(action.on)
        elif isinstance(action, HomeLoad):
            load = b.require("ac_load")
            load.set_power(action.p_w, action.q_var)
            if not load.input_enabled():
                load.set_input(True)
        elif isinstance(action, HomeRLC):
            load = b.require("ac_load")
            r, l_h, c_f = rlc_for(
                action.p_w,
                action.quality_factor,
                self.plan.grid.voltage_v,
                self.plan.grid.frequency_hz,
            )
            load.set_rlc(r_ohm=r, l_h=l_h, c_f=c_f)
            if not load.input_enabled():
                load.set_input(True)
        elif isinstance(action, Setpoint):
            b.check_setpoint(action.p_w)
            b.dut.set_setpoint(action.p_w)
        elif isinstance(action, FollowHomeLoad):
            b.dut.follow_home_load(action.on)
        elif isinstance(action, SessionControl):
            if action.command == "start":
                b.dut.start()
            else:
                b.dut.stop()
        elif isinstance(action, Hold):
            self.advance_to(self.clock.now() + action.duration_s)
        elif isinstance(action, WaitFor):
            self._wait(action, step)
        elif isinstance(action, Mark):
            pass

    def _wait(self, wait: WaitFor, step: Step) -> None:
        deadline = self.clock.now() + wait.timeout_s
        while not self._holds(wait):
            if self.clock.now() >= deadline:
                raise StepError(
                    f"{self.plan.path}:{step.line}: wait_for {wait.condition}"
                    f"{'' if wait.value is None else ' ' + str(wait.value)} timed out after "
                    f"{wait.timeout_s:g} s (session state: {self.bench.dut.state})"
                )
            self.advance_to(min(self.clock.now() + POLL_S, deadline))

    def _holds(self, wait: WaitFor) -> bool:
        if wait.condition == "soc_below":
            return self.soc.soc < float(wait.value)  # type: ignore[arg-type]
        if wait.condition == "soc_above":
            return self.soc.soc > float(wait.value)  # type: ignore[arg-type]
        if wait.condition == "event":
            return any(e.name == wait.value for e in self.writer.trace.events)
        return bool(self.bench.dut.state == wait.condition)


def rlc_for(p_w: float, qf: float, v: float, f: float) -> tuple[float, float, float]:
    """Parallel RLC drawing p_w at v, resonant at f with quality factor qf (IEEE 1547.1 5.10:
    Qf = R sqrt(C/L)): R = V²/P, L = R/(2πf Qf), C = Qf/(2πf R)."""
    r = v * v / p_w
    w = 2 * math.pi * f
    return r, r / (w * qf), qf / (w * r)


def _args(action: Action) -> dict[str, Any]:
    args = {f.name: getattr(action, f.name) for f in fields(action)}
    if isinstance(action, GridSet):
        args["on"] = True  # setting the grid energizes it
    return args


def context_for(plan: Plan, bench: BenchConfig) -> Context:
    return Context(
        ev_capacity_wh=plan.ev.capacity_wh,
        ev_initial_soc=plan.ev.soc,
        ev_reserve_soc=plan.ev.reserve_soc,
        ev_max_charge_w=plan.ev.max_charge_w,
        ev_max_discharge_w=plan.ev.max_discharge_w,
        v_nominal=plan.grid.voltage_v,
        f_nominal=plan.grid.frequency_hz,
        evse_rated_w=bench.dut.rated_power_w,
    )


def execute(
    plan: Plan,
    bench_config: BenchConfig,
    *,
    seed: int = 1,
    defects: tuple[str, ...] = (),
    out_dir: Path | None = None,
    clock: Clock | None = None,
) -> RunResult:
    """Open the bench, run the plan, bring the bench to its safe state, judge the trace.

    KeyboardInterrupt (Ctrl-C, or SIGTERM through the pytest plugin) propagates after teardown.
    """
    clock = clock or (VirtualClock() if bench_config.all_emulated else RealClock())
    trace_path = out_dir / f"{plan.name}.trace.jsonl" if out_dir is not None else None
    meta = {
        "plan": plan.path,
        "title": plan.title,
        "seed": seed,
        "bench": bench_config.path,
        "defects": list(defects),
        "rig_version": __version__,
        "virtual_time": clock.virtual,
    }
    writer = TraceWriter(trace_path, meta)
    watch = Stopwatch()
    error: str | None = None
    bench: OpenBench | None = None
    try:
        bench = open_bench(bench_config, plan, clock, seed=seed, defects=defects)
        writer.event(
            clock.now(),
            "runner",
            "bench_open",
            {"instruments": [i.as_record() for i in bench.records], "protocol": bench.dut.protocol},
        )
        Runner(plan, bench, clock, writer).run()
    except StepError as exc:
        error = str(exc)
    except Exception as exc:  # bench could not open, an instrument failed: judged as an error
        error = f"{type(exc).__name__}: {exc}"
    except BaseException as exc:  # Ctrl-C / SIGTERM: teardown, then let it propagate
        writer.event(clock.now(), "runner", "interrupted", {"reason": repr(exc)})
        raise
    finally:
        if error:
            writer.event(clock.now(), "runner", "run_error", {"error": error})
        if bench is not None:
            for rec in bench.teardown():
                writer.event(clock.now(), "runner", "safe_state", rec)
            bench.write_state(out_dir, plan.name)
        writer.close(clock.now())
    ctx = context_for(plan, bench_config)
    verdicts = (
        [] if error else run_checks(writer.trace, ctx, [(c.name, c.params) for c in plan.checks])
    )
    return RunResult(
        plan=plan,
        verdicts=verdicts,
        trace=writer.trace,
        context=ctx,
        simulated_s=clock.now(),
        wall_s=watch.elapsed(),
        error=error,
        protocol=bench.dut.protocol if bench else "none",
        defects=defects,
        instruments=list(bench.records) if bench else [],
        trace_path=trace_path,
    )
