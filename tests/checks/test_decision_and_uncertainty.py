"""The decision rule (ILAC-G8 style), each verdict's uncertainty from the bench file, what the
record carries per check, and how a run's outcome follows from its checks'."""

from __future__ import annotations

import dataclasses
import math

import pytest
from benches import EMULATED, noisier
from tracebuild import TraceBuilder, context, run

from rig.checks import REGISTRY, Relation, Verdict, run_outcome
from rig.checks.decision import DecisionRule, decide
from rig.checks.uncertainty import instrumentation_for
from rig.yamlsrc import Source


@pytest.mark.parametrize(
    ("measured", "rule", "outcome"),
    [
        (1.90, DecisionRule.SIMPLE, "pass"),
        (1.98, DecisionRule.SIMPLE, "pass"),  # inside the limit: simple acceptance passes
        (2.03, DecisionRule.SIMPLE, "inconclusive"),  # beyond it, but by less than U
        (2.06, DecisionRule.SIMPLE, "fail"),  # beyond it by more than U
        (1.90, DecisionRule.GUARDED, "pass"),  # inside by more than the guard band
        (1.98, DecisionRule.GUARDED, "inconclusive"),
        (2.06, DecisionRule.GUARDED, "fail"),
    ],
)
def test_decision_rules_around_a_limit_of_2_with_u_0_05(
    measured: float, rule: DecisionRule, outcome: str
) -> None:
    assert decide(measured, 2.0, Relation.AT_MOST, 0.05, rule) == outcome


def test_a_floor_is_judged_the_other_way_and_never_reached_fails() -> None:
    assert decide(29.99, 30.0, Relation.AT_LEAST, 0.05) == "inconclusive"
    assert decide(29.90, 30.0, Relation.AT_LEAST, 0.05) == "fail"
    assert decide(math.inf, 2.0, Relation.AT_MOST, 0.05) == "fail"


def test_guarded_acceptance_is_a_plan_parameter_of_every_check() -> None:
    for spec in REGISTRY.values():
        assert spec.params["decision_rule"].choices == ("simple", "guarded")
    src = Source("p.yaml", {}, {})
    parsed = REGISTRY["islanding"].parse_params({"decision_rule": "guarded"}, src, ("checks",))
    assert parsed is not None and parsed["decision_rule"] == "guarded"


def test_uncertainty_comes_from_the_bench_files_accuracy_and_update_interval() -> None:
    inst = instrumentation_for(EMULATED)
    power = inst.of("power_analyzer.evse_ac.p_w")
    assert power is not None and power.stated and power.update_interval_s == 0.01
    # ± (0.03 % of 3 kW + 0.05 % of the 300 V x 10 A range) = 0.9 + 1.5 W
    assert power.band(3000.0) == pytest.approx(2.4)
    psb = inst.of("dc_source.p_w")
    assert psb is not None and psb.band(3000.0) == pytest.approx(90.0)  # 0.3 % of 30 kW
    five = instrumentation_for(noisier(EMULATED, 5.0))
    assert five.band("dc_source.p_w", 3000.0) == pytest.approx(450.0)
    assert power.time_u(0.01) == pytest.approx(0.01 + 0.02 + 0.0005)


def test_a_model_default_is_used_and_marked_where_the_bench_states_no_accuracy() -> None:
    bare = dataclasses.replace(
        EMULATED,
        instruments=tuple(
            dataclasses.replace(i, options={k: v for k, v in i.options.items() if k != "accuracy"})
            for i in EMULATED.instruments
        ),
    )
    spec = instrumentation_for(bare).of("power_analyzer.grid.v_rms")
    assert spec is not None and not spec.stated and "model default (?)" in spec.describe()


def test_a_noisier_bench_turns_a_near_limit_pass_inconclusive_never_fail() -> None:
    import numpy as np

    t = np.arange(0.0, 300.0, 1.0)
    p = np.where(t > 10, -5180.0, 0.0)  # 180 W beyond a 5 kW limit, within the 220 W allowance
    b = TraceBuilder().sample(t, dc_source__p_w=p)
    b.announce(5.0, EVMaximumDischargePower=5000, EVMinimumV2XEnergyRequest=-100_000)
    quiet = run("discharge_limits", b.trace)["discharge_limits:power"]
    noisy = run(
        "discharge_limits",
        b.trace,
        context(instrumentation=instrumentation_for(noisier(EMULATED, 5.0))),
    )["discharge_limits:power"]
    assert quiet.verdict == "pass" and quiet.uncertainty == pytest.approx(90.0)
    assert noisy.verdict == "pass" and noisy.uncertainty == pytest.approx(450.0)
    guarded = run(
        "discharge_limits",
        b.trace,
        context(instrumentation=instrumentation_for(noisier(EMULATED, 5.0))),
        decision_rule="guarded",
    )["discharge_limits:power"]
    assert guarded.verdict == "inconclusive" and "guard band" in guarded.decision_rule


def test_the_record_carries_parameters_clause_uncertainty_and_decision_rule() -> None:
    import numpy as np

    t = np.arange(0.0, 25.0, 0.01)
    b = TraceBuilder().sample(
        t,
        power_analyzer__evse_ac__v_rms=np.where(t < 10.3, 230.0, 0.0),
        power_analyzer__evse_ac__i_rms=np.where(t < 10.3, 13.0, 0.0),
        power_analyzer__evse_ac__p_w=np.where(t < 10.3, -3000.0, 0.0),
    )
    b.grid_off(10.0)
    verdict = REGISTRY["islanding"].run(b.trace, context(caveats=("cal expired",)), {})[0]
    record = verdict.as_record()
    assert record["verdict"] == "pass"
    assert record["uncertainty"] == pytest.approx(0.0305)
    assert record["relation"] == "≤" and record["clause"].startswith("IEEE 1547-2018 8.1")
    assert record["params"]["within"] == 2.0 and record["params"]["decision_rule"] == "simple"
    assert record["decision_rule"].startswith("simple acceptance")
    assert record["caveats"] == ["cal expired"]


@pytest.mark.parametrize(
    ("outcomes", "run_is"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "inconclusive"], "inconclusive"),
        (["inconclusive", "fail"], "fail"),
        (["fail", "not judged"], "not judged"),
        (["not judged", "error"], "error"),
        ([], "not judged"),
        (["pass", "maybe"], "error"),
    ],
)
def test_a_run_passes_only_when_every_check_passed(outcomes: list[str], run_is: str) -> None:
    assert run_outcome(outcomes) == run_is


def test_a_check_that_judges_nothing_says_so() -> None:
    from rig.checks import CheckSpec

    empty = CheckSpec("nothing", lambda trace, ctx, params: [], "s", "c", {})
    (verdict,) = empty.run(TraceBuilder().trace, context(), {})
    assert isinstance(verdict, Verdict) and verdict.verdict == "not judged"
