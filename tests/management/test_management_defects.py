"""The energy-management defects: listed by `rig defects`, each breaking a day check, each one
changing one rule of the manager (rig.emulators.management)."""

from __future__ import annotations

import re

import pytest

from rig.checks import REGISTRY
from rig.cli import main
from rig.day import Outage, PriceWindow, Tariff
from rig.emulators.management import MANAGEMENT_DEFECTS, Action, Situation, TariffPolicy

DAY_CHECKS = {"departure", "tariff_cost", "outage_supply"}
TARIFF = Tariff(
    "EUR",
    (
        PriceWindow(0.0, 3600.0, 0.45, 0.05),
        PriceWindow(3600.0, 86_400.0, 0.15, 0.05),
    ),
)


def test_rig_defects_lists_them_with_the_checks_they_break(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["defects"]) == 0
    out = capsys.readouterr().out
    for name, defect in MANAGEMENT_DEFECTS.items():
        assert set(defect.breaks) <= DAY_CHECKS <= set(REGISTRY)
        assert re.search(rf"^{name}\s+breaks: {', '.join(defect.breaks)}$", out, re.M)
        assert f"(management) {defect.summary[:30]}" in out
    assert {c for d in MANAGEMENT_DEFECTS.values() for c in d.breaks} == DAY_CHECKS


def _at(now: float, need: float, above: float, home: float = 2000.0) -> Situation:
    return Situation(
        now=now,
        departure_s=4 * 3600.0,
        need_wh=need,
        above_reserve_wh=above,
        room_wh=30_000.0,
        charge_w=11_000.0,
        home_w=home,
    )


def test_the_good_manager_carries_the_dear_hour_and_buys_the_need_cheaply() -> None:
    policy = TariffPolicy(TARIFF)
    assert policy.decide(_at(0.0, 5000.0, 10_000.0)).action is Action.CARRY_HOME
    assert policy.decide(_at(3700.0, 5000.0, 10_000.0)).action is Action.CHARGE
    assert policy.decide(_at(3700.0, 0.0, 10_000.0)).action is Action.IDLE
    # The need fills the cheap hours: nothing to carry in the dear one, and charging at once.
    assert policy.decide(_at(0.0, 33_000.0, 10_000.0)).action is Action.CHARGE


def test_each_defect_changes_its_rule() -> None:
    dumb = TariffPolicy(TARIFF, defects=("ignores_tariff",))
    assert dumb.decide(_at(0.0, 5000.0, 10_000.0)).action is Action.CHARGE
    greedy = TariffPolicy(TARIFF, defects=("discharges_into_departure_need",))
    assert greedy.decide(_at(0.0, 33_000.0, 10_000.0)).action is Action.CARRY_HOME
    outage = (Outage(1800.0, 3600.0),)
    careful = TariffPolicy(TARIFF, outage)
    careless = TariffPolicy(TARIFF, outage, defects=("ignores_outage",))
    # 1.5 kWh above the reserve, a half-hour outage ahead planned at 3 kW: keep it for that.
    assert careful.decide(_at(0.0, 0.0, 1500.0)).action is not Action.CARRY_HOME
    assert careless.decide(_at(0.0, 0.0, 1500.0)).action is Action.CARRY_HOME
    half = TariffPolicy(TARIFF, defects=("misses_departure",))
    assert half.decide(_at(3700.0, 10_000.0, 10_000.0)).action is Action.CHARGE
    assert half.decide(_at(3800.0, 4000.0, 16_000.0)).action is Action.IDLE  # stops at half
