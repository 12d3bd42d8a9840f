"""AC6900 driver against exact SCPI pairs (VOLTage, FREQuency, OUTPut, MEASure/FETCh)."""

from __future__ import annotations

import pytest

from instruments.keysight.ac6900 import AC6900, COMMANDS
from instruments.roles import (
    STEP,
    AcReading,
    Identity,
    InstrumentConnectionLost,
    LimitError,
    Limits,
    RangeError,
)
from instruments.testing import expected_protocol

MEASURE_ALL = COMMANDS["measure_all"]()

NO_ERROR = ("SYST:ERR?", '+0,"No error"')
LIMITS = Limits(
    voltage_v=(0.0, 264.0), frequency_hz=(45.0, 65.0), voltage_slew_v_per_s=(0.0, 1000.0)
)


def test_identify() -> None:
    idn = "Keysight Technologies,AC6918H,JPUA001234,1.00.0002"
    with expected_protocol(AC6900, [("*IDN?", idn)]) as ac:
        assert ac.identify() == Identity(
            "Keysight Technologies", "AC6918H", "JPUA001234", "1.00.0002"
        )


def test_voltage_frequency_and_output() -> None:
    pairs = [
        ("VOLT 230", None),
        NO_ERROR,
        ("FREQ 50", None),
        NO_ERROR,
        ("OUTP ON", None),
        NO_ERROR,
        ("OUTP?", "1"),
    ]
    with expected_protocol(AC6900, pairs, limits=LIMITS) as ac:
        ac.set_voltage(230)
        ac.set_frequency(50)
        ac.set_output(True)
        assert ac.output_enabled()


def test_a_ramp_sets_the_slew_rate_then_the_target_and_a_step_is_the_maximum_rate() -> None:
    pairs = [
        ("VOLT:SLEW 100", None),
        NO_ERROR,
        ("VOLT 207", None),
        NO_ERROR,
        ("VOLT:SLEW MAX", None),
        ("FREQ:SLEW MAX", None),
        NO_ERROR,
    ]
    with expected_protocol(AC6900, pairs, limits=LIMITS) as ac:
        ac.ramp_voltage(207, v_per_s=100)
        ac.set_slew_rates(voltage_v_per_s=STEP, frequency_hz_per_s=STEP)


def test_a_single_phase_source_refuses_phases_and_angles() -> None:
    with expected_protocol(AC6900, []) as ac:
        assert ac.phases == 1
        with pytest.raises(RangeError, match="one phase"):
            ac.set_voltage(230, phase=2)
        with pytest.raises(RangeError, match="angle"):
            ac.set_phase_angle(2, 120)


def test_settings_read_back_the_setpoints_and_slews() -> None:
    pairs = [
        ("VOLT?", "+2.30000E+02"),
        ("FREQ?", "+5.00000E+01"),
        ("VOLT:SLEW?", "+9.90000E+37"),
        ("FREQ:SLEW?", "+1.00000E+00"),
        ("OUTP?", "1"),
    ]
    with expected_protocol(AC6900, pairs) as ac:
        settings = ac.settings()
    assert settings["voltage_slew_v_per_s"] == float("inf")
    assert settings["frequency_slew_hz_per_s"] == 1.0


def test_measure_is_one_acquisition_read_in_one_message() -> None:
    assert MEASURE_ALL == (
        "MEAS:VOLT:AC?;:FETC:CURR:AC?;:FETC:POW:AC?;:FETC:POW:AC:REAC?;"
        ":FETC:POW:AC:APP?;:FETC:POW:AC:PFAC?;:FETC:FREQ?"
    )
    reply = (
        "+2.30120E+02;+1.30430E+01;+3.00010E+03;-1.20000E+01;+3.00012E+03;+9.99990E-01;+5.00000E+01"
    )
    with expected_protocol(AC6900, [(MEASURE_ALL, reply)]) as ac:
        assert ac.measure() == AcReading(230.12, 13.043, 3000.1, -12.0, 3000.12, 0.99999, 50.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ac: ac.set_voltage(265), "voltage_v"),
        (lambda ac: ac.set_frequency(44.9), "frequency_hz"),
        (lambda ac: ac.set_frequency(float("inf")), "not a finite setpoint"),
        (lambda ac: ac.set_slew_rates(voltage_v_per_s=2000), "voltage_slew_v_per_s"),
    ],
)
def test_setpoints_beyond_the_bench_limits_are_refused_and_nothing_is_sent(
    call: object, message: str
) -> None:
    with (
        expected_protocol(AC6900, [], limits=LIMITS) as ac,
        pytest.raises(LimitError, match=message),
    ):
        call(ac)  # type: ignore[operator]


def test_safe_state_opens_the_output_then_zeroes_the_voltage() -> None:
    with expected_protocol(
        AC6900, [("OUTP OFF", None), ("VOLT 0", None), ("OUTP?", "0")] * 2
    ) as ac:
        ac.safe_state()
        ac.safe_state()


def test_safe_state_attempts_every_step_even_if_one_fails() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def write(self, message: str) -> None:
            self.sent.append(message)
            if message == "OUTP OFF":
                raise OSError("link hiccup")

        def query(self, message: str) -> str:
            raise AssertionError("no queries expected")

        def close(self) -> None: ...

    resource = Flaky()
    with pytest.raises(InstrumentConnectionLost, match="hiccup") as caught:
        AC6900(resource).safe_state()
    assert caught.value.command == "OUTP OFF"
    assert resource.sent == ["OUTP OFF", "VOLT 0"]
