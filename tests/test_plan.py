"""Plan format: parsing into typed steps, and validation that names file, line and field."""

from pathlib import Path

import pytest

from rig.cli import main
from rig.plan import GridOutput, GridSet, Hold, HomeRLC, Setpoint, WaitFor, loads_plan
from rig.validation import validate_files
from rig.yamlsrc import SourceError

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
title: t
dut: evse
ev: {capacity: 60 kWh, soc: 50 %, reserve: 30 %}
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: {rlc: {p: 3 kW, quality_factor: 1.0}}}
  - wait_for: charge_loop
  - {at: +10 s, setpoint: -7 kW}
  - {wait_for: {soc_below: 45 %}, timeout: 2 h}
  - grid: off
  - hold: 10 min
checks:
  - islanding: {mode: grid_following}
  - reserve_floor: {}
"""


def test_parses_steps_into_typed_actions() -> None:
    p = loads_plan(GOOD, "good.yaml")
    assert p.ev.capacity_wh == 60000 and p.ev.reserve_soc == pytest.approx(0.3)
    kinds = [type(a) for s in p.steps for a in s.actions]
    assert kinds == [GridSet, HomeRLC, WaitFor, Setpoint, WaitFor, GridOutput, Hold]
    assert p.steps[2].relative and p.steps[2].at_s == 10
    assert p.steps[3].actions[0] == WaitFor("soc_below", pytest.approx(0.45), 7200.0)
    assert [s.line for s in p.steps] == [5, 6, 7, 8, 9, 10]
    assert p.checks[0].params["within"] == 2.0  # the 1547 default filled in


def test_every_default_plan_is_valid() -> None:
    assert validate_files([REPO / "test_plans"]).problems == []


def _problems(text: str) -> list[str]:
    with pytest.raises(SourceError) as exc:
        loads_plan(text, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_reports_every_problem_with_file_line_and_field() -> None:
    bad = GOOD.replace("soc: 50 %", "soc: 50").replace("setpoint: -7 kW", "setpoint: -7 kWh")
    bad = bad.replace("wait_for: charge_loop", "wait_for: charge_lop").replace(
        "hold: 10 min", "hld: 10 min"
    )
    bad = bad.replace("reserve_floor: {}", "reserve_floor: {tolerence: 1 %}")
    problems = _problems(bad)
    assert "p.yaml:3: ev.soc: 50 has no unit; write it like '30 %'" in problems
    assert any(
        p.startswith("p.yaml:6: steps[1].wait_for: 'charge_lop' is not one of")
        and "did you mean 'charge_loop'" in p
        for p in problems
    )
    assert any(
        p.startswith("p.yaml:7: steps[2].setpoint: '-7 kWh': unit 'kWh' is not a power")
        for p in problems
    )
    assert any(
        p.startswith("p.yaml:10: steps[5].hld: unknown field; did you mean 'hold'?")
        for p in problems
    )
    assert any(
        p.startswith("p.yaml:13: checks[1].reserve_floor.tolerence: unknown parameter")
        for p in problems
    )


def test_grid_forming_islanding_needs_a_transfer_time() -> None:
    problems = _problems(GOOD.replace("mode: grid_following", "mode: grid_forming"))
    assert problems == [
        "p.yaml:12: checks[0].islanding.transfer_within: missing: grid-forming: "
        "the transfer time limit, e.g. 200 ms"
    ]


def test_syntax_error_names_the_line() -> None:
    problems = _problems(GOOD.replace("  - grid: off", "  - grid: [off"))
    assert problems == [
        "p.yaml:10: (syntax): expected ',' or ']', but got ':' "
        "(while parsing a flow sequence on line 9)"
    ]


def test_wait_for_a_measured_condition_needs_a_timeout() -> None:
    problems = _problems(
        GOOD.replace("{wait_for: {soc_below: 45 %}, timeout: 2 h}", "{wait_for: {soc_below: 45 %}}")
    )
    assert problems == [
        "p.yaml:8: steps[3].timeout: missing: a wait for soc_below needs a timeout (e.g. timeout: 2 h)"
    ]


def test_wait_and_action_cannot_share_a_step() -> None:
    problems = _problems(GOOD.replace("- grid: off", "- {grid: off, hold: 1 s}"))
    assert problems == [
        "p.yaml:9: steps[4]: wait_for and hold stand alone in their step (split the step)"
    ]


def test_validate_cli_exits_2_and_prints_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("capacity: 60 kWh", "capacity: 60 kW"))
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"{bad}:3: ev.capacity: '60 kW': unit 'kW' is not a energy; write it like '60 kWh'"
    ]
    assert main(["validate", str(REPO / "test_plans")]) == 0
