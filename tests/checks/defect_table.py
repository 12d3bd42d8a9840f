"""Which check of which plan must fail for each seeded defect: the table the meta-tests enforce.

Every default plan (test_plans/v2h, test_plans/conformance) is listed against every defect of the
emulated DUT (physical, rig.sim.DEFECTS; protocol, rig.emulators.defects). A pair is either in
CAUGHT (the defect changes what the DUT does in that plan, and the named verdict row fails), in
RUN_ERROR (the defect makes one of the plan's own steps impossible: the run is an error, never a
pass), or covered by the defect's UNCHANGED reason (the plan gives the defect nothing to act on).
tests/benchmarks/test_defect_matrix.py checks the UNCHANGED claims against the runs themselves.
"""

from __future__ import annotations

from pathlib import Path

from rig.emulators.defects import PROTOCOL_DEFECTS
from rig.sim import DEFECTS

REPO = Path(__file__).resolve().parents[2]
PLANS: dict[str, Path] = {
    p.stem: p
    for folder in ("v2h", "conformance")
    for p in sorted((REPO / "test_plans" / folder).glob("*.yaml"))
}
ALL_DEFECTS = {**DEFECTS, **PROTOCOL_DEFECTS}

_EVERY = tuple(PLANS)
_STEPPED = _EVERY  # every plan has a setpoint or home-following step judged by transition_time

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
        **{plan: "power_direction" for plan in _EVERY},
        # Where the plan has the EV carry the home, the grid point shows it first.
        "home_load_to_reserve": "home_supply",
        "grid_loss_backup": "home_supply",
    },
    "exceeds_discharge_limit": {"discharge_within_ev_limits": "discharge_limits:power"},
    "late_response": {plan: "protocol_timing" for plan in _EVERY if plan != "standby_stops_energy"},
    "wrong_response_code": {plan: "sequence:response_codes" for plan in _EVERY},
    "ignores_pause": {"standby_stops_energy": "sequence:energy_after_stop"},
    "accepts_out_of_sequence": {},
}

#: (defect, plan) -> why the run is an error rather than a verdict
RUN_ERROR: dict[tuple[str, str], str] = {
    ("late_response", "standby_stops_energy"): (
        "the EV's ChargeLoop times out on the first late answer and the session ends; the plan's "
        "`session: standby` then has no session to act on"
    ),
}

#: defect -> why a plan not in CAUGHT or RUN_ERROR gives it nothing to act on (or nothing that
#: lasts: the matrix allows the EVSE's power to differ by more than 5 % of its rating for at most
#: half a second in all, the shape of a step, which transition_time judges where it matters)
UNCHANGED: dict[str, str] = {
    "ignores_reserve": "the EV never reaches its reserve in the plan",
    "slow_ramp": "(every plan judges its steps)",
    "overshoot": (
        "the EV's discharge limit clamps the stage before it can overshoot: only the first "
        "quarter second of the rise differs (faster), which no criterion faults"
    ),
    "slow_island_detection": "the plan never disconnects the grid",
    "no_island_detection": "the plan never disconnects the grid",
    "slow_backup_transfer": "no grid-forming transfer in the plan",
    "wrong_discharge_sign": "(every plan commands a discharge)",
    "exceeds_discharge_limit": "the EV announces what the EVSE can do: no limit to exceed",
    "late_response": "(every plan runs a -20 session)",
    "wrong_response_code": "(every plan runs a -20 session)",
    "ignores_pause": "no Standby or Stop inside the measured run",
    "accepts_out_of_sequence": "no plan sends an out-of-sequence request (a fault-injection probe)",
}


def expectation(defect: str, plan: str) -> tuple[str, str]:
    """("fail", row), ("error", reason) or ("unchanged", reason) for one pair."""
    row = CAUGHT[defect].get(plan)
    if row is not None:
        return "fail", row
    if (defect, plan) in RUN_ERROR:
        return "error", RUN_ERROR[(defect, plan)]
    return "unchanged", UNCHANGED[defect]
