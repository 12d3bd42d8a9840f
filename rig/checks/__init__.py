"""Pass/fail criteria: pure functions Trace -> Verdicts, registered by name for the plans.

A check reads only the trace (instrument samples and step markers) and the context the plan and
bench give (battery capacity, reserve, nominal voltage, DUT rating, the instruments' accuracy);
never the DUT's own claims about itself, never I/O. Each check cites the clause it implements and
has a test in which a defective emulated DUT fails it.

A verdict is one of five outcomes. `pass` and `fail` come from the decision rule (decision.py)
applied to a measured value, its limit and its measurement uncertainty; `inconclusive` when the
value lies within the uncertainty of the limit; `error` when the data cannot support a judgement
(a gap in a judged window, sampling too slow for the limit, a channel missing); `not judged` when
the run did not create the conditions the criterion needs (the EVSE exported nothing when the
grid was lost, the plan stopped watching too early). Only `pass` lets a run pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rig import units
from rig.checks.decision import DecisionRule, Relation, decide
from rig.checks.uncertainty import Instrumentation
from rig.day import DaySpec
from rig.ev import EVSpec
from rig.trace import Trace
from rig.yamlsrc import Path_, Source

Outcome = Literal["pass", "fail", "error", "inconclusive", "not judged"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "error", "inconclusive", "not judged")
#: How a run's verdict follows from its checks': the first outcome of this list any check has.
#: An error or a criterion not judged is never hidden behind a failure or a pass.
RUN_PRECEDENCE: tuple[Outcome, ...] = ("error", "not judged", "fail", "inconclusive", "pass")

__all__ = [
    "OUTCOMES",
    "REGISTRY",
    "CheckSpec",
    "Context",
    "DecisionRule",
    "Marker",
    "Outcome",
    "Param",
    "Relation",
    "Verdict",
    "judged",
    "not_judged",
    "problem",
    "register",
    "run_checks",
    "run_outcome",
]


@dataclass(frozen=True)
class Context:
    """What the checks know besides the trace: set up by the rig, not reported by the DUT."""

    ev: EVSpec
    v_nominal: float = 230.0
    f_nominal: float = 50.0
    evse_rated_w: float = 11_000.0
    #: The accuracy of every channel the bench's instruments write (bench file, model defaults).
    instrumentation: Instrumentation = field(default_factory=Instrumentation)
    #: What every verdict of the run must say (an instrument run past its calibration date).
    caveats: tuple[str, ...] = ()
    #: A day plan's tariff, departure, home load and outages (rig.day.DaySpec); None otherwise.
    day: DaySpec | None = None


@dataclass(frozen=True)
class Marker:
    """Something the report draws: a threshold (value on a channel), a time (a measured instant), a
    band or span, or the zoom window (t0, t1) where the check's decisive transient is."""

    kind: Literal["threshold", "time", "band", "span", "zoom"]
    label: str
    value: float | tuple[float, float]
    channel: str = ""


@dataclass(frozen=True)
class Verdict:
    name: str
    verdict: Outcome
    measured: float | None
    limit: float | None
    unit: str
    detail: str
    clause: str = ""
    markers: tuple[Marker, ...] = ()
    #: measured ≤ or ≥ limit to pass; None where the check did not say (shown without a relation).
    relation: Relation | None = None
    #: The check's parameters as it ran (the plan's values over the defaults, in SI).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Expanded measurement uncertainty of `measured`, same unit (None: not a measured figure).
    uncertainty: float | None = None
    #: The decision rule the outcome came from ("" where no rule applied: error, not judged).
    decision_rule: str = ""
    #: What the run says about every verdict (an instrument past its calibration date).
    caveats: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def as_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "verdict": self.verdict,
            "measured": self.measured,
            "uncertainty": self.uncertainty,
            "limit": self.limit,
            "unit": self.unit,
            "relation": None if self.relation is None else self.relation.value,
            "detail": self.detail,
            "clause": self.clause,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "decision_rule": self.decision_rule,
        }
        if self.caveats:
            out["caveats"] = list(self.caveats)
        return out


def _plain(value: Any) -> Any:
    """A parameter as JSON carries it (enums as their value, tuples as lists)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    return str(value)


def run_outcome(outcomes: Iterable[str]) -> Outcome:
    """The run's outcome from its checks' (RUN_PRECEDENCE); no check at all is "not judged"."""
    seen = set(outcomes)
    if not seen:
        return "not judged"
    if seen - set(OUTCOMES):
        return "error"  # an outcome this module does not know is never a pass
    return next(outcome for outcome in RUN_PRECEDENCE if outcome in seen)


def judged(
    name: str,
    measured: float | None,
    limit: float,
    relation: Relation,
    unit: str,
    uncertainty: float,
    params: Mapping[str, Any],
    detail: str,
    clause: str,
    markers: tuple[Marker, ...] = (),
) -> Verdict:
    """A verdict on a measured value by the check's decision rule (parameter `decision_rule`).
    `measured` None means the awaited thing never happened (a response that never came): it is
    judged as infinitely beyond the limit."""
    rule = DecisionRule(params.get("decision_rule", DecisionRule.SIMPLE))
    value = measured
    if value is None:
        value = math.inf if relation is Relation.AT_MOST else -math.inf
    outcome = decide(value, limit, relation, uncertainty, rule)
    u = uncertainty if math.isfinite(uncertainty) else None
    if outcome == "inconclusive":
        detail += (
            f"; within the measurement uncertainty (±{_short(uncertainty)} {unit}) of the limit"
        )
    return Verdict(
        name,
        outcome,
        measured,
        limit,
        unit,
        detail,
        clause,
        markers,
        relation=relation,
        uncertainty=u,
        decision_rule=rule.description,
    )


def _short(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "∞"


def not_judged(
    name: str,
    reason: str,
    clause: str,
    *,
    unit: str = "",
    limit: float | None = None,
    relation: Relation | None = None,
    markers: tuple[Marker, ...] = (),
) -> Verdict:
    """The run did not create the conditions the criterion needs: never a pass."""
    return Verdict(
        name, "not judged", None, limit, unit, reason, clause, markers, relation=relation
    )


def problem(
    name: str,
    reason: str,
    clause: str,
    *,
    unit: str = "",
    limit: float | None = None,
    relation: Relation | None = None,
    markers: tuple[Marker, ...] = (),
) -> Verdict:
    """The data cannot support a judgement (a gap, sampling too slow, a channel missing)."""
    return Verdict(name, "error", None, limit, unit, reason, clause, markers, relation=relation)


@dataclass(frozen=True)
class Param:
    """One check parameter as a plan writes it: a quantity of a dimension, a choice or a number."""

    dimension: str  # a units dimension, "number" or "choice"
    default: Any = None  # in the plan's notation ("2 s"); None = required
    choices: tuple[str, ...] = ()
    help: str = ""
    #: Accepted range of a quantity or number, in SI (ratios as fractions). A limit of a check is
    #: never negative; `positive` excludes zero (a 0 s time limit judges nothing).
    high: float = math.inf
    positive: bool = False

    def out_of_range(self, value: float) -> str | None:
        if not math.isfinite(value):
            return "must be finite"
        if value < 0 or (self.positive and value == 0):
            return "must be positive" if self.positive else "must not be negative"
        if value > self.high:
            shown = f"{self.high * 100:g} %" if self.dimension == "ratio" else f"{self.high:g}"
            return f"must be at most {shown}"
        return None


CheckFn = Callable[[Trace, Context, Mapping[str, Any]], list[Verdict]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: CheckFn
    summary: str
    clause: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, p in self.params.items():
            if p.default is not None:
                out[key] = (
                    p.default
                    if p.dimension in ("choice", "number")
                    else units.parse(p.default, p.dimension)
                )
        return out

    def parse_params(self, raw: Any, src: Source, path: Path_) -> dict[str, Any] | None:
        """Validate a plan's parameters for this check; problems go to `src` with their lines."""
        if not isinstance(raw, dict):
            src.error(path, "parameters are a mapping, e.g. {} or {within: 2 s}")
            return None
        ok = True
        out = self.defaults()
        for key, value in raw.items():
            p = self.params.get(key)
            if p is None:
                import difflib

                hint = difflib.get_close_matches(key, list(self.params), n=1)
                known = ", ".join(self.params) or "none"
                src.error(
                    (*path, key),
                    f"unknown parameter of {self.name}"
                    + (f"; did you mean {hint[0]!r}?" if hint else f" (known: {known})"),
                )
                ok = False
                continue
            if p.dimension == "choice":
                if value not in p.choices:
                    src.error((*path, key), f"{value!r} is not one of {', '.join(p.choices)}")
                    ok = False
                    continue
                out[key] = value
            elif p.dimension == "number":
                if not isinstance(value, int | float) or isinstance(value, bool):
                    src.error((*path, key), f"expected a number, got {value!r}")
                    ok = False
                    continue
                out[key] = float(value)
            else:
                try:
                    out[key] = units.parse(value, p.dimension)
                except units.UnitError as exc:
                    src.error((*path, key), str(exc))
                    ok = False
                    continue
            if p.dimension != "choice":
                problem = p.out_of_range(out[key])
                if problem:
                    src.error((*path, key), problem)
                    ok = False
        for key, p in self.params.items():
            if p.default is None and key not in out and self._required(key, out):
                src.error((*path, key), f"missing: {p.help or 'required'}")
                ok = False
        return out if ok else None

    def _required(self, key: str, values: Mapping[str, Any]) -> bool:
        req = REQUIRED_IF.get((self.name, key))
        return req(values) if req else True

    def run(self, trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
        full = {**self.defaults(), **params}
        try:
            verdicts = self.fn(trace, ctx, full)
        except Exception as exc:  # a check that cannot judge says so; it never passes silently
            verdicts = [problem(self.name, f"check failed to run: {exc!r}", self.clause)]
        if not verdicts:  # a check that judged nothing says so
            verdicts = [not_judged(self.name, "the check found nothing to judge", self.clause)]
        # Every verdict carries the parameters it was judged with and the run's caveats.
        return [
            replace(
                v,
                params=v.params or dict(full),
                caveats=tuple(dict.fromkeys((*v.caveats, *ctx.caveats))),
            )
            for v in verdicts
        ]


REGISTRY: dict[str, CheckSpec] = {}
#: (check, param) -> predicate over the other parameters: the param is required only if True.
REQUIRED_IF: dict[tuple[str, str], Callable[[Mapping[str, Any]], bool]] = {}


#: Parameters every check takes.
COMMON_PARAMS: Mapping[str, Param] = {
    "decision_rule": Param(
        "choice",
        DecisionRule.SIMPLE.value,
        choices=tuple(r.value for r in DecisionRule),
        help="simple acceptance, or guarded acceptance with a guard band of the uncertainty "
        "(ILAC-G8 style; rig.checks.decision)",
    ),
}


def register(
    name: str, *, summary: str, clause: str, params: Mapping[str, Param] | None = None
) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = CheckSpec(name, fn, summary, clause, {**(params or {}), **COMMON_PARAMS})
        return fn

    return deco


def run_checks(
    trace: Trace, ctx: Context, specs: list[tuple[str, Mapping[str, Any]]]
) -> list[Verdict]:
    out: list[Verdict] = []
    for name, params in specs:
        out.extend(REGISTRY[name].run(trace, ctx, params))
    return out


# Register the built-in criteria (import for side effect, after REGISTRY exists).
from rig.checks import (  # noqa: E402, F401
    departure,
    discharge_limits,
    fault_reaction,
    islanding,
    outage,
    pilot,
    protocol_timing,
    reserve,
    sequence,
    tariff,
    tls_session,
    transition,
    v2h,
)
