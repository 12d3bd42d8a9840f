"""EV battery: OCV curve, terminal voltage, BMS limits, reserve, energy counting."""

from __future__ import annotations

import pytest

from rig.sim import BatteryConfig
from rig.sim.battery import Battery

CURVE = ((0.0, 300.0), (0.5, 350.0), (1.0, 400.0))


def battery(**overrides: object) -> Battery:
    values: dict[str, object] = {"capacity_wh": 10_000.0, "soc": 0.5, "ocv_curve": CURVE}
    values.update(overrides)
    return Battery(BatteryConfig(**values))  # type: ignore[arg-type]


def test_ocv_interpolates_between_points_and_holds_flat_beyond_them() -> None:
    b = battery(soc=0.25)
    assert b.ocv_v == pytest.approx(325.0)
    b.energy_wh = 10_000.0
    assert b.ocv_v == pytest.approx(400.0)
    b = battery(ocv_curve=((0.1, 310.0), (0.9, 390.0)), soc=0.05)
    assert b.ocv_v == pytest.approx(310.0)


@pytest.mark.parametrize("p_w", [5000.0, -5000.0, 100.0, -11000.0])
def test_terminal_voltage_is_ocv_plus_i_r_and_carries_the_power(p_w: float) -> None:
    b = battery(r_internal_ohm=0.2)
    b.set_power(p_w)
    assert b.terminal_v == pytest.approx(b.ocv_v + b.current_a * 0.2)
    assert b.terminal_v * b.current_a == pytest.approx(p_w)
    # charging lifts the terminal voltage above OCV, discharging pulls it below
    assert (b.terminal_v > b.ocv_v) == (p_w > 0)


def test_the_ev_offers_no_discharge_at_or_below_its_reserve() -> None:
    b = battery(reserve_soc=0.3, soc=0.3)
    assert b.max_discharge_power_w() == 0.0
    assert b.max_discharge_power_w(respect_reserve=False) > 0.0  # the hardware could
    b.energy_wh = 3001.0
    assert b.max_discharge_power_w() > 0.0
    b.energy_wh = 0.0
    assert b.max_discharge_power_w(respect_reserve=False) == 0.0  # empty is empty


def test_current_limit_binds_below_the_power_limit() -> None:
    b = battery(max_charge_w=50_000.0, max_charge_a=10.0, max_discharge_a=10.0, r_internal_ohm=0.1)
    assert b.max_charge_power_w() == pytest.approx((350.0 + 10.0 * 0.1) * 10.0)
    assert b.max_discharge_power_w() == pytest.approx((350.0 - 10.0 * 0.1) * 10.0)


def test_a_full_pack_takes_no_charge() -> None:
    b = battery(soc=1.0)
    assert b.max_charge_power_w() == 0.0


def test_store_integrates_terminal_power_and_stays_within_the_pack() -> None:
    b = battery()
    b.store(3600.0, 10.0)  # 3.6 kW for 10 s = 10 Wh
    assert b.energy_wh == pytest.approx(5010.0)
    b.store(-1e9, 3600.0)
    assert b.energy_wh == 0.0
    b.store(1e9, 3600.0)
    assert b.energy_wh == 10_000.0


def test_config_rejects_a_curve_that_is_not_ascending() -> None:
    with pytest.raises(ValueError, match="ascending"):
        BatteryConfig(ocv_curve=((0.5, 350.0), (0.2, 340.0)))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        BatteryConfig(reserve_soc=1.5)
