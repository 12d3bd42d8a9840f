"""Safe state first: whatever ends a run, every instrument ends safe and the trace is on disk.

A step that raises (a setpoint beyond the bench's hard limit, an instrument that fails) is judged
in-process, inspecting the emulated twins themselves. Ctrl-C and SIGTERM interrupt a real
`rig run` process; its emulated bench writes the twins' own final state to bench_state.json.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rig.station
from instruments.ea.psb10000 import PSB10000
from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.station import Station
from rig.trace import Trace

REPO = Path(__file__).resolve().parent.parent
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")


def _assert_safe(state: dict[str, dict[str, Any]]) -> None:
    assert state["battery"]["output_on"] is False
    assert state["grid"]["output_on"] is False
    assert state["home"]["input_on"] is False


def _capture_bench(monkeypatch: pytest.MonkeyPatch) -> list[Station]:
    opened: list[Station] = []
    real_open = rig.station.open_station

    def spy(*args: Any, **kwargs: Any) -> Station:
        bench = real_open(*args, **kwargs)
        opened.append(bench)
        return bench

    monkeypatch.setattr("rig.runner.open_station", spy)
    return opened


def test_setpoint_beyond_hard_limit_is_refused_and_the_bench_goes_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _capture_bench(monkeypatch)
    result = execute(load_plan(REPO / "fixtures/plans/beyond_limits.yaml"), BENCH, out_dir=tmp_path)
    assert result.error is not None and "beyond the bench's DUT limit" in result.error
    assert "beyond_limits.yaml:10" in result.error  # names the plan line of the step
    (bench,) = opened
    _assert_safe({name: twin.state() for name, twin in bench.twins.items()})
    assert not bench.world.evse.energized
    # The trace up to the failure is on disk, with the refusal and every safe_state recorded.
    trace = Trace.load(tmp_path / "beyond_limits.trace.jsonl")
    assert trace.end_t >= 20.0 and trace.series("power_analyzer.evse_ac.p_w")[0].size > 20
    assert [e.name for e in trace.events].count("safe_state") == 5  # DUT + four instruments
    assert all(e.data["ok"] for e in trace.events_named("safe_state"))
    assert trace.events_named("run_error")
    _assert_safe(json.loads((tmp_path / "beyond_limits.bench_state.json").read_text()))


def test_instrument_failure_mid_run_still_reaches_safe_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _capture_bench(monkeypatch)
    calls = {"n": 0}
    real_measure = PSB10000.measure

    def flaky(self: PSB10000) -> Any:
        calls["n"] += 1
        if calls["n"] == 40:
            raise OSError("VI_ERROR_CONN_LOST (emulated cable pull)")
        return real_measure(self)

    monkeypatch.setattr(PSB10000, "measure", flaky)
    result = execute(load_plan(REPO / "fixtures/plans/long_hold.yaml"), BENCH, out_dir=tmp_path)
    assert result.error is not None and "VI_ERROR_CONN_LOST" in result.error
    (bench,) = opened
    _assert_safe({name: twin.state() for name, twin in bench.twins.items()})


def test_a_hanging_safe_state_cannot_stall_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _capture_bench(monkeypatch)
    monkeypatch.setattr(PSB10000, "safe_state", lambda self: time.sleep(30))
    bench_cfg = load_bench(REPO / "fixtures/benches/emulated.yaml")
    object.__setattr__(bench_cfg, "teardown_timeout_s", 0.5)
    t0 = time.monotonic()
    result = execute(load_plan(REPO / "fixtures/plans/beyond_limits.yaml"), bench_cfg)
    assert time.monotonic() - t0 < 10
    records = {e.data["instrument"]: e.data for e in result.trace.events_named("safe_state")}
    assert (
        records["battery"]["ok"] is False
        and "did not finish within 0.5 s" in records["battery"]["error"]
    )
    # The instruments after the hung one were still made safe.
    (bench,) = opened
    assert bench.twins["grid"].state()["output_on"] is False
    assert bench.twins["home"].state()["input_on"] is False


def _last_t(path: Path) -> float:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - 2000, 0))
            lines = fh.read().splitlines()
        return float(json.loads(lines[-2])["t"]) if len(lines) >= 2 else 0.0
    except (OSError, ValueError, KeyError):
        return 0.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_goes_safe_and_keeps_its_trace(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig", "run", "fixtures/plans/long_hold.yaml", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    trace_path = out / "long_hold.trace.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _last_t(trace_path) > 120.0:  # two simulated minutes into the 12-hour hold
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the run never got going:\n" + (proc.communicate()[0] or ""))
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    _assert_safe(json.loads((out / "long_hold.bench_state.json").read_text()))
    trace = Trace.load(trace_path)
    assert trace.events_named("interrupted")
    assert len(trace.events_named("safe_state")) == 5
    assert all(e.data["ok"] for e in trace.events_named("safe_state"))
    assert 120 < trace.end_t < 12 * 3600  # cut short, with what was measured kept
