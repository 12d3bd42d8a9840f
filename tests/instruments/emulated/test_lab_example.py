"""The lab example bench served as TCP sockets: every instrument's twin answers its driver over
pyvisa-py, and the inventory lists them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyvisa
import yaml

from instruments.emulated.server import serve
from instruments.inventory import InventoryEntry, inventory, parse_due
from instruments.registry import MODELS, make_twin, open_instrument
from instruments.roles import Role
from rig.clock import RealClock
from rig.sim import World, WorldConfig

REPO = Path(__file__).resolve().parents[3]
LAB = REPO / "fixtures/benches/lab-example.yaml"
#: What a bench entry says about an instrument that is not a model option.
BENCH_KEYS = {"role", "model", "address", "limits", "calibration_due", "serial"}


def test_the_lab_example_names_every_role_once() -> None:
    bench = yaml.safe_load(LAB.read_text())
    roles = [spec["role"] for spec in bench["instruments"].values()]
    assert sorted(roles) == sorted(role.value for role in Role)
    for name, spec in bench["instruments"].items():
        assert MODELS[spec["model"]].role == spec["role"], name
        assert spec["serial"] and parse_due(spec["calibration_due"]), name


def test_every_twin_of_the_lab_example_is_served_and_answers_its_driver() -> None:
    bench = yaml.safe_load(LAB.read_text())["instruments"]
    world = World(WorldConfig(), seed=9)
    clock = RealClock()
    twins = {
        name: make_twin(
            spec["model"],
            world,
            clock.now,
            serial=str(spec["serial"]),
            options={k: v for k, v in spec.items() if k not in BENCH_KEYS},
        )
        for name, spec in bench.items()
    }
    with serve(twins, sleep_until=clock.sleep_until) as handle:
        rm = pyvisa.ResourceManager("@py")
        entries = []
        try:
            for name, spec in bench.items():
                options = {k: v for k, v in spec.items() if k not in BENCH_KEYS}
                resource = rm.open_resource(handle.address(name), timeout=3000)
                driver = open_instrument(spec["model"], resource, options=options, name=name)
                settings = driver.settings()
                assert settings, name
                entries.append(
                    InventoryEntry(
                        name,
                        driver,
                        spec["model"],
                        handle.address(name),
                        parse_due(spec["calibration_due"]),
                        str(spec["serial"]),
                    )
                )
            rows = inventory(entries, today=dt.date(2026, 12, 1))
        finally:
            rm.close()
    assert [row.name for row in rows] == list(bench)
    assert all(row.error is None and row.idn is not None for row in rows)
    assert not any(row.serial_mismatch for row in rows)
    overdue = {row.name for row in rows if row.calibration_overdue}
    assert overdue == {"battery", "grid"}  # due 2026-11-15 and 2026-09-30
    for name, twin in twins.items():
        assert twin.errors == [], (name, twin.errors)
