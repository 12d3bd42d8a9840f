"""The EV's planned profile (rig.emulators.management.plan_profile) on short windows and short
stays: a step never straddles a price change, charging for the need stops where it is met, and
the must-charge margin is a share of a stay of minutes (five minutes' margin would make a
two-minute day all must-charge)."""

from __future__ import annotations

import pytest

from rig.day import PriceWindow, Tariff
from rig.emulators.management import Action, Battery, Situation, TariffPolicy, plan_profile

ETA = 0.96
CHARGE_W = 11_000.0


def _tariff(*windows: tuple[float, float, float]) -> Tariff:
    return Tariff("EUR", tuple(PriceWindow(a, b, price, 0.05) for a, b, price in windows))


def _pack(need_wh: float) -> Battery:
    return Battery(
        energy_wh=30_000.0,
        capacity_wh=60_000.0,
        reserve_wh=12_000.0,
        need_wh=30_000.0 + need_wh,
        charge_w=CHARGE_W,
        discharge_w=CHARGE_W,
    )


def test_a_cheap_window_shorter_than_a_step_is_seen_and_charged_in() -> None:
    # Two cheap minutes inside a dear hour, 250 Wh to add: they hold it at 11 kW.
    tariff = _tariff((0.0, 1800.0, 0.45), (1800.0, 1920.0, 0.10), (1920.0, 86_400.0, 0.45))
    policy = TariffPolicy(tariff, efficiency=ETA, blind=True)
    profile = plan_profile(policy, 0.0, 3600.0, _pack(250.0), home_w=0.0)
    starts = [sum(d for d, _ in profile[:k]) for k in range(len(profile))]
    charging = [(t, d) for t, (d, p) in zip(starts, profile, strict=True) if p > 0]
    assert len(charging) == 1, profile
    start, duration = charging[0]
    assert start == 1800.0 and duration <= 120.0, profile


def test_charging_for_the_need_stops_where_it_is_met() -> None:
    tariff = _tariff((0.0, 86_400.0, 0.30))
    policy = TariffPolicy(tariff, efficiency=ETA, blind=True)
    profile = plan_profile(policy, 0.0, 600.0, _pack(100.0), home_w=0.0)
    added = sum(d * p * ETA for d, p in profile if p > 0) / 3600.0
    # Whole seconds: at most one second's charge beyond the need.
    assert 100.0 <= added <= 100.0 + CHARGE_W * ETA / 3600.0, profile
    assert sum(d for d, _ in profile) == pytest.approx(600.0)


def test_the_must_charge_margin_is_a_share_of_a_short_stay() -> None:
    tariff = _tariff((0.0, 60.0, 0.45), (60.0, 86_400.0, 0.15))
    # A two-minute stay, 100 Wh (35 s at full power) to add: the dear minute is no must-charge.
    short = TariffPolicy(tariff, efficiency=ETA, blind=True)
    situation = Situation(0.0, 120.0, 100.0, 18_000.0, 30_000.0, CHARGE_W, 0.0)
    assert short._decide(situation).action is Action.IDLE
    at_cheap = Situation(60.0, 120.0, 100.0, 18_000.0, 30_000.0, CHARGE_W, 0.0)
    assert short._decide(at_cheap).action is Action.CHARGE
    # A long stay keeps the five-minute margin: 250 s beyond the time needed must charge.
    needed_s = 1_000.0 / (CHARGE_W * ETA) * 3600.0
    long = TariffPolicy(_tariff((0.0, 86_400.0, 0.45)), efficiency=ETA, blind=True)
    long._decide(Situation(0.0, 7200.0, 0.0, 18_000.0, 30_000.0, CHARGE_W, 0.0))  # arrives
    left = needed_s * long.MUST_CHARGE_FACTOR + 250.0
    decision = long._decide(Situation(7200.0 - left, 7200.0, 1_000.0, 18_000.0, 30_000.0,
                                      CHARGE_W, 0.0))  # fmt: skip
    assert decision.action is Action.CHARGE and "must charge" in decision.reason


def test_a_two_minute_day_idles_while_dear_and_charges_its_need_when_cheap() -> None:
    tariff = _tariff((0.0, 60.0, 0.45), (60.0, 86_400.0, 0.15))
    policy = TariffPolicy(tariff, efficiency=ETA, blind=True)
    profile = plan_profile(policy, 2.0, 120.0, _pack(100.0), home_w=1_500.0)
    assert [p for _, p in profile] == [0.0, CHARGE_W, 0.0], profile
    assert profile[0][0] == pytest.approx(58.0)
    assert profile[1][0] == pytest.approx(35.0)
