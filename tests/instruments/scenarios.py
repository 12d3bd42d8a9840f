"""One scenario per model that calls every public method of its driver with valid values.

The cross test runs each scenario against the model's twin and demands an empty error queue and
that every command of the driver's COMMANDS table went over the wire at least once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from test_pilot_box import pilot_box_scenario

from instruments.roles import (
    STEP,
    ACLoad,
    Coupling,
    DCSource,
    GridSimulator,
    Instrument,
    Oscilloscope,
    PowerAnalyzer,
    RlcLoadBank,
    SwitchUnit,
    TriggerSlope,
)

WIRING = {"elements": {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}, "dc_elements": [4]}


@dataclass(frozen=True)
class Scenario:
    #: Driver options (bench file) for the model.
    driver_options: Mapping[str, object]
    #: Twin-only options.
    twin_options: Mapping[str, object]
    run: Callable[[Instrument, Callable[[float], None]], None]


def _analyzer(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, PowerAnalyzer)
    driver.identify()
    driver.configure(  # type: ignore[call-arg]
        {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"},
        dc_elements=[4],
        update_interval_s=0.1,
        voltage_ranges={1: 300.0, 4: 600.0},
        current_ranges={2: None},
        line_filter_hz=None,
    )
    driver.configure(  # type: ignore[call-arg]
        {1: "grid"},
        update_interval_s=0.05,
        line_filter_hz=driver.LINE_FILTERS_HZ[0],  # type: ignore[attr-defined]
    )
    driver.configure(  # type: ignore[call-arg]
        {1: "grid", 2: "evse_ac", 3: "home", 4: "evse_dc"}, dc_elements=[4], update_interval_s=0.05
    )
    first = driver.read()
    wait(0.2)
    second = driver.read()
    assert set(first) == set(second) == {"grid", "evse_ac", "home", "evse_dc"}
    driver.settings()
    driver.safe_state()


def _dc_source(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, DCSource)
    driver.identify()
    driver.set_voltage(420.0)
    driver.set_current_limits(source_a=30.0, sink_a=25.0)
    driver.set_power_limits(source_w=11_000.0, sink_w=9_000.0)
    driver.set_output(True)
    assert driver.output_enabled()
    wait(0.5)
    driver.measure()
    driver.settings()
    driver.set_output(False)
    driver.safe_state()
    driver.close()


def _grid(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, GridSimulator)
    driver.identify()
    driver.set_slew_rates(voltage_v_per_s=STEP, frequency_hz_per_s=STEP)
    driver.set_voltage(230.0)
    driver.set_frequency(50.0)
    driver.set_output(True)
    assert driver.output_enabled()
    driver.ramp_voltage(220.0, v_per_s=100.0)
    driver.ramp_frequency(50.5, hz_per_s=1.0)
    if driver.phases == 3:
        driver.set_voltage(231.0, phase=2)
        driver.set_phase_angle(2, 120.0)
        driver.set_phase_angle(3, 240.0)
    wait(1.0)
    driver.measure()
    driver.settings()
    driver.set_output(False)
    driver.safe_state()


def _ac_load(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, ACLoad)
    driver.identify()
    driver.set_power(2000.0, 400.0)
    driver.set_input(True)
    assert driver.input_enabled()
    driver.set_rlc(r_ohm=50.0)
    driver.set_rlc(r_ohm=50.0, l_h=0.005, c_f=200e-6)
    wait(0.5)
    driver.measure()
    driver.settings()
    driver.safe_state()


def _rlc(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, RlcLoadBank)
    driver.identify()
    driver.set_balanced(3000.0, 1.0, v_nominal=230.0, f_nominal=50.0, inductive_pct=98.0)
    driver.set_input(True)
    assert driver.input_enabled()
    wait(0.5)
    driver.measure()
    driver.settings()
    driver.safe_state()


def _scope(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, Oscilloscope)
    driver.identify()
    driver.configure_channel(1, per_div=100.0, probe=100.0)
    driver.configure_channel(2, per_div=10.0, probe=10.0, unit="A", coupling=Coupling.DC)
    driver.set_timebase(seconds_per_div=0.01, delay_s=0.02)
    driver.set_edge_trigger("CHAN1", level=0.0, slope=TriggerSlope.RISING)
    driver.set_edge_trigger("EXT", level=1.0, slope=TriggerSlope.FALLING)
    driver.arm()
    driver.force_trigger()
    wait(0.2)
    assert driver.acquisition_complete()
    driver.fetch(1)
    driver.set_edge_trigger("CHAN1", level=0.0, slope=TriggerSlope.EITHER)
    captured = driver.capture([1, 2])
    assert set(captured) == {1, 2}
    driver.settings()
    driver.safe_state()


def _switch(driver: Instrument, wait: Callable[[float], None]) -> None:
    assert isinstance(driver, SwitchUnit)
    driver.identify()
    driver.close_channel("k3")
    assert driver.channel_closed("k3")
    driver.open_channel("k3")
    driver.open_channel("s3")
    driver.close_channel("s3")
    driver.settings()
    driver.open_all()
    driver.safe_state()


SWITCH_CHANNELS = {"s3": 101, "transfer_switch": 102, "k3": 103}

SCENARIOS: Mapping[str, Scenario] = {
    "yokogawa_wt5000": Scenario(WIRING, {}, _analyzer),
    "yokogawa_wt1800": Scenario(WIRING, {}, _analyzer),
    "ea_psb10000": Scenario({}, {}, _dc_source),
    "keysight_rp7900": Scenario({}, {}, _dc_source),
    "keysight_ac6900": Scenario({}, {}, _grid),
    "chroma_61800": Scenario({"phases": 3}, {}, _grid),
    "chroma_63800": Scenario({}, {}, _ac_load),
    "keysight_infiniivision": Scenario(
        {}, {"channels": {1: "grid.v", 2: "evse_ac.i"}, "record_length": 20_000}, _scope
    ),
    "keysight_daq970a": Scenario({"channels": SWITCH_CHANNELS}, {}, _switch),
    "chroma_a635000": Scenario({}, {}, _rlc),
    "rig_pilot_box": Scenario({}, {}, pilot_box_scenario),
}
