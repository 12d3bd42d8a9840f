"""EVSE power stage: ramp-rate limit, first-order lag, under-damped variant, efficiency."""

from __future__ import annotations

import itertools
import math

import pytest

from rig.sim.defects import OVERSHOOT_DAMPING_RATIO
from rig.sim.power_stage import PowerStage, ac_power, dc_power


def run(stage: PowerStage, target: float, seconds: float, dt: float) -> list[float]:
    out = []
    for _ in range(round(seconds / dt)):
        stage.step(target, dt)
        out.append(stage.output_w)
    return out


def test_output_never_moves_faster_than_the_ramp_rate() -> None:
    stage = PowerStage(ramp_w_per_s=10_000.0, lag_s=0.1)
    stage.reset(7000.0)
    dt = 1e-3
    ys = [7000.0, *run(stage, -7000.0, 3.0, dt)]
    fastest = max(abs(b - a) / dt for a, b in itertools.pairwise(ys))
    assert fastest <= 10_000.0 * (1 + 1e-9)
    assert fastest > 9_000.0  # and it does use most of it
    assert ys[-1] == -7000.0  # settled and snapped onto the target


def test_ninety_percent_time_is_ramp_time_plus_lag() -> None:
    # For a ramp-limited reference followed by a lag tau, the output trails the ramp by
    # rate * tau, so it reaches 90 % of a step D at 0.9 D / rate + tau.
    stage = PowerStage(ramp_w_per_s=10_000.0, lag_s=0.1)
    dt = 1e-4
    ys = run(stage, 14_000.0, 3.0, dt)
    t90 = next(k + 1 for k, y in enumerate(ys) if y >= 0.9 * 14_000.0) * dt
    assert t90 == pytest.approx(0.9 * 14_000.0 / 10_000.0 + 0.1, abs=2e-4)


@pytest.mark.parametrize("damping", [None, OVERSHOOT_DAMPING_RATIO])
def test_integration_does_not_depend_on_the_substep_length(damping: float | None) -> None:
    fine = PowerStage(ramp_w_per_s=5000.0, lag_s=0.2, damping_ratio=damping)
    coarse = PowerStage(ramp_w_per_s=5000.0, lag_s=0.2, damping_ratio=damping)
    run(fine, 3000.0, 0.7, 1e-3)
    run(coarse, 3000.0, 0.7, 0.07)
    assert coarse.output_w == pytest.approx(fine.output_w, rel=1e-9)


def test_under_damped_stage_overshoots_about_27_percent() -> None:
    stage = PowerStage(ramp_w_per_s=10_000.0, lag_s=0.1, damping_ratio=OVERSHOOT_DAMPING_RATIO)
    ys = run(stage, -7000.0, 3.0, 1e-3)
    overshoot = (min(ys) - -7000.0) / -7000.0
    expected = math.exp(-math.pi * 0.38 / math.sqrt(1 - 0.38**2))
    assert overshoot == pytest.approx(expected, abs=0.005)
    assert 0.25 <= overshoot <= 0.30
    assert ys[-1] == pytest.approx(-7000.0, abs=0.1)


def test_clamp_limits_output_and_reference_at_once() -> None:
    stage = PowerStage(ramp_w_per_s=10_000.0, lag_s=0.1)
    stage.reset(-7000.0)
    stage.clamp(-2000.0, 5000.0)
    assert stage.output_w == -2000.0
    assert stage.reference_w == -2000.0


@pytest.mark.parametrize("p_ac", [7000.0, -7000.0, 0.0])
def test_efficiency_loses_energy_in_both_directions(p_ac: float) -> None:
    eff = 0.95
    p_dc = dc_power(p_ac, eff)
    if p_ac > 0:
        assert p_dc == pytest.approx(p_ac * eff)  # charging: DC = AC * eff
    elif p_ac < 0:
        assert p_ac == pytest.approx(p_dc * eff)  # discharging: AC = DC * eff
    assert ac_power(p_dc, eff) == pytest.approx(p_ac)
