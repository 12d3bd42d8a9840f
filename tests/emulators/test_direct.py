"""Protocol "none": the emulated EV and EVSE exchange setpoints through the sim."""

from __future__ import annotations

import pytest

from rig.emulators.direct import DirectSession
from rig.sim import BatteryConfig, HomeConfig, NoiseConfig, World, WorldConfig


def quiet_world(**overrides: object) -> World:
    return World(WorldConfig(noise=NoiseConfig.none(), **overrides))  # type: ignore[arg-type]


def states(world: World) -> list[tuple[float, str]]:
    return [(e.t, str(e.data["state"])) for e in world.drain_events() if e.name == "session_state"]


def test_plug_in_walks_the_dc_phases_and_then_enables_the_stage() -> None:
    world = quiet_world()
    session = DirectSession(world)
    assert session.protocol == "none" and session.phase == "idle"
    session.set_setpoint(5000.0)  # told early: takes effect in the charge loop
    session.start()
    world.advance_to(3.9)
    assert session.phase == "precharge"
    assert world.evse.p_w == 0.0 and not world.evse.enabled
    world.advance_to(10.0)
    assert session.phase == "charge_loop"
    assert world.evse.p_w == pytest.approx(5000.0)
    assert states(world) == [
        (0.0, "setup"),
        (1.0, "cable_check"),
        (3.0, "precharge"),
        (4.0, "charge_loop"),
    ]


def test_setup_event_says_protocol_none_and_the_service() -> None:
    world = quiet_world()
    DirectSession(world, service="DC_BPT", control_mode="scheduled").start()
    setup = world.drain_events()[0]
    assert dict(setup.data) == {
        "state": "setup",
        "protocol": "none",
        "service": "DC_BPT",
        "control_mode": "scheduled",
    }


def test_ac_bpt_has_no_cable_check_or_precharge() -> None:
    world = quiet_world()
    DirectSession(world, service="AC_BPT").start()
    world.advance_to(5.0)
    assert [s for _, s in states(world)] == ["setup", "charge_loop"]


def test_ev_limits_are_announced_in_the_charge_loop() -> None:
    world = quiet_world(battery=BatteryConfig(capacity_wh=60_000.0, soc=0.8, reserve_soc=0.3))
    session = DirectSession(world)
    session.start()
    world.advance_to(5.0)
    limits = next(e.data for e in world.drain_events() if e.name == "ev_limits")
    assert limits["reserve_energy_wh"] == pytest.approx(18_000.0)
    assert limits["min_v2x_energy_request_wh"] == pytest.approx(18_000.0 - 48_000.0)
    assert limits["max_discharge_power_w"] == pytest.approx(11_000.0)
    assert limits == session.ev_limits()


def test_reaching_the_reserve_is_claimed_and_the_limits_are_re_announced() -> None:
    world = quiet_world(
        home=HomeConfig(p_w=3000.0),
        battery=BatteryConfig(capacity_wh=10_000.0, soc=0.301, reserve_soc=0.3),
    )
    session = DirectSession(world)
    session.start()
    session.follow_home_load()
    world.advance_to(60.0)
    events = world.drain_events()
    names = [e.name for e in events]
    assert names.index("reserve_reached") < len(names) - 1
    after = events[names.index("reserve_reached") + 1]
    assert after.name == "ev_limits" and after.data["max_discharge_power_w"] == 0.0
    assert session.ev_limits()["max_discharge_power_w"] == 0.0
    assert world.measure_ac("grid").p_w == pytest.approx(3000.0)  # the grid takes over


def test_stop_ramps_to_zero_then_reports_stopped() -> None:
    world = quiet_world()
    session = DirectSession(world)
    session.start()
    session.set_setpoint(-7000.0)
    world.advance_to(10.0)
    session.stop()
    assert session.phase == "stopping"
    world.advance_to(10.2)
    assert session.phase == "stopping" and world.evse.p_w < -1.0  # still ramping down
    world.advance_to(15.0)
    assert session.phase == "stopped"
    assert world.evse.p_w == 0.0 and not world.evse.enabled
    stopped_at = [t for t, s in states(world) if s == "stopped"]
    assert stopped_at and 10.7 < stopped_at[0] < 12.0  # 0.7 s of ramp plus the lag's tail


def test_stop_before_the_charge_loop_ends_at_once_and_cancels_the_walk() -> None:
    world = quiet_world()
    session = DirectSession(world)
    session.start()
    world.advance_to(1.5)
    session.stop()
    assert session.phase == "stopped"
    world.advance_to(10.0)
    assert session.phase == "stopped" and not world.evse.enabled


def test_follow_home_load_holds_grid_import_at_zero() -> None:
    world = quiet_world(home=HomeConfig(p_w=2500.0))
    session = DirectSession(world)
    session.start()
    session.follow_home_load()
    world.advance_to(10.0)
    assert world.measure_ac("grid").p_w == pytest.approx(0.0, abs=0.01)


def test_a_session_can_restart_after_stopping_but_not_while_running() -> None:
    world = quiet_world()
    session = DirectSession(world)
    session.start()
    with pytest.raises(RuntimeError):
        session.start()
    session.stop()
    session.start()
    assert session.phase == "setup"


@pytest.mark.parametrize(("service", "mode"), [("DC", "dynamic"), ("DC_BPT", "fast")])
def test_unknown_service_or_control_mode_is_refused(service: str, mode: str) -> None:
    with pytest.raises(ValueError):
        DirectSession(quiet_world(), service=service, control_mode=mode)
