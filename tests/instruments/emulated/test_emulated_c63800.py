"""The emulated Chroma 63800: CP / CR / RLC modes onto the World's home load."""

from __future__ import annotations

import math

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.c63800 import C63800Twin


@pytest.fixture
def load(world: FakeWorld, clock: Clock) -> C63800Twin:
    return C63800Twin(world, clock.now, options={"noise": False})


def test_constant_power_with_a_lagging_power_factor(
    load: C63800Twin, world: FakeWorld, clock: Clock
) -> None:
    load.handle("MODE POW;:POW 3000;:PFAC 0.8;:LOAD ON")
    assert world.home_on and world.home_p_w == 3000.0
    assert world.home_q_var == pytest.approx(2250.0)  # 3000 * tan(acos 0.8)
    clock.t = 0.5  # the load's 100 ms measurement window has passed
    assert load.handle("MEAS:POW?;:MEAS:POW:PFAC?") == "3000.0000;0.8000"


def test_a_leading_power_factor_gives_negative_q(load: C63800Twin, world: FakeWorld) -> None:
    load.handle("POW 3000;:PFAC -0.8")
    assert world.home_q_var == pytest.approx(-2250.0)


def test_resistance_and_rlc_modes(load: C63800Twin, world: FakeWorld) -> None:
    load.handle("MODE RES;:RES 26.45")
    assert world.home_rlc == (26.45, None, None)
    load.handle("MODE RLC;:RLC:RL 17.63;:RLC:LS 5000;:RLC:CAP 180")
    assert world.home_rlc is not None
    r, l_h, c_f = world.home_rlc
    assert r == 17.63 and l_h == pytest.approx(5e-3) and c_f == pytest.approx(180e-6)
    assert load.handle("MODE?") == "RLC"


def test_ratings_and_unemulated_modes_are_refused(load: C63800Twin, world: FakeWorld) -> None:
    load.handle("POW 5000")
    load.handle("RLC:CAP 50")
    load.handle("MODE CURR")
    load.handle("MODE FOO")
    assert [code for code, _ in load.errors] == [-222, -222, -221, -224]
    assert load.mode == "POW" and world.home_p_w == 0.0


def test_measurements_read_the_home_point(load: C63800Twin, world: FakeWorld, clock: Clock) -> None:
    load.handle("POW 2300;:LOAD ON")
    clock.t = 0.5
    v, i, p, q, s, pf, f = (
        float(x)
        for x in load.handle(  # type: ignore[union-attr]
            "MEAS:VOLT?;:MEAS:CURR?;:MEAS:POW?;:MEAS:POW:REAC?;:MEAS:POW:APP?;"
            ":MEAS:POW:PFAC?;:MEAS:FREQ?"
        ).split(";")
    )
    assert (v, i, p, q, s, pf, f) == (230.0, 10.0, 2300.0, 0.0, 2300.0, 1.0, 50.0)
    world.grid_output = False
    load.handle("*OPC?")  # the World records the dead bus from now on
    clock.t = 1.0
    assert load.handle("MEAS:VOLT?;:MEAS:POW?;:MEAS:FREQ?") == "0.0000;0.0000;NAN"


def test_rst_switches_the_input_off(load: C63800Twin, world: FakeWorld) -> None:
    load.handle("POW 1000;:LOAD ON;*RST")
    assert not load.load_on and not world.home_on and world.home_p_w == 0.0
    assert not math.isnan(load.power_factor_set)


def test_a_balanced_household_tank_is_beyond_the_stock_63804(load: C63800Twin) -> None:
    # IEEE 1547.1 5.10 at 3 kW, 230 V, 50 Hz, Qf 1.0: L = V^2 / (2 pi f Qf P) = 56.1 mH.
    load.handle("MODE RLC;:RLC:LS 56128")
    assert load.errors == [(-222, "Data out of range;56128")]


def test_a_bench_may_declare_wider_rlc_ranges(world: FakeWorld, clock: Clock) -> None:
    extended = C63800Twin(
        world, clock.now, options={"rlc_inductance_max_uh": 1e6, "rlc_capacitance_min_uf": 1.0}
    )
    extended.handle("MODE RLC;:RLC:RL 17.63;:RLC:LS 56128;:RLC:CAP 50")
    assert extended.errors == []
    assert world.home_rlc == pytest.approx((17.63, 56128e-6, 50e-6))
