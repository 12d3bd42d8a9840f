"""The rig's pilot box: its driver's exact commands, its twin over the simulated pilot line, and
the control pilot role's side checks. `pilot_box_scenario` is the cross test's scenario
(tests/instruments/scenarios.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pyvisa

from instruments.emulated.pilot_box import pilot_of
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.pilot.pilot_box import PilotBox
from instruments.registry import MODELS, make_twin, open_instrument
from instruments.roles import ControlPilot, Instrument, PilotSideError, PilotState, Role
from instruments.testing import expected_protocol
from rig.clock import VirtualClock
from rig.sim import World, WorldConfig

OK = (("SYST:ERR?", '0,"No error"'),)


def pilot_box_scenario(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, ControlPilot)
    driver.identify()
    driver.set_state(PilotState.B)
    driver.set_pwm(0.05)
    reading = driver.measure()
    assert reading.state is PilotState.B and reading.duty == pytest.approx(0.05)
    driver.signal(PilotState.F)
    driver.signal(None)
    driver.set_pwm(None)
    driver.settings()
    driver.safe_state()


def test_the_driver_sends_the_box_commands() -> None:
    pairs = [
        ("PIL:EV:STAT C", None), *OK,
        ("PIL:PWM:FREQ 1000", None), ("PIL:PWM:DUTY 5", None), ("PIL:PWM:STAT ON", None), *OK,
        ("PIL:SIGN E", None), *OK,
        ("MEAS:PIL?", "C,1000.00,5.000,5.996,-12.000"),
        ("PIL:EV:STAT A", None), ("PIL:SIGN NONE", None), ("PIL:PWM:STAT OFF", None),
        ("PIL:PWM:STAT?", "0"),
    ]  # fmt: skip
    with expected_protocol(PilotBox, pairs) as box:
        box.set_state("C")
        box.set_pwm(0.05)
        box.signal("E")
        reading = box.measure()
        assert (reading.state, reading.frequency_hz, reading.duty) == (PilotState.C, 1000.0, 0.05)
        assert (reading.high_v, reading.low_v) == (5.996, -12.0)
        box.safe_state()


def test_the_role_refuses_what_no_side_may_do_before_sending() -> None:
    with expected_protocol(PilotBox, []) as box:
        with pytest.raises(ValueError, match="A, B, C or D"):
            box.set_state("E")
        with pytest.raises(ValueError, match="duty"):
            box.set_pwm(1.5)
        with pytest.raises(ValueError, match="E or F"):
            box.signal("C")


def test_a_driver_without_an_evse_side_says_so() -> None:
    class EvOnly(PilotBox):
        sides = frozenset({s for s in PilotBox.sides if s.value == "ev"})

    with expected_protocol(EvOnly, []) as box, pytest.raises(PilotSideError, match="no evse"):
        box.set_pwm(0.05)


def test_the_registry_knows_the_box_as_the_control_pilot() -> None:
    assert MODELS["rig_pilot_box"].role is Role.CONTROL_PILOT


def test_the_twin_shows_the_iec_61851_levels_for_each_state() -> None:
    world = World(WorldConfig(), seed=1)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    rm = pyvisa.ResourceManager(library)
    twin = make_twin("rig_pilot_box", world, clock.now, serial="EMU0007")
    raw = rm.open_resource(library.add(MODELS["rig_pilot_box"].emulated_resource("EMU0007"), twin))
    box = open_instrument("rig_pilot_box", raw, name="pilot")
    assert isinstance(box, PilotBox)
    levels = {}
    box.set_pwm(0.05)
    for state in "ABCD":
        box.set_state(state)
        r = box.measure()
        levels[state] = (r.state, round(r.high_v, 1), r.low_v)
    # 12 V open; 9, 6, 3 V through the diode and 2.74 kOhm, 882 Ohm, 246 Ohm; -12 V low level.
    assert levels == {
        "A": (PilotState.A, 12.0, -12.0),
        "B": (PilotState.B, 9.0, -12.0),
        "C": (PilotState.C, 6.0, -12.0),
        "D": (PilotState.D, 2.9, -12.0),
    }
    box.signal("E")
    assert box.measure().state is PilotState.E
    box.signal("F")
    assert box.measure().state is PilotState.F and box.measure().frequency_hz is None
    box.safe_state()
    line = pilot_of(world)
    assert line.ev_state == "A" and line.duty is None and line.evse_signal is None
    assert twin.errors == []
