"""Every check can fail: a good emulated DUT passes it, the matching seeded defect fails it.

The DUT is the emulated EVSE on the embedded emulated bench, reached through the same drivers and
pyvisa as real instruments; the checks judge only what the instruments measured.
"""

from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.checks import REGISTRY
from rig.emulators.defects import PROTOCOL_DEFECTS, TLS_DEFECTS
from rig.plan import load_plan
from rig.runner import RunResult, execute
from rig.sim import DEFECTS

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")

# (check, plan exercising it, defect that breaks it, verdict row that must fail)
CASES = [
    ("reserve_floor", "home_load_to_reserve", "ignores_reserve", "reserve_floor:soc"),
    ("transition_time", "charge_discharge_reversal", "slow_ramp", "transition_time"),
    ("transition_time", "charge_discharge_reversal", "overshoot", "transition_time:overshoot"),
    ("transition_time", "charge_discharge_reversal", "wrong_discharge_sign", "transition_time"),
    ("islanding", "grid_loss_grid_following", "slow_island_detection", "islanding:grid_following"),
    ("islanding", "grid_loss_grid_following", "no_island_detection", "islanding:grid_following"),
    ("islanding", "grid_loss_backup", "slow_backup_transfer", "islanding:grid_forming"),
    ("islanding", "grid_loss_backup", "slow_island_detection", "islanding:grid_forming"),
    (
        "discharge_limits",
        "conformance/discharge_within_ev_limits",
        "exceeds_discharge_limit",
        "discharge_limits:power",
    ),
    ("protocol_timing", "conformance/charge_loop_timing", "late_response", "protocol_timing"),
    (
        "sequence",
        "conformance/charge_loop_timing",
        "wrong_response_code",
        "sequence:response_codes",
    ),
    ("sequence", "conformance/standby_stops_energy", "ignores_pause", "sequence:energy_after_stop"),
    (
        "sequence",
        "conformance/out_of_sequence",
        "accepts_out_of_sequence",
        "sequence:response_codes",
    ),
    ("fault_reaction", "faults/close", "keeps_power_after_session_loss", "fault_reaction:close"),
    ("fault_reaction", "faults/silence", "no_sequence_timeout", "fault_reaction:silence"),
    (
        "fault_reaction",
        "faults/duplicate",
        "aborts_on_repeated_request",
        "fault_reaction:duplicate",
    ),
    *(
        ("tls_session", "conformance/tls_handshake", defect, "tls_session")
        for defect in sorted(TLS_DEFECTS)
    ),
]


def _run(plan: str, *defects: str) -> RunResult:
    folder = "" if "/" in plan else "v2h/"
    return execute(
        load_plan(REPO / f"test_plans/{folder}{plan}.yaml"), BENCH, seed=3, defects=defects
    )


def _rows(result: RunResult) -> dict[str, str]:
    assert result.error is None, result.error
    return {v.name: v.verdict for v in result.verdicts}


ALL_DEFECTS = {**DEFECTS, **PROTOCOL_DEFECTS, **TLS_DEFECTS}


# The pilot checks (rig.checks.pilot) judge the cable sequence (plans with link:), whose defects
# belong to one side of the pilot: their good and defective cases run in
# tests/link/test_cable_plans.py, on the bench whose DUT has that side.
PILOT_CHECKS = {name for name, spec in REGISTRY.items() if spec.fn.__module__ == "rig.checks.pilot"}


def test_every_registered_check_has_a_defect_case() -> None:
    assert {c[0] for c in CASES} == set(REGISTRY) - PILOT_CHECKS
    assert {c[2] for c in CASES} == set(ALL_DEFECTS)
    for check, _, defect, _ in CASES:
        assert check in ALL_DEFECTS[defect].breaks


@pytest.mark.parametrize(
    ("check", "plan", "defect", "row"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_good_dut_passes_and_defective_dut_fails(
    check: str, plan: str, defect: str, row: str
) -> None:
    good = _rows(_run(plan))
    assert good[row] == "pass", good
    bad = _rows(_run(plan, defect))
    assert bad[row] == "fail", bad
