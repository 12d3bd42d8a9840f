"""RP7900 driver against exact SCPI pairs (FUNC VOLT, VOLT, CURR:LIM[:NEG], POW:LIM, MEAS/FETC)."""

from __future__ import annotations

import pytest

from instruments.keysight.rp7900 import RP7900
from instruments.roles import DcReading, InstrumentError, LimitError, Limits, RangeError
from instruments.testing import expected_protocol

NO_ERROR = ("SYST:ERR?", '+0,"No error"')


def test_voltage_priority_once_then_setpoints_with_a_negative_sink_limit() -> None:
    pairs = [
        ("FUNC VOLT", None),
        ("VOLT 420", None),
        NO_ERROR,
        ("CURR:LIM 30", None),
        ("CURR:LIM:NEG -25", None),
        NO_ERROR,
        ("POW:LIM 11000", None),
        ("POW:LIM:NEG -9000", None),
        NO_ERROR,
        ("OUTP ON", None),
        NO_ERROR,
        ("OUTP?", "1"),
    ]
    with expected_protocol(RP7900, pairs) as rp:
        rp.set_voltage(420)
        rp.set_current_limits(source_a=30, sink_a=25)
        rp.set_power_limits(source_w=11000, sink_w=9000)
        rp.set_output(True)
        assert rp.output_enabled()


def test_one_acquisition_read_in_one_message_in_the_rig_sign() -> None:
    # Sinking 17.5 A (EV charging): the unit reads negative, the rig positive.
    reply = "+4.000000E+02;-1.750000E+01;-7.000000E+03"
    with expected_protocol(RP7900, [("MEAS:VOLT?;:FETC:CURR?;:FETC:POW?", reply)]) as rp:
        assert rp.measure() == DcReading(400.0, 17.5, 7000.0)


def test_settings_report_the_limits_as_magnitudes() -> None:
    pairs = [
        ("FUNC?", "VOLT"),
        ("VOLT?", "+4.200000E+02"),
        ("CURR:LIM?", "+3.000000E+01"),
        ("CURR:LIM:NEG?", "-2.500000E+01"),
        ("POW:LIM?", "+1.100000E+04"),
        ("POW:LIM:NEG?", "-9.000000E+03"),
        ("OUTP?", "0"),
    ]
    with expected_protocol(RP7900, pairs) as rp:
        settings = rp.settings()
    assert settings["sink_current_a"] == 25.0 and settings["sink_power_w"] == 9000.0
    assert settings["output_on"] is False


def test_refusals_before_sending_bench_limits_then_model_ratings() -> None:
    with expected_protocol(RP7900, [], limits=Limits(current_a=(0, 60))) as rp:
        with pytest.raises(LimitError):
            rp.set_current_limits(source_a=61, sink_a=10)
        with pytest.raises(RangeError, match="voltage 501 V"):
            rp.set_voltage(501)


def test_safe_state_output_off_then_zeros_then_readback() -> None:
    pairs = [
        ("OUTP OFF", None),
        ("VOLT 0", None),
        ("CURR:LIM 0", None),
        ("CURR:LIM:NEG 0", None),
        ("OUTP?", "0"),
    ]
    with expected_protocol(RP7900, pairs) as rp:
        rp.safe_state()


def test_safe_state_fails_if_the_output_still_reads_on() -> None:
    pairs = [
        ("OUTP OFF", None),
        ("VOLT 0", None),
        ("CURR:LIM 0", None),
        ("CURR:LIM:NEG 0", None),
        ("OUTP?", "1"),
    ]
    with expected_protocol(RP7900, pairs) as rp, pytest.raises(InstrumentError, match="still"):
        rp.safe_state()
