"""Procedures over a block of plan steps: one case per value, sweeps that go on while the result
still rises, and reruns of the worst cases; each case is one run and one row of results.

IEEE 1547.1-2020 5.10 has this shape (and other procedures reuse it): at each output level the
reactive load is detuned from 95 % to 105 % in 1 % steps, on while the clearing times still rise
at either end, and the three longest clearing times are run twice more. A plan writes it as one
`block:` step among its steps:

```yaml
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, switch: {s3: closed}}
  - wait_for: charge_loop
  - block:
      vars: {reactive: 100 %, anti_islanding: "on"}     # defaults of the block's variables
      for_each: {level: [100 %, 66 %, 33 %]}             # one group of cases per value
      first: {anti_islanding: "off"}                     # one case before the sweep, per group
      sweep: {reactive: {from: 95 %, to: 105 %, step: 1 %}, while_rising: islanding:grid_following, at_most: 5}
      repeat_worst: {count: 3, times: 2, of: islanding:grid_following}
      steps:
        - {setpoint: "-{level}", rlc_load: {p: "{level}", reactive: "{reactive}"}}
        - ...
```

`{name}` in a step value stands for the variable: alone it is the value as written, inside text it
is spliced in ("-{level}" -> "-66 %"). Every case re-reads the block's steps with its values, so a
value a step refuses is reported with the file, line and field of the step. The plan as loaded holds
the first case's steps (what validation and the roles it needs see); `cases()` lists the rest and
`run_procedure()` runs them one after the other, each as its own run of the whole plan, deciding
the sweep's extension and the reruns from the results so far.

Shares of the DUT's rating (`setpoint: -66 %`, `rlc_load: {p: 66 %}`) are turned into watts from
the bench (`resolve()`) before a plan runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rig import units
from rig.yamlsrc import Path_, Source, SourceError

if TYPE_CHECKING:
    from pathlib import Path

    from rig.bench import BenchConfig
    from rig.plan import Plan, Step, _Reader
    from rig.runner import RunResult

BLOCK_KEYS = ("vars", "for_each", "first", "sweep", "repeat_worst", "steps")
#: Bounds that keep a procedure finite (rig's own choice): cases per sweep, extension steps,
#: reruns, values per for_each.
MAX_SWEEP_CASES = 200
MAX_EXTEND = 20
MAX_REPEAT = 10
MAX_VALUES = 20
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

CaseRole = Literal["single", "first", "sweep", "extend", "repeat"]


@dataclass(frozen=True)
class Sweep:
    """A variable from `start` to `stop` by `step` (SI, ratios as fractions), written back with
    `unit` ("%"); extended by `step` beyond either end while the result `while_rising` still rises
    there, at most `at_most` cases each way."""

    variable: str
    start: float
    stop: float
    step: float
    unit: str
    dimension: str
    while_rising: str | None = None
    at_most: int = 5

    def text(self, value: float) -> str:
        scale = 100.0 if self.unit == "%" else 1.0
        return f"{round(value * scale, 9):g} {self.unit}".strip()

    def values(self) -> list[float]:
        n = math.floor((self.stop - self.start) / self.step + 1e-9)
        return [self.start + k * self.step for k in range(n + 1)]


@dataclass(frozen=True)
class RepeatWorst:
    """Rerun the `count` cases with the largest `of` result `times` more times (1547.1 5.10: the
    three longest clearing times, twice)."""

    count: int
    times: int
    of: str


@dataclass(frozen=True)
class Block:
    """The plan's `block:` step: where it sits and how its cases are made."""

    position: int
    line: int
    variables: Mapping[str, Any]
    for_each: tuple[tuple[str, tuple[Any, ...]], ...]
    first: Mapping[str, Any] | None
    sweep: Sweep | None
    repeat_worst: RepeatWorst | None
    raw_steps: tuple[Any, ...]
    path: Path_
    source: Source = field(compare=False, repr=False)
    #: Where the block's steps sit among the plan's steps (set when the plan is read).
    before_count: int = 0
    inner_count: int = 0
    #: The first case's values (what the plan as loaded holds) and the plan's raw `checks:`,
    #: which may name the block's variables too (`output_level: "{level}"`).
    first_values: Mapping[str, Any] = field(default_factory=dict)
    raw_checks: Any = None

    def groups(self) -> list[dict[str, Any]]:
        """Every combination of the for_each values (one empty group without for_each)."""
        names = [name for name, _ in self.for_each]
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(values for _, values in self.for_each))
        ]


@dataclass(frozen=True)
class Case:
    """One expanded run: its variable values as written and why it runs."""

    index: int
    group: Mapping[str, Any]
    values: Mapping[str, Any]
    role: CaseRole
    repeat: int = 0

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in self.values.items())
        extra = f", rerun {self.repeat}" if self.repeat else ""
        return f"case {self.index + 1}: {shown}{extra} ({self.role})"


@dataclass
class CaseResult:
    """A case and what its run gave: the decisive result (`of` the sweep or reruns)."""

    case: Case
    run: RunResult
    #: The decisive result's measured value; inf: judged and never happened (an island never
    #: cleared); None: not judged or an error (cannot rank).
    value: float | None
    verdict: str


# ------------------------------------------------------------------------------------- parsing
def parse_block(r: _Reader, position: int, value: Any) -> tuple[Block | None, list[Step]]:
    """Read a `block:` step at steps[position]: the Block and its first case's steps."""
    path: Path_ = ("steps", position, "block")
    src = r.src
    m = r.mapping(path, value, BLOCK_KEYS)
    if "steps" not in m or not isinstance(m["steps"], list) or not m["steps"]:
        src.error((*path, "steps"), "missing: the block's steps (a non-empty list)")
        return None, []
    variables = _mapping(r, (*path, "vars"), m.get("vars"))
    for_each: list[tuple[str, tuple[Any, ...]]] = []
    for name, values in _mapping(r, (*path, "for_each"), m.get("for_each")).items():
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
            src.error((*path, "for_each", name), f"a list of 1 to {MAX_VALUES} values")
            continue
        for_each.append((name, tuple(values)))
    first = _mapping(r, (*path, "first"), m.get("first")) if "first" in m else None
    sweep = _parse_sweep(r, (*path, "sweep"), m.get("sweep")) if "sweep" in m else None
    repeat = (
        _parse_repeat(r, (*path, "repeat_worst"), m.get("repeat_worst"))
        if "repeat_worst" in m
        else None
    )
    known = set(variables) | {n for n, _ in for_each} | ({sweep.variable} if sweep else set())
    for name in first or {}:
        if name not in known:
            src.error((*path, "first", name), "not a variable of the block (vars, for_each, sweep)")
    used = set(_PLACEHOLDER.findall(repr(m["steps"])))
    for name in sorted(used - known):
        src.error((*path, "steps"), f"{{{name}}} is not a variable of the block")
    block = Block(
        position,
        src.line(path),
        variables,
        tuple(for_each),
        first,
        sweep,
        repeat,
        tuple(m["steps"]),
        path,
        src,
    )
    groups = block.groups()
    first_values = {**variables, **groups[0]}
    if first is not None:
        first_values.update(first)
    elif sweep is not None:
        first_values[sweep.variable] = sweep.text(sweep.start)
    if src.problems or used - known:
        return None, []
    block = dataclasses.replace(block, first_values=first_values)
    # Every case known before the run (not the sweep's extension) is read now, so that a value
    # a step refuses is reported when the plan is loaded, not halfway through the procedure.
    for values in _known_cases(block, groups):
        if values != first_values:
            _steps(r, block, values)
            if src.problems:
                return None, []
    return block, _steps(r, block, first_values)


def known_case_count(block: Block) -> int:
    """How many runs the block makes at least: its known cases and the reruns of the worst
    (a sweep's extensions while a result rises come on top; for estimates of a plan's cost)."""
    count = sum(1 for _ in _known_cases(block, block.groups()))
    if block.repeat_worst is not None:
        count += len(block.groups()) * block.repeat_worst.count * block.repeat_worst.times
    return count


def _known_cases(block: Block, groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for group in groups:
        if block.first is not None:
            yield case_values(block, group, **block.first)
        if block.sweep is None:
            yield case_values(block, group)
        else:
            for v in block.sweep.values():
                yield case_values(block, group, **{block.sweep.variable: block.sweep.text(v)})


def _mapping(r: _Reader, path: Path_, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.src.error(path, "expected a mapping of variable: value")
        return {}
    return {str(k): v for k, v in value.items()}


def _parse_sweep(r: _Reader, path: Path_, value: Any) -> Sweep | None:
    m = r.mapping(path, value, ("while_rising", "at_most", *_variables_in(value)))
    names = [k for k in m if k not in ("while_rising", "at_most")]
    if len(names) != 1:
        r.src.error(path, "sweep one variable: {name: {from, to, step}}")
        return None
    (name,) = names
    spec = r.mapping((*path, name), m[name], ("from", "to", "step"))
    missing = [k for k in ("from", "to", "step") if k not in spec]
    for k in missing:
        r.src.error((*path, name, k), "missing")
    if missing:
        return None
    unit = str(spec["from"]).strip().split()[-1] if isinstance(spec["from"], str) else ""
    dimension = "ratio" if unit in ("%", "p.u.") else _dimension_of(str(spec["from"]))
    if dimension is None:
        r.src.error((*path, name, "from"), "a quantity with its unit, e.g. 95 %")
        return None
    got = [r.quantity((*path, name, k), spec[k], dimension) for k in ("from", "to", "step")]
    if any(x is None for x in got):
        return None
    start, stop, step = (float(x) for x in got if x is not None)
    if step <= 0 or stop < start:
        r.src.error((*path, name), "from <= to and a positive step")
        return None
    if (stop - start) / step + 1 > MAX_SWEEP_CASES:
        r.src.error((*path, name), f"more than {MAX_SWEEP_CASES} cases")
        return None
    rising = m.get("while_rising")
    if rising is not None and not isinstance(rising, str):
        r.src.error((*path, "while_rising"), "the name of a result, e.g. islanding:grid_following")
        rising = None
    at_most = m.get("at_most", 5)
    if isinstance(at_most, bool) or not isinstance(at_most, int) or not 0 <= at_most <= MAX_EXTEND:
        r.src.error((*path, "at_most"), f"a whole number 0 .. {MAX_EXTEND}")
        return None
    return Sweep(name, start, stop, step, unit, dimension, rising, at_most)


def _variables_in(value: Any) -> tuple[str, ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(str(k) for k in value if k not in ("while_rising", "at_most"))


def _dimension_of(text: str) -> str | None:
    for dimension in ("power", "reactive_power", "voltage", "frequency", "time"):
        try:
            units.parse(text, dimension)
            return dimension
        except units.UnitError:
            continue
    return None


def _parse_repeat(r: _Reader, path: Path_, value: Any) -> RepeatWorst | None:
    m = r.mapping(path, value, ("count", "times", "of"))
    out: dict[str, int] = {}
    for key in ("count", "times"):
        raw = m.get(key)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_REPEAT:
            r.src.error((*path, key), f"a whole number 1 .. {MAX_REPEAT}")
            return None
        out[key] = raw
    of = m.get("of")
    if not isinstance(of, str) or not of:
        r.src.error((*path, "of"), "missing: the result to rank, e.g. islanding:grid_following")
        return None
    return RepeatWorst(out["count"], out["times"], of)


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """A step's YAML value with `{name}` placeholders replaced by the case's values."""
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    return value


def _steps(r: _Reader, block: Block, values: Mapping[str, Any]) -> list[Step]:
    from rig.plan import _parse_step

    out: list[Step] = []
    for j, raw in enumerate(block.raw_steps):
        step = _parse_step(r, j, substitute(raw, values), (*block.path, "steps", j))
        if step is not None:
            out.append(step)
    return out


# ----------------------------------------------------------------------------------- expansion
def plan_for(plan: Plan, values: Mapping[str, Any]) -> Plan:
    """The plan with its block's steps read for one case's values (a problem raises SourceError
    naming the file, line and field)."""
    from rig.plan import _Reader

    block: Block = plan.block
    src = Source(block.source.file, block.source.data, block.source.lines)
    from rig.plan import _parse_checks

    reader = _Reader(src)
    inner = _steps(reader, block, values)
    checks = _parse_checks(reader, substitute(block.raw_checks, values))
    src.raise_if_problems()
    start, stop = block.before_count, block.before_count + block.inner_count
    steps = [*plan.steps[:start], *inner, *plan.steps[stop:]]
    return dataclasses.replace(plan, steps=tuple(renumber(steps)), checks=tuple(checks))


def renumber(steps: Sequence[Step]) -> list[Step]:
    """Steps numbered in the order they run (a block's steps take their place in the plan)."""
    return [dataclasses.replace(s, index=k) for k, s in enumerate(steps)]


def case_values(block: Block, group: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {**block.variables, **group, **more}


def run_procedure(plan: Plan, run_case: Callable[[Plan, Case], RunResult]) -> Iterator[CaseResult]:
    """Run the block's cases in order, each through `run_case`; the sweep's extension and the
    reruns follow from the results so far. Stops after a case whose run is an error (an
    instrument fault, a step that failed): the bench is not trusted for the rest."""
    block: Block = plan.block
    counter = itertools.count()

    def one(
        group: Mapping[str, Any], values: Mapping[str, Any], role: CaseRole, repeat: int = 0
    ) -> CaseResult:
        case = Case(next(counter), dict(group), dict(values), role, repeat)
        run = run_case(plan_for(plan, values), case)
        of = _decisive(block)
        value, verdict = result_of(run, of) if of else (None, None)
        # A case without the decisive result (the confirmation of a sustained island) shows
        # its run's own outcome.
        return CaseResult(case, run, value, verdict or run.verdict)

    for group in block.groups():
        if block.first is not None:
            res = one(group, case_values(block, group, **block.first), "first")
            yield res
            if res.run.error:
                return
        swept: list[CaseResult] = []
        sweep = block.sweep
        if sweep is None:
            if block.first is None or block.repeat_worst is not None:
                res = one(group, case_values(block, group), "single")
                swept.append(res)
                yield res
                if res.run.error:
                    return
        else:

            def at(
                v: float, role: CaseRole, g: Mapping[str, Any] = group, sw: Sweep = sweep
            ) -> CaseResult:
                return one(g, case_values(block, g, **{sw.variable: sw.text(v)}), role)

            by_value: dict[float, CaseResult] = {}
            for v in sweep.values():
                res = at(v, "sweep")
                by_value[v] = res
                swept.append(res)
                yield res
                if res.run.error:
                    return
            if sweep.while_rising:
                for direction in (+1, -1):
                    for res in _extend(sweep, by_value, direction, at):
                        swept.append(res)
                        yield res
                        if res.run.error:
                            return
        rep = block.repeat_worst
        if rep is not None:
            ranked = [r for r in swept if r.value is not None]
            ranked.sort(key=lambda r: r.value if r.value is not None else -math.inf, reverse=True)
            for worst in ranked[: rep.count]:
                for k in range(1, rep.times + 1):
                    res = one(group, worst.case.values, "repeat", k)
                    yield res
                    if res.run.error:
                        return


def _decisive(block: Block) -> str | None:
    if block.repeat_worst is not None:
        return block.repeat_worst.of
    if block.sweep is not None:
        return block.sweep.while_rising
    return None


def _extend(
    sweep: Sweep,
    by_value: dict[float, CaseResult],
    direction: int,
    run: Callable[[float, CaseRole], CaseResult],
) -> Iterator[CaseResult]:
    """Go on beyond one end of the sweep while the result still rises towards it."""
    values = sorted(by_value)
    if len(values) < 2:
        return
    end, inner = (values[-1], values[-2]) if direction > 0 else (values[0], values[1])
    last, before = by_value[end].value, by_value[inner].value
    for _ in range(sweep.at_most):
        if last is None or before is None or not last > before or math.isinf(last):
            return
        nxt = end + direction * sweep.step
        res = run(nxt, "extend")
        yield res
        if res.run.error:
            return
        end, before, last = nxt, last, res.value


def result_of(run: RunResult, name: str) -> tuple[float | None, str | None]:
    """The named result of a run (its first verdict of that name): the measured value (inf when
    judged and the awaited thing never happened; None when not judged or an error) and the
    verdict (None: the run has no such result). A run that ended in an error has none."""
    if run.error:
        return None, "error"
    for v in run.verdicts:
        if v.name == name:
            if v.verdict in ("error", "not judged"):
                return None, v.verdict
            return (math.inf if v.measured is None else float(v.measured)), v.verdict
    return None, None


# --------------------------------------------------------------------------- shares of the rating
def resolve(plan: Plan, rated_w: float) -> Plan:
    """Setpoints and RLC bank powers written as shares of the DUT's rating, in watts."""
    from rig.plan import RlcBank, Setpoint

    def fix(step: Step) -> Step:
        actions = []
        for a in step.actions:
            if (isinstance(a, Setpoint) and a.share is not None) or (
                isinstance(a, RlcBank) and a.share is not None
            ):
                a = dataclasses.replace(a, p_w=a.share * rated_w)
            actions.append(a)
        return dataclasses.replace(step, actions=tuple(actions))

    return dataclasses.replace(plan, steps=tuple(fix(s) for s in plan.steps))


def rows(results: Sequence[CaseResult], of: str | None = None) -> list[dict[str, Any]]:
    """The table of a procedure: one row per case (record.json and the report); `of` names the
    decisive result whose value each row carries."""
    out: list[dict[str, Any]] = []
    for res in results:
        out.append(
            {
                "case": res.case.index + 1,
                "result": of,
                "role": res.case.role,
                "repeat": res.case.repeat,
                "values": {k: _plain(v) for k, v in res.case.values.items()},
                "value": None
                if res.value is None
                else (None if math.isinf(res.value) else res.value),
                "never": res.value is not None and math.isinf(res.value),
                "verdict": res.verdict,
                "run_verdict": res.run.verdict,
                "trace": str(res.run.trace_path) if res.run.trace_path else None,
                # The scope captures of the case (.npz beside its trace), by file name.
                "captures": [
                    e.data.get("file") or e.data.get("key")
                    for e in getattr(res.run.trace, "events", ())
                    if e.name == "scope_capture"
                ],
                "error": res.run.error,
            }
        )
    return out


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


# ------------------------------------------------------------------------------------- running
def execute_block(
    plan: Plan,
    bench: BenchConfig,
    *,
    seed: int,
    defects: tuple[str, ...],
    out_dir: Path | None,
    out_stem: str | None,
    allow_expired_calibration: bool,
) -> RunResult:
    """Run a plan with a block case by case (rig.runner.execute's expansion hook) and gather
    the cases into one result: every case's verdicts, named with the case, and the table of
    cases. Case k runs with seed + k: on the emulated bench each case draws its own detection
    jitter and noise (and its unit within the bench's variation), as reruns on a real unit
    differ run to run."""
    from rig.runner import RunResult, execute

    stem = out_stem or plan.name
    results: list[CaseResult] = []

    def run_case(case_plan: Plan, case: Case) -> RunResult:
        return execute(
            dataclasses.replace(case_plan, block=None),
            bench,
            seed=seed + case.index,
            defects=defects,
            out_dir=out_dir,
            out_stem=f"{stem}.case{case.index + 1:02d}",
            allow_expired_calibration=allow_expired_calibration,
        )

    refused: str | None = None
    try:
        for res in run_procedure(plan, run_case):
            results.append(res)
            if res.run.interrupted:
                break
    except SourceError as exc:  # a value of the sweep's extension a step refuses
        refused = f"case {len(results) + 1}: {exc}"
    if not results:
        from rig.runner import context_for
        from rig.trace import Trace

        return RunResult(
            plan, [], Trace(), context_for(plan, bench), 0.0, 0.0, refused or "no case ran",
            "none", defects,
        )  # fmt: skip
    verdicts = [
        dataclasses.replace(v, name=f"{v.name} [{res.case.label}]")
        for res in results
        for v in res.run.verdicts
    ]
    failed = next((res for res in results if res.run.error), None)
    shown = _shown(results)
    run = shown.run
    return RunResult(
        plan=plan,
        verdicts=verdicts,
        trace=run.trace,
        context=run.context,
        simulated_s=sum(res.run.simulated_s for res in results),
        wall_s=sum(res.run.wall_s for res in results),
        error=refused if failed is None else f"{failed.case.label}: {failed.run.error}",
        protocol=run.protocol,
        defects=defects,
        instruments=run.instruments,
        trace_path=run.trace_path,
        interrupted=next((r.run.interrupted for r in results if r.run.interrupted), None),
        trace_error=next((r.run.trace_error for r in results if r.run.trace_error), None),
        messages=sum(res.run.messages for res in results),
        cases=rows(results, _decisive(plan.block)),
    )


def _shown(results: Sequence[CaseResult]) -> CaseResult:
    """The case whose trace the result carries: the first error, else the worst case."""
    for res in results:
        if res.run.error:
            return res
    ranked = [r for r in results if r.value is not None]
    if ranked:
        return max(ranked, key=lambda r: r.value if r.value is not None else -math.inf)
    return results[-1]
