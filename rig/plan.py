"""Test plans: the YAML format, its validation, and the typed Plan the runner executes.

A plan says what to do to the bench and how to judge it:

```yaml
title: The EV carries a 3 kW home load down to its reserve
requirement: V2H energy management (EVMinimumV2XEnergyRequest)
dut: evse                                  # evse | ev | none
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 32 %, reserve: 30 %, max_charge: 11 kW, max_discharge: 11 kW}
evse: {generator_mode: grid_following}     # optional: what the DUT is configured for
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: 3 kW}
  - wait_for: charge_loop
  - follow_home_load: true
  - {wait_for: {soc_below: 30.2 %}, timeout: 1 h}
  - hold: 15 min
checks:
  - reserve_floor: {}
```

Step keys: `at` (absolute "60 s" from the start, or relative "+60 s" after the previous step), then
one or more instant actions (`grid`, `home_load`, `setpoint`, `rlc_load`, `switch`, `dut_control`,
`follow_home_load`, `session`, `mark`, `plug_in`, `unplug`), or exactly one of `wait_for` (with
optional `timeout`) and `hold`. If no step says `session: start`, the session starts right after
the first step.

The bench's RLC load bank (`rlc_load: {p, quality_factor, active: %, reactive: %}`; p in W, as a
share of the DUT's rating, or `match_output`), its switch unit's relays by name (`switch: {s3:
open}`) and the DUT's anti-islanding (`dut_control: {anti_islanding: off}`) are steps too, and a
setpoint may be a share of the DUT's rating (`setpoint: -66 %`). One `block:` step may hold steps
run once per case: for each value, a sweep extended while its result rises, reruns of the worst
cases (rig.procedure, IEEE 1547.1 5.10's shape).

A plan with a top-level `link:` runs the cable sequence below the session (issue 14): the pilot,
SLAC (`slac:` timings, names of rig.v2g.slac.timing.SlacTiming), SDP (`sdp: true|false`) and TLS
(`tls: true|false`, omitted: the bench's setting). Its `plug_in: {}` step plugs the EV in, the
session starts once the link is up (`wait_for: link_up`: 5 % PWM seen and SLAC matched), and
`unplug: {}` ends the cable sequence. plug_in, unplug and link_up need `link:`, and `link:` needs
one plug_in.

A day plan (issue 13) has a top-level `day:` (rig.day: tariff, departure and need, home load,
PV, outages): the runner sets the home load and the outages from it, the DUT's energy manager
decides the power (so a day plan has no home_load, setpoint or follow_home_load step), and the
checks `departure`, `tariff_cost` and `outage_supply` judge the day.

`validate()` reports every problem at once as `file:line: field: message`.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rig import units
from rig.day import DaySpec, parse_day
from rig.ev import EVSpec
from rig.v2g.vocabulary import ControlMode, Service, SessionPhase
from rig.yamlsrc import Path_, Source, load, loads

DutSide = Literal["evse", "ev", "none"]
#: Session phases a plan may wait for (every phase but "idle").
WAITABLE_PHASES = tuple(p.value for p in SessionPhase if p is not SessionPhase.IDLE)
#: What a plan with `link:` may wait for besides the phases: the rig's side of the cable saw
#: 5 % PWM and SLAC matched (the data link is up; the session starts from here).
LINK_UP = "link_up"
#: The services plans run today: the bidirectional ones (V2H needs discharge).
PLAN_SERVICES = (Service.DC_BPT.value, Service.AC_BPT.value)
CONTROL_MODES = tuple(m.value for m in ControlMode)
GENERATOR_MODES = ("grid_following", "grid_forming")
ISLANDING_METHODS = ("active", "passive")


# --------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class GridSet:
    voltage_v: float | None = None
    frequency_hz: float | None = None


@dataclass(frozen=True)
class GridOutput:
    on: bool


@dataclass(frozen=True)
class HomeLoad:
    p_w: float
    q_var: float = 0.0


@dataclass(frozen=True)
class HomeRLC:
    """A parallel RLC load as in IEEE 1547.1 5.10 / IEC 62116: P at nominal V, quality factor Qf,
    resonant at the nominal frequency."""

    p_w: float
    quality_factor: float


@dataclass(frozen=True)
class Setpoint:
    p_w: float  # rig sign: + charges the EV, - discharges it
    #: Written as a share of the DUT's rated power ("-66 %"): p_w is resolved from the bench
    #: before the run (rig.procedure.resolve); None: written in watts.
    share: float | None = None


@dataclass(frozen=True)
class RlcBank:
    """The anti-islanding RLC load bank (IEEE 1547.1-2020 5.10, IEC 62116) as its own instrument:
    the balanced parallel tank drawing `p_w` at quality factor Qf, then detuned in percent:
    `active` scales R's power, `reactive` scales one reactive branch (`branch`, the capacitive
    one unless the plan says otherwise: the rig's choice (?), 1547.1 varies "the reactive load")."""

    p_w: float
    quality_factor: float = 1.0
    active_pct: float = 100.0
    reactive_pct: float = 100.0
    branch: Literal["capacitive", "inductive"] = "capacitive"
    #: p written as a share of the DUT's rated power (resolved before the run, as Setpoint's).
    share: float | None = None
    #: p: match_output: the bank's P is the EUT's AC export as the power analyzer reads it when
    #: the step runs, so that no active power flows through S3 (1547.1 5.10's balancing).
    match_output: bool = False


@dataclass(frozen=True)
class RlcBankOff:
    """Every branch of the RLC bank switched out."""


@dataclass(frozen=True)
class SwitchSet:
    """Relays of the switch unit by their bench names (`s3`, `transfer_switch`): closed or open."""

    settings: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class DutControl:
    """A setting of the DUT itself: its anti-islanding function on or off (IEEE 1547.1 5.10 first
    confirms, with it disabled, that the balanced island persists)."""

    anti_islanding: bool


@dataclass(frozen=True)
class FollowHomeLoad:
    on: bool


@dataclass(frozen=True)
class SessionControl:
    #: start / stop a session; standby / resume: the EV asks to hold the session without energy
    #: (PowerDelivery Standby) and to go on (ISO 15118-20 only).
    command: Literal["start", "stop", "standby", "resume"]


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class PlugIn:
    """The EV is plugged in (pilot state B): the cable sequence starts (needs the plan's link)."""


@dataclass(frozen=True)
class Unplug:
    """The EV is unplugged (pilot state A): the EVSE stops its PWM and forgets the match."""


@dataclass(frozen=True)
class WaitFor:
    condition: str  # a SessionPhase value, "link_up", "soc_below", "soc_above" or "event"
    value: float | str | None
    timeout_s: float


@dataclass(frozen=True)
class Hold:
    duration_s: float


Action = (
    GridSet
    | GridOutput
    | HomeLoad
    | HomeRLC
    | Setpoint
    | RlcBank
    | RlcBankOff
    | SwitchSet
    | DutControl
    | FollowHomeLoad
    | SessionControl
    | Mark
    | PlugIn
    | Unplug
    | WaitFor
    | Hold
)


@dataclass(frozen=True)
class Step:
    index: int
    line: int
    at_s: float | None  # None: right after the previous step
    relative: bool
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class SessionSpec:
    service: Service = Service.DC_BPT
    control_mode: ControlMode = ControlMode.DYNAMIC


@dataclass(frozen=True)
class EVSESpec:
    generator_mode: str = "grid_following"
    islanding_method: str = "active"


@dataclass(frozen=True)
class GridSpec:
    voltage_v: float = 230.0
    frequency_hz: float = 50.0


@dataclass(frozen=True)
class LinkSpec:
    """The plan's `link:`: the cable sequence below the session (pilot, SLAC, SDP, TLS)."""

    #: SlacTiming overrides by field name, in SI (seconds) or counts.
    slac: Mapping[str, float]
    #: SDP before the session (False: direct mode, the endpoint known beforehand).
    sdp: bool
    #: TLS for the session; None: the bench's setting.
    tls: bool | None
    line: int


@dataclass(frozen=True)
class CheckSpec:
    name: str
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Plan:
    path: str
    title: str
    requirement: str
    dut: DutSide
    session: SessionSpec
    ev: EVSpec
    evse: EVSESpec
    grid: GridSpec
    steps: tuple[Step, ...]
    checks: tuple[CheckSpec, ...]
    #: Faults the rig injects into its own side of the -20 session (rig.v2g.faults.FaultRule).
    faults: tuple[Any, ...] = ()
    sample_period_s: float = 1.0
    fast_period_s: float = 0.01
    fast_window_s: float = 5.0
    #: The cable sequence (pilot, SLAC, SDP) below the session; None: the session starts as
    #: soon as the plan begins, over a link that is already up.
    link: LinkSpec | None = None
    #: A block of steps run once per case (sweep, repeats of the worst cases; rig.procedure);
    #: `steps` then hold the block's first case.
    block: Any = None
    #: A day of tariff, departure, home load, PV and outages (rig.day); None: not a day plan.
    day: DaySpec | None = None

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def needed_roles(self) -> set[str]:
        """Instrument roles this plan's steps use, besides the ones every plan needs."""
        return {
            role
            for s in self.steps
            for a in s.actions
            for role in KIND_OF_ACTION[type(a)].needs_roles
        }


@dataclass(frozen=True)
class PlanLimits:
    """Bounds on what a plan may ask (refused at validation, with the figure): a plan that would
    run for weeks, sample a million times a second or carry a novel as its title is a mistake.
    `rig run --max-duration/--max-samples` raise the first two for a deliberate long test."""

    max_duration_s: float = 7 * 24 * 3600.0
    max_samples: int = 5_000_000
    max_title: int = 200
    max_text: int = 2_000


DEFAULT_LIMITS = PlanLimits()


# ---------------------------------------------------------------------------------------- parsing
_TOP_KEYS = (
    "day",
    "faults",
    "link",
    "title",
    "requirement",
    "dut",
    "session",
    "ev",
    "evse",
    "grid",
    "steps",
    "checks",
    "sampling",
)


def _unknown(
    src: Source, path: Path_, key: str, allowed: tuple[str, ...], noun: str = "field"
) -> None:
    hint = difflib.get_close_matches(key, allowed, n=1)
    suffix = f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(allowed)}"
    src.error((*path, key), f"unknown {noun}{suffix}")


class _Reader:
    """Typed field access that records a problem (with its line) instead of raising."""

    def __init__(self, src: Source) -> None:
        self.src = src

    def quantity(self, path: Path_, value: Any, dim: str) -> float | None:
        try:
            return units.parse(value, dim)
        except units.UnitError as exc:
            self.src.error(path, str(exc))
            return None

    def choice(self, path: Path_, value: Any, options: tuple[str, ...]) -> str | None:
        if value in options:
            return str(value)
        hint = difflib.get_close_matches(str(value), options, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        self.src.error(path, f"{value!r} is not one of {', '.join(options)}{extra}")
        return None

    def mapping(self, path: Path_, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.src.error(path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                _unknown(self.src, path, key, allowed)
        return {k: v for k, v in value.items() if k in allowed}

    def text(self, path: Path_, value: Any, *, required: bool = True, max_len: int = 200) -> str:
        if value is None:
            if required:
                self.src.error(path, "missing (a short text is required)")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.src.error(path, f"expected text, got {_kind(value)}")
            return ""
        if len(value.strip()) > max_len:
            self.src.error(path, f"{len(value.strip())} characters; at most {max_len}")
            return ""
        return value.strip()

    def boolean(self, path: Path_, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        self.src.error(path, f"expected true or false, got {value!r}")
        return None


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _time_expr(r: _Reader, path: Path_, value: Any) -> tuple[float | None, bool]:
    relative = isinstance(value, str) and value.strip().startswith("+")
    text = value.strip()[1:] if relative else value
    t = r.quantity(path, text, "time")
    if t is not None and t < 0:
        r.src.error(path, "a time must not be negative")
        return None, relative
    return t, relative


def _parse_ev(r: _Reader, value: Any) -> EVSpec | None:
    path: Path_ = ("ev",)
    if value is None:
        r.src.error(path, "missing: the EV battery (capacity, soc, reserve) must be given")
        return None
    m = r.mapping(path, value, ("capacity", "soc", "reserve", "max_charge", "max_discharge"))
    for key in ("capacity", "soc", "reserve"):
        if key not in m and isinstance(value, dict):
            r.src.error((*path, key), "missing")
    cap = r.quantity((*path, "capacity"), m["capacity"], "energy") if "capacity" in m else None
    soc = r.quantity((*path, "soc"), m["soc"], "ratio") if "soc" in m else None
    reserve = r.quantity((*path, "reserve"), m["reserve"], "ratio") if "reserve" in m else None
    max_c = r.quantity((*path, "max_charge"), m.get("max_charge", "11 kW"), "power")
    max_d = r.quantity((*path, "max_discharge"), m.get("max_discharge", "11 kW"), "power")
    if cap is not None and cap <= 0:
        r.src.error((*path, "capacity"), "must be positive")
    for key, frac in (("soc", soc), ("reserve", reserve)):
        if frac is not None and not 0 <= frac <= 1:
            r.src.error((*path, key), "must be between 0 % and 100 %")
    if max_d is not None and max_d < 0:
        r.src.error((*path, "max_discharge"), "write the discharge limit as a magnitude (>= 0)")
    if max_c is not None and max_c < 0:
        r.src.error((*path, "max_charge"), "the charge limit is a magnitude (>= 0)")
    if None in (cap, soc, reserve, max_c, max_d):
        return None
    assert cap is not None and soc is not None and reserve is not None
    assert max_c is not None and max_d is not None
    return EVSpec(cap, soc, reserve, max_c, max_d)


def _parse_home_load(r: _Reader, path: Path_, value: Any) -> Action | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        p = r.quantity(path, value, "power")
        if p is not None and p < 0:
            r.src.error(path, "a home load consumes power: must be >= 0")
            return None
        return HomeLoad(p) if p is not None else None
    m = r.mapping(path, value, ("p", "q", "rlc"))
    if "rlc" in m:
        if "p" in m or "q" in m:
            r.src.error(path, "give either p/q (constant power) or rlc, not both")
        rlc = r.mapping((*path, "rlc"), m["rlc"], ("p", "quality_factor"))
        p = r.quantity((*path, "rlc", "p"), rlc.get("p"), "power") if "p" in rlc else None
        if "p" not in rlc:
            r.src.error((*path, "rlc", "p"), "missing: the load's active power at nominal voltage")
        qf = rlc.get("quality_factor", 1.0)
        if not isinstance(qf, int | float) or isinstance(qf, bool) or qf <= 0:
            r.src.error((*path, "rlc", "quality_factor"), f"expected a positive number, got {qf!r}")
            return None
        return HomeRLC(p, float(qf)) if p is not None and p > 0 else None
    if "p" not in m:
        r.src.error((*path, "p"), "missing")
        return None
    p = r.quantity((*path, "p"), m["p"], "power")
    q = r.quantity((*path, "q"), m.get("q", 0), "reactive_power")
    if p is not None and p < 0:
        r.src.error((*path, "p"), "a home load consumes power: must be >= 0")
        return None
    return HomeLoad(p, q or 0.0) if p is not None and q is not None else None


def _parse_grid(r: _Reader, path: Path_, value: Any) -> Action | None:
    if value in ("off", "on") or isinstance(value, bool):
        # YAML 1.1 reads bare on/off as booleans; accept both spellings.
        return GridOutput(value in ("on", True))
    m = r.mapping(path, value, ("voltage", "frequency"))
    if not m and isinstance(value, dict):
        r.src.error(path, "give voltage and/or frequency, or write grid: off / grid: on")
        return None
    v = r.quantity((*path, "voltage"), m["voltage"], "voltage") if "voltage" in m else None
    f = r.quantity((*path, "frequency"), m["frequency"], "frequency") if "frequency" in m else None
    if v is not None and v <= 0:
        r.src.error((*path, "voltage"), "must be positive (use grid: off to drop the grid)")
    if f is not None and f <= 0:
        r.src.error((*path, "frequency"), "must be positive")
    return GridSet(v, f)


def _parse_wait(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> WaitFor | None:
    tpath = (*path[:-1], "timeout")
    timeout = step.get("timeout")
    t_s = r.quantity(tpath, timeout, "time") if timeout is not None else None
    if t_s is not None and t_s <= 0:
        r.src.error(tpath, "a timeout must be positive")
        return None
    if isinstance(value, str):
        phase = r.choice(path, value, (*WAITABLE_PHASES, LINK_UP))
        if phase is None:
            return None
        condition = LINK_UP if phase == LINK_UP else SessionPhase(phase)
        return WaitFor(condition, None, t_s if t_s is not None else 60.0)
    m = r.mapping(path, value, ("soc_below", "soc_above", "event"))
    if len(m) != 1:
        if isinstance(value, dict):
            r.src.error(path, "give exactly one condition: soc_below, soc_above or event")
        return None
    ((cond, raw),) = m.items()
    if t_s is None:
        r.src.error(tpath, f"missing: a wait for {cond} needs a timeout (e.g. timeout: 2 h)")
        return None
    if t_s <= 0:
        r.src.error(tpath, "a timeout must be positive")
        return None
    if cond == "event":
        name = r.text((*path, cond), raw, max_len=100)
        return WaitFor("event", name, t_s) if name else None
    frac = r.quantity((*path, cond), raw, "ratio")
    return WaitFor(cond, frac, t_s) if frac is not None else None


def _parse_setpoint(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    if isinstance(value, str) and value.strip().endswith(("%", "p.u.")):
        share = r.quantity(path, value, "ratio")
        if share is not None and abs(share) > 1.0:
            r.src.error(path, "a setpoint share of the DUT's rating is at most 100 %")
            return None
        return Setpoint(math.nan, share) if share is not None else None
    w = r.quantity(path, value, "power")
    return Setpoint(w) if w is not None else None


#: Detuning of the RLC bank a plan may ask, in percent (rig's own bound: 1547.1 5.10 sweeps
#: 95-105 % and on while clearing times rise).
DETUNE_RANGE_PCT = (50.0, 150.0)


def _parse_rlc_bank(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    if value in ("off", False):
        return RlcBankOff()
    m = r.mapping(path, value, ("p", "quality_factor", "active", "reactive", "branch"))
    if "p" not in m:
        if isinstance(value, dict):
            r.src.error(
                (*path, "p"), "missing: the bank's active power (W, or a share of the DUT rating)"
            )
        return None
    raw_p = m["p"]
    share: float | None = None
    p_w: float | None
    match = raw_p == "match_output"
    if match:
        p_w = math.nan
    elif isinstance(raw_p, str) and raw_p.strip().endswith(("%", "p.u.")):
        share = r.quantity((*path, "p"), raw_p, "ratio")
        p_w = math.nan
        if share is not None and not 0 < share <= 1.5:
            r.src.error((*path, "p"), "a share of the DUT rating between 0 and 150 %")
            return None
        if share is None:
            return None
    else:
        p_w = r.quantity((*path, "p"), raw_p, "power")
        if p_w is not None and p_w <= 0:
            r.src.error((*path, "p"), "must be positive (write rlc_load: off to switch it out)")
            return None
    qf = m.get("quality_factor", 1.0)
    if not isinstance(qf, int | float) or isinstance(qf, bool) or not 0 < qf <= 10:
        r.src.error((*path, "quality_factor"), f"expected a number in (0, 10], got {qf!r}")
        return None
    pct: dict[str, float] = {}
    for key in ("active", "reactive"):
        q = r.quantity((*path, key), m.get(key, "100 %"), "ratio")
        if q is None:
            return None
        low, high = DETUNE_RANGE_PCT
        if not low <= q * 100 <= high:
            r.src.error((*path, key), f"{q * 100:g} % is outside {low:g} .. {high:g} %")
            return None
        pct[key] = q * 100.0
    branch = r.choice((*path, "branch"), m.get("branch", "capacitive"), ("capacitive", "inductive"))
    if p_w is None or branch is None:
        return None
    return RlcBank(
        p_w,
        float(qf),
        pct["active"],
        pct["reactive"],
        "inductive" if branch == "inductive" else "capacitive",
        share,
        match,
    )


def _parse_switch(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    if not isinstance(value, dict) or not value:
        r.src.error(path, "name the relays by their bench names, e.g. {s3: open}")
        return None
    out: list[tuple[str, bool]] = []
    for name, state in value.items():
        # YAML 1.1 reads a bare on/off as a boolean: closed/open, on/off and true/false all work.
        if state in ("closed", "close", "on", True):
            out.append((str(name), True))
        elif state in ("open", "off", False):
            out.append((str(name), False))
        else:
            r.src.error((*path, name), f"{state!r}: write open or closed")
            return None
    return SwitchSet(tuple(out))


def _parse_dut_control(
    r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]
) -> Action | None:
    m = r.mapping(path, value, ("anti_islanding",))
    if "anti_islanding" not in m:
        if isinstance(value, dict) or value is None:
            r.src.error((*path, "anti_islanding"), "missing: on or off")
        return None
    raw = m["anti_islanding"]
    if raw in ("on", True):
        return DutControl(True)
    if raw in ("off", False):
        return DutControl(False)
    r.src.error((*path, "anti_islanding"), f"{raw!r}: write on or off")
    return None


def _parse_follow(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    on = r.boolean(path, value)
    return FollowHomeLoad(on) if on is not None else None


def _parse_session(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    for command in ("start", "stop", "standby", "resume"):
        if value == command:
            return SessionControl(command)
    r.choice(path, value, ("start", "stop", "standby", "resume"))  # records the problem
    return None


def _parse_plug(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    if value not in (None, {}):
        r.src.error(path, f"takes no parameters: write {path[-1]}: {{}}")
        return None
    return PlugIn() if path[-1] == "plug_in" else Unplug()


def _parse_mark(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    name = r.text(path, value, max_len=100)
    return Mark(name) if name else None


def _parse_hold(r: _Reader, path: Path_, value: Any, step: Mapping[str, Any]) -> Action | None:
    d = r.quantity(path, value, "time")
    if d is not None and d < 0:
        r.src.error(path, "a hold must not be negative")
        return None
    return Hold(d) if d is not None else None


# ------------------------------------------------------------------------------------ step kinds
StepParser = Callable[["_Reader", Path_, Any, Mapping[str, Any]], "Action | None"]


@dataclass(frozen=True)
class StepKind:
    """One kind of plan step, declared once: its YAML key, how it is read, what it becomes.

    The runner executes each action class in one exhaustive `match` (rig.runner.Runner.do), so an
    action class added here and not handled there is a type error.
    """

    key: str
    parse: StepParser
    actions: tuple[type, ...]
    #: A blocking step (wait_for, hold) stands alone in its step; instant ones may share a step.
    blocking: bool = False
    #: The step changes the bench: sample just before and open a fast sampling window after.
    physical: bool = True
    #: Instrument roles the bench must have for this step (a plan needing one it lacks is skipped).
    needs_roles: tuple[str, ...] = ()
    summary: str = ""


STEP_KINDS: tuple[StepKind, ...] = (
    StepKind(
        "grid",
        lambda r, p, v, s: _parse_grid(r, p, v),
        (GridSet, GridOutput),
        needs_roles=("grid_simulator",),
        summary="grid simulator: {voltage, frequency} energizes it; off / on",
    ),
    StepKind(
        "home_load",
        lambda r, p, v, s: _parse_home_load(r, p, v),
        (HomeLoad, HomeRLC),
        needs_roles=("ac_load",),
        summary="home load: constant power (p, q) or a parallel RLC {rlc: {p, quality_factor}}",
    ),
    StepKind(
        "setpoint",
        _parse_setpoint,
        (Setpoint,),
        summary="+ charges the EV, - discharges; W, or a share of the DUT rating (-66 %)",
    ),
    StepKind(
        "rlc_load",
        _parse_rlc_bank,
        (RlcBank, RlcBankOff),
        needs_roles=("rlc_load",),
        summary="RLC bank: {p (W, % of rating, match_output), quality_factor, active: %, "
        "reactive: %, branch} or off",
    ),
    StepKind(
        "switch",
        _parse_switch,
        (SwitchSet,),
        needs_roles=("switch_unit",),
        summary="switch unit relays by bench name: {s3: open, transfer_switch: closed}",
    ),
    StepKind(
        "dut_control",
        _parse_dut_control,
        (DutControl,),
        summary="a DUT setting: {anti_islanding: on|off}",
    ),
    StepKind(
        "follow_home_load",
        _parse_follow,
        (FollowHomeLoad,),
        summary="the EVSE discharges what the home draws (V2H)",
    ),
    StepKind(
        "session", _parse_session, (SessionControl,), summary="start | stop | standby | resume"
    ),
    StepKind("mark", _parse_mark, (Mark,), physical=False, summary="a named marker"),
    StepKind(
        "plug_in",
        _parse_plug,
        (PlugIn,),
        summary="{}: the EV plugs in (pilot state B); the cable sequence starts (needs link:)",
    ),
    StepKind(
        "unplug",
        _parse_plug,
        (Unplug,),
        summary="{}: the EV unplugs (pilot state A) (needs link:)",
    ),
    StepKind(
        "wait_for",
        _parse_wait,
        (WaitFor,),
        blocking=True,
        physical=False,
        summary="a session phase, link_up, {soc_below|soc_above: %}, {event: name}; with timeout",
    ),
    StepKind("hold", _parse_hold, (Hold,), blocking=True, physical=False, summary="let time pass"),
)
STEP_KIND_BY_KEY: Mapping[str, StepKind] = {k.key: k for k in STEP_KINDS}
#: The step kind of each action class (the trace names an applied action by its kind's key).
KIND_OF_ACTION: Mapping[type, StepKind] = {a: k for k in STEP_KINDS for a in k.actions}
_STEP_KEYS = ("at", *STEP_KIND_BY_KEY, "timeout")


def _parse_step(r: _Reader, index: int, value: Any, where: Path_ | None = None) -> Step | None:
    path: Path_ = where if where is not None else ("steps", index)
    line = r.src.line(path)
    if isinstance(value, str):
        value = {value: None}  # e.g. "- hold" (caught below as missing value)
    if not isinstance(value, dict):
        r.src.error(path, f"a step is a mapping like {{at: 10 s, grid: off}}, got {_kind(value)}")
        return None
    for key in value:
        if key not in _STEP_KEYS:
            _unknown(r.src, path, key, _STEP_KEYS)
    at_s, relative = (None, False)
    if "at" in value:
        at_s, relative = _time_expr(r, (*path, "at"), value["at"])
    kinds = [STEP_KIND_BY_KEY[k] for k in value if k in STEP_KIND_BY_KEY]
    blocking = [k for k in kinds if k.blocking]
    if blocking and len(kinds) > 1:
        r.src.error(path, "wait_for and hold stand alone in their step (split the step)")
    if "timeout" in value and "wait_for" not in value:
        r.src.error((*path, "timeout"), "timeout belongs to a wait_for step")
    if not kinds:
        r.src.error(path, f"the step does nothing: give an action ({', '.join(STEP_KIND_BY_KEY)})")
    # Instant actions first, in table order; then the blocking one.
    actions: list[Action] = []
    for kind in sorted(kinds, key=lambda k: k.blocking):
        act = kind.parse(r, (*path, kind.key), value[kind.key], value)
        if act is not None:
            actions.append(act)
    return Step(index, line, at_s, relative, tuple(actions))


_FAULT_KEYS = (
    "kind",
    "message",
    "nth",
    "window",
    "count",
    "delay",
    "bits",
    "header",
    "keep",
    "field",
    "value",
    "send",
    "replace",
    "hold",
)


#: A wrong value written with its unit is read by what the -20 field measures.
_FIELD_DIMENSIONS = (
    ("Power", "power"),
    ("Current", "current"),
    ("Voltage", "voltage"),
    ("EnergyRequest", "energy"),
)


def _parse_faults(r: _Reader, value: Any) -> list[Any]:
    """`faults:` — what the rig's own side of the session does wrong on purpose, each rule
    validated by rig.v2g.faults (an unknown message or field is a file:line error)."""
    from rig.v2g.faults import FaultRule, FaultRuleError

    if value is None:
        return []
    if not isinstance(value, list):
        r.src.error(("faults",), "expected a list of faults like [{kind: drop, message: ...}]")
        return []
    out = []
    for i, raw in enumerate(value):
        path: Path_ = ("faults", i)
        m = r.mapping(path, raw, _FAULT_KEYS)
        if "kind" not in m:
            r.src.error((*path, "kind"), "missing: delay, drop, corrupt, truncate, reorder, ...")
            continue
        args = dict(m)
        for key in ("delay", "hold"):
            if key in args:
                t = r.quantity((*path, key), args[key], "time")
                if t is None:
                    args.pop(key)
                else:
                    args[key] = t
        if isinstance(args.get("value"), str) and isinstance(args.get("field"), str):
            # A quantity with its unit ("20 kW") in SI, by what the field is.
            leaf = args["field"].rsplit(".", 1)[-1]
            dim = next(
                (d for suffix, d in _FIELD_DIMENSIONS if leaf.endswith(suffix)),
                None,
            )
            if dim is not None:
                q = r.quantity((*path, "value"), args["value"], dim)
                if q is None:
                    continue
                args["value"] = q
        if "window" in args:
            w = args["window"]
            if not isinstance(w, list) or len(w) != 2:
                r.src.error((*path, "window"), "a window is [from, to], e.g. [10 s, 60 s]")
                continue
            lo = r.quantity((*path, "window"), w[0], "time")
            hi = r.quantity((*path, "window"), w[1], "time")
            if lo is None or hi is None:
                continue
            args["window"] = (lo, hi)
        try:
            out.append(FaultRule(**args))
        except FaultRuleError as exc:
            r.src.error((*path, exc.attribute), exc.reason)
        except (TypeError, ValueError) as exc:
            r.src.error(path, str(exc))
    return out


_LINK_KEYS = ("slac", "sdp", "tls")
#: Bounds on a plan's SLAC timings: a timer longer than this, or a count above this, is a typo
#: (rig's own choice; -3's longest timer is TT_EVSE_SLAC_init, 50 s at most (?)).
MAX_SLAC_TIMER_S = 600.0
MAX_SLAC_COUNT = 100


def _parse_link(r: _Reader, value: Any) -> LinkSpec | None:
    """`link:` — the cable sequence: SLAC timings by SlacTiming field name (times with their
    unit, counts as plain numbers), SDP on or off, TLS on, off or the bench's."""
    import dataclasses

    from rig.v2g.slac.timing import SlacTiming

    if value is None:
        return None
    path: Path_ = ("link",)
    if not isinstance(value, dict):
        r.src.error(path, f"expected a mapping like {{slac: {{}}, sdp: true}}, got {_kind(value)}")
        return None
    m = r.mapping(path, value, _LINK_KEYS)
    defaults = {f.name: f.default for f in dataclasses.fields(SlacTiming)}
    names = tuple(defaults)
    slac: dict[str, float] = {}
    raw_slac = m.get("slac")
    if raw_slac is not None and not isinstance(raw_slac, dict):
        r.src.error((*path, "slac"), f"expected a mapping of SLAC timings, got {_kind(raw_slac)}")
        raw_slac = None
    for key, raw in (raw_slac or {}).items():
        where = (*path, "slac", key)
        if key not in defaults:
            _unknown(r.src, (*path, "slac"), key, names, noun="SLAC timing")
            continue
        if isinstance(defaults[key], int):  # a count (C_...): a plain whole number
            least = 0 if key.endswith("_retry") else 1
            if isinstance(raw, bool) or not isinstance(raw, int):
                r.src.error(where, f"a count is a whole number, got {raw!r}")
            elif not least <= raw <= MAX_SLAC_COUNT:
                r.src.error(where, f"{raw} is outside {least}..{MAX_SLAC_COUNT}")
            else:
                slac[key] = raw
            continue
        seconds = r.quantity(where, raw, "time")
        if seconds is None:
            continue
        if not 0 < seconds <= MAX_SLAC_TIMER_S:
            r.src.error(where, f"a SLAC timer is more than 0 s and at most {MAX_SLAC_TIMER_S:g} s")
            continue
        slac[key] = seconds
    sdp = r.boolean((*path, "sdp"), m["sdp"]) if "sdp" in m else False
    tls = r.boolean((*path, "tls"), m["tls"]) if m.get("tls") is not None else None
    return LinkSpec(slac, bool(sdp), tls, r.src.line(path))


def _check_link(src: Source, link: LinkSpec | None, steps: list[Step], given: bool) -> None:
    """The cable steps and `link:` go together: plug_in, unplug and wait_for link_up need the
    link; a link needs one plug_in, before any unplug or wait for the link. One plug-in per
    plan: plugging in again after an unplug is not supported (the SLAC sides end with it)."""
    if given and link is None:
        return  # `link:` itself is wrong (reported): the steps are not judged against it
    plugged: Step | None = None
    unplugged: Step | None = None
    for step in steps:
        for action in step.actions:
            key = KIND_OF_ACTION[type(action)].key
            where: Path_ = ("steps", step.index, key)
            cable = isinstance(action, PlugIn | Unplug) or (
                isinstance(action, WaitFor) and action.condition == LINK_UP
            )
            if cable and link is None:
                what = "wait_for: link_up" if isinstance(action, WaitFor) else key
                src.error(where, f"{what} needs the plan's link: section (the cable sequence)")
                continue
            if link is None:
                continue
            if isinstance(action, PlugIn):
                if plugged is not None:
                    src.error(
                        where,
                        f"the EV is plugged in once per plan (already at line {plugged.line}); "
                        "plugging in again is not supported",
                    )
                plugged = plugged or step
            elif isinstance(action, Unplug):
                if plugged is None:
                    src.error(where, "unplug before the EV was plugged in (plug_in: {})")
                elif unplugged is not None:
                    src.error(where, f"already unplugged at line {unplugged.line}")
                else:
                    unplugged = step
            elif isinstance(action, WaitFor) and action.condition == LINK_UP:
                if plugged is None or unplugged is not None:
                    src.error(where, "waits for the link while the EV is not plugged in")
            elif isinstance(action, SessionControl) and action.command == "start":
                src.error(
                    where,
                    "with link:, the session starts when the link is up (wait_for: link_up); "
                    "remove session: start",
                )
    if link is not None and plugged is None:
        src.error(("link",), "a plan with link: plugs the EV in: add a step {plug_in: {}}")


def _parse_checks(r: _Reader, value: Any) -> list[CheckSpec]:
    from rig.checks import REGISTRY  # checks never import plans; plans know the check names

    out: list[CheckSpec] = []
    if value is None:
        r.src.error(("checks",), "missing: a plan without checks cannot fail")
        return out
    if not isinstance(value, list) or not value:
        r.src.error(("checks",), "expected a non-empty list like [reserve_floor: {}]")
        return out
    for i, item in enumerate(value):
        path: Path_ = ("checks", i)
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            r.src.error(path, "a check is one mapping entry: name: {parameters}")
            continue
        ((name, params),) = item.items()
        if name not in REGISTRY:
            _unknown(r.src, ("checks", i), name, tuple(sorted(REGISTRY)), noun="check")
            continue
        spec = REGISTRY[name]
        parsed = spec.parse_params(params if params is not None else {}, r.src, (*path, name))
        if parsed is not None:
            out.append(CheckSpec(name, parsed, r.src.line(path)))
    return out


def _from_source(src: Source, limits: PlanLimits = DEFAULT_LIMITS) -> Plan:
    r = _Reader(src)
    doc = src.data
    if not isinstance(doc, dict):
        src.error((), f"a plan is a mapping (title, dut, ev, steps, checks), got {_kind(doc)}")
        src.raise_if_problems()
    for key in doc:
        if key not in _TOP_KEYS:
            _unknown(src, (), key, _TOP_KEYS)
    title = r.text(("title",), doc.get("title"), max_len=limits.max_title)
    requirement = r.text(
        ("requirement",), doc.get("requirement"), required=False, max_len=limits.max_text
    )
    dut = r.choice(("dut",), doc.get("dut", "evse"), ("evse", "ev", "none"))
    sm = r.mapping(("session",), doc.get("session"), ("service", "control_mode"))
    service = r.choice(("session", "service"), sm.get("service", "DC_BPT"), PLAN_SERVICES)
    mode = r.choice(("session", "control_mode"), sm.get("control_mode", "dynamic"), CONTROL_MODES)
    ev = _parse_ev(r, doc.get("ev"))
    em = r.mapping(("evse",), doc.get("evse"), ("generator_mode", "islanding_method"))
    gen = r.choice(
        ("evse", "generator_mode"), em.get("generator_mode", "grid_following"), GENERATOR_MODES
    )
    isl = r.choice(
        ("evse", "islanding_method"), em.get("islanding_method", "active"), ISLANDING_METHODS
    )
    gm = r.mapping(("grid",), doc.get("grid"), ("voltage", "frequency"))
    gv = r.quantity(("grid", "voltage"), gm.get("voltage", "230 V"), "voltage")
    gf = r.quantity(("grid", "frequency"), gm.get("frequency", "50 Hz"), "frequency")
    sam = r.mapping(("sampling",), doc.get("sampling"), ("period", "fast_period", "fast_window"))
    period = r.quantity(("sampling", "period"), sam.get("period", "1 s"), "time")
    fast = r.quantity(("sampling", "fast_period"), sam.get("fast_period", "10 ms"), "time")
    window = r.quantity(("sampling", "fast_window"), sam.get("fast_window", "5 s"), "time")
    for key, val in (("period", period), ("fast_period", fast)):
        if val is not None and val <= 0:
            src.error(("sampling", key), "must be positive")
    if window is not None and window < 0:
        src.error(("sampling", "fast_window"), "must not be negative")
    for key, val in (("voltage", gv), ("frequency", gf)):
        if val is not None and val <= 0:
            src.error(("grid", key), "must be positive")

    steps: list[Step] = []
    block: Any = None
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        src.error(("steps",), "missing: expected a non-empty list of steps")
    else:
        for i, raw in enumerate(raw_steps):
            if isinstance(raw, dict) and "block" in raw:
                block = _parse_block(r, i, raw, steps, block)
                continue
            step = _parse_step(r, i, raw)
            if step is not None:
                steps.append(step)
        if block is not None:
            from rig.procedure import renumber

            steps = renumber(steps)
    _check_sequence(src, steps)
    link = _parse_link(r, doc.get("link"))
    _check_link(src, link, steps, given=doc.get("link") is not None)
    if not src.problems and period and fast and window is not None:
        _check_bounds(src, steps, limits, period, fast, window)
    raw_checks = doc.get("checks")
    if block is not None:  # checks may name the block's variables: read with the first case's
        import dataclasses

        from rig.procedure import substitute

        block = dataclasses.replace(block, raw_checks=raw_checks)
        try:
            raw_checks = substitute(raw_checks, block.first_values)
        except KeyError as exc:
            src.error(("checks",), f"{{{exc.args[0]}}} is not a variable of the block")
    checks = _parse_checks(r, raw_checks)
    faults = _parse_faults(r, doc.get("faults"))
    day = _parse_day(src, doc.get("day"), ev, steps)
    if ev is not None and ev.reserve_soc > ev.soc and not src.problems:
        src.error(("ev", "reserve"), "the reserve is above the starting SoC")
    src.raise_if_problems()
    assert dut is not None and service is not None and mode is not None and ev is not None
    assert gen is not None and isl is not None and gv is not None and gf is not None
    assert period is not None and fast is not None and window is not None
    return Plan(
        path=src.file,
        title=title,
        requirement=requirement,
        dut=dut,  # type: ignore[arg-type]
        session=SessionSpec(Service(service), ControlMode(mode)),
        ev=ev,
        evse=EVSESpec(gen, isl),
        grid=GridSpec(gv, gf),
        steps=tuple(steps),
        checks=tuple(checks),
        faults=tuple(faults),
        sample_period_s=period,
        fast_period_s=fast,
        fast_window_s=window,
        link=link,
        block=block,
        day=day,
    )


def _parse_block(r: _Reader, index: int, raw: dict[str, Any], steps: list[Step], seen: Any) -> Any:
    """A `block:` step (rig.procedure): its first case's steps join `steps`; one block per plan."""
    import dataclasses

    from rig.procedure import parse_block

    path: Path_ = ("steps", index)
    if len(raw) != 1:
        r.src.error(path, "a block stands alone in its step")
        return seen
    if seen is not None:
        r.src.error(path, f"one block per plan (the first is at line {seen.line})")
        return seen
    block, inner = parse_block(r, index, raw["block"])
    if block is None:
        return seen
    block = dataclasses.replace(block, before_count=len(steps), inner_count=len(inner))
    steps.extend(inner)
    return block


#: Steps a day plan leaves to the day: its home load and the DUT's own energy manager.
_DAY_OWNS = (HomeLoad, HomeRLC, Setpoint, FollowHomeLoad)


def _parse_day(src: Source, value: Any, ev: EVSpec | None, steps: list[Step]) -> DaySpec | None:
    """`day:` (rig.day), and the steps it leaves no room for: the day sets the home load, and the
    DUT's energy manager decides the power (a setpoint or follow-home step would override it)."""
    if value is None:
        return None
    day = parse_day(src, value, ev.capacity_wh if ev is not None else None)
    for step in steps:
        for action in step.actions:
            if isinstance(action, _DAY_OWNS):
                key = KIND_OF_ACTION[type(action)].key
                src.error(
                    ("steps", step.index, key),
                    f"a day plan sets the home load and leaves the power to the DUT's energy "
                    f"manager: remove {key}",
                )
    if day is not None and ev is not None and day.departure.energy_wh < ev.reserve_wh:
        src.error(("day", "departure"), "the departure need is below the EV's reserve")
    return day


def longest_duration(steps: list[Step] | tuple[Step, ...]) -> float:
    """The longest the steps can take: every wait running to its timeout (simulated seconds)."""
    t = 0.0
    for step in steps:
        if step.at_s is not None:
            t = t + step.at_s if step.relative else max(t, step.at_s)
        for action in step.actions:
            if isinstance(action, Hold):
                t += action.duration_s
            elif isinstance(action, WaitFor):
                t += action.timeout_s
    return t


def _check_bounds(
    src: Source,
    steps: list[Step],
    limits: PlanLimits,
    period: float,
    fast_period: float,
    fast_window: float,
) -> None:
    """Refuse a plan longer than the limit or one that would take more samples than the limit,
    naming the figure (a 1e9 s hold or a 1 µs sampling period must not run until killed)."""
    duration = longest_duration(steps)
    if duration > limits.max_duration_s:
        src.error(
            ("steps",),
            f"the plan can run for {_human(duration)}, longer than the limit "
            f"{_human(limits.max_duration_s)} (rig run --max-duration raises it)",
        )
        return
    physical = 1 + sum(1 for s in steps if any(KIND_OF_ACTION[type(a)].physical for a in s.actions))
    samples = duration / period + physical * min(fast_window, duration) / fast_period
    if samples > limits.max_samples:
        src.error(
            ("sampling",),
            f"the plan would take up to {samples:.3g} samples, more than the limit "
            f"{limits.max_samples:.3g} (rig run --max-samples raises it)",
        )


def _human(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.3g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds:.3g} s"


def _check_sequence(src: Source, steps: list[Step]) -> None:
    """Absolute times must not go backwards (relative ones cannot)."""
    last_abs = -math.inf
    for step in steps:
        if step.at_s is not None and not step.relative:
            if step.at_s < last_abs:
                src.error(
                    ("steps", step.index, "at"),
                    f"absolute time {step.at_s:g} s is before an earlier step's {last_abs:g} s",
                )
            last_abs = step.at_s


def load_plan(path: str | Path, limits: PlanLimits = DEFAULT_LIMITS) -> Plan:
    """Parse and validate a plan file; raises SourceError listing every problem."""
    return _from_source(load(path), limits)


def loads_plan(text: str, name: str = "<plan>", limits: PlanLimits = DEFAULT_LIMITS) -> Plan:
    return _from_source(loads(text, name), limits)


def discover(paths: list[str | Path]) -> list[Path]:
    """Plan files under the given files/directories (*.yaml, *.yml), sorted, de-duplicated.
    Symbolic links to folders are not followed (a link loop cannot make this run forever)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside: list[Path] = []
            for folder, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                inside.extend(Path(folder) / f for f in files if f.endswith((".yaml", ".yml")))
            found.extend(sorted(inside))
        else:
            found.append(p)
    seen: set[str] = set()
    out = []
    for p in found:
        try:
            key = str(p.resolve(strict=False))
        except (OSError, RuntimeError):  # a symlink loop: keep it, loading names the problem
            key = str(p.absolute())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def plan_from_source(src: Source, limits: PlanLimits = DEFAULT_LIMITS) -> Plan:
    return _from_source(src, limits)
