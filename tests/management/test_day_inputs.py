"""The plan's day: section (rig.day): what it accepts, and every problem named with file:line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rig.day import DAY_S
from rig.emulators.management import pricing_of
from rig.homeload import HomeModel, generate
from rig.plan import load_plan, loads_plan
from rig.v2g.controllers import Pricing
from rig.yamlsrc import SourceError

HEAD = """title: a day
dut: evse
session: {service: DC_BPT, control_mode: dynamic}
ev: {capacity: 60 kWh, soc: 50 %, reserve: 20 %}
steps:
  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}
  - wait_for: charge_loop
  - hold: 2 h
checks:
  - departure: {}
"""

TOU = """day:
  start: "17:00"
  length: 14 h
  tariff:
    windows:
      - {from: "00:00", to: "06:00", import: 0.18, export: 0.05}
      - {from: "06:00", to: "17:00", import: 0.30, export: 0.05}
      - {from: "17:00", to: "21:00", import: 0.45, export: 0.05}
      - {from: "21:00", to: "24:00", import: 0.30, export: 0.05}
  departure: {at: "07:00", soc: 80 %}
  home_load: {constant: 1 kW}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(SourceError) as info:
        loads_plan(text, "day.yaml")
    return [str(p) for p in info.value.problems]


def test_a_day_in_day_relative_seconds() -> None:
    day = loads_plan(HEAD + TOU).day
    assert day is not None
    assert day.length_s == 14 * 3600 and day.resolution_s == 60.0 and day.steps == 840
    # 17:00 is the plan's t = 0: the evening peak runs to 21:00 = 4 h, the night from 24:00.
    assert day.tariff.import_at(0.0) == 0.45
    assert day.tariff.import_at(4 * 3600.0 + 1) == 0.30
    assert day.tariff.import_at(7 * 3600.0 + 1) == 0.18
    assert day.departure.at_s == 14 * 3600.0 and day.departure.energy_wh == pytest.approx(48_000)
    assert day.clock_of(4 * 3600.0) == "21:00"
    assert sum(w.end_s - w.start_s for w in day.tariff.windows) == pytest.approx(DAY_S)


def test_the_tariff_is_offered_to_an_ev_as_absolute_prices_or_as_levels() -> None:
    day = loads_plan(HEAD + TOU).day
    assert day is not None and pricing_of(day.tariff) is Pricing.ABSOLUTE
    levels = loads_plan(HEAD + TOU.replace("  tariff:\n", "  tariff:\n    offer: levels\n")).day
    assert levels is not None and pricing_of(levels.tariff) is Pricing.PRICE_LEVELS


def test_an_unquoted_time_of_day_is_read_as_yaml_minutes() -> None:
    day = loads_plan(HEAD + TOU.replace('start: "17:00"', "start: 17:00")).day
    assert day is not None and day.start_tod_s == 17 * 3600.0


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('to: "06:00", import: 0.18', 'to: "05:00", import: 0.18'), 15, "gap at 05:00"),
        (('start: "17:00"', 'start: "25:00"'), 12, "not a time of day"),
        (('{at: "07:00", soc: 80 %}', '{at: "08:00", soc: 80 %}'), 20, "after the day's end"),
        (("length: 14 h", "length: 30 h"), 13, "at most 24 h"),
        (("import: 0.45", "import: .nan"), 18, "outside"),
        (("{constant: 1 kW}", "{constant: -1 kW}"), 21, "outside"),
        (('{at: "07:00", soc: 80 %}', '{at: "07:00"}'), 20, "either soc"),
        (("  tariff:\n", "  tariff:\n    offer: cents\n"), 15, "one of absolute, levels"),
    ],
)
def test_a_wrong_day_is_refused_with_its_line(
    change: tuple[str, str], line: int, message: str
) -> None:
    text = HEAD + TOU.replace(*change)
    problems = _problems(text)
    assert any(p.startswith(f"day.yaml:{line}:") and message in p for p in problems), problems


def test_a_day_plan_leaves_the_home_load_and_the_power_to_the_day() -> None:
    text = (HEAD + TOU).replace("  - hold: 2 h", "  - setpoint: 3 kW\n  - hold: 2 h")
    problems = _problems(text)
    assert any("day.yaml:8:" in p and "remove setpoint" in p for p in problems), problems


def test_the_departure_need_below_the_reserve_is_refused() -> None:
    problems = _problems(HEAD + TOU.replace("soc: 80 %}", "soc: 10 %}"))
    assert any("below the EV's reserve" in p for p in problems), problems


def test_tariff_and_profile_csv_files_beside_the_plan(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text(
        "from,to,import,export\n00:00,12:00,0.20,0.05\n12:00,24:00,0.40,0.05\n"
    )
    (tmp_path / "home.csv").write_text("time,power_w\n00:00,500\n18:00,2500\n20:00,700\n")
    plan = tmp_path / "p.yaml"
    text = HEAD + TOU
    text = text.replace(
        """windows:
      - {from: "00:00", to: "06:00", import: 0.18, export: 0.05}
      - {from: "06:00", to: "17:00", import: 0.30, export: 0.05}
      - {from: "17:00", to: "21:00", import: 0.45, export: 0.05}
      - {from: "21:00", to: "24:00", import: 0.30, export: 0.05}""",
        "csv: prices.csv",
    ).replace("{constant: 1 kW}", "{csv: home.csv}")
    plan.write_text(text)
    day = load_plan(plan).day
    assert day is not None
    assert day.tariff.import_at(0.0) == 0.40  # 17:00
    assert day.tariff.import_at(8 * 3600.0) == 0.20  # 01:00
    assert day.home_w.at(0.0) == 500.0 and day.home_w.at(3600.0 + 1) == 2500.0
    assert day.home_w.at(3 * 3600.0 + 1) == 700.0


def test_a_csv_too_fine_or_too_big_is_refused(tmp_path: Path) -> None:
    rows = "".join(f"00:{m // 2:02d},{m}\n" for m in range(0, 10, 2))
    (tmp_path / "fine.csv").write_text("time,power_w\n00:00,1\n00:00,2\n" + rows)
    (tmp_path / "big.csv").write_text("time,power_w\n" + "00:00,1\n" * 10_100)
    for name, message in (("fine.csv", "ascend"), ("big.csv", "rows")):
        plan = tmp_path / "p.yaml"
        plan.write_text((HEAD + TOU).replace("{constant: 1 kW}", f"{{csv: {name}}}"))
        with pytest.raises(SourceError) as info:
            load_plan(plan)
        assert message in str(info.value)


def test_pv_and_outages_become_the_net_home_load_and_grid_mask() -> None:
    text = (HEAD + TOU).replace(
        "  home_load: {constant: 1 kW}\n",
        '  home_load: {constant: 1 kW}\n  pv: {peak: 4 kW, sunrise: "06:00", sunset: "20:00"}\n'
        '  outages: [{from: "19:00", to: "19:30"}]\n',
    )
    day = loads_plan(text).day
    assert day is not None
    net = day.net_home_profile()
    assert net.min() == 0.0 and net.max() == pytest.approx(1000.0)  # PV surplus is not fed in
    mask = day.grid_mask()
    assert not mask[120:150].any() and mask[:120].all() and mask[150:].all()
    assert not day.grid_on(2 * 3600.0 + 60) and day.grid_on(3 * 3600.0)


def test_the_generator_is_seeded_bounded_and_plausible() -> None:
    a, b = generate(3), generate(3)
    assert np.array_equal(a, b) and not np.array_equal(a, generate(4))
    assert a.shape == (1440,) and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 15_000
    kwh = a.sum() / 60 / 1000
    hp = generate(3, HomeModel(heat_pump=True)).sum() / 60 / 1000
    assert 8 < kwh < 20 and hp > kwh + 10
    # Dinner: the evening (18:00-20:00) draws more than the small hours.
    assert a[18 * 60 : 20 * 60].mean() > 3 * a[2 * 60 : 4 * 60].mean()
