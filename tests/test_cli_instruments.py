"""`rig instruments`: every instrument of a bench identified, one row each; one that does not
answer is a row with the reason (the rest still listed) and exit 1; calibration dates past due
are flagged."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
import yaml

from instruments.emulated.server import serve
from instruments.registry import make_twin
from rig.bench import load_bench
from rig.cli import main
from rig.clock import RealClock
from rig.sim import World, WorldConfig

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "fixtures/benches/lab-example.yaml"
BENCH_KEYS = {"role", "model", "address", "limits", "calibration_due", "serial"}


def _rows(out: str) -> dict[str, str]:
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ROLE", "MODEL"], out
    return {line.split()[0]: line for line in lines[1:-1]}


def test_the_emulated_bench_is_listed_with_identities(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["instruments", "--bench", str(REPO / "fixtures/benches/emulated.yaml")]) == 0
    rows = _rows(capsys.readouterr().out)
    bench = load_bench(REPO / "fixtures/benches/emulated.yaml")
    assert set(rows) == {i.name for i in bench.instruments}
    assert "YOKOGAWA,WT5000," in rows["analyzer"]
    assert "PSB 10" in rows["battery"] and "emulated" in rows["battery"]


def _closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_lab_example_over_tcp_and_an_instrument_that_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lab example's instruments served as SCPI sockets on loopback (their twins), reached
    by pyvisa-py as real ones; the scope's address is a closed port."""
    raw = yaml.safe_load(LAB.read_text())
    world = World(WorldConfig(), seed=3)
    clock = RealClock()
    twins = {
        name: make_twin(
            spec["model"],
            world,
            clock.now,
            serial=str(spec["serial"]),
            options={k: v for k, v in spec.items() if k not in BENCH_KEYS},
        )
        for name, spec in raw["instruments"].items()
    }
    dead = _closed_loopback_port()
    with serve(twins, sleep_until=clock.sleep_until) as handle:
        for name, spec in raw["instruments"].items():
            spec["address"] = handle.address(name)
        raw["instruments"]["scope"]["address"] = f"TCPIP::127.0.0.1::{dead}::SOCKET"
        raw["dut"] = {"side": "evse", "name": "emulated", "emulated": True}
        bench = tmp_path / "lab-served.yaml"
        bench.write_text(yaml.safe_dump(raw))
        code = main(["instruments", "--bench", str(bench)])
    out = capsys.readouterr().out
    assert code == 1, out
    rows = _rows(out)
    assert set(rows) == set(raw["instruments"])
    assert "NO ANSWER" in rows["scope"] and str(dead) in rows["scope"]
    today = dt.date.today()
    for name, spec in raw["instruments"].items():
        if name == "scope":
            continue
        assert str(spec["serial"]) in rows[name], rows[name]
        assert "NO ANSWER" not in rows[name]
        overdue = dt.date.fromisoformat(str(spec["calibration_due"])) < today
        assert ("OVERDUE" in rows[name]) == overdue, rows[name]
    assert out.splitlines()[-1].startswith(f"{len(rows) - 1} of {len(rows)} ")
    for name, twin in twins.items():
        if name != "scope":
            assert twin.errors == [], (name, twin.errors)
