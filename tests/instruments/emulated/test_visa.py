"""The in-process VISA library: pyvisa resources backed by twins, drivers unchanged on top."""

from __future__ import annotations

from dataclasses import astuple

import pytest
import pyvisa
from pyvisa import constants, errors
from pyvisa.resources import MessageBasedResource
from world_double import Clock, FakeWorld

from instruments.chroma.c63800 import C63800
from instruments.ea.psb10000 import PSB10000
from instruments.emulated.ac6900 import AC6900Twin
from instruments.emulated.c63800 import C63800Twin
from instruments.emulated.psb10000 import PSB10000Twin
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.emulated.wt5000 import WT5000Twin
from instruments.keysight.ac6900 import AC6900
from instruments.roles import AcReading, DcReading, InstrumentError
from instruments.yokogawa.wt5000 import WT5000

WT = "USB0::0x0B21::0x0025::91N000001::INSTR"
PSB = "USB0::0x232E::0x0010::EMU0002::INSTR"
AC = "USB0::0x2A8D::0x3F02::EMU0003::INSTR"
LOAD = "USB0::0x1698::0x0837::EMU0004::INSTR"


class Bench:
    def __init__(self, world: FakeWorld, clock: Clock) -> None:
        self.world = world
        self.clock = clock
        self.library = EmulatedVisaLibrary()
        self.library.use_clock(clock.sleep_until)
        ideal = {"noise": False}
        self.wt = WT5000Twin(world, clock.now, serial="91N000001", options=ideal)
        self.psb = PSB10000Twin(
            world, clock.now, serial="EMU0002", options={**ideal, "voltage_rating": "600 V"}
        )
        self.ac = AC6900Twin(world, clock.now, serial="EMU0003", options=ideal)
        self.load = C63800Twin(world, clock.now, serial="EMU0004", options=ideal)
        for name, twin in ((WT, self.wt), (PSB, self.psb), (AC, self.ac), (LOAD, self.load)):
            self.library.add(name, twin)
        self.rm = pyvisa.ResourceManager(self.library)


def raw(bench: Bench, name: str, read_termination: str | None = None) -> MessageBasedResource:
    resource = bench.rm.open_resource(name)
    assert isinstance(resource, MessageBasedResource)
    resource.read_termination = read_termination
    return resource


@pytest.fixture
def bench(world: FakeWorld, clock: Clock) -> Bench:
    return Bench(world, clock)


def test_list_resources_shows_the_attached_twins(bench: Bench) -> None:
    listed = bench.rm.list_resources()
    assert len(listed) == 4
    assert all(name.startswith("USB0::0x") and name.endswith("::INSTR") for name in listed)
    assert bench.rm.list_resources("USB?*0x0B21?*") == (
        "USB0::0x0B21::0x0025::91N000001::0::INSTR",
    )


def test_two_libraries_are_independent_benches(world: FakeWorld, clock: Clock) -> None:
    first, second = Bench(world, clock), Bench(world, clock)
    assert first.library is not second.library and first.rm is not second.rm


def test_opening_an_unknown_resource_fails_like_visa(bench: Bench) -> None:
    with pytest.raises(errors.VisaIOError) as caught:
        bench.rm.open_resource("USB0::0x0B21::0x0025::NOPE::INSTR")
    assert caught.value.error_code == constants.StatusCode.error_resource_not_found


def test_the_drivers_run_unchanged_through_pyvisa(bench: Bench, world: FakeWorld) -> None:
    analyzer = WT5000(bench.rm.open_resource(WT))
    battery = PSB10000(bench.rm.open_resource(PSB))
    grid = AC6900(bench.rm.open_resource(AC))
    home = C63800(bench.rm.open_resource(LOAD))
    assert str(analyzer.identify()) == "YOKOGAWA,WT5000,91N000001,F1.01"

    analyzer.configure({1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}, dc_elements=[4])
    grid.set_voltage(230)
    grid.set_frequency(50)
    grid.set_output(True)
    battery.set_voltage(420)
    battery.set_current_limits(source_a=30, sink_a=30)
    battery.set_power_limits(source_w=11000, sink_w=11000)
    battery.set_output(True)
    home.set_power(3000)
    home.set_input(True)
    world.evse_p_w = -2000.0  # the EVSE discharges 2 kW into the home

    readings = analyzer.read()  # waits for the end of the next update: the clock moves
    assert bench.clock.t > 0.0
    # The WT5000 sends 5-digit mantissas (NR3), so compare at that resolution.
    assert astuple(readings["home"]) == pytest.approx(
        astuple(AcReading(230.0, 3000 / 230, 3000.0, 0.0, 3000.0, 1.0, 50.0)), rel=1e-5
    )
    assert readings["grid"].p_w == pytest.approx(1000.0)
    assert readings["evse_dc"] == DcReading(400.0, -5.0, -2000.0)
    assert battery.measure() == DcReading(400.0, -5.0, -2000.0)
    assert grid.measure().p_w == pytest.approx(1000.0)
    assert home.measure().p_w == pytest.approx(3000.0)
    assert battery.output_enabled() and grid.output_enabled() and home.input_enabled()


def test_safe_state_leaves_every_emulated_output_off(bench: Bench, world: FakeWorld) -> None:
    battery = PSB10000(bench.rm.open_resource(PSB))
    grid = AC6900(bench.rm.open_resource(AC))
    home = C63800(bench.rm.open_resource(LOAD))
    battery.set_voltage(400)
    battery.set_output(True)
    home.set_power(2000)
    home.set_input(True)
    for driver in (home, grid, battery):
        driver.safe_state()
    assert not bench.psb.output_on and bench.psb.voltage_set == 0.0
    assert not bench.ac.output_on and bench.ac.voltage_setpoint == 0.0
    assert not bench.load.load_on and bench.load.power_set == 0.0
    assert not world.dc_output and not world.grid_output and not world.home_on


def test_a_refused_setpoint_surfaces_as_the_twins_scpi_error(bench: Bench) -> None:
    # The driver knows a 750 V PSB; the unit behind it is a 600 V one: it refuses, the driver
    # tells which instrument refused what.
    battery = PSB10000(bench.rm.open_resource(PSB), name="battery")
    with pytest.raises(InstrumentError, match="-222") as caught:
        battery.set_voltage(700)
    assert caught.value.command == "SYST:LOCK ON; VOLT 700"
    assert caught.value.instrument == "battery (EA Elektro-Automatik PSB 10000)"


def test_reading_with_no_reply_queued_is_a_visa_timeout(bench: Bench) -> None:
    resource = raw(bench, AC)
    resource.timeout = 1500
    assert resource.timeout == 1500
    resource.write("OUTP ON")
    with pytest.raises(errors.VisaIOError) as caught:
        resource.read()
    assert caught.value.error_code == constants.StatusCode.error_timeout


def test_a_new_message_before_the_reply_is_read_interrupts_the_query(bench: Bench) -> None:
    resource = raw(bench, AC, read_termination="\n")
    resource.write("OUTP?")
    resource.write("VOLT?")  # the OUTP? reply is discarded
    assert resource.read() == "+2.30000E+02"
    assert bench.ac.errors == [(-410, "Query INTERRUPTED")]


def test_every_message_advances_the_world_to_the_clock(bench: Bench, clock: Clock) -> None:
    resource = raw(bench, WT)
    clock.t = 3600.0
    resource.query("*OPC?")
    assert bench.world.advanced[-1] == 3600.0


def test_a_read_returns_one_reply_at_a_time(bench: Bench) -> None:
    resource = raw(bench, AC)
    resource.write("OUTP?\nFREQ?")  # two messages in one write
    assert resource.read() == "1\n"  # no read_termination set: the raw reply, up to its END
    resource.read_termination = "\n"
    assert resource.read() == "+5.00000E+01"


def test_closed_sessions_are_invalid(bench: Bench) -> None:
    resource = raw(bench, AC)
    session = resource.session
    resource.close()
    with pytest.raises(errors.InvalidSession):
        bench.library.write(session, b"OUTP?\n")
