"""The plan format of procedures (rig.procedure): a block of steps run once per case, a sweep
extended while its result still rises, reruns of the worst cases; new steps for the RLC bank,
the switch unit and the DUT's anti-islanding; every problem named with file and line."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rig.plan import DutControl, RlcBank, Setpoint, SwitchSet, loads_plan
from rig.procedure import Case, plan_for, resolve, rows, run_procedure
from rig.yamlsrc import SourceError

HEAD = """\
title: t
dut: evse
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 80 %, reserve: 30 %}
"""


def _plan(block: str, checks: str = "  - islanding: {mode: grid_following}\n") -> str:
    return (
        HEAD
        + "steps:\n"
        + "  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, switch: {s3: closed}}\n"
        + "  - wait_for: charge_loop\n"
        + block
        + "  - mark: after\n"
        + "checks:\n"
        + checks
    )


BLOCK = """\
  - block:
      vars: {reactive: 100 %, ai: "on"}
      for_each: {level: [100 %, 50 %]}
      first: {ai: "off"}
      sweep: {reactive: {from: 98 %, to: 102 %, step: 1 %}, while_rising: islanding:grid_following, at_most: 2}
      repeat_worst: {count: 2, times: 2, of: islanding:grid_following}
      steps:
        - {setpoint: "-{level}", dut_control: {anti_islanding: "{ai}"}}
        - rlc_load: {p: "{level}", quality_factor: 1.0, reactive: "{reactive}"}
        - switch: {s3: open}
        - hold: 13 s
"""


def test_the_new_steps_read_as_typed_actions() -> None:
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    kinds = [type(a) for s in plan.steps for a in s.actions]
    assert kinds.count(RlcBank) == 1 and kinds.count(SwitchSet) == 2
    assert DutControl(False) in [a for s in plan.steps for a in s.actions]  # the first case
    bank = next(a for s in plan.steps for a in s.actions if isinstance(a, RlcBank))
    assert bank.share == 1.0 and bank.reactive_pct == 100.0 and bank.branch == "capacitive"
    assert [s.index for s in plan.steps] == list(range(len(plan.steps)))
    assert plan.steps[-1].actions[0].__class__.__name__ == "Mark"  # steps after the block stay
    assert plan.needed_roles() >= {"rlc_load", "switch_unit"}


def test_a_case_reads_the_block_with_its_values_and_shares_become_watts() -> None:
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    case = resolve(plan_for(plan, {"reactive": "97 %", "ai": "on", "level": "50 %"}), 11_000.0)
    actions = [a for s in case.steps for a in s.actions]
    setpoint = next(a for a in actions if isinstance(a, Setpoint))
    bank = next(a for a in actions if isinstance(a, RlcBank))
    assert setpoint.p_w == pytest.approx(-5500.0) and setpoint.share == pytest.approx(-0.5)
    assert bank.p_w == pytest.approx(5500.0) and bank.reactive_pct == pytest.approx(97.0)
    assert DutControl(True) in actions
    assert len(case.steps) == len(plan.steps)


def test_checks_take_the_cases_values_too() -> None:
    plan = loads_plan(
        _plan(BLOCK, "  - islanding: {mode: grid_following, output_level: '{level}'}\n"), "p.yaml"
    )
    assert plan.checks[0].params["output_level"] == pytest.approx(1.0)
    case = plan_for(plan, {"reactive": "97 %", "ai": "on", "level": "50 %"})
    assert case.checks[0].params["output_level"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (
            ('reactive: "{reactive}"', 'reactive: "{reactiv}"'),
            "p.yaml:14",
            "{reactiv} is not a variable",
        ),
        (("from: 98 %", "from: 103 %"), "p.yaml:12", "from <= to"),
        (("times: 2", "times: 0"), "p.yaml:13", "repeat_worst.times: a whole number"),
        (('first: {ai: "off"}', 'first: {aj: "off"}'), "p.yaml:11", "first.aj: not a variable"),
        (("switch: {s3: open}", "switch: {s3: ajar}"), "p.yaml:17", "'ajar': write open or closed"),
        (("at_most: 2", "at_most: 99"), "p.yaml:12", "at_most: a whole number"),
    ],
)
def test_a_bad_block_is_named_with_file_line_and_field(
    change: tuple[str, str], where: str, message: str
) -> None:
    with pytest.raises(SourceError) as caught:
        loads_plan(_plan(BLOCK.replace(*change)), "p.yaml")
    text = str(caught.value)
    assert where in text and message in text, text


def test_a_value_a_case_brings_is_refused_with_the_steps_line() -> None:
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    with pytest.raises(SourceError) as caught:
        plan_for(plan, {"reactive": "170 %", "ai": "on", "level": "50 %"})
    assert "p.yaml:16: steps[2].block.steps[1].rlc_load.reactive: 170 % is outside" in str(
        caught.value
    )


def test_two_blocks_or_a_block_with_company_are_refused() -> None:
    with pytest.raises(SourceError, match="one block per plan"):
        loads_plan(_plan(BLOCK + BLOCK), "p.yaml")
    with pytest.raises(SourceError, match="a block stands alone"):
        loads_plan(_plan(BLOCK.replace("  - block:", "  - hold: 1 s\n    block:", 1)), "p.yaml")


# ------------------------------------------------------------------------------ running cases
@dataclass
class _Verdict:
    name: str
    verdict: str
    measured: float | None


@dataclass
class _Run:
    """What run_procedure reads of a RunResult."""

    verdicts: list[_Verdict]
    error: str | None = None
    interrupted: str | None = None
    trace_path: Any = None
    trace: Any = None
    verdict: str = "pass"
    extra: dict[str, Any] = field(default_factory=dict)


def _fake(times: dict[tuple[str, str], float | None], error_at: int | None = None) -> Any:
    """A run_case giving the clearing time `times[(level, reactive)]` (None: never cleared)."""
    seen: list[Case] = []

    def run_case(plan: Any, case: Case) -> _Run:
        seen.append(case)
        if case.index == error_at:
            return _Run([], error="grid (X): no answer after 'OUTP?'", verdict="error")
        if case.role == "first":
            return _Run([_Verdict("islanding:sustained", "pass", 12.0)])
        value = times[(case.values["level"], case.values["reactive"])]
        verdict = "fail" if value is None or value > 2.0 else "pass"
        return _Run([_Verdict("islanding:grid_following", verdict, value)], verdict=verdict)

    run_case.seen = seen  # type: ignore[attr-defined]
    return run_case


def _times() -> dict[tuple[str, str], float | None]:
    out: dict[tuple[str, str], float | None] = {}
    for level in ("100 %", "50 %"):
        for pct in range(90, 111):
            out[(level, f"{pct} %")] = 0.1
    # At 100 %: rising towards the top end (102 %) and on to 103 %, falling at 104 %.
    out.update({("100 %", "101 %"): 0.2, ("100 %", "102 %"): 0.3, ("100 %", "103 %"): 0.4})
    out[("100 %", "104 %")] = 0.35
    # At 50 %: still rising at the bottom end; the extension stops after at_most (2) steps.
    out.update({("50 %", "99 %"): 0.2, ("50 %", "98 %"): 0.3})
    out.update({("50 %", "97 %"): 0.5, ("50 %", "96 %"): 0.6, ("50 %", "95 %"): 0.7})
    return out


def test_the_sweep_goes_on_while_rising_and_the_worst_cases_are_rerun() -> None:
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    run_case = _fake(_times())
    results = list(run_procedure(plan, run_case))
    by_level: dict[str, list[tuple[str, str, int]]] = {}
    for res in results:
        c = res.case
        by_level.setdefault(c.values["level"], []).append((c.role, c.values["reactive"], c.repeat))
    top = by_level["100 %"]
    assert top[0] == ("first", "100 %", 0)
    assert [r for role, r, _k in top if role == "sweep"] == [
        "98 %",
        "99 %",
        "100 %",
        "101 %",
        "102 %",
    ]
    assert [(r, k) for role, r, k in top if role == "extend"] == [("103 %", 0), ("104 %", 0)]
    # the three... two longest (count 2): 103 % (0.4) and 104 % (0.35), twice each
    assert [(r, k) for role, r, k in top if role == "repeat"] == [
        ("103 %", 1),
        ("103 %", 2),
        ("104 %", 1),
        ("104 %", 2),
    ]
    low = by_level["50 %"]
    assert [r for role, r, _ in low if role == "extend"] == ["97 %", "96 %"]  # at_most 2
    assert [(r, k) for role, r, k in low if role == "repeat"][:2] == [("96 %", 1), ("96 %", 2)]
    assert [res.case.index for res in results] == list(range(len(results)))


def test_a_case_that_never_clears_is_the_worst_and_ends_the_extension() -> None:
    times = _times()
    times[("100 %", "102 %")] = None
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    results = list(run_procedure(plan, _fake(times)))
    top = [r for r in results if r.case.values["level"] == "100 %"]
    assert not [r for r in top if r.case.role == "extend" and r.case.values["reactive"] > "102"]
    worst = next(r for r in top if r.case.role == "repeat")
    assert worst.case.values["reactive"] == "102 %" and worst.value == math.inf
    table = rows(results)
    never = next(row for row in table if row["values"]["reactive"] == "102 %")
    assert never["never"] is True and never["value"] is None and never["verdict"] == "fail"


def test_a_run_error_stops_the_procedure() -> None:
    plan = loads_plan(_plan(BLOCK), "p.yaml")
    results = list(run_procedure(plan, _fake(_times(), error_at=3)))
    assert len(results) == 4 and results[-1].run.error is not None
    assert rows(results)[-1]["verdict"] == "error"


def _cases(plan_text: str) -> Iterator[Case]:
    for res in run_procedure(loads_plan(plan_text, "p.yaml"), _fake(_times())):
        yield res.case


def test_without_sweep_or_first_each_group_runs_once() -> None:
    block = BLOCK.replace('      first: {ai: "off"}\n', "")
    block = "\n".join(
        line for line in block.splitlines() if "sweep:" not in line and "repeat_worst" not in line
    )
    cases = list(_cases(_plan(block + "\n")))
    assert [(c.role, c.values["level"]) for c in cases] == [("single", "100 %"), ("single", "50 %")]


def test_every_case_known_before_the_run_is_checked_when_the_plan_loads() -> None:
    block = BLOCK.replace("to: 102 %, step: 1 %", "to: 160 %, step: 20 %")
    with pytest.raises(SourceError) as caught:
        loads_plan(_plan(block), "p.yaml")
    assert "p.yaml:16: steps[2].block.steps[1].rlc_load.reactive: 158 % is outside 50 .. 150 %" in (
        str(caught.value)
    )
