"""Short day plans (an hour each) for the management tests: the same inputs as the plans under
test_plans/management, compressed so that a run takes seconds. Built as text, validated by
rig.plan like any plan file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rig.bench import BenchConfig, load_bench
from rig.plan import loads_plan
from rig.runner import RunResult, execute

REPO = Path(__file__).resolve().parents[2]
BENCH = {
    "evse": load_bench(REPO / "fixtures/benches/emulated.yaml"),
    "ev": load_bench(REPO / "fixtures/benches/emulated-ev.yaml"),
}

_SESSION = {"evse": "dynamic", "ev": "scheduled"}

#: name -> (ev:, evse: or "", day: body). Each is an hour long, sampled every 5 s.
DAYS = {
    # Dear first half hour, cheap second: carry the home, then buy the need back cheaply.
    "tou": (
        "{capacity: 60 kWh, soc: 50 %, reserve: 20 %, max_charge: 11 kW, max_discharge: 11 kW}",
        "",
        """  start: "17:00"
  length: 1 h
  tariff:
    windows:
      - {from: "00:00", to: "17:00", import: 0.30, export: 0.05}
      - {from: "17:00", to: "17:30", import: 0.45, export: 0.05}
      - {from: "17:30", to: "24:00", import: 0.15, export: 0.05}
  departure: {at: "18:00", soc: 54 %}
  home_load: {constant: 1.5 kW}
""",
    ),
    # 4.5 kWh to add at 5 kW in an hour: nothing to discharge into the dear half hour. An EV
    # gets the prices as levels (PriceLevelSchedule).
    "tight": (
        "{capacity: 60 kWh, soc: 35 %, reserve: 30 %, max_charge: 5 kW, max_discharge: 5 kW}",
        "",
        """  start: "17:00"
  length: 1 h
  tariff:
    offer: levels
    windows:
      - {from: "00:00", to: "17:00", import: 0.30, export: 0.05}
      - {from: "17:00", to: "17:30", import: 0.45, export: 0.05}
      - {from: "17:30", to: "24:00", import: 0.30, export: 0.05}
  departure: {at: "18:00", soc: 42.5 %}
  home_load: {constant: 1.5 kW}
""",
    ),
    # A forecast 20-minute outage in the dear window; 1.8 kWh above the reserve.
    "outage": (
        "{capacity: 60 kWh, soc: 33 %, reserve: 30 %, max_charge: 11 kW, max_discharge: 11 kW}",
        "evse: {generator_mode: grid_forming}\n",
        """  start: "19:00"
  length: 1 h
  tariff:
    windows:
      - {from: "00:00", to: "19:00", import: 0.30, export: 0.05}
      - {from: "19:00", to: "19:50", import: 0.45, export: 0.05}
      - {from: "19:50", to: "24:00", import: 0.30, export: 0.05}
  departure: {at: "20:00", soc: 30 %}
  home_load: {constant: 2.5 kW}
  outages: [{from: "19:30", to: "19:50"}]
""",
    ),
    # 30 kWh to add in an hour at 11 kW: out of reach, and the good EVSE says so at once.
    "unreachable": (
        "{capacity: 60 kWh, soc: 30 %, reserve: 20 %, max_charge: 11 kW, max_discharge: 11 kW}",
        "",
        """  start: "17:00"
  length: 1 h
  tariff:
    windows:
      - {from: "00:00", to: "24:00", import: 0.30, export: 0.05}
  departure: {at: "18:00", soc: 80 %}
  home_load: {constant: 1 kW}
""",
    ),
}


def plan_text(name: str, side: str) -> str:
    ev, evse, day = DAYS[name]
    checks = "  - departure: {}\n  - tariff_cost: {}\n  - reserve_floor: {}\n"
    if name == "outage":
        # An hour is too short to judge the cost here: the manager holds back for the outage
        # what its forecast (3 kW) asks, the optimum knows the load exactly. The full-length
        # plan (test_plans/management/evse/evening_outage.yaml) judges it.
        checks = "  - outage_supply: {}\n  - departure: {}\n  - reserve_floor: {}\n"
    if name == "unreachable":
        checks = "  - departure: {}\n"
    return (
        f"title: short day {name}\ndut: {side}\n"
        f"session: {{service: DC_BPT, control_mode: {_SESSION[side]}}}\n"
        f"ev: {ev}\n{evse}sampling: {{period: 5 s}}\nday:\n{day}"
        "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}}\n"
        "  - wait_for: charge_loop\n  - hold: 1 h\n"
        f"checks:\n{checks}"
    )


@cache
def run(name: str, side: str = "evse", defect: str = "") -> RunResult:
    plan = loads_plan(plan_text(name, side), f"<{name}-{side}>")
    bench: BenchConfig = BENCH[side]
    return execute(plan, bench, seed=3, defects=(defect,) if defect else ())


def verdicts(result: RunResult) -> dict[str, str]:
    return {v.name: v.verdict for v in result.verdicts}
