"""Instrument faults in the middle of a run (issue 12 item 7): a VISA timeout, a dropped
connection and an error in the queue. The run is an error naming the instrument and the command,
every instrument ends in its safe state (read from the twins themselves), and the trace on disk
keeps everything measured up to the fault."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rig.runner as runner
from rig.bench import load_bench
from rig.cli import main
from rig.plan import load_plan
from rig.runner import RunResult, execute
from rig.station import Station
from rig.trace import Trace

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
PLAN = REPO / "test_plans/v2h/grid_loss_grid_following.yaml"
#: When the fault strikes (simulated s): mid-run, during the hold before the grid loss.
AT_S = 20.0
LABELS = {
    "battery": "battery (EA Elektro-Automatik PSB 10000)",
    "analyzer": "analyzer (YOKOGAWA WT5000)",
    "grid": "grid (Keysight Technologies AC6900)",
    "home": "home (Chroma 63800)",
}


def _strike(kind: str, name: str, at_s: float = AT_S) -> Callable[[Station], None]:
    """A fault of `kind` on the twin `name`, armed on the run's clock at `at_s`."""

    def arm(station: Station) -> None:
        twin: Any = station.twins[name]

        def fire() -> None:
            if kind == "timeout":
                twin.faults.mute(3)  # busy for three messages: the read times out, then it answers
            elif kind == "hung":
                twin.faults.mute()  # never answers again
            elif kind == "drop":
                twin.faults.drop()
            elif kind == "error":
                twin.inject_error(201, "Overtemperature")
            else:
                raise AssertionError(kind)

        station.clock.call_at(at_s, fire)

    return arm


@pytest.fixture
def faulty(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Callable[[Station], None]], None]]:
    """Arm a fault on the station the runner opens (the test's only way into the run)."""

    def install(arm: Callable[[Station], None]) -> None:
        opened = runner.open_station

        def open_and_arm(*args: Any, **kwargs: Any) -> Station:
            station = opened(*args, **kwargs)
            arm(station)
            return station

        monkeypatch.setattr(runner, "open_station", open_and_arm)

    yield install


def _bench_state(out: Path) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = json.loads(
        (out / "grid_loss_grid_following.bench_state.json").read_text()
    )
    return state


def _assert_every_twin_safe(state: dict[str, dict[str, Any]]) -> None:
    assert state["battery"]["output_on"] is False and state["battery"]["remote_locked"] is False
    assert state["grid"]["output_on"] is False
    assert state["home"]["input_on"] is False


def _run(tmp_path: Path) -> tuple[RunResult, Trace]:
    result = execute(load_plan(PLAN), BENCH, out_dir=tmp_path)
    assert result.trace_path is not None
    return result, Trace.load(result.trace_path)


@pytest.mark.parametrize("name", ["battery", "analyzer", "grid", "home"])
def test_a_visa_timeout_mid_run_is_an_error_naming_instrument_and_command(
    name: str, tmp_path: Path, faulty: Callable[[Callable[[Station], None]], None]
) -> None:
    faulty(_strike("timeout", name))
    result, on_disk = _run(tmp_path)
    assert result.verdict == "error" and result.verdicts == []
    assert result.error is not None
    assert f"{LABELS[name]}: no answer within 2000 ms after '" in result.error
    # The trace on disk holds what was measured up to the fault, and the fault itself.
    t, _ = on_disk.series("power_analyzer.grid.v_rms")
    assert t.size > 0 and AT_S - 1.5 <= t.max() <= AT_S + 10.5
    (err,) = on_disk.events_named("run_error")
    assert err.data["error"] == result.error
    safe = {e.data["instrument"]: e.data for e in on_disk.events_named("safe_state")}
    assert all(rec["ok"] for rec in safe.values()), safe
    _assert_every_twin_safe(_bench_state(tmp_path))


def test_a_dropped_connection_mid_run_reopens_the_session_to_make_the_instrument_safe(
    tmp_path: Path, faulty: Callable[[Callable[[Station], None]], None]
) -> None:
    faulty(_strike("drop", "battery"))
    result, on_disk = _run(tmp_path)
    assert result.verdict == "error" and result.error is not None
    assert f"{LABELS['battery']}: connection lost" in result.error
    assert "after 'MEAS:ARR?'" in result.error
    safe = {e.data["instrument"]: e.data for e in on_disk.events_named("safe_state")}
    assert safe["battery"]["ok"] is True
    assert safe["battery"]["recovered"].startswith("reopened the session after: ")
    _assert_every_twin_safe(_bench_state(tmp_path))


def test_an_error_queued_while_the_rig_only_reads_makes_the_run_an_error(
    tmp_path: Path, faulty: Callable[[Callable[[Station], None]], None]
) -> None:
    # The battery emulator is only read after its setup: without polling its queue the
    # overtemperature would sit there unnoticed and the run would pass.
    faulty(_strike("error", "battery"))
    result, on_disk = _run(tmp_path)
    assert result.verdict == "error" and result.error is not None
    assert f'{LABELS["battery"]}: reported 201,"Overtemperature" after \'MEAS:ARR?' in result.error
    (err,) = on_disk.events_named("run_error")
    assert err.t <= AT_S + runner.ERROR_POLL_S + load_plan(PLAN).sample_period_s + 1e-6
    _assert_every_twin_safe(_bench_state(tmp_path))


def test_an_error_queued_after_the_last_poll_is_caught_at_the_end_of_the_run(
    tmp_path: Path, faulty: Callable[[Callable[[Station], None]], None]
) -> None:
    plan = load_plan(PLAN)
    last_step_t = 40.0  # the plan's final hold starts near here; its end is about 43 s
    faulty(_strike("error", "analyzer", at_s=last_step_t + 2.5))
    result = execute(plan, BENCH, out_dir=tmp_path)
    assert result.verdict == "error" and result.error is not None
    assert "Overtemperature" in result.error and LABELS["analyzer"] in result.error


def test_an_instrument_that_never_answers_again_is_left_unsafe_and_says_so(
    tmp_path: Path, faulty: Callable[[Callable[[Station], None]], None]
) -> None:
    faulty(_strike("hung", "battery"))
    result, on_disk = _run(tmp_path)
    assert result.verdict == "error"
    safe = {e.data["instrument"]: e.data for e in on_disk.events_named("safe_state")}
    assert safe["battery"]["ok"] is False and "no answer" in safe["battery"]["error"]
    assert "device clear after" in safe["battery"]["recovered"]
    # The others still went to their safe state.
    state = _bench_state(tmp_path)
    assert state["grid"]["output_on"] is False and state["home"]["input_on"] is False
    assert state["battery"]["output_on"] is True  # the twin's truth: nothing reached it


def test_rig_run_reports_the_fault_and_exits_nonzero(
    tmp_path: Path,
    faulty: Callable[[Callable[[Station], None]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    faulty(_strike("drop", "grid"))
    code = main(["run", str(PLAN), "--out", str(tmp_path), "--seed", "3"])
    assert code != 0
    record = json.loads((tmp_path / "record.json").read_text())
    (run,) = record["runs"]
    assert run["verdict"] == "error"
    assert f"{LABELS['grid']}: connection lost" in run["error"]
    assert "grid_loss_grid_following" in capsys.readouterr().out + json.dumps(run)


# ------------------------------------------------------------- on the 5.10 bench, mid-procedure
ISLAND_BENCH = load_bench(REPO / "fixtures/benches/emulated-islanding.yaml")
ISLAND_LABELS = {
    "switches": "switches (Keysight Technologies DAQ970A)",
    "rlc": "rlc (Chroma ATE A635000)",
    "scope": "scope (KEYSIGHT TECHNOLOGIES InfiniiVision)",
}
ONE_CASE = """\
title: one 5.10 case
dut: evse
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 80 %, reserve: 30 %}
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, switch: {s3: closed}}
  - wait_for: charge_loop
  - setpoint: -100 %
  - hold: 5 s
  - rlc_load: {p: match_output, quality_factor: 1.0}
  - hold: 5 s
  - switch: {s3: open}
  - hold: 13 s
checks:
  - islanding: {mode: grid_following, within: 2 s, output_level: 100 %, balance: 0.02 p.u.}
"""


@pytest.mark.parametrize(
    ("kind", "name", "at_s", "expected"),
    [
        # S3 cannot be opened: the switch unit dropped the connection just before.
        ("drop", "switches", 12.0, "connection lost"),
        # The switch unit stops answering for three messages while S3 is opened.
        ("timeout", "switches", 12.0, "no answer within 2000 ms"),
        # The bank stops answering for three messages while it loads the island (found by the
        # error poll's query).
        ("timeout", "rlc", 9.0, "no answer within 2000 ms"),
        # The scope reports an error while its capture runs.
        ("error", "scope", 14.0, 'reported 201,"Overtemperature"'),
    ],
)
def test_a_fault_on_the_islanding_bench_is_an_error_and_every_instrument_is_made_safe(
    kind: str,
    name: str,
    at_s: float,
    expected: str,
    tmp_path: Path,
    faulty: Callable[[Callable[[Station], None]], None],
) -> None:
    from rig.plan import loads_plan

    faulty(_strike(kind, name, at_s))
    result = execute(loads_plan(ONE_CASE, "case.yaml"), ISLAND_BENCH, out_dir=tmp_path)
    assert result.verdict == "error" and result.error is not None
    assert f"{ISLAND_LABELS[name]}: {expected}" in result.error and " after '" in result.error
    on_disk = Trace.load(tmp_path / "case.trace.jsonl")
    (err,) = on_disk.events_named("run_error")
    assert err.data["error"] == result.error and err.t >= at_s
    safe = {e.data["instrument"]: e.data for e in on_disk.events_named("safe_state")}
    assert all(rec["ok"] for rec in safe.values()), safe
    state = json.loads((tmp_path / "case.bench_state.json").read_text())
    assert state["switches"]["s3"] is False  # S3 open: the island is cut from the source
    assert state["rlc"]["input_on"] is False
    assert state["grid"]["output_on"] is False and state["battery"]["output_on"] is False
