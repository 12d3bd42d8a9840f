"""The cable sequence as plans run it (rig.linkrun through rig.runner), on the emulated bench in
virtual time: plug in, 5 % PWM, SLAC, SDP, TLS, the -20 session, unplug; for either DUT side. The
good DUT passes every pilot check; each seeded pilot defect of the DUT's side fails its check,
through execute() and through `rig run` (the pytest plugin's path)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rig.bench import BenchConfig, load_bench
from rig.checks import REGISTRY
from rig.cli import main
from rig.plan import Plan, load_plan, loads_plan
from rig.runner import RunResult, execute
from rig.sim.pilot import PILOT_DEFECTS
from rig.trace import Event

REPO = Path(__file__).resolve().parents[2]
#: The DUT's side -> (the plan, the bench).
SIDES = {
    "evse": ("test_plans/link/cable_sequence.yaml", "fixtures/benches/emulated.yaml"),
    "ev": ("fixtures/plans/cable_sequence_ev.yaml", "fixtures/benches/emulated-ev.yaml"),
}
PILOT_CHECKS = {n for n, spec in REGISTRY.items() if spec.fn.__module__ == "rig.checks.pilot"}


def _plan_bench(side: str) -> tuple[Plan, BenchConfig]:
    plan, bench = SIDES[side]
    return load_plan(REPO / plan), load_bench(REPO / bench)


def _run(side: str, *defects: str, seed: int = 2) -> RunResult:
    plan, bench = _plan_bench(side)
    return execute(plan, bench, seed=seed, defects=defects)


@pytest.fixture(scope="module", params=sorted(SIDES))
def good(request: pytest.FixtureRequest) -> tuple[str, RunResult]:
    return request.param, _run(request.param)


def _compact(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _first(events: list[Event], src: str, name: str) -> Event:
    return next(e for e in events if e.src == src and e.name == name)


def test_the_good_dut_passes_every_check_of_the_cable_plan(good: tuple[str, RunResult]) -> None:
    side, run = good
    assert run.error is None, run.error
    rows = {v.name: v for v in run.verdicts}
    assert set(rows) >= PILOT_CHECKS
    for name, verdict in rows.items():
        assert verdict.verdict == "pass", (side, name, verdict.detail)
    # 50 ms is the good emulated EV's delay (well inside the 250 ms of [V2G20-847]).
    c_after = rows["pilot_state_c_after_start"].measured
    assert c_after is not None and 0.045 < c_after < 0.055
    assert run.protocol == "ISO 15118-20" and run.messages > 50


def test_the_cable_sequence_runs_in_order_from_plug_in_to_unplug(
    good: tuple[str, RunResult],
) -> None:
    _, run = good
    events = run.trace.events
    pilot = [e for e in events if e.src == "pilot"]
    # A; plugged in: B, then B with the EVSE's 5 % PWM; C after PowerDelivery(Start); B after
    # Stop; unplugged: A (and the EVSE's PWM off).
    assert _compact([str(e.data["state"]) for e in pilot]) == ["A", "B", "C", "B", "A"]
    assert any(e.data["state"] == "B" and e.data["duty"] == pytest.approx(0.05) for e in pilot)
    assert pilot[-1].data["duty"] is None
    link = [e.name for e in events if e.src == "link"]
    assert link[:4] == ["plug_in", "ev_detected", "slac_start", "link_up"]
    assert link[-2:] == ["unplug", "ev_left"]
    plug = run.trace.steps_of("plug_in")
    assert [s.t for s in plug] == [1.0]
    # SLAC matched on both sides with the key both modems hold; the session only after it,
    # once SDP found the SECC; TLS 1.3 as the bench says.
    matched = [e for e in events if e.src == "slac" and e.data.get("kind") == "matched"]
    assert {e.data["side"] for e in matched} == {"ev", "evse"}
    link_up = _first(events, "link", "link_up")
    sdp_request = _first(events, "sdp", "request")
    sdp_response = _first(events, "sdp", "response")
    first_message = _first(events, "v2g", "message")
    assert link_up.t <= sdp_request.t < sdp_response.t <= first_message.t
    assert sdp_response.data["security"] == "TLS"
    assert _first(events, "v2g", "tls_established").data["version"] == "TLSv1.3"
    assert 1.0 < link_up.t < 3.0  # plugged in at 1 s; -3's timers allow more, ours take ~0.5 s
    # The EV's PowerDeliveryReq(Start) moved its pilot to C; its Stop back to B.
    deliveries = [
        e for e in events if e.name == "message" and e.data["message"] == "PowerDeliveryReq"
    ]
    progress = [e.data["body"]["PowerDeliveryReq"]["ChargeProgress"] for e in deliveries]
    assert progress == ["Start", "Stop"]
    to_c = next(e for e in pilot if e.data["state"] == "C")
    back_to_b = next(e for e in pilot if e.t > to_c.t and e.data["state"] == "B")
    assert deliveries[0].t < to_c.t < deliveries[1].t < back_to_b.t


def test_the_same_seed_gives_the_same_cable_trace() -> None:
    def key(run: RunResult) -> list[tuple[float, str, str]]:
        return [(e.t, e.src, e.name) for e in run.trace.events if e.src in ("pilot", "slac")]

    assert key(_run("evse", seed=5)) == key(_run("evse", seed=5))


def test_every_pilot_check_has_a_defect_of_one_side() -> None:
    assert {c for d in PILOT_DEFECTS.values() for c in d.breaks} == PILOT_CHECKS
    assert {d.side for d in PILOT_DEFECTS.values()} == set(SIDES)


@pytest.mark.parametrize("defect", sorted(PILOT_DEFECTS))
def test_a_seeded_pilot_defect_of_the_dut_fails_its_check(defect: str) -> None:
    side = PILOT_DEFECTS[defect].side
    run = _run(side, defect)
    assert run.error is None, run.error
    rows = {v.name: v for v in run.verdicts}
    for check in PILOT_DEFECTS[defect].breaks:
        assert rows[check].verdict == "fail", (check, rows[check].detail)
    assert run.verdict == "fail"
    # Only the checks the defect breaks: the rig's own side of the cable stays good.
    failing = {n for n, v in rows.items() if v.verdict != "pass"}
    assert failing == set(PILOT_DEFECTS[defect].breaks), failing


def test_a_pilot_defect_of_the_rigs_own_side_is_refused_with_the_reason() -> None:
    run = _run("evse", "late_state_c")
    assert run.verdict == "error" and run.error is not None
    assert "late_state_c (ev)" in run.error and "the DUT is the evse" in run.error


def test_rig_defects_lists_the_pilot_defects_with_their_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["defects"]) == 0
    out = capsys.readouterr().out
    for name, defect in PILOT_DEFECTS.items():
        assert re.search(rf"^{name}\s+breaks: {', '.join(defect.breaks)}$", out, re.M)
        assert f"(pilot) {defect.summary} ({defect.side} side)" in out


def _rig_run(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-m", "rig", "run", *args, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (plan_run,) = json.loads((out / "record.json").read_text())["runs"]
    return proc, plan_run


def test_rig_run_passes_the_link_plans_and_fails_a_seeded_pilot_defect(tmp_path: Path) -> None:
    proc, run = _rig_run(tmp_path / "good", "test_plans/link/")
    assert proc.returncode == 0 and run["verdict"] == "pass", proc.stdout + proc.stderr
    proc, run = _rig_run(tmp_path / "pwm", "test_plans/link/", "--defect", "nominal_duty_cycle")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {c["name"]: c["verdict"] for c in run["checks"]}  # type: ignore[attr-defined]
    assert rows["pilot_pwm"] == "fail" and run["defects"] == ["nominal_duty_cycle"]
    ev_plan, ev_bench = SIDES["ev"]
    proc, run = _rig_run(
        tmp_path / "late_b", ev_plan, "--bench", ev_bench, "--defect", "late_state_b"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {c["name"]: c["verdict"] for c in run["checks"]}  # type: ignore[attr-defined]
    assert rows["pilot_state_b_after_stop"] == "fail"


LINK_ONLY = """\
title: the cable alone
dut: evse
ev: {capacity: 60 kWh, soc: 60 %, reserve: 30 %}
link: {sdp: false, tls: false}
steps:
  - {at: 1 s, plug_in: {}}
  - wait_for: link_up
    timeout: 5 s
  - wait_for: charge_loop
    timeout: 30 s
  - hold: 1 s
checks:
  - pilot_pwm: {}
"""


def test_direct_mode_and_the_plans_tls_setting_override_the_bench() -> None:
    plan = loads_plan(LINK_ONLY, "link_only.yaml")
    run = execute(plan, load_bench(REPO / SIDES["evse"][1]), seed=3)
    assert run.error is None and run.verdict == "pass", (run.error, run.verdicts)
    events = run.trace.events
    assert not [e for e in events if e.src == "sdp"]  # direct: no SDP
    assert not run.trace.events_named("tls_established")  # tls: false over the bench's true
    start = _first(events, "link", "session_start")
    assert start.t == _first(events, "link", "link_up").t


def test_a_wait_for_the_link_that_times_out_says_where_the_cable_stands() -> None:
    text = LINK_ONLY.replace("    timeout: 5 s", "    timeout: 50 ms")
    run = execute(loads_plan(text, "slow.yaml"), load_bench(REPO / SIDES["evse"][1]), seed=3)
    assert run.verdict == "error" and run.error is not None
    assert "slow.yaml:7: wait_for link_up timed out after 0.05 s" in run.error
    assert "pilot B" in run.error and "EV SLAC idle" in run.error


def test_a_plan_without_link_starts_its_session_at_once_and_has_no_cable() -> None:
    plan = loads_plan(
        LINK_ONLY.replace("link: {sdp: false, tls: false}\n", "")
        .replace(
            "  - {at: 1 s, plug_in: {}}\n  - wait_for: link_up\n    timeout: 5 s\n",
            "  - mark: begin\n",
        )
        .replace("pilot_pwm", "protocol_timing"),
        "plain.yaml",
    )
    run = execute(plan, load_bench(REPO / SIDES["evse"][1]), seed=3)
    assert run.error is None and run.verdict == "pass", run.error
    assert not [e for e in run.trace.events if e.src in ("pilot", "slac", "link", "sdp")]
    assert _first(run.trace.events, "v2g", "message").t < 0.1  # the session starts at t = 0
