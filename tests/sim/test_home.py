"""Home load: constant power on a stiff bus, impedance on an island, parallel RLC."""

from __future__ import annotations

import math

import pytest

from rig.sim import balanced_rlc
from rig.sim.home import HomeLoad


def test_balanced_rlc_draws_its_power_and_no_reactive_at_resonance() -> None:
    rlc = balanced_rlc(3000.0, 230.0, 50.0, 1.0)
    home = HomeLoad(voltage_nominal_v=230.0)
    home.set_rlc(rlc)
    p, q = home.power(230.0, 50.0, stiff=True)
    assert p == pytest.approx(3000.0)
    assert q == pytest.approx(0.0, abs=1e-9)
    assert rlc.resonance_hz == pytest.approx(50.0)
    assert rlc.quality_factor == pytest.approx(1.0)
    # each reactive branch carries Qf * P at resonance
    assert 230.0**2 / (2 * math.pi * 50.0 * (rlc.l_h or 0.0)) == pytest.approx(3000.0)


def test_rlc_reactive_power_is_inductive_below_resonance() -> None:
    home = HomeLoad(voltage_nominal_v=230.0)
    home.set_rlc(balanced_rlc(3000.0))
    assert home.power(230.0, 49.0, stiff=False)[1] > 0.0
    assert home.power(230.0, 51.0, stiff=False)[1] < 0.0


def test_constant_power_holds_on_a_stiff_bus_and_is_an_impedance_on_an_island() -> None:
    home = HomeLoad(p_w=3000.0, q_var=300.0, voltage_nominal_v=230.0)
    assert home.power(207.0, 50.0, stiff=True) == (3000.0, 300.0)
    p, q = home.power(115.0, 50.0, stiff=False)
    assert p == pytest.approx(750.0)
    assert q == pytest.approx(75.0)
    assert home.conductance_s() == pytest.approx(3000.0 / 230.0**2)


def test_a_load_switched_off_draws_nothing() -> None:
    home = HomeLoad(p_w=3000.0, voltage_nominal_v=230.0)
    home.on = False
    assert home.power(230.0, 50.0, stiff=True) == (0.0, 0.0)
    assert home.conductance_s() == 0.0


def test_three_phase_rlc_values_are_per_phase() -> None:
    rlc = balanced_rlc(9000.0, 230.0, 50.0, phases=3)
    home = HomeLoad(voltage_nominal_v=230.0, phases=3)
    home.set_rlc(rlc)
    assert home.power(230.0, 50.0, stiff=True)[0] == pytest.approx(9000.0)
