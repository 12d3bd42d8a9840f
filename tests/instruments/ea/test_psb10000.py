"""PSB 10000 driver against exact SCPI pairs (EA SCPI: SYST:LOCK, VOLT/CURR/POW, SINK:..., MEAS)."""

from __future__ import annotations

import pytest

from instruments.ea.psb10000 import PSB10000
from instruments.roles import (
    DcReading,
    Identity,
    InstrumentConnectionLost,
    InstrumentError,
    LimitError,
    Limits,
    RangeError,
)
from instruments.testing import DROPPED, expected_protocol

NO_ERROR = ("SYST:ERR?", '0,"No error"')
LIMITS = Limits(voltage_v=(0.0, 500.0), current_a=(0.0, 60.0), power_w=(0.0, 30000.0))


def test_identify() -> None:
    idn = "EA Elektro-Automatik GmbH & Co. KG, PSB 10500-60 3U, 2129120001, V3.02"
    with expected_protocol(PSB10000, [("*IDN?", idn)]) as psb:
        assert psb.identify() == Identity(
            "EA Elektro-Automatik GmbH & Co. KG", "PSB 10500-60 3U", "2129120001", "V3.02"
        )


def test_remote_lock_is_taken_once_before_the_first_setpoint() -> None:
    pairs = [
        ("SYST:LOCK ON", None),
        ("VOLT 400", None),
        NO_ERROR,
        ("CURR 30", None),
        ("SINK:CURR 25.5", None),
        NO_ERROR,
        ("POW 11000", None),
        ("SINK:POW 7400", None),
        NO_ERROR,
        ("OUTP ON", None),
        NO_ERROR,
    ]
    with expected_protocol(PSB10000, pairs, limits=LIMITS) as psb:
        psb.set_voltage(400)
        psb.set_current_limits(source_a=30, sink_a=25.5)
        psb.set_power_limits(source_w=11000, sink_w=7400)
        psb.set_output(True)


def test_output_query_accepts_on_and_off() -> None:
    with expected_protocol(PSB10000, [("OUTP?", "ON"), ("OUTP?", "OFF")]) as psb:
        assert psb.output_enabled() is True
        assert psb.output_enabled() is False


def test_measure_reads_one_coherent_set_and_converts_the_sink_sign_to_the_rig_sign() -> None:
    # The PSB sinks 17.5 A (EV charging): it reads negative, the rig wants positive.
    pairs = [("MEAS:ARR?", "400.00 V, -17.50 A, -7000.00 W")]
    with expected_protocol(PSB10000, pairs) as psb:
        assert psb.measure() == DcReading(v=400.0, i=17.5, p_w=7000.0)


def test_measure_discharging_reads_negative_in_the_rig_sign() -> None:
    pairs = [("MEAS:ARR?", "398.10V,12.00A,4777.20W")]
    with expected_protocol(PSB10000, pairs) as psb:
        reading = psb.measure()
    assert reading.i == -12.0 and reading.p_w == pytest.approx(-4777.2)


def test_an_array_with_a_missing_value_is_an_error_not_a_reading() -> None:
    with (
        expected_protocol(PSB10000, [("MEAS:ARR?", "400.00 V, -17.50 A")]) as psb,
        pytest.raises(ValueError, match="voltage, current, power"),
    ):
        psb.measure()


def test_settings_read_the_ratings_and_setpoints_back() -> None:
    pairs = [
        ("SYST:NOM:VOLT?", "750.00 V"),
        ("SYST:NOM:CURR?", "120.00 A"),
        ("SYST:NOM:POW?", "30000.00 W"),
        ("VOLT?", "420.00 V"),
        ("CURR?", "30.00 A"),
        ("POW?", "11000.00 W"),
        ("SINK:CURR?", "25.00 A"),
        ("SINK:POW?", "9000.00 W"),
        ("OUTP?", "ON"),
    ]
    with expected_protocol(PSB10000, pairs) as psb:
        settings = psb.settings()
    assert settings["rating_voltage_v"] == 750.0 and settings["sink_power_w"] == 9000.0
    assert settings["output_on"] is True


def test_setpoints_beyond_the_model_rating_are_refused_before_sending() -> None:
    options = {"voltage_rating": "60 V", "current_rating": 340, "power_rating": "5 kW"}
    with (
        expected_protocol(PSB10000, [], options=options) as psb,
        pytest.raises(RangeError, match=r"voltage 62 V is beyond the model's range \[0, 61.2\]"),
    ):
        psb.set_voltage(62)


def test_a_dropped_connection_names_the_instrument_and_the_command() -> None:
    pairs = [("SYST:LOCK ON", None), ("VOLT 400", DROPPED)]
    with (
        expected_protocol(PSB10000, pairs, name="battery") as psb,
        pytest.raises(InstrumentConnectionLost) as caught,
    ):
        psb.set_voltage(400)
    assert str(caught.value).startswith("battery (EA Elektro-Automatik PSB 10000): connection lost")
    assert caught.value.command == "VOLT 400"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda psb: psb.set_voltage(501), "voltage_v"),
        (lambda psb: psb.set_voltage(-1), "voltage_v"),
        (lambda psb: psb.set_current_limits(source_a=10, sink_a=61), "current_a"),
        (lambda psb: psb.set_power_limits(source_w=30001, sink_w=0), "power_w"),
        (lambda psb: psb.set_voltage(float("nan")), "not a finite setpoint"),
    ],
)
def test_setpoints_beyond_the_bench_limits_are_refused_and_nothing_is_sent(
    call: object, message: str
) -> None:
    with (
        expected_protocol(PSB10000, [], limits=LIMITS) as psb,
        pytest.raises(LimitError, match=message),
    ):
        call(psb)  # type: ignore[operator]


def test_a_setpoint_the_unit_refuses_raises_with_its_error() -> None:
    pairs = [
        ("SYST:LOCK ON", None),
        ("VOLT 700", None),
        ("SYST:ERR?", '-222,"Data out of range"'),
        NO_ERROR,
    ]
    with expected_protocol(PSB10000, pairs) as psb, pytest.raises(InstrumentError) as caught:
        psb.set_voltage(700)
    assert caught.value.errors == ((-222, "Data out of range"),)
    assert caught.value.command == "SYST:LOCK ON; VOLT 700"


SAFE_STATE = [
    ("SYST:LOCK ON", None),
    ("OUTP OFF", None),
    ("VOLT 0", None),
    ("CURR 0", None),
    ("SINK:CURR 0", None),
    ("POW 0", None),
    ("SINK:POW 0", None),
    ("OUTP?", "OFF"),
]


def test_safe_state_switches_the_output_off_first_then_zeroes_every_setpoint() -> None:
    with expected_protocol(PSB10000, SAFE_STATE) as psb:
        psb.safe_state()


def test_safe_state_twice_does_not_raise() -> None:
    with expected_protocol(PSB10000, SAFE_STATE + SAFE_STATE) as psb:
        psb.safe_state()
        psb.safe_state()


def test_safe_state_fails_loudly_if_the_output_still_reads_on() -> None:
    pairs = [*SAFE_STATE[:-1], ("OUTP?", "ON")]
    with expected_protocol(PSB10000, pairs) as psb, pytest.raises(InstrumentError, match="still"):
        psb.safe_state()


def test_close_hands_remote_control_back() -> None:
    pairs = [("SYST:LOCK ON", None), ("OUTP OFF", None), NO_ERROR, ("SYST:LOCK OFF", None)]
    with expected_protocol(PSB10000, pairs) as psb:
        psb.set_output(False)
        psb.close()
    assert psb.resource.closed  # type: ignore[attr-defined]
