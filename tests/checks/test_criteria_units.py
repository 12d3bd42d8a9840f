"""The criteria's arithmetic on hand-made traces (the defect tests judge the emulated DUT)."""

import numpy as np
import pytest

from rig.checks import REGISTRY, Context
from rig.checks.transition import response
from rig.ev import EVSpec
from rig.trace import StepMarker, Trace

CTX = Context(ev=EVSpec(60_000, 0.32, 0.30, 11_000.0, 11_000.0))


def _trace(channels: dict[str, tuple[np.ndarray, np.ndarray]], steps: list[StepMarker]) -> Trace:
    tr = Trace()
    times = next(iter(channels.values()))[0]
    for k, t in enumerate(times):
        by_src: dict[str, dict[str, float]] = {}
        for name, (_, v) in channels.items():
            src, key = name.split(".", 1)
            by_src.setdefault(src, {})[key] = float(v[k])
        for src, vals in by_src.items():
            tr.add_sample(float(t), src, vals)
    for s in steps:
        tr.add_step(s)
    return tr


def _run(name: str, tr: Trace, **params: object) -> list:
    return REGISTRY[name].run(tr, CTX, params)


def test_first_order_step_response_time_is_interpolated_at_90_percent() -> None:
    t = np.arange(0, 10, 0.01)
    tau = 0.5
    y = np.where(t < 1.0, 0.0, 7000 * (1 - np.exp(-(t - 1.0) / tau)))
    r = response(t, y, 1.0, 10.0, 7000.0, accuracy_w=0.0, band=0.05)
    assert r is not None
    assert r.t90 == pytest.approx(tau * np.log(10), abs=0.01)  # 1.151 s for a first-order lag
    assert r.overshoot == 0.0
    assert r.settle == pytest.approx(tau * np.log(20), abs=0.02)


def test_transition_fails_on_slow_response_and_on_overshoot() -> None:
    t = np.arange(0, 20, 0.01)
    slow = np.where(t < 1.0, 7000.0, 7000 - 14000 * np.clip((t - 1.0) / 5.0, 0, 1))  # 14 kW in 5 s
    tr = _trace(
        {"power_analyzer.evse_ac.p_w": (t, slow)},
        [StepMarker(1.0, 2, 5, "setpoint", {"p_w": -7000.0})],
    )
    v = {x.name: x for x in _run("transition_time", tr)}
    assert v["transition_time"].verdict == "fail" and v[
        "transition_time"
    ].measured == pytest.approx(5 * (0.9 - 100 / 14000), abs=0.02)  # 100 W accuracy margin
    ring = np.where(t < 1.0, 0.0, 7000 * (1 - np.exp(-(t - 1) / 0.3) * np.cos(6 * (t - 1))))
    tr2 = _trace(
        {"power_analyzer.evse_ac.p_w": (t, ring)},
        [StepMarker(1.0, 2, 5, "setpoint", {"p_w": 7000.0})],
    )
    v2 = {x.name: x for x in _run("transition_time", tr2)}
    assert v2["transition_time"].verdict == "pass"
    assert (
        v2["transition_time:overshoot"].verdict == "fail"
        and v2["transition_time:overshoot"].measured > 10
    )


def test_transition_cannot_judge_without_a_setpoint_step() -> None:
    t = np.arange(0, 5, 0.1)
    tr = _trace({"power_analyzer.evse_ac.p_w": (t, t * 0)}, [])
    (v,) = _run("transition_time", tr)
    assert v.verdict == "error"


def test_islanding_grid_following_clearing_time() -> None:
    t = np.arange(0, 20, 0.01)
    lost = 10.0
    for clear_at, verdict in ((10.4, "pass"), (13.0, "fail"), (99.0, "fail")):
        v = np.where(t < clear_at, 230.0, 0.0)
        i = np.where(t < clear_at, 13.0, 0.0)
        tr = _trace(
            {"power_analyzer.evse_ac.v_rms": (t, v), "power_analyzer.evse_ac.i_rms": (t, i)},
            [StepMarker(lost, 4, 9, "grid", {"on": False})],
        )
        (res,) = _run("islanding", tr, mode="grid_following")
        assert res.verdict == verdict
        if clear_at < 20:
            assert res.measured == pytest.approx(clear_at - lost, abs=0.011)
        else:
            assert res.measured is None and "still energized" in res.detail


def test_islanding_grid_forming_transfer_time_and_band() -> None:
    t = np.arange(0, 20, 0.01)
    v = np.where((t >= 10.0) & (t < 10.15), 0.0, 230.0)  # a 150 ms gap
    tr = _trace(
        {"power_analyzer.home.v_rms": (t, v)}, [StepMarker(10.0, 4, 9, "grid", {"on": False})]
    )
    (ok,) = _run("islanding", tr, mode="grid_forming", transfer_within=0.2)
    (late,) = _run("islanding", tr, mode="grid_forming", transfer_within=0.1)
    assert ok.verdict == "pass" and ok.measured == pytest.approx(0.15, abs=0.011)
    assert late.verdict == "fail"
    sag = np.where(t >= 15.0, 200.0, v)  # sags out of the ±10 % band later: not carried
    tr2 = _trace(
        {"power_analyzer.home.v_rms": (t, sag)}, [StepMarker(10.0, 4, 9, "grid", {"on": False})]
    )
    (bad,) = _run("islanding", tr2, mode="grid_forming", transfer_within=0.2)
    assert bad.verdict == "fail"


def test_reserve_floor_from_integrated_battery_power() -> None:
    t = np.arange(0, 3600, 1.0)
    # Discharge 3 kW for 24 min: 1.2 kWh = 2 % of 60 kWh, exactly down to the reserve.
    p = np.where(t < 1440, -3000.0, 0.0)
    tr = _trace({"dc_source.p_w": (t, p)}, [])
    soc, energy = _run("reserve_floor", tr)
    assert soc.verdict == "pass" and soc.measured == pytest.approx(30.0, abs=0.01)
    assert energy.measured == pytest.approx(18_000, abs=5)
    p2 = np.where(t < 1800, -3000.0, 0.0)  # 6 min longer: 300 Wh below
    soc2, _ = _run("reserve_floor", _trace({"dc_source.p_w": (t, p2)}, []))
    assert soc2.verdict == "fail" and "300 Wh below the reserve" in soc2.detail


def test_reserve_floor_takes_the_pessimistic_meter() -> None:
    t = np.arange(0, 3600, 1.0)
    a = np.where(t < 1440, -3000.0, 0.0)
    b = np.where(t < 1600, -3000.0, 0.0)  # the analyzer saw more energy leave
    tr = _trace({"dc_source.p_w": (t, a), "power_analyzer.evse_dc.p_w": (t, b)}, [])
    soc, _ = _run("reserve_floor", tr)
    assert (
        soc.verdict == "fail"
        and "power_analyzer.evse_dc.p_w" in soc.detail
        and "disagree" in soc.detail
    )
