"""The model registry: keys, roles, option routing between driver and twin, resource names."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.commands import unconfirmed
from instruments.emulated.psb10000 import PSB10000Twin
from instruments.emulated.wt5000 import WT5000Twin
from instruments.registry import (
    MODELS,
    emulated_resource_name,
    make_twin,
    model_entry,
    open_instrument,
)
from instruments.roles import Role
from instruments.testing import FakeResource
from instruments.yokogawa.wt5000 import WT5000
from instruments.yokogawa.wt_series import COMMANDS as WT_COMMANDS


def test_every_role_has_a_model_and_the_required_ones_two() -> None:
    by_role: dict[Role, list[str]] = {}
    for key, entry in MODELS.items():
        assert entry.driver.role == entry.role, key
        by_role.setdefault(entry.role, []).append(key)
    assert set(by_role) == set(Role)
    for role in (Role.POWER_ANALYZER, Role.DC_SOURCE, Role.GRID_SIMULATOR):
        assert len(by_role[role]) >= 2, role


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="known:"):
        model_entry("fluke_6105a")


def test_emulated_resource_names_look_like_the_real_usb_ones() -> None:
    assert emulated_resource_name("yokogawa_wt5000", "91N1") == "USB0::0x0B21::0x0025::91N1::INSTR"
    assert MODELS["ea_psb10000"].emulated_resource("EMU0002").startswith("USB0::0x232E::")


def test_open_instrument_applies_the_driver_options_and_ignores_twin_only_ones() -> None:
    options = {
        "elements": {1: "grid"},
        "model": "WT5000",
        "accuracy": {"power": {"reading": 0.001}},
    }
    resource = FakeResource(
        [
            (":COMMunicate:HEADer OFF", None),
            (":NUMeric:FORMat ASCII", None),
            (":NUMeric:NORMal:NUMber 7", None),
            *[
                (f":NUMeric:NORMal:ITEM{k} {f},1", None)
                for k, f in enumerate(["URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU"], 1)
            ],
            (":RATE 50MS", None),
            (":INPut:VOLTage:AUTO:ELEMent1 ON", None),
            (":INPut:CURRent:AUTO:ELEMent1 ON", None),
            (":INPut:FILTer:LINE:ELEMent1 OFF", None),
            (":STATus:FILTer1 FALL", None),
            (":STATus:EESR?", "0"),
            (":STATus:ERRor?", '0,"No error"'),
        ]
    )
    driver = open_instrument("yokogawa_wt5000", resource, options=options, name="analyzer")
    assert isinstance(driver, WT5000) and driver.label == "analyzer (YOKOGAWA WT5000)"
    resource.assert_done()


def test_twin_only_options_do_not_reach_a_driver_without_options() -> None:
    resource = FakeResource([])
    open_instrument("keysight_ac6900", resource, options={"voltage_max_v": 300.0, "noise": False})
    resource.assert_done()


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        open_instrument("ea_psb10000", FakeResource([]), options={"colour": "red"})


def test_make_twin_hands_the_twin_its_share(world: FakeWorld, clock: Clock) -> None:
    twin = make_twin(
        "ea_psb10000", world, clock.now, serial="S1", options={"voltage_rating": "60 V"}
    )
    assert isinstance(twin, PSB10000Twin) and twin.voltage_rating_v == 60.0
    analyzer = make_twin("yokogawa_wt5000", world, clock.now, options={"elements": {2: "home"}})
    assert isinstance(analyzer, WT5000Twin) and analyzer.wiring == {2: "home"}


def test_every_command_table_says_where_its_facts_come_from() -> None:
    # The WT table cites the family's manuals and sample code; what no manual confirmed is (?).
    assert "wait_update" in unconfirmed(WT_COMMANDS)
    for key, entry in MODELS.items():
        module = __import__(entry.driver.__module__, fromlist=["COMMANDS"])
        table = module.COMMANDS
        assert table, key
        assert all(cmd.source for cmd in table.values()), key
