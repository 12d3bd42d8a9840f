"""The emulated cable sequence (tests/v2g/slac/cable.py) in virtual time: plug in, 5 % PWM, SLAC,
the -20 session, unplug; the pilot checks pass on the good emulated EV and EVSE, and each
seeded pilot defect fails its check (rig.sim.pilot.PILOT_DEFECTS)."""

from __future__ import annotations

import pytest
from cable import PILOT_CHECKS, run_cable

from rig.checks import REGISTRY
from rig.sim.pilot import PILOT_DEFECTS
from rig.v2g.slac import EvseState, EvState


@pytest.fixture(scope="module")
def good() -> object:
    return run_cable()


def test_the_cable_sequence_runs_from_plug_in_to_unplug(good: object) -> None:
    run = good
    assert run.ev.state is EvState.MATCHED and run.evse.state is EvseState.IDLE  # reset at unplug
    assert run.ev.match is not None and run.line.joined
    pilot = [(e.t, e.data["state"], e.data["duty"]) for e in run.trace.events if e.src == "pilot"]
    states = [s for _, s, _ in pilot]
    # A, plug in B, B with 5 % PWM, C after PowerDelivery(Start), B after Stop, unplugged A.
    compact = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert compact == ["A", "B", "C", "B", "A"]
    assert any(s == "B" and d == pytest.approx(0.05) for _, s, d in pilot)
    link = [e.name for e in run.trace.events if e.src == "link"]
    assert link[:4] == ["plug_in", "ev_detected", "slac_start", "link_up"]
    assert link[-2:] == ["unplug", "ev_left"]
    # The session starts only once the data link is up, and runs to its end.
    link_up = next(e.t for e in run.trace.events if e.name == "link_up")
    first_message = next(e.t for e in run.trace.events if e.name == "message")
    assert first_message >= link_up
    assert [p for _, p in run.phases][-1] == "stopped"
    assert "charge_loop" in [p for _, p in run.phases]


def test_the_good_ev_and_evse_pass_every_pilot_check(good: object) -> None:
    for name, verdict in good.verdicts.items():
        assert verdict.verdict == "pass", (name, verdict.detail)
    c_after = good.verdicts["pilot_state_c_after_start"]
    assert c_after.measured is not None and 0.04 < c_after.measured < 0.07


def test_every_pilot_check_is_registered_with_a_defect() -> None:
    assert set(PILOT_CHECKS) <= set(REGISTRY)
    broken = {check for d in PILOT_DEFECTS.values() for check in d.breaks}
    assert broken == set(PILOT_CHECKS)


@pytest.mark.parametrize("defect", sorted(PILOT_DEFECTS))
def test_a_seeded_pilot_defect_fails_its_check(defect: str) -> None:
    run = run_cable([defect], loop_s=3.0)
    for check in PILOT_DEFECTS[defect].breaks:
        verdict = run.verdicts[check]
        assert verdict.verdict == "fail", (check, verdict.detail)
