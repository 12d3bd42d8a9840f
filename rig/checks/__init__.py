"""Pass/fail criteria: pure functions Trace -> Verdicts, registered by name for the plans.

A check reads only the trace (instrument samples and step markers) and the context the plan and
bench give (battery capacity, reserve, nominal voltage, DUT rating); never the DUT's own claims about
itself, never I/O. Each check cites the clause it implements and has a test in which a defective
emulated DUT fails it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from rig import units
from rig.ev import EVSpec
from rig.trace import Trace
from rig.yamlsrc import Path_, Source

Outcome = Literal["pass", "fail", "error"]


class Relation(StrEnum):
    """How a measured value must stand to its limit for the check to pass: stored in the verdict
    by the check that judged it, so that no report guesses it from the check's name."""

    AT_MOST = "≤"  # measured ≤ limit passes (a time limit, an overshoot)
    AT_LEAST = "≥"  # measured ≥ limit passes (a floor: the reserve)


@dataclass(frozen=True)
class Context:
    """What the checks know besides the trace: set up by the rig, not reported by the DUT."""

    ev: EVSpec
    v_nominal: float = 230.0
    f_nominal: float = 50.0
    evse_rated_w: float = 11_000.0


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

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def as_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "measured": self.measured,
            "limit": self.limit,
            "unit": self.unit,
            "relation": None if self.relation is None else self.relation.value,
            "detail": self.detail,
            "clause": self.clause,
            "params": dict(self.params),
        }


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
            verdicts = [
                Verdict(
                    self.name, "error", None, None, "", f"check failed to run: {exc!r}", self.clause
                )
            ]
        # Every verdict carries the parameters it was judged with (record.json, the report).
        return [v if v.params else replace(v, params=dict(full)) for v in verdicts]


REGISTRY: dict[str, CheckSpec] = {}
#: (check, param) -> predicate over the other parameters: the param is required only if True.
REQUIRED_IF: dict[tuple[str, str], Callable[[Mapping[str, Any]], bool]] = {}


def register(
    name: str, *, summary: str, clause: str, params: Mapping[str, Param] | None = None
) -> Callable[[CheckFn], CheckFn]:
    def deco(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = CheckSpec(name, fn, summary, clause, dict(params or {}))
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
    discharge_limits,
    fault_reaction,
    islanding,
    pilot,
    protocol_timing,
    reserve,
    sequence,
    tls_session,
    transition,
)
