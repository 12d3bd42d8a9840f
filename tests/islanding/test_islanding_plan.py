"""IEEE 1547.1-2020 5.10 as a plan on the emulated islanding bench: the good DUT passes every
case; the islanding defects fail; the clearing time comes from the scope capture (kept beside the
trace) or, on a bench without a scope, from the analyzer; the preconditions hold the verdict back
when the procedure's conditions were not made."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rig.bench import load_bench
from rig.plan import load_plan, loads_plan
from rig.runner import execute
from rig.trace import Trace

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated-islanding.yaml")
PLAN_PATH = REPO / "test_plans/islanding/ieee1547_1_5_10.yaml"


def _reduced(**swaps: str) -> str:
    """The 5.10 plan with fewer cases (one level, 99-101 %, one rerun of the worst): the same
    steps and checks, for the defect and precondition tests."""
    text = PLAN_PATH.read_text()
    replacements = {
        "for_each: {level: [100 %, 50 %, 90 %]}": "for_each: {level: [100 %]}",
        "reactive: {from: 95 %, to: 105 %, step: 1 %}": "reactive: {from: 99 %, to: 101 %, step: 1 %}",
        "at_most: 5": "at_most: 1",
        "repeat_worst: {count: 3, times: 2,": "repeat_worst: {count: 1, times: 1,",
        **swaps,
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _one_case(body: str) -> str:
    """A single case of the procedure written out, for precondition tests."""
    return f"""\
title: one 5.10 case
dut: evse
session: {{service: DC_BPT, control_mode: dynamic}}
ev: {{capacity: 60 kWh, soc: 80 %, reserve: 30 %}}
steps:
  - {{at: 0 s, grid: {{voltage: 230 V, frequency: 50 Hz}}, switch: {{s3: closed}}}}
  - wait_for: charge_loop
{body}
checks:
  - islanding: {{mode: grid_following, within: 2 s, output_level: 100 %, balance: 0.02 p.u.}}
"""


CASE = """\
  - setpoint: -100 %
  - hold: 5 s
  - rlc_load: {p: match_output, quality_factor: 1.0}
  - hold: 5 s
  - switch: {s3: open}
  - hold: 13 s
"""


@pytest.mark.slow  # the whole procedure: about 60 cases, under a minute
def test_the_full_procedure_passes_the_good_dut_with_one_row_per_case(tmp_path: Path) -> None:
    result = execute(load_plan(PLAN_PATH), BENCH, seed=11, out_dir=tmp_path)
    assert result.error is None and result.verdict == "pass", [
        (v.name, v.verdict, v.detail) for v in result.verdicts if v.verdict != "pass"
    ]
    rows = result.cases
    levels = [r["values"]["level"] for r in rows]
    assert sorted(set(levels)) == ["100 %", "50 %", "90 %"]
    for level in ("100 %", "50 %", "90 %"):
        mine = [r for r in rows if r["values"]["level"] == level]
        assert mine[0]["role"] == "first" and mine[0]["values"]["anti_islanding"] == "off"
        swept = [r["values"]["reactive"] for r in mine if r["role"] == "sweep"]
        assert swept == [f"{p} %" for p in range(95, 106)]
        assert len([r for r in mine if r["role"] == "repeat"]) == 6  # three worst, twice each
        cleared = [r["value"] for r in mine if r["role"] != "first"]
        assert all(0.0 < v < 2.0 for v in cleared)
    # Each case is its own run with its trace and its scope capture beside it.
    assert len(list(tmp_path.glob("ieee1547_1_5_10.case*.trace.jsonl"))) == len(rows)
    assert len(list(tmp_path.glob("ieee1547_1_5_10.case*.capture1.npz"))) == len(rows)
    sustained = [v for v in result.verdicts if v.name.startswith("islanding:sustained")]
    assert len(sustained) == 3 and all(v.measured and v.measured >= 10.0 for v in sustained)
    following = [v for v in result.verdicts if v.name.startswith("islanding:grid_following")]
    assert len(following) == len(rows) - 3
    assert all("source: scope capture" in v.detail for v in following)


@pytest.mark.parametrize("defect", ["slow_island_detection", "no_island_detection"])
def test_the_islanding_defects_fail_the_procedure(defect: str, tmp_path: Path) -> None:
    plan = loads_plan(_reduced(), str(PLAN_PATH))
    result = execute(plan, BENCH, seed=3, defects=(defect,), out_dir=tmp_path)
    assert result.error is None and result.verdict == "fail"
    judged = [r for r in result.cases if r["role"] != "first"]
    assert judged and all(r["verdict"] == "fail" for r in judged)
    if defect == "slow_island_detection":
        assert all(r["value"] is not None and 2.9 < r["value"] < 3.3 for r in judged)
    else:
        assert all(r["never"] for r in judged)
    # The confirmation with anti-islanding off does not depend on the defect: it still passes.
    first = [r for r in result.cases if r["role"] == "first"]
    assert [r["verdict"] for r in first] == ["pass"]


def test_the_good_dut_passes_the_reduced_procedure_too(tmp_path: Path) -> None:
    result = execute(loads_plan(_reduced(), str(PLAN_PATH)), BENCH, seed=3, out_dir=tmp_path)
    assert result.verdict == "pass"


def test_the_capture_is_kept_beside_the_trace_and_judged_again_from_disk(tmp_path: Path) -> None:
    from rig.checks import run_checks
    from rig.runner import context_for

    plan = loads_plan(_one_case(CASE), "case.yaml")
    result = execute(plan, BENCH, seed=5, out_dir=tmp_path)
    assert result.verdict == "pass"
    (event,) = result.trace.events_named("scope_capture")
    npz = tmp_path / event.data["file"]
    assert npz.exists() and event.data["sample_rate_hz"] == pytest.approx(40_000.0)
    with np.load(npz) as data:
        assert set(data.files) == {"t", "probe:evse_ac.v", "probe:evse_ac.i"}
        assert data["t"].size == event.data["points"]
    # A trace read back from disk finds its capture through the event and gives the same result.
    assert result.trace_path is not None
    again = run_checks(
        Trace.load(result.trace_path),
        context_for(plan, BENCH),
        [(c.name, c.params) for c in plan.checks],
    )
    assert [v.measured for v in again] == [v.measured for v in result.verdicts]
    # The clearing time against the analyzer's own view: the island is gone within a few cycles
    # of the scope's instant in both.
    (verdict,) = result.verdicts
    assert verdict.measured is not None and 0.03 < verdict.measured < 0.3
    assert verdict.uncertainty == pytest.approx(2 / 40_000.0)


def test_without_a_scope_the_check_falls_back_to_the_analyzer_and_says_so(tmp_path: Path) -> None:
    no_scope = dataclasses.replace(
        BENCH, instruments=tuple(i for i in BENCH.instruments if i.role != "scope")
    )
    result = execute(loads_plan(_one_case(CASE), "case.yaml"), no_scope, seed=5)
    (verdict,) = result.verdicts
    assert verdict.verdict == "pass" and "source: the power analyzer" in verdict.detail
    assert not result.trace.events_named("scope_capture")


def test_an_unbalanced_bank_is_not_judged_with_the_measured_imbalance(tmp_path: Path) -> None:
    unbalanced = CASE.replace("p: match_output", "p: 80 %")
    result = execute(loads_plan(_one_case(unbalanced), "case.yaml"), BENCH, seed=5)
    (verdict,) = result.verdicts
    assert verdict.verdict == "not judged"
    assert "the RLC bank was not balanced" in verdict.detail and "through S3" in verdict.detail
    assert result.verdict == "not judged"


def test_an_island_that_collapses_with_anti_islanding_off_is_not_judged() -> None:
    # Detuned by 20 %: the island's frequency runs off and the passive trips end it, so the
    # confirmation case cannot show a sustained island.
    case = "  - {setpoint: -100 %, dut_control: {anti_islanding: 'off'}}\n" + CASE.replace(
        "  - setpoint: -100 %\n", ""
    ).replace("quality_factor: 1.0}", "quality_factor: 1.0, reactive: 60 %}")
    result = execute(loads_plan(_one_case(case), "case.yaml"), BENCH, seed=5)
    (verdict,) = result.verdicts
    assert verdict.name == "islanding:sustained"
    assert verdict.verdict == "not judged" and "collapsed" in verdict.detail


def test_the_island_persists_with_anti_islanding_off_on_a_balanced_bank() -> None:
    case = "  - {setpoint: -100 %, dut_control: {anti_islanding: 'off'}}\n" + CASE.replace(
        "  - setpoint: -100 %\n", ""
    )
    result = execute(loads_plan(_one_case(case), "case.yaml"), BENCH, seed=5)
    (verdict,) = result.verdicts
    assert verdict.name == "islanding:sustained" and verdict.verdict == "pass"
    assert verdict.measured is not None and verdict.measured >= 10.0


def test_the_table_reaches_record_json_through_rig_run(tmp_path: Path) -> None:
    from rig.cli import main

    plan = tmp_path / "reduced.yaml"
    plan.write_text(_reduced())
    code = main(
        [
            "run",
            str(plan),
            "--bench",
            str(REPO / "fixtures/benches/emulated-islanding.yaml"),
            "--out",
            str(tmp_path / "out"),
            "--seed",
            "4",
        ]
    )
    assert code == 0
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    (run,) = record["runs"]
    assert len(run["cases"]) == len(list((tmp_path / "out").glob("reduced.case*.trace.jsonl")))
    assert {"case", "role", "values", "value", "verdict", "trace"} <= set(run["cases"][0])
    first = run["cases"][0]
    assert first["captures"] == ["reduced.case01.capture1.npz"]
    assert (tmp_path / "out" / first["captures"][0]).exists()
    html = next((tmp_path / "out").glob("*.html")).read_text()
    assert "Clearing time per case" in html and "101 %" in html
