"""reserve_floor, home_supply, power_direction and discharge_limits on hand-made traces."""

from __future__ import annotations

import numpy as np
import pytest
from tracebuild import TraceBuilder, context, outcomes, run

from rig.checks.reserve import integrate
from rig.ev import EVSpec

PSB_P = "dc_source__p_w"
WT_DC_P = "power_analyzer__evse_dc__p_w"
EV = EVSpec(60_000, 0.32, 0.30, 11_000.0, 11_000.0)


def discharge(minutes: float, *, hold_h: float = 1.0, w: float = 3000.0, step: float = 1.0):
    t = np.arange(0.0, hold_h * 3600.0, step)
    return t, np.where(t < minutes * 60, -w, 0.0)


def test_down_to_the_reserve_passes_beyond_it_fails() -> None:
    # 3 kW for 24 min: 1.2 kWh = 2 % of 60 kWh, exactly down to the reserve.
    t, p = discharge(24)
    verdicts = run("reserve_floor", TraceBuilder().sample(t, **{PSB_P: p}).trace, context(EV))
    assert verdicts["reserve_floor:soc"].verdict == "pass"
    assert verdicts["reserve_floor:soc"].measured == pytest.approx(30.0, abs=0.01)
    assert verdicts["reserve_floor:energy"].measured == pytest.approx(18_000, abs=5)
    # The battery emulator's 90 W range term over the 24 min it moved power: 36 Wh, 0.06 % SoC.
    assert verdicts["reserve_floor:soc"].uncertainty == pytest.approx(0.06, abs=0.005)
    t, p = discharge(30)  # 6 min longer: 300 Wh below
    beyond = run("reserve_floor", TraceBuilder().sample(t, **{PSB_P: p}).trace, context(EV))
    assert beyond["reserve_floor:soc"].verdict == "fail"


def test_a_meter_offset_over_idle_hours_is_not_a_loss() -> None:
    # At the reserve (+ 0.02 %), then a three-hour hold with nothing flowing; the battery emulator
    # reads a 0.1 %-of-rating current offset (0.12 A at 370 V: 44 W) all along.
    ev = EVSpec(60_000, 0.3002, 0.30, 11_000.0, 11_000.0)
    t = np.arange(0.0, 3 * 3600.0, 1.0)
    offset = -0.001 * 120.0 * 370.0
    trace = TraceBuilder().sample(t, **{PSB_P: np.full(t.shape, offset)}).trace
    idle = run("reserve_floor", trace, context(ev))
    assert idle["reserve_floor:soc"].verdict == "pass"
    assert idle["reserve_floor:soc"].measured == pytest.approx(30.02, abs=1e-6)
    # Summed naively, the offset would be 133 Wh: 0.2 % below the reserve.
    assert -offset * 3 / 60_000 * 100 > 0.2
    # A real 1 kWh loss over the same hold still fails.
    real = TraceBuilder().sample(t, **{PSB_P: np.full(t.shape, -1000.0 / 3)}).trace
    assert run("reserve_floor", real, context(ev))["reserve_floor:soc"].verdict == "fail"


def test_missing_readings_that_hide_a_discharge_are_an_error() -> None:
    t, p = discharge(30)
    p = p.copy()
    p[(t > 100) & (t < 1500)] = np.nan  # the emulator stopped answering through the discharge
    verdicts = run("reserve_floor", TraceBuilder().sample(t, **{PSB_P: p}).trace, context(EV))
    assert verdicts["reserve_floor:soc"].verdict == "error"
    assert "dc_source.p_w: no valid reading for 14" in verdicts["reserve_floor:soc"].detail


def test_a_promise_to_reach_the_reserve_fails_a_unit_that_never_discharged() -> None:
    t = np.arange(0.0, 3600.0, 1.0)
    idle = TraceBuilder().sample(t, **{PSB_P: t * 0}).trace
    never = run("reserve_floor", idle, context(EV), promise="reaches_reserve")
    assert never["reserve_floor:soc"].verdict == "pass"
    assert never["reserve_floor:reached"].verdict == "fail"
    t, p = discharge(24)
    reached = run(
        "reserve_floor",
        TraceBuilder().sample(t, **{PSB_P: p}).trace,
        context(EV),
        promise="reaches_reserve",
    )
    assert reached["reserve_floor:reached"].verdict == "pass"


def test_the_best_meter_is_judged_and_a_disagreement_beyond_uncertainty_is_an_error() -> None:
    t, p = discharge(24)
    agree = TraceBuilder().sample(t, **{PSB_P: p, WT_DC_P: p * 1.0002}).trace
    verdict = run("reserve_floor", agree, context(EV))["reserve_floor:soc"]
    assert verdict.verdict == "pass" and "power_analyzer.evse_dc.p_w (integrated)" in verdict.detail
    _, far = discharge(27)
    disagree = TraceBuilder().sample(t, **{PSB_P: p, WT_DC_P: far}).trace
    bad = run("reserve_floor", disagree, context(EV))["reserve_floor:soc"]
    assert bad.verdict == "error" and "disagree" in bad.detail


def test_integrated_uncertainty_grows_with_throughput_and_time_not_idle() -> None:
    t = np.arange(0.0, 7200.0, 1.0)
    p = np.where(t < 3600, -3000.0, 0.0)
    energy, u = integrate(t, p, offset_w=90.0, reading=0.001, band_w=93.0)
    assert energy[-1] == pytest.approx(-3000.0, rel=1e-3)
    hour = int(np.searchsorted(t, 3600.0))
    assert u[hour] == pytest.approx(0.001 * 3000 + 90, rel=0.01)  # Wh after an hour at 3 kW
    assert u[-1] == pytest.approx(u[hour] + 3000.0 * 1.0 / 3600.0 / 2.0, rel=0.01)  # idle adds none


def test_the_counter_of_the_battery_emulator_is_used_where_the_trace_has_one() -> None:
    t, p = discharge(24)
    counter = np.minimum(t, 1440.0) * -3000.0 / 3600.0
    trace = TraceBuilder().sample(t, dc_source__e_wh=counter, **{PSB_P: p}).trace
    verdict = run("reserve_floor", trace, context(EV))["reserve_floor:soc"]
    assert verdict.verdict == "pass" and "dc_source.e_wh (counter)" in verdict.detail
    assert verdict.measured == pytest.approx(30.0, abs=0.001)
    # A counter the power readings contradict is not trusted blindly.
    idle = TraceBuilder().sample(t, dc_source__e_wh=counter, **{PSB_P: t * 0}).trace
    assert run("reserve_floor", idle, context(EV))["reserve_floor:soc"].verdict == "error"


# ---------------------------------------------------------------------------------- V2H job
GRID_P = "power_analyzer__grid__p_w"
HOME_P = "power_analyzer__home__p_w"
EVSE_P = "power_analyzer__evse_ac__p_w"


def following(evse_w: float, *, announce_used_up: bool = False) -> TraceBuilder:
    t = np.arange(0.0, 120.0, 1.0)
    home = np.full(t.shape, 3000.0)
    evse = np.where(t < 11.0, 0.0, evse_w)
    b = TraceBuilder().sample(t, **{GRID_P: home + evse, HOME_P: home, EVSE_P: evse})
    b.step(10.0, "follow_home_load", on=True)
    b.announce(5.0, EVMaximumDischargePower=11_000, EVMinimumV2XEnergyRequest=-1200)
    if announce_used_up:
        b.announce(60.0, EVMaximumDischargePower=11_000, EVMinimumV2XEnergyRequest=0)
    return b


def test_the_ev_carrying_the_home_passes_home_supply_and_power_direction() -> None:
    trace = following(-3000.0).trace
    assert outcomes(run("home_supply", trace)) == {"home_supply": "pass"}
    assert outcomes(run("power_direction", trace)) == {"power_direction": "pass"}


def test_a_unit_charging_when_it_should_carry_the_home_fails_both() -> None:
    trace = following(+3000.0).trace
    supply = run("home_supply", trace)["home_supply"]
    assert supply.verdict == "fail" and supply.measured == pytest.approx(6000.0, abs=1)
    direction = run("power_direction", trace)["power_direction"]
    assert direction.verdict == "fail" and direction.measured == pytest.approx(-100.0, abs=0.5)


def test_after_the_reserve_the_grid_takes_over_and_is_not_held_against_the_dut() -> None:
    # From t = 60 s the EV has nothing left to give: the EVSE rightly stops.
    t = np.arange(0.0, 120.0, 1.0)
    home = np.full(t.shape, 3000.0)
    evse = np.where((t >= 11.0) & (t < 61.0), -3000.0, 0.0)
    b = TraceBuilder().sample(t, **{GRID_P: home + evse, HOME_P: home, EVSE_P: evse})
    b.step(10.0, "follow_home_load", on=True)
    b.announce(5.0, EVMaximumDischargePower=11_000, EVMinimumV2XEnergyRequest=-1200)
    b.announce(60.0, EVMaximumDischargePower=11_000, EVMinimumV2XEnergyRequest=0)
    assert outcomes(run("home_supply", b.trace)) == {"home_supply": "pass"}
    assert outcomes(run("power_direction", b.trace)) == {"power_direction": "pass"}


def test_a_plan_that_never_follows_the_home_is_not_judged_by_home_supply() -> None:
    t = np.arange(0.0, 60.0, 1.0)
    b = TraceBuilder().sample(t, **{GRID_P: 1000.0, HOME_P: 1000.0, EVSE_P: 0.0})
    assert outcomes(run("home_supply", b.trace)) == {"home_supply": "not judged"}
    assert outcomes(run("power_direction", b.trace)) == {"power_direction": "not judged"}


def test_discharge_limits_refuse_to_judge_over_a_gap() -> None:
    t = np.arange(0.0, 300.0, 1.0)
    p = np.where(t > 10, -4900.0, 0.0)
    p[(t > 50) & (t < 100)] = np.nan
    b = TraceBuilder().sample(t, **{PSB_P: p})
    b.announce(5.0, EVMaximumDischargePower=5000, EVMinimumV2XEnergyRequest=-100_000)
    verdicts = run("discharge_limits", b.trace)
    assert verdicts["discharge_limits:power"].verdict == "error"
    assert "dc_source.p_w: no valid reading" in verdicts["discharge_limits:power"].detail


def _standby_at(b: TraceBuilder, t: float) -> TraceBuilder:
    from rig.trace import Event

    for when, name, direction, body in (
        (t, "PowerDeliveryReq", "tx", {"PowerDeliveryReq": {"ChargeProgress": "Standby"}}),
        (t + 0.001, "PowerDeliveryRes", "rx", {"PowerDeliveryRes": {"ResponseCode": "OK"}}),
    ):
        data = {"dir": direction, "side": "evcc", "message": name, "body": body}
        if name.endswith("Res"):
            data["code"] = "OK"
        b.trace.add_event(Event(when, "v2g", "message", data))
    return b


def test_energy_after_a_standby_the_plan_did_not_watch_is_not_judged() -> None:
    t = np.arange(0.0, 11.0, 0.1)
    short = _standby_at(TraceBuilder().sample(t, **{EVSE_P: 0.0}), 10.0)
    verdicts = run("sequence", short.trace)
    assert verdicts["sequence:energy_after_stop"].verdict == "not judged"
    t = np.arange(0.0, 20.0, 0.1)
    watched = _standby_at(TraceBuilder().sample(t, **{EVSE_P: np.where(t < 11, -6000, 0)}), 10.0)
    assert run("sequence", watched.trace)["sequence:energy_after_stop"].verdict == "pass"
    kept = _standby_at(TraceBuilder().sample(t, **{EVSE_P: -6000.0}), 10.0)
    assert run("sequence", kept.trace)["sequence:energy_after_stop"].verdict == "fail"
