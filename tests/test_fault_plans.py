"""Every fault kind has a plan (test_plans/faults/): the good emulated EVSE survives it as -20 says
(a FAILED response or the timeout path, the session ended, the energy stopped; or the session going
on, for a duplicate), and an EVSE with the matching seeded defect fails the check that judges it."""

from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.v2g.faults import FaultKind

REPO = Path(__file__).resolve().parent.parent
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")

#: fault kind -> (the matching defect, the verdict row it must fail)
CASES = {
    "drop": ("keeps_power_after_session_loss", "fault_reaction:drop"),
    "delay": ("keeps_power_after_session_loss", "fault_reaction:delay"),
    "corrupt": ("keeps_power_after_session_loss", "fault_reaction:corrupt"),
    "truncate": ("keeps_power_after_session_loss", "fault_reaction:truncate"),
    "reorder": ("keeps_power_after_session_loss", "fault_reaction:reorder"),
    "duplicate": ("aborts_on_repeated_request", "fault_reaction:duplicate"),
    "wrong_value": ("exceeds_discharge_limit", "discharge_limits:power"),
    "out_of_sequence": ("accepts_out_of_sequence", "sequence:response_codes"),
    "silence": ("no_sequence_timeout", "fault_reaction:silence"),
    "close": ("keeps_power_after_session_loss", "fault_reaction:close"),
}


def test_every_fault_kind_has_a_plan() -> None:
    assert set(CASES) == {k.value for k in FaultKind}
    assert {p.stem for p in (REPO / "test_plans/faults").glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_good_dut_survives_the_fault_and_the_matching_defect_fails(kind: str) -> None:
    plan = load_plan(REPO / f"test_plans/faults/{kind}.yaml")
    defect, row = CASES[kind]
    good = execute(plan, BENCH, seed=4)
    assert good.error is None and good.verdict == "pass", good.verdicts
    injected = good.trace.events_named("fault_injected")
    assert injected and injected[0].data["kind"] == kind  # the trace marks the injected fault
    bad = execute(plan, BENCH, seed=4, defects=(defect,))
    rows = {v.name: v.verdict for v in bad.verdicts}
    assert rows.get(row) == "fail", (bad.error, rows)
