"""The LP optimum (rig.optimum) against cases small enough to solve by hand, and the grid cost."""

from __future__ import annotations

import numpy as np
import pytest

from rig.day import DaySpec, Departure, Outage, PriceWindow, Profile, Tariff
from rig.optimum import Limits, OptimumError, grid_cost, solve

HOUR = 3600.0


def _day(outages: tuple[Outage, ...] = ()) -> DaySpec:
    """Two one-hour steps: 0.10 then 0.50 per kWh (export 0), a 1 kW home throughout."""
    tariff = Tariff(
        "EUR",
        (
            PriceWindow(0.0, HOUR, 0.10, 0.0),
            PriceWindow(HOUR, 86_400.0, 0.50, 0.0),
        ),
    )
    return DaySpec(
        start_tod_s=0.0,
        length_s=2 * HOUR,
        resolution_s=HOUR,
        tariff=tariff,
        departure=Departure(2 * HOUR, 0.0),
        home_w=Profile(HOUR, (1000.0,) * 24),
        pv_w=None,
        outages=outages,
    )


def _limits(start: float, need: float, eta: float = 1.0, charge: float = 2000.0) -> Limits:
    return Limits(
        capacity_wh=10_000.0,
        start_wh=start,
        reserve_wh=0.0,
        need_wh=need,
        departure_s=2 * HOUR,
        charge_w=charge,
        discharge_w=2000.0,
        efficiency=eta,
    )


def test_the_battery_carries_the_home_in_the_dear_hour() -> None:
    # 1 kWh above the reserve, no need at departure: the home imports in the cheap hour (0.10)
    # and the battery carries it in the dear one.
    best = solve(_day(), _limits(1000.0, 0.0))
    assert best.cost == pytest.approx(0.10, abs=1e-6)
    assert best.ev_w == pytest.approx([0.0, -1000.0], abs=1e-3)
    assert best.energy_wh[-1] == pytest.approx(0.0, abs=1e-3)
    # With 5 kWh it carries both hours: nothing to pay.
    assert solve(_day(), _limits(5000.0, 0.0)).cost == pytest.approx(0.0, abs=1e-6)


def test_a_departure_need_is_bought_in_the_cheap_hour() -> None:
    # End with 6 kWh from 5: charge 2 kW in the cheap hour, carry the home in the dear one:
    # (1 + 2) kWh x 0.10 = 0.30.
    best = solve(_day(), _limits(5000.0, 6000.0))
    assert best.cost == pytest.approx(0.30, abs=1e-6)
    assert best.ev_w == pytest.approx([2000.0, -1000.0], abs=1e-3)


def test_losses_make_the_round_trip_worth_less() -> None:
    # One-way efficiency 50 %: 2 kW for an hour stores 1 kWh, exactly the need; carrying the
    # home would cost 2 kWh of battery per kWh, which the need forbids: 0.3 + 0.5 = 0.80.
    best = solve(_day(), _limits(5000.0, 6000.0, eta=0.5))
    assert best.cost == pytest.approx(0.80, abs=1e-6)
    assert best.ev_w == pytest.approx([2000.0, 0.0], abs=1e-3)


def test_an_outage_must_be_carried_and_what_cannot_is_unserved() -> None:
    out = (Outage(HOUR, 2 * HOUR),)
    best = solve(_day(out), _limits(5000.0, 0.0))
    assert best.grid_w[1] == 0.0 and best.ev_w[1] == pytest.approx(-1000.0, abs=1e-3)
    # 0.5 kWh in the pack: it buys the other 0.5 kWh for the outage in the cheap hour.
    bought = solve(_day(out), _limits(500.0, 0.0))
    assert bought.ev_w[0] == pytest.approx(500.0, abs=1e-3)
    assert bought.cost == pytest.approx(0.15, abs=1e-6)
    # It cannot charge: half the outage's load is unserved (the cost is the grid's alone).
    short = solve(_day(out), _limits(500.0, 0.0, charge=0.0))
    assert short.unserved_w[1] == pytest.approx(500.0, abs=1e-3)
    assert short.cost == pytest.approx(0.10, abs=1e-6)


def test_an_unreachable_need_has_no_optimum() -> None:
    with pytest.raises(OptimumError):
        solve(_day(), _limits(1000.0, 9000.0))


def test_the_grid_cost_prices_import_and_export_by_window() -> None:
    day = _day()
    t = np.array([0.0, HOUR, HOUR + 1.0, 2 * HOUR])
    p = np.array([1000.0, 1000.0, -2000.0, -2000.0])
    # 1 kWh imported at 0.10; the ramp and the export are priced at the export price, 0.
    assert grid_cost(t, p, day) == pytest.approx(0.10, rel=1e-9)


def test_a_day_at_one_minute_resolution_solves() -> None:
    n = 1440
    rng = np.random.default_rng(1)
    day = DaySpec(
        start_tod_s=0.0,
        length_s=86_400.0,
        resolution_s=60.0,
        tariff=Tariff(
            "EUR",
            tuple(PriceWindow(h * HOUR, (h + 1) * HOUR, 0.1 + 0.02 * h, 0.05) for h in range(24)),
        ),
        departure=Departure(86_400.0, 40_000.0),
        home_w=Profile(60.0, tuple(float(x) for x in rng.uniform(300, 3000, n))),
        pv_w=None,
        outages=(),
    )
    best = solve(
        day,
        Limits(60_000.0, 30_000.0, 12_000.0, 40_000.0, 86_400.0, 11_000.0, 11_000.0, 0.95),
    )
    assert best.energy_wh[-1] >= 40_000.0 - 1e-6
    assert best.energy_wh.min() >= 12_000.0 - 1e-6
    assert best.cost > 0


def test_the_tie_break_never_outweighs_a_small_price_difference() -> None:
    # One-minute steps, 0.10 then 0.12 per kWh, lossless, 1 kWh in the pack and needed at the
    # end: buying the dear hour's home load in the cheap hour through the battery saves 0.02;
    # the solver's tie-break on the EVSE's power must not eat that (it did once: 0.22).
    tariff = Tariff(
        "EUR", (PriceWindow(0.0, HOUR, 0.10, 0.0), PriceWindow(HOUR, 86_400.0, 0.12, 0.0))
    )
    day = DaySpec(
        start_tod_s=0.0,
        length_s=2 * HOUR,
        resolution_s=60.0,
        tariff=tariff,
        departure=Departure(2 * HOUR, 0.0),
        home_w=Profile(60.0, (1000.0,) * 1440),
        pv_w=None,
        outages=(),
    )
    best = solve(day, _limits(1000.0, 1000.0))
    assert best.cost == pytest.approx(0.20, abs=1e-5)
    assert best.energy_wh[60] == pytest.approx(2000.0, abs=1e-3)  # bought for the dear hour
