"""The emulated RLC bank: a tank on the home bus, joined with the electronic load if both are on."""

from __future__ import annotations

import math

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.a635000 import A635000Twin
from instruments.emulated.c63800 import C63800Twin


@pytest.fixture
def bank(world: FakeWorld, clock: Clock) -> A635000Twin:
    return A635000Twin(world, clock.now, options={"noise": False})


def test_the_balanced_tank_becomes_the_worlds_rlc_load(bank: A635000Twin, world: FakeWorld) -> None:
    bank.handle("CONF:VOLT:NOM 230;:CONF:FREQ:NOM 50")
    bank.handle("LOAD:RES:POW 3000;:LOAD:IND:POW 3000;:LOAD:CAP:POW 3000;:LOAD ON")
    assert bank.errors == [] and world.home_on and world.home_rlc is not None
    r, l_h, c_f = world.home_rlc
    assert r == pytest.approx(230.0**2 / 3000.0)
    assert 1 / (2 * math.pi * math.sqrt(l_h * c_f)) == pytest.approx(50.0)  # type: ignore[operator]


def test_the_bank_measures_its_own_branches(
    bank: A635000Twin, world: FakeWorld, clock: Clock
) -> None:
    bank.handle("LOAD:RES:POW 2000;:LOAD:IND:POW 1500;:LOAD:CAP:POW 500;:LOAD ON")
    clock.t = 0.5
    assert bank.handle("MEAS:POW?;:MEAS:POW:REAC?;:MEAS:FREQ?") == "2000.0000;1000.0000;50.0000"


def test_with_the_electronic_load_on_too_the_world_gets_both_in_parallel(
    bank: A635000Twin, world: FakeWorld, clock: Clock
) -> None:
    load = C63800Twin(world, clock.now)
    load.handle("MODE POW;:POW 1000;:PFAC 1;:LOAD ON")
    bank.handle("LOAD:RES:POW 3000;:LOAD:IND:POW 3000;:LOAD:CAP:POW 3000;:LOAD ON")
    assert bank.site.loads_joined and world.home_rlc is not None
    assert 230.0**2 / world.home_rlc[0] == pytest.approx(4000.0)  # 3 kW tank + 1 kW load
    bank.handle("LOAD OFF")
    assert not bank.site.loads_joined
    assert world.home_rlc is None and world.home_p_w == 1000.0  # the load alone again


def test_settings_snap_to_the_banks_step(world: FakeWorld, clock: Clock) -> None:
    bank = A635000Twin(world, clock.now, options={"step": "10 W"})
    bank.handle("LOAD:RES:POW 2994")
    assert bank.handle("LOAD:RES:POW?") == "2990.0000"
