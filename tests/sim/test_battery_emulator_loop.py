"""The battery emulator driven from the rig's EV battery model (rig.evmodel), through the PSB 10000
driver and its twin: without the loop the CV setting carries the wrong current, with it the pack's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.clock import VirtualClock
from rig.ev import EVSpec
from rig.evmodel import BatteryEmulatorLoop, PackModel
from rig.plan import load_plan
from rig.station import open_station

REPO = Path(__file__).resolve().parents[2]
BENCH = load_bench(REPO / "fixtures/benches/emulated.yaml")
PLAN = load_plan(REPO / "test_plans/v2h/charge_discharge_reversal.yaml")


def _discharging(loop: bool) -> tuple[float, float]:
    """(measured DC current, the pack's own current) after a minute of 7 kW discharge."""
    clock = VirtualClock()
    station = open_station(BENCH, PLAN, clock, seed=2)
    try:
        world, dc = station.world, station.dc_source
        assert world is not None and dc is not None
        control = BatteryEmulatorLoop.for_ev(PLAN.ev, set_voltage=dc.set_voltage)
        world.enable_power_stage(True)
        world.command_setpoint(-7000.0)
        for k in range(1, 61):
            clock.run_until(float(k))
            reading = dc.measure()
            if loop:
                control.update(clock.now(), reading)
        battery = world.battery
        return reading.i, battery.current_for_power(battery.power_w)
    finally:
        station.teardown()
        clock.close()


def test_a_cv_setting_left_alone_moves_the_battery_current() -> None:
    measured, pack = _discharging(loop=False)
    assert measured < 0 and pack < 0
    assert abs(measured / pack - 1) > 0.1  # 450 V held instead of the pack's ~375 V


def test_the_loop_makes_the_emulator_carry_the_packs_current() -> None:
    measured, pack = _discharging(loop=True)
    assert measured == pytest.approx(pack, rel=0.01)


@dataclass(frozen=True)
class Reading:
    v: float
    i: float
    p_w: float


def test_the_model_integrates_the_measured_power_and_sets_ocv_plus_i_r() -> None:
    sets: list[float] = []
    pack = PackModel(10_000.0, 0.5, ((0.0, 300.0), (1.0, 400.0)), 0.1)
    loop = BatteryEmulatorLoop(pack, set_voltage=sets.append)
    assert loop.update(0.0, Reading(350.0, -20.0, -7000.0)) == pytest.approx(350.0 - 2.0)
    loop.update(1800.0, Reading(330.0, -20.0, -7000.0))  # half an hour at 7 kW: 35 % of 10 kWh
    assert loop.soc == pytest.approx(0.15)
    assert sets[-1] == pytest.approx(315.0 - 2.0)
    quiet = len(sets)
    loop.update(1801.0, Reading(313.0, -20.01, float("nan")))  # a lost reading changes nothing
    assert len(sets) == quiet  # and a change below 50 mV is not sent


def test_with_a_resistance_mode_the_instrument_adds_i_r_itself() -> None:
    sets: list[float] = []
    resistances: list[float] = []
    ev = EVSpec(60_000.0, 0.8, 0.3, 11_000.0, 11_000.0)
    loop = BatteryEmulatorLoop.for_ev(
        ev, set_voltage=sets.append, set_resistance=resistances.append
    )
    assert resistances == [PackModel.for_ev(ev).r_internal_ohm]
    loop.update(0.0, Reading(390.0, 18.0, 7000.0))
    assert sets == [pytest.approx(PackModel.for_ev(ev).ocv(0.8))]


def test_a_pack_model_refuses_a_curve_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="OCV curve"):
        PackModel(60_000.0, 0.5, ((0.5, 300.0), (0.4, 400.0)), 0.1)
