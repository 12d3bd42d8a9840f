"""The runner: executes a plan on an open station under one clock, writing one trace.

Time advances only through the clock's scheduler. The sampler is a scheduled call: every
`sample_period` normally, every `fast_period` for `fast_window` after a step that changes the bench
(where the milliseconds of a transition or an island matter). The DUT's events are drained onto the
same timeline. Whatever happens (a check fails, a step raises, Ctrl-C, SIGTERM), the bench goes to
its safe state, time-bounded, and the trace is closed on disk.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, assert_never

from instruments.roles import (
    ACLoad,
    GridSimulator,
    InstrumentError,
    Oscilloscope,
    RlcLoadBank,
    SwitchUnit,
)
from instruments.roles.oscilloscope import TriggerSlope
from instruments.roles.rlc_load import RlcTank
from rig import __version__
from rig.bench import BenchConfig
from rig.checks import Context, Verdict, not_judged, run_checks, run_outcome
from rig.checks.reserve import OnlineSoC
from rig.checks.waveform import CAPTURE_EVENT, Capture, attach
from rig.clock import Clock, RealClock, Stopwatch, TimerHandle, VirtualClock
from rig.day import DaySpec
from rig.evmodel import BatteryEmulatorLoop
from rig.linkrun import Cable, bench_for_plan, open_cable
from rig.plan import (
    KIND_OF_ACTION,
    LINK_UP,
    Action,
    DutControl,
    FollowHomeLoad,
    GridOutput,
    GridSet,
    Hold,
    HomeLoad,
    HomeRLC,
    Mark,
    Plan,
    PlugIn,
    RlcBank,
    RlcBankOff,
    SessionControl,
    Setpoint,
    Step,
    SwitchSet,
    Unplug,
    WaitFor,
)
from rig.process import YOUNG_THRESHOLD
from rig.report.record import InstrumentRecord, PlanRun
from rig.signals import GUARD, RunInterrupted, SignalGuard, guarded
from rig.station import Station, open_station
from rig.trace import Trace, TraceWriter
from rig.v2g.vocabulary import SessionPhase
from rig.v2gfiles import SessionFiles

#: How often a wait_for re-evaluates its condition (simulated or real seconds).
POLL_S = 0.05
#: The grid simulator's and the load's own meters duplicate the analyzer's points: read them at a
#: tenth of the sample rate (they document what the sources said they delivered).
AUX_EVERY = 10
#: How often the instruments' error queues are drained while the rig only reads (simulated or
#: real seconds; rig's own choice: an error is noticed within this, at a few queries a poll).
ERROR_POLL_S = 10.0
#: Under a real clock, a sampler that fell this far behind (a slow instrument) skips the missed
#: ticks instead of bursting through them (s).
LAG_SKIP_S = 1.0


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
    #: The signal that stopped the run (SIGINT, SIGTERM, SIGHUP), if one did.
    interrupted: str | None = None
    #: Where the trace file stopped short, if it did (a full disk): the run is then an error.
    trace_error: str | None = None
    #: ISO 15118-20 messages the rig's engine exchanged with the DUT (0 under protocol none).
    messages: int = 0
    #: A plan with a block (rig.procedure): one row per case, in the order they ran.
    cases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """interrupted, then error (the run's), then the checks' by rig.checks.RUN_PRECEDENCE:
        error, not judged, fail, inconclusive, pass. Only a run whose every check passed passes."""
        if self.interrupted:
            return "interrupted"
        if self.error:
            return "error"
        return run_outcome(v.verdict for v in self.verdicts)

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
            messages=self.messages,
        )


def _flatten(reading: Any, prefix: str = "") -> dict[str, float]:
    """AcReading/DcReading (or a mapping of them by point) -> {"evse_ac.p_w": ...}."""
    if type(reading) is dict or isinstance(reading, Mapping):
        out: dict[str, float] = {}
        for key, value in reading.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    names = _FIELD_NAMES.get(type(reading))
    if names is None:
        names = _FIELD_NAMES[type(reading)] = tuple(f.name for f in fields(reading))
    return {prefix + name: float(getattr(reading, name)) for name in names}


#: A reading class's field names (dataclasses.fields() is rebuilt on every call; ~25 per sample).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class Sampler:
    """The sampling ticks, as one pending call on the clock's scheduler: slow ticks every
    `period`, fast ticks every `fast_period` while a fast window is open."""

    def __init__(self, clock: Clock, period: float, fast_period: float, tick: Any) -> None:
        self.clock = clock
        self.period = period
        self.fast_period = fast_period
        self._tick = tick  # tick(fast_only: bool)
        self._next_slow = math.inf
        self._next_fast = math.inf
        self._fast_until = -math.inf
        self._pending: TimerHandle | None = None

    def start(self) -> None:
        self._next_slow = self.clock.now() + self.period
        self._schedule()

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def open_fast_window(self, length: float) -> None:
        now = self.clock.now()
        self._fast_until = now + length
        self._next_fast = now + self.fast_period
        self._schedule()

    def _next(self) -> float:
        fast = self._next_fast if self._next_fast <= self._fast_until else math.inf
        return min(self._next_slow, fast)

    def _schedule(self) -> None:
        self.stop()
        nxt = self._next()
        if nxt < math.inf:
            self._pending = self.clock.call_at(nxt, self._fire)

    def _fire(self) -> None:
        self._pending = None
        due = self._next()
        fast_only = due < self._next_slow
        self._tick(fast_only)
        if due >= self._next_slow:
            self._next_slow = due + self.period
        if self._next_fast <= due:
            self._next_fast = due + self.fast_period
        now = self.clock.now()
        if not self.clock.virtual and now > due + LAG_SKIP_S:
            self._next_slow = max(self._next_slow, now)
            self._next_fast = max(self._next_fast, now)
        self._schedule()


class Runner:
    def __init__(
        self,
        plan: Plan,
        station: Station,
        clock: Clock,
        writer: TraceWriter,
        guard: SignalGuard | None = None,
        cable: Cable | None = None,
    ) -> None:
        self.guard = guard or GUARD
        self.plan = plan
        self.station = station
        #: The cable below the session (plans with `link:`), rig.linkrun.
        self.cable = cable
        self.clock = clock
        self.writer = writer
        self.soc = OnlineSoC(plan.ev)
        #: Where the DC source stands for the EV's pack (the DUT is an EVSE), the rig drives its
        #: CV setting from the EV battery model every sample, on a twin as on a real unit.
        self.battery_loop: BatteryEmulatorLoop | None = None
        dc = station.dc_source
        if dc is not None and station.config.dut.side == "evse":
            self.battery_loop = BatteryEmulatorLoop.for_ev(plan.ev, set_voltage=dc.set_voltage)
        self._slow_count = 0
        self._next_poll = ERROR_POLL_S
        self._capture: tuple[float, TimerHandle] | None = None
        self._captures = 0
        self.sampler = Sampler(clock, plan.sample_period_s, plan.fast_period_s, self.sample)

    # -- time and sampling ------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Let time pass until t: the scheduler runs the sampler and everything else due."""
        self.clock.run_until(t)
        self.guard.check()
        self.drain()

    def sample(self, fast_only: bool = False) -> None:
        self.guard.check()  # a stop request the interpreter may have dropped (rig.signals)
        t = self.clock.now()
        st = self.station
        analyzer, dc_source = st.analyzer, st.dc_source
        if analyzer is not None:
            self.writer.sample(t, "power_analyzer", _flatten(analyzer.read()))
        if dc_source is not None:
            dc = dc_source.measure()
            # Rig sign, positive into the EV: the reading's own sign holds where the source is
            # the battery; where it is the rig's charger output (a real EV as the DUT), what it
            # delivers goes into the EV.
            k = -1.0 if st.dc_source_is_charger else 1.0
            i, p = k * dc.i, k * dc.p_w
            self.writer.sample(t, "dc_source", {"v": dc.v, "i": i, "p_w": p})
            self.soc.update(t, p)
            if self.battery_loop is not None:
                self.battery_loop.update(t, dc)
        if not fast_only:
            self._slow_count += 1
        if not fast_only and self._slow_count % AUX_EVERY == 1:
            grid, load = st.grid, st.load
            if grid is not None:
                self.writer.sample(t, "grid_simulator", _flatten(grid.measure()))
            if load is not None:
                self.writer.sample(t, "ac_load", _flatten(load.measure()))
            _settle_heap()
        if not fast_only and t >= self._next_poll:
            self._next_poll = t + ERROR_POLL_S
            self.poll_errors()
        self.drain()

    def poll_errors(self) -> None:
        """Drain every instrument's error queue (issue 12 item 7): an error that appears while
        the rig only reads (an overtemperature, a protection trip) would otherwise wait for the
        next setting to be noticed. Raises InstrumentError naming the instrument and what was
        sent since its last check."""
        for driver in self.station.drivers.values():
            try:
                driver.check_errors()
            except InstrumentError as exc:
                if exc.command is not None:
                    raise
                # Nothing was sent since the last check: the poll itself found it.
                raise InstrumentError(
                    exc.instrument, exc.errors, f"{driver.error_query} (periodic error poll)"
                ) from exc

    def drain(self) -> None:
        events = list(self.station.dut.poll())
        if self.cable is not None:  # the pilot, SLAC and link events, on the same timeline
            events = sorted([*events, *self.cable.poll()], key=lambda e: e.t)
        for ev in events:
            self.writer.event(ev.t, ev.src, ev.name, ev.data)

    # -- steps ------------------------------------------------------------------------------------
    def run(self) -> None:
        # With a cable (`link:`), the session starts once the link is up (rig.linkrun).
        autostart = self.plan.link is None and not any(
            isinstance(a, SessionControl) and a.command == "start"
            for s in self.plan.steps
            for a in s.actions
        )
        self.sample()
        self.sampler.start()
        if self.plan.day is not None:
            self._start_day(self.plan.day)
        try:
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
            self.finish_capture()
            self.poll_errors()  # an error since the last poll makes the run an error too
        finally:
            self.sampler.stop()

    # -- a day plan (rig.day) ----------------------------------------------------------------------
    def _start_day(self, day: DaySpec) -> None:
        """The day's inputs on the bench: the DUT learns the tariff (rig.dut.Dut.manage_day), the
        home load follows the day's profile step by step, and the grid goes out and comes back at
        the outages' times. Each change is a scheduled call on the clock, as the sampler is."""
        st = self.station
        t0 = self.clock.now()
        self.writer.event(
            t0,
            "runner",
            "day",
            {
                "start": day.clock_of(0.0),
                "length_s": day.length_s,
                "departure_s": day.departure.at_s,
                "need_wh": day.departure.energy_wh,
                "outages": [[o.start_s, o.end_s] for o in day.outages],
                "home_load": day.home_source,
                "currency": day.tariff.currency,
            },
        )
        st.dut.manage_day(day)
        load = st.require(ACLoad)
        last = [math.nan]

        def home(k: int) -> None:
            p = day.net_home_w(k * day.resolution_s)
            if p != last[0]:
                load.set_power(p, 0.0)
                if not load.input_enabled():
                    load.set_input(True)
                last[0] = p
            if (k + 1) * day.resolution_s < day.length_s:
                self.clock.call_at(t0 + (k + 1) * day.resolution_s, lambda: home(k + 1))

        home(0)
        if day.outages:
            grid = st.require(GridSimulator)

            def outage(on: bool, index: int) -> None:
                grid.set_output(on)
                self._record_source(grid)
                name = "outage_end" if on else "outage_start"
                self.writer.event(self.clock.now(), "runner", name, {"outage": index})

            for i, o in enumerate(day.outages):
                self.clock.call_at(t0 + o.start_s, functools.partial(outage, False, i))
                self.clock.call_at(t0 + o.end_s, functools.partial(outage, True, i))

    def apply(self, step: Step) -> None:
        physical = any(KIND_OF_ACTION[type(a)].physical for a in step.actions)
        capture = _opens_grid(step) and self._arm_capture()
        if physical:
            self.sample()  # the value just before the change: Y0 of a step response
        for action in step.actions:
            kind = KIND_OF_ACTION[type(action)].key
            self.writer.step(self.clock.now(), step.index, step.line, kind, _args(action))
            try:
                self.do(action, step)
            except StepError:
                raise
            except Exception as exc:
                raise StepError(
                    f"{self.plan.path}:{step.line}: step {step.index} ({kind}): {exc}"
                ) from exc
        if physical:
            self.sampler.open_fast_window(self.plan.fast_window_s)
        if capture:
            t_event = self.clock.now()
            due = t_event + CAPTURE_POST_S + 0.05
            self._capture = (due, self.clock.call_at(due, lambda: self._fetch_capture(t_event)))

    # -- scope captures (IEEE 1547.1 5.10 measures on instantaneous values) ----------------------
    def _scope(self) -> tuple[Oscilloscope, dict[int, str]] | None:
        """The bench's scope and what each channel probes (the bench entry's `channels`)."""
        scope = self.station.get(Oscilloscope)
        entry = next(
            (i for i in self.station.config.instruments if i.role == Oscilloscope.role), None
        )
        wiring = entry.options.get("channels") if entry is not None else None
        if scope is None or not isinstance(wiring, Mapping) or not wiring:
            return None
        return scope, {int(ch): str(probe) for ch, probe in wiring.items()}

    def _arm_capture(self) -> bool:
        """Arm a single acquisition triggered by the grid relay's auxiliary contact opening (EXT,
        falling), then let its pre-trigger part fill before the step opens S3 (or the grid)."""
        found = self._scope()
        if found is None:
            return False
        if self._capture is not None:  # one capture at a time: a newer one replaces it
            self._capture[1].cancel()
            self._capture = None
        scope, wiring = found
        v_peak = math.sqrt(2.0) * self.plan.grid.voltage_v
        i_peak = math.sqrt(2.0) * self.station.config.dut.rated_power_w / self.plan.grid.voltage_v
        for channel, probe in sorted(wiring.items()):
            current = probe.split(".", 1)[-1].startswith("i")
            # 1.25 x the nominal peak on four divisions; a 100:1 voltage probe and a 10 A/V
            # current probe (rig's own choice (?): a lab records its probes in the bench file).
            scope.configure_channel(
                channel,
                per_div=1.25 * (i_peak if current else v_peak) / 4.0,
                probe=10.0 if current else 100.0,
                unit="A" if current else "V",
            )
        total = CAPTURE_PRE_S + CAPTURE_POST_S
        scope.set_timebase(seconds_per_div=total / 10.0, delay_s=total / 2.0 - CAPTURE_PRE_S)
        scope.set_edge_trigger("EXT", level=0.5, slope=TriggerSlope.FALLING)
        scope.arm()
        self.writer.event(self.clock.now(), "runner", "scope_armed", {"pre_s": CAPTURE_PRE_S})
        self.advance_to(self.clock.now() + CAPTURE_PRE_S + 0.01)
        return True

    def _fetch_capture(self, t_event: float) -> None:
        """Fetch the completed capture: its arrays stay with the trace in memory and go to a .npz
        beside the trace file; the scope_capture event names it (rig.checks.waveform)."""
        self._capture = None
        found = self._scope()
        assert found is not None
        scope, wiring = found
        self._captures += 1
        key = f"capture{self._captures}"
        data: dict[str, Any] = {"key": key, "t_trigger": t_event, "probes": dict(wiring)}
        if not scope.acquisition_complete():
            data["error"] = "the scope did not trigger on the grid relay opening"
            self.writer.event(self.clock.now(), "runner", CAPTURE_EVENT, data)
            return
        probes: dict[str, Any] = {}
        units: dict[str, str] = {}
        t: Any = None
        for channel, probe in sorted(wiring.items()):
            wave = scope.fetch(channel)
            probes[probe], units[probe], t = wave.y, wave.unit, wave.t
            if math.isfinite(wave.t_trigger):  # the emulated scope reports the run's time
                data["t_trigger"] = wave.t_trigger
        capture = Capture(float(data["t_trigger"]), t, probes, units)
        data.update(units=units, points=int(t.size), sample_rate_hz=capture.sample_rate_hz)
        path = self.writer.path
        if path is not None:
            name = f"{path.name.removesuffix('.trace.jsonl')}.{key}.npz"
            capture.save(str(path.parent / name))
            data["file"] = name  # beside the trace file
            data["path"] = str((path.parent / name).resolve())
        attach(self.writer.trace.meta, key, capture)
        self.writer.event(self.clock.now(), "runner", CAPTURE_EVENT, data)

    def finish_capture(self) -> None:
        """A capture still running at the end of the steps: let it complete, then fetch it."""
        if self._capture is not None:
            self.advance_to(self._capture[0])

    def _session_start(self, step: Step) -> None:
        self.writer.step(
            self.clock.now(), step.index, step.line, "session", {"command": "start", "auto": True}
        )
        self.station.dut.start()
        self.sampler.open_fast_window(self.plan.fast_window_s)

    def do(self, action: Action, step: Step) -> None:
        """Carry out one action; every action class of the plan's step table is handled here."""
        st = self.station
        match action:
            case GridSet():
                grid = st.require(GridSimulator)
                if action.voltage_v is not None:
                    grid.set_voltage(action.voltage_v)
                if action.frequency_hz is not None:
                    grid.set_frequency(action.frequency_hz)
                if not grid.output_enabled():
                    grid.set_output(True)
                self._record_source(grid)
            case GridOutput():
                grid = st.require(GridSimulator)
                grid.set_output(action.on)
                self._record_source(grid)
            case HomeLoad():
                load = st.require(ACLoad)
                load.set_power(action.p_w, action.q_var)
                if not load.input_enabled():
                    load.set_input(True)
            case HomeRLC():
                load = st.require(ACLoad)
                r, l_h, c_f = rlc_for(
                    action.p_w,
                    action.quality_factor,
                    self.plan.grid.voltage_v,
                    self.plan.grid.frequency_hz,
                )
                load.set_rlc(r_ohm=r, l_h=l_h, c_f=c_f)
                if not load.input_enabled():
                    load.set_input(True)
            case Setpoint():
                st.check_setpoint(action.p_w)
                st.dut.set_setpoint(action.p_w)
            case RlcBank():
                self._rlc_bank(action)
            case RlcBankOff():
                st.require(RlcLoadBank).set_input(False)
            case SwitchSet():
                switches = st.require(SwitchUnit)
                for name, closed in action.settings:
                    if closed:
                        switches.close_channel(name)
                    else:
                        switches.open_channel(name)
                # Read back: the evidence that S3 really opened (rig.checks.islanding).
                states = {n: 1.0 if switches.channel_closed(n) else 0.0 for n, _ in action.settings}
                self.writer.sample(self.clock.now(), "switch_unit", states)
            case DutControl():
                self._dut_control(action)
            case FollowHomeLoad():
                st.dut.follow_home_load(action.on)
            case SessionControl():
                match action.command:
                    case "start":
                        st.dut.start()
                    case "stop":
                        st.dut.stop()
                    case "standby":
                        st.dut.standby(True)
                    case "resume":
                        st.dut.standby(False)
            case Hold():
                self.advance_to(self.clock.now() + action.duration_s)
            case WaitFor():
                self._wait(action, step)
            case PlugIn():
                self._cable().plug_in()
            case Unplug():
                self._cable().unplug()
            case Mark():
                pass
            case _:
                assert_never(action)

    def _rlc_bank(self, bank: RlcBank) -> None:
        """The balanced tank of IEEE 1547.1 5.10 (QL = QC = Qf P at nominal voltage and
        frequency), then detuned: R's power by `active`, one reactive branch by `reactive`."""
        driver = self.station.require(RlcLoadBank)
        p_w = bank.p_w
        if bank.match_output:
            analyzer = self.station.analyzer
            if analyzer is None:
                raise StepError(
                    f"{self.plan.path}: rlc_load p: match_output needs a power analyzer"
                )
            export = -_flatten(analyzer.read()).get("evse_ac.p_w", math.nan)
            if not export > 0:
                raise StepError(
                    f"{self.plan.path}: rlc_load p: match_output: the EVSE exports {export:.0f} W; "
                    "nothing to balance (set its output level first)"
                )
            p_w = export
            self.writer.event(self.clock.now(), "runner", "rlc_matched", {"p_w": p_w})
        q = bank.quality_factor * p_w
        detuned = bank.reactive_pct / 100.0
        tank = RlcTank(
            p_w=p_w * bank.active_pct / 100.0,
            q_l_var=q * (detuned if bank.branch == "inductive" else 1.0),
            q_c_var=q * (detuned if bank.branch == "capacitive" else 1.0),
            v_nominal=self.plan.grid.voltage_v,
            f_nominal=self.plan.grid.frequency_hz,
            phases=int(getattr(driver, "phases", 1)),
        )
        driver.set_tank(tank)
        if not driver.input_enabled():
            driver.set_input(True)

    def _dut_control(self, control: DutControl) -> None:
        """A DUT setting: on the emulated EVSE the unit's own setting; on a real EVSE its control
        interface (instruments.rig.evse_control, `CONT:ISL:DET`), whose safe state turns
        anti-islanding back on."""
        world = self.station.world
        if self.station.config.dut.emulated and world is not None:
            world.evse.anti_islanding = control.anti_islanding
        else:
            interface = getattr(self.station.dut, "control", None)
            if interface is None or not hasattr(interface, "set_island_detection"):
                raise StepError(
                    f"{self.plan.path}: dut_control: the DUT has no control interface to set "
                    "its anti-islanding (dut: {control: VISA address} in the bench file)"
                )
            interface.set_island_detection(control.anti_islanding)  # read back by the driver
        self.writer.event(
            self.clock.now(), "runner", "dut_control", {"anti_islanding": control.anti_islanding}
        )

    def _cable(self) -> Cable:
        if self.cable is None:  # the plan's validation makes this unreachable from a plan file
            raise StepError(f"{self.plan.path}: the plan has no link: (no cable to plug in)")
        return self.cable

    def _record_source(self, grid: GridSimulator) -> None:
        """The grid source's output state as it reports it after a grid step: the evidence that
        the grid really went away (or came back) for rig.checks.islanding."""
        on = grid.output_enabled()
        self.writer.sample(self.clock.now(), "grid_simulator", {"output_on": 1.0 if on else 0.0})

    def _wait(self, wait: WaitFor, step: Step) -> None:
        deadline = self.clock.now() + wait.timeout_s
        while not self._holds(wait):
            if self.clock.now() >= deadline:
                ended = next(
                    (
                        e
                        for e in reversed(self.writer.trace.events)
                        if e.src == "v2g" and e.name == "session_end"
                    ),
                    None,
                )
                why = f"; the session ended: {ended.data.get('reason')}" if ended else ""
                if wait.condition == LINK_UP and self.cable is not None:
                    why += f"; {self.cable.describe()}"
                raise StepError(
                    f"{self.plan.path}:{step.line}: wait_for {wait.condition}"
                    f"{'' if wait.value is None else ' ' + str(wait.value)} timed out after "
                    f"{wait.timeout_s:g} s (session phase: {self.station.dut.phase}{why})"
                )
            self.advance_to(min(self.clock.now() + POLL_S, deadline))

    def _holds(self, wait: WaitFor) -> bool:
        if wait.condition == LINK_UP:
            return self.cable is not None and self.cable.up
        if wait.condition == "soc_below":
            return self.soc.soc < float(wait.value)  # type: ignore[arg-type]
        if wait.condition == "soc_above":
            return self.soc.soc > float(wait.value)  # type: ignore[arg-type]
        if wait.condition == "event":
            return any(e.name == wait.value for e in self.writer.trace.events)
        return self.station.dut.phase is SessionPhase(wait.condition)


#: The scope capture around S3 opening or a grid loss (rig's own choice): half a second
#: before the trigger, 4.5 s after (the 2 s clearing limit of 5.10 and 2.5 s to show it stays).
CAPTURE_PRE_S = 0.5
CAPTURE_POST_S = 4.5


def _opens_grid(step: Step) -> bool:
    """The step takes the grid away from the site: S3 opens or the grid simulator goes off."""
    return any(
        (isinstance(a, SwitchSet) and ("s3", False) in a.settings)
        or (isinstance(a, GridOutput) and not a.on)
        for a in step.actions
    )


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
    if isinstance(action, Setpoint) and action.share is None:
        del args["share"]  # written in watts: the marker stays as it always was
    if isinstance(action, SwitchSet):
        args = {name: closed for name, closed in action.settings}  # {"s3": False}
    return args


def context_for(plan: Plan, bench: BenchConfig, caveats: tuple[str, ...] = ()) -> Context:
    from rig.checks.uncertainty import instrumentation_for

    return Context(
        ev=plan.ev,
        v_nominal=plan.grid.voltage_v,
        f_nominal=plan.grid.frequency_hz,
        evse_rated_w=bench.dut.rated_power_w,
        instrumentation=instrumentation_for(bench, plan.grid.voltage_v),
        caveats=caveats,
        day=plan.day,
    )


#: Runs inside _fewer_collections now (nested runs: a procedure's cases).
_RUNS_WITH_FROZEN_HEAP = 0


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The run with a larger young-generation threshold (rig.process.YOUNG_THRESHOLD, which the
    `rig` command starts with: a -20 session allocates a few thousand short-lived objects per
    exchange and keeps few; collecting every 700 cost about 7 % of a virtual-time hour); the
    caller's restored after it."""
    global _RUNS_WITH_FROZEN_HEAP
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    # What exists before the run (modules, the plan, a test session's objects) is not the run's
    # garbage: out of the collector's sight until the run ends, so that a collection during the
    # run walks only what the run made.
    gc.freeze()
    _RUNS_WITH_FROZEN_HEAP += 1
    try:
        yield
    finally:
        _RUNS_WITH_FROZEN_HEAP -= 1
        gc.unfreeze()
        gc.set_threshold(*before)


def _settle_heap() -> None:
    """What the run has kept so far (its trace, mostly: every message, sample and event) stays
    until the run ends: out of the collector's sight from now on, as what existed before the
    run is. A full collection late in a long run would otherwise walk all of it, again and again
    as it grows (a 24 h day keeps millions of objects: passes of 1-2 s, about a tenth of its
    wall time). The cost: a reference cycle the run dropped before this point is freed when the
    run ends, not earlier (a run makes few; most of its garbage goes by reference counting)."""
    if _RUNS_WITH_FROZEN_HEAP:
        gc.freeze()


def execute(
    plan: Plan,
    bench_config: BenchConfig,
    *,
    seed: int = 1,
    defects: tuple[str, ...] = (),
    out_dir: Path | None = None,
    clock: Clock | None = None,
    out_stem: str | None = None,
    allow_expired_calibration: bool = False,
) -> RunResult:
    """Open the station, run the plan, bring the bench to its safe state, judge the trace.

    Nothing skips the teardown: not a failing step, an instrument that stops answering, a full
    disk, nor any number of signals (rig.signals). A run stopped by a signal returns with
    `interrupted` set after the bench is safe; the caller decides whether to go on.
    """
    from rig.procedure import execute_block, resolve

    if plan.block is not None:  # the expansion hook: one run per case (rig.procedure)
        return execute_block(
            plan,
            bench_config,
            seed=seed,
            defects=defects,
            out_dir=out_dir,
            out_stem=out_stem,
            allow_expired_calibration=allow_expired_calibration,
        )
    plan = resolve(plan, bench_config.dut.rated_power_w)
    with guarded() as guard, _fewer_collections():
        guard.reset()
        return _execute(
            plan,
            bench_config,
            guard,
            seed,
            defects,
            out_dir,
            clock,
            out_stem,
            allow_expired_calibration,
        )


def _faults_applied(plan: Plan, trace: Trace, verdicts: list[Verdict]) -> list[Verdict]:
    """A plan whose `faults:` never took effect did not test what it says: its criteria judged
    a run without the fault, so the run is not judged (rig.checks.fault_reaction says the same
    for its own rows)."""
    if not plan.faults or any(v.name.startswith("fault_reaction") for v in verdicts):
        return []
    if any(e.name == "fault_injected" for e in trace.events):
        return []
    return [
        not_judged(
            "faults:applied",
            f"none of the plan's {len(plan.faults)} fault(s) took effect (the session ended or "
            "never reached the message they name): the criteria judged a run without them",
            "the plan's faults:",
        )
    ]


def _execute(
    plan: Plan,
    bench_config: BenchConfig,
    guard: SignalGuard,
    seed: int,
    defects: tuple[str, ...],
    out_dir: Path | None,
    clock: Clock | None,
    out_stem: str | None,
    allow_expired_calibration: bool = False,
) -> RunResult:
    own_clock = clock is None
    clock = clock or (VirtualClock() if bench_config.all_emulated else RealClock())
    stem = out_stem or plan.name
    trace_path = out_dir / f"{stem}.trace.jsonl" if out_dir is not None else None
    meta = {
        "plan": plan.path,
        "title": plan.title,
        "seed": seed,
        "bench": bench_config.path,
        "defects": list(defects),
        "rig_version": __version__,
        "virtual_time": clock.virtual,
    }
    watch = Stopwatch()
    error: str | None = None
    interrupted: str | None = None
    station: Station | None = None
    cable: Cable | None = None
    writer = TraceWriter(trace_path, meta)
    try:
        files = SessionFiles.for_run(out_dir, stem, clock.epoch_ns)
        run_bench = bench_for_plan(plan, bench_config)  # the plan's link: tls and sdp
        station = open_station(
            run_bench,
            plan,
            clock,
            seed=seed,
            defects=defects,
            files=files,
            allow_expired_calibration=allow_expired_calibration,
        )
        cable = open_cable(plan, run_bench, station, clock, defects=defects, seed=seed)
        writer.event(
            clock.now(),
            "runner",
            "bench_open",
            {
                "instruments": [i.as_record() for i in station.records],
                "protocol": station.dut.protocol,
                "dut": station.dut.identity.as_record(),
            },
        )
        Runner(plan, station, clock, writer, guard, cable).run()
    except StepError as exc:
        error = str(exc)
    except Exception as exc:  # bench could not open, an instrument failed, the disk is full
        error = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt as exc:  # a signal (rig.signals): teardown, then say so
        guard.acknowledge()
        interrupted = exc.signame if isinstance(exc, RunInterrupted) else "SIGINT"
        error = f"interrupted by {interrupted}"
    finally:
        guard.ending()  # from here on no signal raises until every instrument is safe
        if interrupted:
            writer.event(clock.now(), "runner", "interrupted", {"signal": interrupted}, quiet=True)
        elif error:
            writer.event(clock.now(), "runner", "run_error", {"error": error}, quiet=True)
        if station is not None:
            teardown = station.teardown(guard)
            # What the session said while it ended (PowerDelivery Stop, SessionStop, ...).
            with contextlib.suppress(Exception):
                for ev in station.dut.poll():
                    writer.event(ev.t, ev.src, ev.name, ev.data, quiet=True)
            if cable is not None:  # the pilot's last changes; then its sockets and timers go
                with contextlib.suppress(Exception):
                    for ev in cable.poll():
                        writer.event(ev.t, ev.src, ev.name, ev.data, quiet=True)
                with contextlib.suppress(Exception):
                    cable.close()
            for rec in teardown:
                name = "instrument_closed" if rec.pop("action", None) == "close" else "safe_state"
                writer.event(clock.now(), "runner", name, rec, quiet=True)
            if guard.received[1:]:
                writer.event(
                    clock.now(),
                    "runner",
                    "signals_during_teardown",
                    {"signals": guard.received[1:], "aborted": guard.abort_requested},
                    quiet=True,
                )
            with contextlib.suppress(OSError):
                station.write_state(out_dir, stem)
        else:
            guard.safe()
        writer.close(clock.now())
        if own_clock:
            clock.close()
        guard.ended()
    ctx = context_for(plan, bench_config, tuple(station.caveats) if station else ())
    if writer.disk_error and not error:
        error = f"the trace file stopped short: {writer.disk_error}"
    verdicts = (
        []
        if error or guard.abort_requested
        else run_checks(writer.trace, ctx, [(c.name, c.params) for c in plan.checks])
    )
    if verdicts:
        verdicts.extend(_faults_applied(plan, writer.trace, verdicts))
    return RunResult(
        plan=plan,
        verdicts=verdicts,
        trace=writer.trace,
        context=ctx,
        simulated_s=clock.now(),
        wall_s=watch.elapsed(),
        error=error,
        protocol=station.dut.protocol if station else "none",
        defects=defects,
        instruments=list(station.records) if station else [],
        trace_path=trace_path,
        interrupted=interrupted,
        trace_error=writer.disk_error,
        messages=int(getattr(station.dut, "messages", 0)) if station else 0,
    )
