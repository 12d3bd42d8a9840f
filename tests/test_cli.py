"""The command line: rig run (exit codes, report, record.json), rig defects, rig emulate --serve."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pyvisa

from instruments.ea.psb10000 import PSB10000
from instruments.yokogawa.wt5000 import WT5000
from rig.cli import main
from rig.sim import DEFECTS

REPO = Path(__file__).resolve().parent.parent
PLAN = "test_plans/v2h/grid_loss_grid_following.yaml"


def _rig(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_writes_report_and_record_and_exits_0_when_every_plan_passes(tmp_path: Path) -> None:
    proc = _rig("run", PLAN, "--out", str(tmp_path), "--seed", "7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    assert set(record) == {"seed", "bench", "rig_version", "complete", "runs", "instruments"}
    assert record["seed"] == 7
    (run,) = record["runs"]
    assert (
        run["plan"] == PLAN
        and run["verdict"] == "pass"
        and run["protocol"] == "ISO 15118-20"
        and run["messages"] > 100
    )
    assert run["simulated_s"] > 40 and run["wall_s"] > 0
    check = next(c for c in run["checks"] if c["name"] == "islanding:grid_following")
    assert check["unit"] == "s"
    assert 0 < check["measured"] < check["limit"] == 2.0
    assert {i["role"] for i in record["instruments"]} == {
        "power_analyzer",
        "dc_source",
        "grid_simulator",
        "ac_load",
    }
    assert all(i["emulated"] and i["idn"].count(",") == 3 for i in record["instruments"])
    html = (tmp_path / "report.html").read_text()
    assert (
        "grid_loss_grid_following" in html
        and "data:image/png;base64" in html
        and "rig-verdicts" in html
    )
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="islanding:grid_following.measured"' in junit
    assert (tmp_path / "grid_loss_grid_following.trace.jsonl").stat().st_size > 0


def test_run_with_a_defect_fails_on_the_check_it_breaks(tmp_path: Path) -> None:
    proc = _rig("run", PLAN, "--out", str(tmp_path), "--defect", "no_island_detection")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "islanding:grid_following" in proc.stdout and "still energized" in proc.stdout
    (run,) = json.loads((tmp_path / "record.json").read_text())["runs"]
    assert run["verdict"] == "fail" and run["defects"] == ["no_island_detection"]


def test_run_refuses_unknown_defects_and_bad_bench_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", PLAN, "--defect", "no_such_thing", "--out", str(tmp_path)]) == 2
    assert "unknown defect(s) no_such_thing; known:" in capsys.readouterr().err
    bench = tmp_path / "bench.yaml"
    bench.write_text(
        "dut: {side: evse, emulated: true}\ninstruments:\n  a: {role: power_analyzer, model: wt9999, address: emulated}\n"
    )
    assert main(["run", PLAN, "--bench", str(bench), "--out", str(tmp_path)]) == 2
    assert (
        f"{bench}:3: instruments.a.model: 'wt9999' is not a known model" in capsys.readouterr().err
    )


def test_defects_lists_every_defect_with_what_it_breaks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["defects"]) == 0
    out = capsys.readouterr().out
    for name, defect in DEFECTS.items():
        assert re.search(rf"^{name}\s+breaks: {', '.join(defect.breaks)}$", out, re.M)


def test_emulate_serve_speaks_scpi_to_pyvisa_py_on_loopback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig", "emulate", "--serve", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("serving"):
                break
            name, _, address = line.partition(": ")
            lines[name.split()[0]] = address.strip()
        assert set(lines) == {"analyzer", "battery", "grid", "home"}
        assert all(
            a.startswith("TCPIP::127.0.0.1::") and a.endswith("::SOCKET") for a in lines.values()
        )
        rm = pyvisa.ResourceManager("@py")
        psb = PSB10000(rm.open_resource(lines["battery"]))
        assert psb.identify().maker.startswith("EA Elektro-Automatik")
        psb.set_voltage(400.0)
        psb.set_output(True)
        assert psb.output_enabled()
        psb.safe_state()
        assert not psb.output_enabled()
        wt = WT5000(rm.open_resource(lines["analyzer"]))
        wt.configure({1: "grid", 2: "evse_ac"})
        assert 200 < wt.read()["grid"].v_rms < 260  # type: ignore[union-attr]
        rm.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_emulate_refuses_non_loopback_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--serve", "--host", "0.0.0.0"]) == 2
    assert "loopback only" in capsys.readouterr().err
