"""RLC load bank driver against exact SCPI pairs, and the tank arithmetic of IEEE 1547.1 5.10."""

from __future__ import annotations

import math

import pytest

from instruments.chroma.a635000 import A635000
from instruments.roles import LimitError, Limits, RangeError, RlcTank
from instruments.testing import expected_protocol

NO_ERROR = ("SYST:ERR?", '0,"No error"')


def test_a_balanced_tank_resonates_at_nominal_with_the_quality_factor() -> None:
    tank = RlcTank.balanced(3000.0, 1.0, v_nominal=230.0, f_nominal=50.0)
    assert tank.q_l_var == tank.q_c_var == 3000.0
    assert tank.r_ohm == pytest.approx(230.0**2 / 3000.0)
    assert tank.resonance_hz == pytest.approx(50.0)
    assert tank.quality_factor == pytest.approx(1.0)
    assert tank.r_ohm * math.sqrt(tank.c_f / tank.l_h) == pytest.approx(1.0)  # type: ignore[operator]


def test_detuning_the_inductive_branch_moves_the_resonance() -> None:
    tank = RlcTank.balanced(3000.0, 1.0, v_nominal=230.0, f_nominal=50.0, inductive_pct=105.0)
    # More inductive vars = less inductance: the tank resonates above 50 Hz.
    assert tank.q_l_var == pytest.approx(3150.0)
    assert tank.resonance_hz == pytest.approx(50.0 * math.sqrt(1.05))


def test_set_balanced_programs_nominals_then_the_three_branches() -> None:
    pairs = [
        ("CONF:VOLT:NOM 230", None),
        ("CONF:FREQ:NOM 50", None),
        ("LOAD:RES:POW 3000", None),
        ("LOAD:IND:POW 2940", None),
        ("LOAD:CAP:POW 3000", None),
        NO_ERROR,
        ("LOAD ON", None),
        NO_ERROR,
    ]
    with expected_protocol(A635000, pairs) as bank:
        tank = bank.set_balanced(3000.0, v_nominal=230.0, f_nominal=50.0, inductive_pct=98.0)
        bank.set_input(True)
    assert bank.tank == tank


def test_limits_and_ratings_refuse_before_sending() -> None:
    limits = Limits(reactive_power_var=(0.0, 2000.0))
    with expected_protocol(A635000, [], limits=limits) as bank:
        with pytest.raises(LimitError):
            bank.set_balanced(3000.0, v_nominal=230.0, f_nominal=50.0)
        with pytest.raises(RangeError, match="p_w"):
            bank.set_tank(RlcTank(20_000.0, 0.0, 0.0, 230.0, 50.0))
        with pytest.raises(RangeError, match="phase"):
            bank.set_tank(RlcTank(1000.0, 0.0, 0.0, 230.0, 50.0, phases=3))


def test_safe_state_input_off_every_branch_out_then_readback() -> None:
    pairs = [
        ("LOAD OFF", None),
        ("LOAD:RES:POW 0", None),
        ("LOAD:IND:POW 0", None),
        ("LOAD:CAP:POW 0", None),
        ("LOAD?", "0"),
    ]
    with expected_protocol(A635000, pairs) as bank:
        bank.safe_state()


@pytest.mark.parametrize(
    "values", [{"p_w": -1.0}, {"q_l_var": math.nan}, {"v_nominal": 0.0}, {"phases": 2}]
)
def test_a_tank_refuses_what_it_cannot_mean(values: dict[str, float]) -> None:
    fields: dict[str, float] = {
        "p_w": 1.0,
        "q_l_var": 1.0,
        "q_c_var": 1.0,
        "v_nominal": 230.0,
        "f_nominal": 50.0,
    }
    fields.update(values)
    with pytest.raises(ValueError):
        RlcTank(**fields)  # type: ignore[arg-type]
