"""Which check of which plan must fail for each seeded defect: the table the meta-tests enforce.

Every default plan (test_plans/v2h, test_plans/conformance, test_plans/faults) is listed against
every defect of the emulated DUT (physical, rig.sim.DEFECTS; protocol and TLS,
rig.emulators.defects). A pair is either in CAUGHT (the defect changes what the DUT does in that
plan, and the named verdict row fails), in RUN_ERROR (the defect makes one of the plan's own steps
or criteria impossible: the run's verdict is an error, never a pass), in OUT_OF_SCOPE (the defect
acts, but on nothing the plan's own criteria are about: the plan passes, as it must, and another
plan catches it), or covered by the defect's UNCHANGED reason (the plan gives the defect nothing to
act on). tests/benchmarks/test_defect_matrix.py checks the UNCHANGED claims against the runs.
The pilot defects belong to plans with a cable (`link:`): tests/link/test_cable_plans.py.
"""

from __future__ import annotations

from pathlib import Path

from rig.emulators.defects import PROTOCOL_DEFECTS, TLS_DEFECTS
from rig.sim import DEFECTS

REPO = Path(__file__).resolve().parents[2]
#: plan key -> file; the fault plans keep their folder (faults/out_of_sequence is not
#: conformance/out_of_sequence).
PLANS: dict[str, Path] = {
    **{
        p.stem: p
        for folder in ("v2h", "conformance")
        for p in sorted((REPO / "test_plans" / folder).glob("*.yaml"))
    },
    **{f"faults/{p.stem}": p for p in sorted((REPO / "test_plans/faults").glob("*.yaml"))},
}
ALL_DEFECTS = {**DEFECTS, **PROTOCOL_DEFECTS, **TLS_DEFECTS}

_EVERY = tuple(PLANS)
_FAULTS = tuple(p for p in PLANS if p.startswith("faults/"))
#: the plans with a setpoint or home-following step that transition_time judges
_STEPPED = (
    "charge_discharge_reversal",
    "grid_loss_backup",
    "grid_loss_grid_following",
    "home_load_to_reserve",
    "charge_loop_timing",
    "discharge_within_ev_limits",
    "standby_stops_energy",
)
#: the plans whose criteria include the -20 sequence and response codes
_SEQUENCED = (*_STEPPED, "out_of_sequence", "faults/out_of_sequence")
#: the fault plans in which the EVSE must end the session and its power (fault_reaction:<kind>)
_SESSION_ENDING = tuple(p for p in _FAULTS if p not in ("faults/duplicate", "faults/wrong_value"))

#: defect -> {plan: the verdict row that must fail}
CAUGHT: dict[str, dict[str, str]] = {
    "ignores_reserve": {
        "home_load_to_reserve": "reserve_floor:soc",
        "discharge_within_ev_limits": "reserve_floor:soc",
    },
    "slow_ramp": {plan: "transition_time" for plan in _STEPPED},
    "overshoot": {
        plan: "transition_time:overshoot"
        for plan in _STEPPED
        if plan != "discharge_within_ev_limits"
    },
    "slow_island_detection": {
        "grid_loss_backup": "islanding:grid_forming",
        "grid_loss_grid_following": "islanding:grid_following",
    },
    "no_island_detection": {
        "grid_loss_backup": "islanding:grid_forming:backfeed",
        "grid_loss_grid_following": "islanding:grid_following",
    },
    "slow_backup_transfer": {"grid_loss_backup": "islanding:grid_forming"},
    "wrong_discharge_sign": {
        **{plan: "power_direction" for plan in _STEPPED},
        # Where the plan has the EV carry the home, the grid point shows it first.
        "home_load_to_reserve": "home_supply",
        "grid_loss_backup": "home_supply",
    },
    "exceeds_discharge_limit": {
        "discharge_within_ev_limits": "discharge_limits:power",
        "faults/wrong_value": "discharge_limits:power",
    },
    "late_response": {
        plan: "protocol_timing" for plan in _STEPPED if plan != "standby_stops_energy"
    },
    "wrong_response_code": {plan: "sequence:response_codes" for plan in _SEQUENCED},
    "ignores_pause": {"standby_stops_energy": "sequence:energy_after_stop"},
    "accepts_out_of_sequence": {
        "out_of_sequence": "sequence:response_codes",
        "faults/out_of_sequence": "sequence:response_codes",
    },
    "keeps_power_after_session_loss": {
        plan: f"fault_reaction:{plan.removeprefix('faults/')}" for plan in _SESSION_ENDING
    },
    "no_sequence_timeout": {
        plan: f"fault_reaction:{plan.removeprefix('faults/')}" for plan in _SESSION_ENDING
    },
    "aborts_on_repeated_request": {"faults/duplicate": "fault_reaction:duplicate"},
    **{defect: {"tls_handshake": "tls_session"} for defect in TLS_DEFECTS},
}

#: (defect, plan) -> why the run is an error or not judged rather than a verdict
RUN_ERROR: dict[tuple[str, str], str] = {
    ("late_response", "standby_stops_energy"): (
        "the EV's ChargeLoop times out on the first late answer and the session ends; the plan's "
        "`session: standby` then has no session to act on"
    ),
    **{
        ("late_response", plan): (
            "the session ends on the first late answer, before the plan's fault is injected: "
            "the run did not test what the plan says (fault_reaction: error; faults:applied: "
            "not judged)"
        )
        for plan in (*_FAULTS, "out_of_sequence")
    },
    **{
        (defect, plan): (
            "the rig's EV refuses the EVSE's certificate: no session, and the plan's wait for the "
            "charge loop times out"
        )
        for defect in TLS_DEFECTS
        for plan in _EVERY
        if plan != "tls_handshake"
    },
}

#: (defect, plan) -> why the plan passes although the defect acts in it
OUT_OF_SCOPE: dict[tuple[str, str], str] = {
    ("late_response", "tls_handshake"): "the plan judges the TLS handshake only",
    ("overshoot", "discharge_within_ev_limits"): (
        "the EV's 5 kW limit clamps the stage: the rise is only faster (nothing overshoots the "
        "limit) and the pack reaches its reserve about a second earlier; no criterion faults that"
    ),
    **{
        (defect, "out_of_sequence"): "the plan judges the response to its probe only"
        for defect in ("slow_ramp", "keeps_power_after_session_loss", "no_sequence_timeout")
    },
    **{
        (defect, plan): (
            "the plan judges the DUT's reaction to its fault (and, for wrong_value, the size of "
            "the discharge), not its power steps or their direction"
        )
        for defect in ("slow_ramp", "wrong_discharge_sign")
        for plan in _FAULTS
    },
    **{
        ("wrong_response_code", plan): "the plan judges the DUT's reaction to its fault only"
        for plan in (*_FAULTS, "tls_handshake")
        if plan not in _SEQUENCED
    },
}

#: defect -> why a plan not in CAUGHT or RUN_ERROR gives it nothing to act on (or nothing that
#: lasts: the matrix allows the EVSE's power to differ by more than 5 % of its rating for at most
#: half a second in all, the shape of a step, which transition_time judges where it matters)
UNCHANGED: dict[str, str] = {
    "ignores_reserve": "the EV never reaches its reserve in the plan",
    "slow_ramp": "the plan commands no power step",
    "overshoot": (
        "no step the plan judges: an overshoot there lasts under half a second (the matrix's "
        "allowance for a step's shape)"
    ),
    "slow_island_detection": "the plan never disconnects the grid",
    "no_island_detection": "the plan never disconnects the grid",
    "slow_backup_transfer": "no grid-forming transfer in the plan",
    "wrong_discharge_sign": "the plan commands no discharge",
    "exceeds_discharge_limit": "the EV announces what the EVSE can do: no limit to exceed",
    "late_response": "(every plan runs a -20 session)",
    "wrong_response_code": "(every plan runs a -20 session)",
    "ignores_pause": "no Standby or Stop inside the measured run",
    "accepts_out_of_sequence": "the plan sends no out-of-sequence request (a fault-injection probe)",
    "keeps_power_after_session_loss": "the session is not lost in the plan",
    "no_sequence_timeout": "the rig's EV never falls silent in the plan",
    "aborts_on_repeated_request": "the plan repeats no request",
    **{defect: "(every plan runs -20 over TLS on the emulated bench)" for defect in TLS_DEFECTS},
}


def expectation(defect: str, plan: str) -> tuple[str, str]:
    """("fail", row), ("error", reason), ("out of scope", reason) or ("unchanged", reason)."""
    row = CAUGHT[defect].get(plan)
    if row is not None:
        return "fail", row
    if (defect, plan) in RUN_ERROR:
        return "error", RUN_ERROR[(defect, plan)]
    if (defect, plan) in OUT_OF_SCOPE:
        return "out of scope", OUT_OF_SCOPE[(defect, plan)]
    return "unchanged", UNCHANGED[defect]
