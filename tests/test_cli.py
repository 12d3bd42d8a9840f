"""The command line: rig run (exit codes, report, record.json), rig defects, rig emulate --serve."""

import hashlib
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
from rig import __version__
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
    assert set(record) == {
        "schema_version",
        "rig",
        "host",
        "started_utc",
        "ended_utc",
        "seed",
        "defects",
        "bench",
        "plans",
        "dut",
        "instruments",
        "complete",
        "summary",
        "runs",
    }
    assert record["schema_version"] == 2 and record["seed"] == 7 and record["complete"] is True
    assert record["rig"]["version"] == __version__
    assert record["bench"]["path"] == "fixtures/benches/emulated.yaml"
    assert (
        record["bench"]["sha256"]
        == hashlib.sha256((REPO / "fixtures/benches/emulated.yaml").read_bytes()).hexdigest()
    )
    (plan,) = record["plans"]
    assert plan == {
        "path": PLAN,
        "sha256": hashlib.sha256((REPO / PLAN).read_bytes()).hexdigest(),
    }
    assert (
        record["dut"]["name"] == "Emulated bidirectional EVSE" and record["dut"]["side"] == "evse"
    )
    assert record["started_utc"] <= record["ended_utc"]
    assert record["summary"] == {"verdict": "pass", "counts": {"pass": 1}}
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
    assert check["relation"] == "≤" and check["params"]["within"] == 2.0
    # The decisive row is the one with the tightest margin to its limit.
    from rig.report.outcome import decisive, margin

    tightest = decisive(run["checks"])
    assert tightest is not None and run["decisive"] == run["checks"][tightest]["name"]
    finite = [margin(c) for c in run["checks"] if c["measured"] is not None]
    assert margin(run["checks"][tightest]) == min(finite)
    assert run["headline"].startswith(run["decisive"] + " ") and "≤" in run["headline"]
    assert run["trace"] == "grid_loss_grid_following.trace.jsonl"
    assert run["figure"] == "grid_loss_grid_following.png"
    assert {i["role"] for i in record["instruments"]} == {
        "power_analyzer",
        "dc_source",
        "grid_simulator",
        "ac_load",
    }
    assert all(i["emulated"] and i["idn"].count(",") == 3 for i in record["instruments"])
    analyzer = next(i for i in record["instruments"] if i["role"] == "power_analyzer")
    assert analyzer["calibration_due"] == "2027-06-30"
    assert analyzer["calibration_expired"] is (record["started_utc"][:10] > "2027-06-30")
    html = (tmp_path / "report.html").read_text()
    assert "grid_loss_grid_following" in html and "data:image/png;base64" in html
    assert "rig-verdicts" in html and "Run identity" in html
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="islanding:grid_following.measured"' in junit
    assert 'classname="test_plans.v2h"' in junit and 'name="seed" value="7"' in junit
    assert (tmp_path / "grid_loss_grid_following.trace.jsonl").stat().st_size > 0
    # The terminal: one verdict line with the decisive figure, then the files written.
    assert re.search(
        rf"^PASS +grid_loss_grid_following +{re.escape(run['decisive'])} ", proc.stdout, re.M
    )
    assert f"report: {tmp_path / 'report.html'}" in proc.stdout


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
            role, _model, address = line.split()  # `<role> <model> <address>` per served part
            lines[role] = address
        assert set(lines) == {
            "power_analyzer",
            "dc_source",
            "grid_simulator",
            "ac_load",
            "dut_control",
            "dut",
        }
        assert all(
            a.startswith("TCPIP::127.0.0.1::") and a.endswith("::SOCKET")
            for role, a in lines.items()
            if role != "dut"
        )
        assert lines["dut"].startswith("tcp:[::1]:")
        rm = pyvisa.ResourceManager("@py")
        psb = PSB10000(rm.open_resource(lines["dc_source"]))
        assert psb.identify().maker.startswith("EA Elektro-Automatik")
        psb.set_voltage(400.0)
        psb.set_output(True)
        assert psb.output_enabled()
        psb.safe_state()
        assert not psb.output_enabled()
        wt = WT5000(rm.open_resource(lines["power_analyzer"]))
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


def test_version_names_the_rig_and_its_commit() -> None:
    proc = _rig("--version")
    assert proc.returncode == 0
    assert re.fullmatch(
        rf"rig {re.escape(__version__)}(, commit [0-9a-f]{{12}}( with local changes)?| \(no git checkout\))\n",
        proc.stdout,
    ), proc.stdout


def test_run_works_from_any_folder_with_the_packaged_plans_and_bench(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig",
            "run",
            "-k",
            "grid_loss_grid_following",
            "--reports",
            str(reports),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    latest = reports / "latest"
    assert latest.is_symlink() and (latest / "report.html").is_file()
    record = json.loads((latest / "record.json").read_text())
    assert [r["plan"] for r in record["runs"]] == [PLAN]
    assert record["bench"]["path"] == "fixtures/benches/emulated.yaml"


def test_quiet_run_prints_one_closing_line(tmp_path: Path) -> None:
    proc = _rig("run", PLAN, "--out", str(tmp_path), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith("PASS: 1 plan(s): 1 pass") and str(tmp_path / "report.html") in line


def test_verbose_run_logs_steps_dut_events_and_instrument_commands(tmp_path: Path) -> None:
    proc = _rig("run", PLAN, "--out", str(tmp_path), "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(
        r"^\[\d+\.\d{3} s\] grid_loss_grid_following step 4 \(line 18\): grid off$", out, re.M
    )
    assert re.search(r"grid_loss_grid_following dut island_detected method=active", out)
    # Every instrument command, with its reply for a query, from the plan's command log.
    assert re.search(
        r"^  grid_loss_grid_following grid \(Keysight[^)]*AC6900\) > OUTP OFF$", out, re.M
    ), out[-2000:]
    assert re.search(
        r"grid_loss_grid_following analyzer \([^)]*WT5000\) > \*IDN\? < YOKOGAWA,WT5000,", out
    )
    log = (tmp_path / "grid_loss_grid_following.commands.log").read_text()
    assert log.count("\n") > 1000 and "> *IDN? <" in log
    html = (tmp_path / "report.html").read_text()
    assert "href='grid_loss_grid_following.commands.log'" in html


def test_emulate_with_an_unknown_defect_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulate", "--serve", "--port", "0", "--defect", "no_such_defect"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rig emulate: unknown defect(s) no_such_defect; known: ")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--defect", "ignores_tariff"],
            "ignores_tariff: a management defect needs --plan with a day",
        ),
        (
            ["--defect", "ignores_tariff", "--plan", PLAN],
            "ignores_tariff: a management defect needs --plan with a day",
        ),
        (
            ["--defect", "late_response"],
            "only the physics and management defects apply to a served bench",
        ),
    ],
)
def test_emulate_refuses_a_defect_it_cannot_serve_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulate", "--serve", "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_run_with_an_unreachable_instrument_names_it_and_its_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"TCPIP::127.0.0.1::{port}::SOCKET"
    text = (REPO / "fixtures/benches/emulated.yaml").read_text()
    bench = tmp_path / "bench.yaml"
    bench.write_text(
        text.replace(
            "    model: yokogawa_wt5000\n    address: emulated",
            f'    model: yokogawa_wt5000\n    address: "{address}"',
            1,
        )
    )
    assert address in bench.read_text()
    assert main(["run", PLAN, "--bench", str(bench), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rig run: instrument analyzer (yokogawa_wt5000) at {address} does not answer *IDN?: "
        "Connection refused\n"
    )
    assert not (tmp_path / "out").exists()  # refused before any output folder was made


def test_a_selection_that_matches_no_plan_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", PLAN, "-k", "no_such_plan", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "rig run: no plan matched -k no_such_plan\n"
    assert not (tmp_path / "record.json").exists()


@pytest.mark.parametrize("command", ["ev", "evse", "decode", "exi", "pki"])
def test_commands_with_their_own_options_are_reached_through_rig(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert f"rig {command}" in capsys.readouterr().out


def test_rig_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "validate", "defects", "instruments", "emulate", "ev", "evse",
                    "decode", "exi", "pki"):  # fmt: skip
        assert command in out
