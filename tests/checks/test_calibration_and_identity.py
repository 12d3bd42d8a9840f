"""An instrument past its calibration date refuses the run unless it is allowed, and then every
verdict says so; a real instrument's *IDN? serial must be the bench file's."""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
from benches import EMULATED, REPO

from instruments.emulated.server import serve
from instruments.registry import make_twin
from instruments.roles import Identity
from rig.bench import BenchConfig, load_bench
from rig.clock import RealClock, VirtualClock
from rig.plan import load_plan
from rig.runner import execute
from rig.sim import World, WorldConfig
from rig.station import (
    CalibrationExpired,
    IdentityMismatch,
    calibration_caveats,
    check_identity,
    open_station,
)
from rig.yamlsrc import SourceError

PLAN = REPO / "test_plans/conformance/charge_loop_timing.yaml"


def _expired(bench: BenchConfig, name: str = "analyzer", due: str = "2019-01-31") -> BenchConfig:
    return dataclasses.replace(
        bench,
        instruments=tuple(
            dataclasses.replace(i, calibration_due=due) if i.name == name else i
            for i in bench.instruments
        ),
    )


def test_an_expired_calibration_refuses_the_run_before_any_instrument_is_touched() -> None:
    with pytest.raises(
        CalibrationExpired, match=r"analyzer \(yokogawa_wt5000\) calibration expired"
    ):
        open_station(_expired(EMULATED), load_plan(PLAN), VirtualClock())
    result = execute(load_plan(PLAN), _expired(EMULATED))
    assert result.verdict == "error" and result.verdicts == []
    assert result.error is not None and "--allow-expired-calibration" in result.error
    assert not result.trace.events_named("bench_open")


def test_allowed_the_run_goes_on_and_every_verdict_says_so() -> None:
    result = execute(load_plan(PLAN), _expired(EMULATED), allow_expired_calibration=True)
    assert result.error is None and result.verdicts
    for verdict in result.verdicts:
        assert any("expired on 2019-01-31" in c for c in verdict.caveats), verdict
        assert verdict.as_record()["caveats"] == list(verdict.caveats)


def test_a_calibration_due_today_or_later_is_fine() -> None:
    today = datetime.date(2026, 5, 1)
    assert (
        calibration_caveats(_expired(EMULATED, due="2026-05-01"), today, allow_expired=False) == []
    )
    with pytest.raises(CalibrationExpired, match="1 days before 2026-05-01"):
        calibration_caveats(_expired(EMULATED, due="2026-04-30"), today, allow_expired=False)


def test_a_real_instrument_with_no_calibration_date_is_said() -> None:
    real = dataclasses.replace(
        EMULATED,
        instruments=tuple(
            dataclasses.replace(i, address="TCPIP::127.0.0.1::5025::SOCKET", calibration_due=None)
            if i.name == "grid"
            else i
            for i in EMULATED.instruments
        ),
    )
    (caveat,) = calibration_caveats(real, datetime.date(2026, 1, 1), allow_expired=False)
    assert "grid (keysight_ac6900): the bench file states no calibration date" in caveat


def test_a_calibration_date_that_is_not_a_date_is_a_file_line_error(tmp_path: Path) -> None:
    text = (REPO / "fixtures/benches/emulated.yaml").read_text()
    bad = tmp_path / "bench.yaml"
    bad.write_text(text.replace("calibration_due: 2027-06-30", "calibration_due: 30.06.2027", 1))
    with pytest.raises(SourceError, match=r"bench.yaml:\d+: instruments.analyzer.calibration_due"):
        load_bench(bad)


def test_the_identity_serial_must_match_the_bench_file() -> None:
    inst = next(i for i in EMULATED.instruments if i.name == "battery")
    named = dataclasses.replace(
        inst, serial="2129120001", address="TCPIP::192.0.2.21::5025::SOCKET"
    )
    check_identity(named, Identity("EA", "PSB 10750-120 4U", "2129120001", "V3.02"))
    check_identity(dataclasses.replace(named, serial=None), Identity("EA", "PSB", "X", "1"))
    with pytest.raises(IdentityMismatch, match="answers \\*IDN\\? with serial 'X'"):
        check_identity(named, Identity("EA", "PSB 10750-120 4U", "X", "V3.02"))


def test_a_real_instrument_answering_with_another_serial_refuses_the_run() -> None:
    clock = RealClock()
    twin = make_twin("ea_psb10000", World(WorldConfig(), seed=1), clock.now, serial="2129120001")
    try:
        with serve({"battery": twin}, sleep_until=clock.sleep_until) as handle:
            address = handle.address("battery")

            def bench_with(serial: str) -> BenchConfig:
                return dataclasses.replace(
                    EMULATED,
                    instruments=tuple(
                        dataclasses.replace(i, address=address, serial=serial)
                        if i.name == "battery"
                        else i
                        for i in EMULATED.instruments
                    ),
                )

            with pytest.raises(IdentityMismatch, match="the bench file names '9999'"):
                open_station(bench_with("9999"), load_plan(PLAN), VirtualClock())
            station = open_station(bench_with("2129120001"), load_plan(PLAN), VirtualClock())
            station.teardown()
    finally:
        clock.close()


def _rig(*args: str) -> int:
    """`rig` in its own process: a run installs its own signal guard and leaves none behind."""
    return subprocess.run(
        [sys.executable, "-m", "rig", *args], cwd=REPO, capture_output=True, timeout=300
    ).returncode


def test_rig_run_passes_the_permission_through(tmp_path: Path) -> None:
    text = (REPO / "fixtures/benches/emulated.yaml").read_text()
    bench = tmp_path / "bench.yaml"
    bench.write_text(text.replace("calibration_due: 2027-06-30", "calibration_due: 2020-06-30", 1))
    args = ["run", str(PLAN), "--bench", str(bench)]
    assert _rig(*args, "--out", str(tmp_path / "refused")) == 1
    (refused,) = json.loads((tmp_path / "refused/record.json").read_text())["runs"]
    assert refused["verdict"] == "error" and "calibration expired" in refused["error"]
    assert _rig(*args, "--out", str(tmp_path / "allowed"), "--allow-expired-calibration") == 0
    (allowed,) = json.loads((tmp_path / "allowed/record.json").read_text())["runs"]
    assert allowed["verdict"] == "pass"
    assert all("expired on 2020-06-30" in c["caveats"][0] for c in allowed["checks"])
