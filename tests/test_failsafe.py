"""When the rig itself fails, the bench still ends safe and nothing measured is lost.

A full output disk, storms of signals, hostile plan and bench files, busy and unusable output
folders: each ends with the instruments' own state safe (read from the twins, not from the rig's
belief) or with a one-line error naming the file, line and field (exit 2) within 5 s.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rig.station
from rig.bench import load_bench
from rig.cli import main
from rig.outdir import OutputError, OutputFolder
from rig.plan import load_plan
from rig.runner import execute
from rig.station import Station
from rig.trace import Trace
from rig.v2g.vocabulary import SessionPhase

REPO = Path(__file__).resolve().parent.parent
BENCH_FILE = REPO / "fixtures/benches/emulated.yaml"
BENCH = load_bench(BENCH_FILE)
ONE_HOUR = REPO / "fixtures/plans/one_hour_v2h.yaml"
GOOD_PLAN = (REPO / "test_plans/v2h/charge_discharge_reversal.yaml").read_text()


def _assert_bench_safe(station: Station) -> None:
    """The instruments' own state (the twins), and the emulated EVSE's power stage."""
    state = {name: twin.state() for name, twin in station.twins.items()}
    assert state["battery"]["output_on"] is False, state
    assert state["grid"]["output_on"] is False, state
    assert state["home"]["input_on"] is False, state
    assert station.world is not None and not station.world.evse.energized
    assert station.dut.phase in (SessionPhase.IDLE, SessionPhase.STOPPED)  # no session runs


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Station]:
    stations: list[Station] = []
    real_open = rig.station.open_station

    def spy(*args: Any, **kwargs: Any) -> Station:
        station = real_open(*args, **kwargs)
        stations.append(station)
        return station

    monkeypatch.setattr("rig.runner.open_station", spy)
    return stations


# ------------------------------------------------------------------------------------ full disk
@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        from tests.conftest import missing

        missing("a full-disk test mounts a small tmpfs: needs root and mount(8)")
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if done.returncode != 0:
        from tests.conftest import missing

        missing("mount -t tmpfs failed (no CAP_SYS_ADMIN here)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_mid_run_stops_the_run_with_the_bench_safe_and_every_trace_line_whole(
    tmp_path: Path, opened: list[Station]
) -> None:
    with _tmpfs(tmp_path / "disk", "96k") as disk:
        result = execute(load_plan(ONE_HOUR), BENCH, out_dir=disk)
        (station,) = opened
        _assert_bench_safe(station)
        assert result.verdict == "error"
        assert result.error is not None and "No space left on device" in result.error
        assert result.trace_error is not None
        lines = (disk / "one_hour_v2h.trace.jsonl").read_bytes().splitlines()
        assert len(lines) > 10
        for line in lines:  # every line on disk is a whole record
            json.loads(line)
        # In memory the run saw its safe state through to the end.
        safe = result.trace.events_named("safe_state")
        assert len(safe) == 5 and all(e.data["ok"] for e in safe)
        assert result.simulated_s < 3600  # stopped short, not run blind to the end


def test_a_trace_cut_mid_line_reads_back_up_to_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"t":0,"k":"meta","plan":"p"}\n{"t":1,"k":"sample","src":"a","v":{"x":1}}\n{"t":2,"k":"sam'
    )
    trace = Trace.load(path)
    assert trace.series("a.x")[1].tolist() == [1.0]
    assert trace.meta["cut_at_line"] == 3 and not trace.complete


# -------------------------------------------------------------------------------------- signals
def _storm(count: int, delay: float) -> threading.Thread:
    def fire() -> None:
        time.sleep(delay)
        for _ in range(count):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.001)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("count", [2, 3])
def test_two_or_three_sigints_1_ms_apart_leave_the_bench_safe_every_time(
    count: int, opened: list[Station]
) -> None:
    rng = random.Random(count)
    plan = load_plan(ONE_HOUR)
    for attempt in range(20):
        opened.clear()
        storm = _storm(count, rng.uniform(0.05, 0.6))
        result = execute(plan, BENCH, seed=attempt)
        storm.join(5)
        (station,) = opened
        _assert_bench_safe(station)
        assert result.verdict == "interrupted" and result.interrupted == "SIGINT", (
            attempt,
            result.error,
            result.simulated_s,
        )
        safe = result.trace.events_named("safe_state")
        assert len(safe) == 5 and all(e.data["ok"] for e in safe), safe
        # Signals after the first that arrived during the teardown are reported (the last may
        # come after it ended).
        for late in result.trace.events_named("signals_during_teardown"):
            assert 1 <= len(late.data["signals"]) <= count - 1


def _run(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rig", "run", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kw,
    )


def _wait_running(trace_path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if trace_path.stat().st_size > 20_000:
                return
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the run never got going:\n" + (proc.communicate()[0] or ""))


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT], ids=["sighup", "3xsigint"])
def test_rig_run_stopped_by_signals_records_the_interrupted_plan_and_ends_safe(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "out"
    proc = _run(["fixtures/plans/long_hold.yaml", str(ONE_HOUR), "--out", str(out)])
    _wait_running(out / "long_hold.trace.jsonl", proc)
    for _ in range(1 if sig == signal.SIGHUP else 3):
        proc.send_signal(sig)
        time.sleep(0.001)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    state = json.loads((out / "long_hold.bench_state.json").read_text())
    assert state["battery"]["output_on"] is False and state["grid"]["output_on"] is False
    assert state["home"]["input_on"] is False
    record = json.loads((out / "record.json").read_text())
    assert record["complete"] is False and record["stopped_by"] == sig.name
    (run,) = record["runs"]  # the plan that started; the second never did
    assert run["verdict"] == "interrupted" and run["plan"].endswith("long_hold.yaml")
    junit = (out / "junit.xml").read_text()
    assert 'name="long_hold"' in junit and f"interrupted by {sig.name}" in junit


# -------------------------------------------------------------------------------- output folder
def test_a_second_run_on_the_same_output_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OutputFolder(tmp_path / "out"):
        with pytest.raises(OutputError, match="is in use by another run"):
            OutputFolder(tmp_path / "out").open()
        assert main(["run", str(ONE_HOUR), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert f"rig run: output folder {tmp_path / 'out'} is in use by another run" in err


def test_an_earlier_runs_files_are_cleared_and_foreign_folders_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputFolder(out):
        (out / "old_plan.trace.jsonl").write_text("{}\n")
    with OutputFolder(out):
        assert not (out / "old_plan.trace.jsonl").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(OutputError, match="holds files that no rig run wrote"):
        OutputFolder(foreign).open()
    assert (foreign / "thesis.tex").exists()


def test_two_plans_with_the_same_name_in_different_folders_keep_their_outputs(
    tmp_path: Path,
) -> None:
    for sub in ("a", "b"):
        (tmp_path / "plans" / sub).mkdir(parents=True)
        (tmp_path / "plans" / sub / "same.yaml").write_text(
            # Short, but long enough for every check of the plan to judge its steps.
            GOOD_PLAN.replace("hold: 20 s", "hold: 6 s")
        )
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "plans"), "--out", str(out)]) == 0
    assert (out / "a__same.trace.jsonl").is_file() and (out / "b__same.trace.jsonl").is_file()
    record = json.loads((out / "record.json").read_text())
    assert sorted(Path(r["trace"]).name for r in record["runs"]) == [
        "a__same.trace.jsonl",
        "b__same.trace.jsonl",
    ]


def test_a_run_whose_only_plan_is_skipped_does_not_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BENCH_FILE.read_text()
    nogrid = tmp_path / "nogrid.yaml"
    nogrid.write_text(text[: text.index("  grid:\n")] + text[text.index("  home:\n") :])
    plan = str(REPO / "test_plans/v2h/grid_loss_backup.yaml")
    args = ["run", plan, "--bench", str(nogrid)]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 1
    assert "plan(s) skipped — not a pass" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "o2"), "--allow-skips"]) == 0


# ------------------------------------------------------------------------------- hostile files
PLAN_HEAD = "title: t\ndut: evse\nev: {capacity: 60 kWh, soc: 50 %, reserve: 30 %}\n"
STEPS = "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
CHECKS = "checks:\n  - reserve_floor: {}\n"
BOMB = "".join(
    f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

#: name -> (plan text or bytes, the start of the expected one-line error after "file:")
HOSTILE_PLANS: dict[str, tuple[str | bytes, str]] = {
    "not utf-8": (
        PLAN_HEAD.encode() + b"requirement: caf\xe9\n" + (STEPS + CHECKS).encode(),
        "4: (file): not UTF-8",
    ),
    "control character": (
        PLAN_HEAD + "requirement: a\x07b\n" + STEPS + CHECKS,
        "4: (file): character 0x0007",
    ),
    "nul byte": (
        PLAN_HEAD + "requirement: a\x00b\n" + STEPS + CHECKS,
        "4: (file): character 0x0000",
    ),
    "unknown yaml tag": (
        PLAN_HEAD + "requirement: !python/object x\n" + STEPS + CHECKS,
        "4: requirement: could not determine a constructor",
    ),
    "5000 levels": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "0: (document): nested too deeply"),
    "alias bomb": (
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + BOMB,
        "more than 200000 values",
    ),
    "5 MB title": ("title: " + "x" * 5_000_000 + "\n", "0: (file): larger than 1024 KiB"),
    "long title": (
        PLAN_HEAD.replace("title: t", "title: " + "x" * 300) + STEPS + CHECKS,
        "1: title: 300 characters; at most 200",
    ),
    "grid voltage 0 V": (
        PLAN_HEAD + "grid: {voltage: 0 V}\n" + STEPS + CHECKS,
        "4: grid.voltage: must be positive",
    ),
    "hold 1e9 s": (PLAN_HEAD + STEPS + "  - hold: 1e9 s\n" + CHECKS, "steps: the plan can run for"),
    "wait 1e9 s": (
        PLAN_HEAD + STEPS + "  - {wait_for: {soc_below: 40 %}, timeout: 1e9 s}\n" + CHECKS,
        "steps: the plan can run for",
    ),
    "sampling 1 us": (
        PLAN_HEAD + "sampling: {period: 1 us}\n" + STEPS + "  - hold: 1 h\n" + CHECKS,
        "sampling: the plan would take up to",
    ),
    "negative fast window": (
        PLAN_HEAD + "sampling: {fast_window: -5 s}\n" + STEPS + CHECKS,
        "sampling.fast_window: must not be negative",
    ),
    "1e999 kWh": (
        PLAN_HEAD.replace("60 kWh", "1e999 kWh") + STEPS + CHECKS,
        "3: ev.capacity: '1e999 kWh' is not a finite quantity",
    ),
    "negative max_charge": (
        PLAN_HEAD.replace("reserve: 30 %}", "reserve: 30 %, max_charge: -7 kW}") + STEPS + CHECKS,
        "ev.max_charge: the charge limit is a magnitude",
    ),
    "negative home load": (
        PLAN_HEAD + STEPS + "  - home_load: -3 kW\n" + CHECKS,
        "steps[1].home_load: a home load consumes power",
    ),
    "negative time limit": (
        PLAN_HEAD + STEPS + "checks:\n  - transition_time: {within: -2 s}\n",
        "checks[0].transition_time.within: must be positive",
    ),
    "500 % tolerance": (
        PLAN_HEAD + STEPS + "checks:\n  - reserve_floor: {tolerance: 500 %}\n",
        "checks[0].reserve_floor.tolerance: must be at most 100 %",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PLANS))
def test_a_hostile_plan_is_a_one_line_error_exit_2_within_5_s(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = HOSTILE_PLANS[name]
    plan = tmp_path / "hostile.yaml"
    if isinstance(content, bytes):
        plan.write_bytes(content)
    else:
        plan.write_text(content, encoding="utf-8")
    for command in (["validate", str(plan)], ["run", str(plan), "--out", str(tmp_path / "o")]):
        t0 = time.perf_counter()
        assert main(command) == 2
        assert time.perf_counter() - t0 < 5.0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert f"{plan}:" in text and expected in text, text
        assert "Traceback" not in text


def test_a_symlink_loop_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    assert main(["validate", str(tmp_path / "loop.yaml")]) == 2
    assert "(file): Too many levels of symbolic links" in capsys.readouterr().out
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "up").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "p.yaml").write_text(PLAN_HEAD + STEPS + CHECKS)
    t0 = time.perf_counter()
    assert main(["validate", str(tmp_path / "d")]) == 0  # the loop is not followed
    assert time.perf_counter() - t0 < 5.0


HOSTILE_BENCHES: dict[str, tuple[str, str, str]] = {
    "teardown 0 s": (
        "teardown_timeout: 5 s",
        "teardown_timeout: 0 s",
        "teardown_timeout: must be more than 0 s",
    ),
    "teardown negative": (
        "teardown_timeout: 5 s",
        "teardown_timeout: -1 s",
        "teardown_timeout: must be more than 0 s",
    ),
    "noise maybe": (
        "noise: true",
        "noise: maybe",
        "emulation.noise: expected true or false, got 'maybe'",
    ),
    "efficiency 150 %": (
        "efficiency: 96 %",
        "efficiency: 150 %",
        "emulation.evse: EVSEConfig.efficiency must be within (0, 1]",
    ),
    "negative ramp": (
        "ramp_rate: 20 kW/s",
        "ramp_rate: -20 kW/s",
        "emulation.evse: EVSEConfig.ramp_w_per_s must be a positive number",
    ),
    "unknown option": (
        "    model: ea_psb10000\n",
        "    model: ea_psb10000\n    turbo: true\n",
        "instruments.battery: ea_psb10000: unknown option(s) ['turbo']",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BENCHES))
def test_a_hostile_bench_is_a_one_line_error_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, expected = HOSTILE_BENCHES[name]
    text = BENCH_FILE.read_text()
    assert old in text
    bench = tmp_path / "bench.yaml"
    bench.write_text(text.replace(old, new))
    assert main(["validate", str(bench)]) == 2
    assert f"{bench}:" in (out := capsys.readouterr().out) and expected in out, out
    assert main(["run", str(ONE_HOUR), "--bench", str(bench), "--out", str(tmp_path / "o")]) == 2
    assert expected in capsys.readouterr().err


def test_an_output_folder_that_is_a_file_or_read_only_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["run", str(ONE_HOUR), "--out", str(tmp_path / "file")]) == 2
    assert f"output folder {tmp_path / 'file'} is a file" in capsys.readouterr().err
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return  # a read-only folder needs a read-only mount: root ignores file modes
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode:
        return
    try:
        assert main(["run", str(ONE_HOUR), "--out", str(ro)]) == 2
        assert "is not writable: Read-only file system" in capsys.readouterr().err
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_emulate_serve_with_a_bad_or_busy_port_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    assert main(["emulate", "--serve", "--port", "70000"]) == 2
    assert "--port 70000 is not a TCP port" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulate", "--serve", "--port", str(port)]) == 2
        assert "Address already in use" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"SessionSetupReq": ' + '{"Header": ' * 3000 + "1" + "}" * 3001, "nested too deeply"),
        ('{"SessionSetupReq": {"Header": {"TimeStamp": ' + "9" * 5000 + "}}}", "4300 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
    ids=["deep object", "huge integer", "deep list"],
)
def test_hostile_json_to_exi_encode_is_a_one_line_error(
    text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from rig.v2g.exi.cli import main as exi_main

    t0 = time.perf_counter()
    assert exi_main(["encode", "--ns", "common", "-"], stdin=io.StringIO(text)) == 2
    assert time.perf_counter() - t0 < 5.0
    err = capsys.readouterr().err
    assert err.startswith("rig exi: ") and expected in err and err.count("\n") == 1
