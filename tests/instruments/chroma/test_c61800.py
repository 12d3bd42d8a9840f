"""Chroma 61800 driver against exact SCPI pairs (INST:PHAS/EDIT, SOUR:VOLT..AC, phases, relay)."""

from __future__ import annotations

import pytest

from instruments.chroma.c61800 import C61800
from instruments.roles import AcReading, RangeError
from instruments.testing import expected_protocol

NO_ERROR = ("SYST:ERR?", '0,"No error"')
THREE = {"phases": 3}


def test_single_phase_voltage_frequency_and_the_relay_before_the_output() -> None:
    pairs = [
        ("INST:PHAS SINGLE", None),
        ("INST:EDIT ALL", None),
        ("SOUR:VOLT:LEV:IMM:AMPL:AC 230", None),
        NO_ERROR,
        ("SOUR:FREQ 50", None),
        NO_ERROR,
        ("OUTP:REL ON", None),
        ("OUTP:STAT ON", None),
        NO_ERROR,
        ("OUTP:STAT OFF", None),
        ("OUTP:REL OFF", None),
        NO_ERROR,
    ]
    with expected_protocol(C61800, pairs, options={}) as grid:
        grid.set_voltage(230)
        grid.set_frequency(50)
        grid.set_output(True)
        grid.set_output(False)


def test_three_phases_one_phase_voltage_and_independent_angles() -> None:
    pairs = [
        ("INST:PHAS THREE", None),
        ("INST:EDIT P2", None),
        ("SOUR:VOLT:LEV:IMM:AMPL:AC 207", None),
        NO_ERROR,
        ("SOUR:PHAS:THREE INDEPEND", None),
        ("SOUR:PHAS:P13 236", None),
        NO_ERROR,
        ("INST:EDIT ALL", None),
        ("OUTP:SLEW:VOLT:AC 0.1", None),
        ("OUTP:SLEW:FREQ MAX", None),
        NO_ERROR,
    ]
    with expected_protocol(C61800, pairs, options=THREE) as grid:
        assert grid.phases == 3
        grid.set_voltage(207, phase=2)
        grid.set_phase_angle(3, 236)
        grid.set_slew_rates(voltage_v_per_s=100, frequency_hz_per_s=float("inf"))


def test_measure_selects_phase_one_and_reads_one_message() -> None:
    reply = "230.0000;10.0000;2300.0000;0.0000;2300.0000;1.0000;50.0000"
    pairs = [
        ("INST:PHAS SINGLE", None),
        ("INST:EDIT ALL", None),
        (
            "MEAS:VOLT:AC?;:MEAS:CURR:AC?;:MEAS:POW:AC?;:MEAS:POW:AC:REAC?;:MEAS:POW:AC:APP?;"
            ":MEAS:POW:AC:PFAC?;:MEAS:FREQ?",
            reply,
        ),
    ]
    with expected_protocol(C61800, pairs, options={}) as grid:
        assert grid.measure() == AcReading(230.0, 10.0, 2300.0, 0.0, 2300.0, 1.0, 50.0)


def test_a_single_phase_output_has_no_phase_three_and_no_angles() -> None:
    with expected_protocol(C61800, [("INST:PHAS SINGLE", None)], options={}) as grid:
        with pytest.raises(RangeError, match="no phase 3"):
            grid.set_voltage(230, phase=3)
        with pytest.raises(RangeError, match="angles"):
            grid.set_phase_angle(2, 120)


def test_safe_state_output_off_relay_open_zero_volts_then_readback() -> None:
    pairs = [
        ("OUTP:STAT OFF", None),
        ("OUTP:REL OFF", None),
        ("INST:EDIT ALL", None),
        ("SOUR:VOLT:LEV:IMM:AMPL:AC 0", None),
        ("OUTP:STAT?", "0"),
    ]
    with expected_protocol(C61800, pairs, options=THREE) as grid:
        grid.safe_state()


def test_the_phases_option_is_checked() -> None:
    with (
        pytest.raises(ValueError, match="phases"),
        expected_protocol(C61800, [], options={"phases": 2}),
    ):
        pass
