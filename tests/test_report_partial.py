"""A run stopped by a signal leaves a partial record.json, report.html and junit.xml that say so:
the verdicts so far, the plan that was interrupted with its bench safe, the plans that never ran,
and the signal that stopped it — serially and with worker processes (`rig run -n 2`)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LONG_HOLD = REPO / "fixtures/plans/long_hold.yaml"
ONE_HOUR = REPO / "fixtures/plans/one_hour_v2h.yaml"


def _start(args: list[str], *, new_session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rig", "run", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=new_session,
    )


def _last_t(path: Path) -> float:
    """Simulated time of a trace's last whole line (0 before there is one)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - 4000, 0))
            lines = fh.read().splitlines()
        return float(json.loads(lines[-2])["t"]) if len(lines) >= 2 else 0.0
    except (OSError, ValueError, KeyError):
        return 0.0


def _wait_for_traces(proc: subprocess.Popen[str], *traces: Path) -> None:
    """Until every trace holds two simulated minutes of its plan (the plans are mid-run)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(_last_t(t) > 120.0 for t in traces):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the run never got going:\n" + (proc.communicate()[0] or ""))


def _assert_safe(out: Path, stem: str) -> None:
    state = json.loads((out / f"{stem}.bench_state.json").read_text())
    assert state["battery"]["output_on"] is False and state["grid"]["output_on"] is False
    assert state["home"]["input_on"] is False


def _assert_partial(out: Path, sig: str, interrupted: list[str], not_run: list[str]) -> None:
    record = json.loads((out / "record.json").read_text())
    assert record["complete"] is False and record["stopped_by"] == sig
    assert record["summary"]["verdict"] == "interrupted"
    assert sorted(Path(r["plan"]).stem for r in record["runs"]) == sorted(interrupted)
    for run in record["runs"]:
        assert run["verdict"] == "interrupted" and run["stopped_by"] == sig
        assert run["headline"].startswith(f"interrupted by {sig} after ")
        assert run["simulated_s"] > 60 and run["trace"].endswith(".trace.jsonl")
    assert [Path(p).stem for p in record["not_run"]] == not_run
    html = (out / "report.html").read_text()
    assert f"INCOMPLETE: the run was stopped by {sig}" in html
    assert html.count(">INTERRUPTED<") >= 1 + 2 * len(interrupted)
    for name in not_run:
        assert f"{name}.yaml" in html.split("Not run:", 1)[1].split("</div>", 1)[0]
    junit = (out / "junit.xml").read_text()
    assert f'name="stopped_by" value="{sig}"' in junit and 'type="interrupted"' in junit


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_serial_run_stopped_by_a_signal_writes_a_partial_record_and_report(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "out"
    proc = _start([str(LONG_HOLD), str(ONE_HOUR), "--out", str(out)])
    _wait_for_traces(proc, out / "long_hold.trace.jsonl")
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert f"INTERRUPTED  long_hold  interrupted by {sig.name} after" in output
    assert f"INTERRUPTED: 1 plan(s): 1 interrupted (stopped by {sig.name})" in output
    _assert_safe(out, "long_hold")
    _assert_partial(out, sig.name, ["long_hold"], ["one_hour_v2h"])


def _two_long_plans(tmp_path: Path) -> Path:
    plans = tmp_path / "plans"
    plans.mkdir()
    for name in ("hold_a", "hold_b", "hold_c"):
        shutil.copy(LONG_HOLD, plans / f"{name}.yaml")
    return plans


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_parallel_run_stopped_by_a_signal_stops_every_worker_safely(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """The signal goes to the controller only (a `kill`); it forwards it to both workers."""
    plans, out = _two_long_plans(tmp_path), tmp_path / "out"
    proc = _start([str(plans), "-n", "2", "--out", str(out)])
    # Two workers, three 12-hour plans: two run, the third waits for a free worker.
    _wait_for_traces(proc, out / "hold_a.trace.jsonl", out / "hold_b.trace.jsonl")
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    for stem in ("hold_a", "hold_b"):
        _assert_safe(out, stem)
    _assert_partial(out, sig.name, ["hold_a", "hold_b"], ["hold_c"])
    assert not (out / "hold_c.trace.jsonl").exists()


def test_a_terminal_ctrl_c_that_reaches_every_process_interrupts_each_plan_once(
    tmp_path: Path,
) -> None:
    """Ctrl-C at a terminal signals the whole process group: the workers leave it to the
    controller, which forwards it once (no "second signal" during a worker's teardown)."""
    plans, out = _two_long_plans(tmp_path), tmp_path / "out"
    proc = _start([str(plans), "-n", "2", "--out", str(out)], new_session=True)
    _wait_for_traces(proc, out / "hold_a.trace.jsonl", out / "hold_b.trace.jsonl")
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "while the bench goes to its safe state" not in output  # no signal counted twice
    _assert_partial(out, "SIGINT", ["hold_a", "hold_b"], ["hold_c"])
    for stem in ("hold_a", "hold_b"):
        _assert_safe(out, stem)
        trace = [
            json.loads(line) for line in (out / f"{stem}.trace.jsonl").read_text().splitlines()
        ]
        assert [r["data"]["signal"] for r in trace if r.get("name") == "interrupted"] == ["SIGINT"]
        assert not [r for r in trace if r.get("name") == "signals_during_teardown"]
    # Nothing of the run is left: workers and the figure server (rig.report.figureserver) ended.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("a process of the run's group outlived it")
