"""Chroma 63800 driver against exact SCPI pairs (MODE, POW, PFAC, RES, RLC:*, LOAD, MEAS)."""

from __future__ import annotations

import pytest

from instruments.chroma.c63800 import C63800, COMMANDS
from instruments.roles import AcReading, Identity, LimitError, Limits, RangeError
from instruments.testing import expected_protocol

NO_ERROR = ("SYST:ERR?", '0,"No error"')


def test_identify_as_the_manual_shows() -> None:
    with expected_protocol(C63800, [("*IDN?", "Chroma, 63804, 0, 1.00")]) as load:
        assert load.identify() == Identity("Chroma", "63804", "0", "1.00")


def test_constant_power_at_unity_power_factor() -> None:
    pairs = [("MODE POW", None), ("POW 3000", None), ("PFAC 1", None), NO_ERROR]
    with expected_protocol(C63800, pairs) as load:
        load.set_power(3000)


def test_reactive_power_becomes_a_signed_power_factor() -> None:
    # P 3000 W, Q +1000 var (lagging): PF = 3000/hypot(3000, 1000) = 0.949; leading is negative.
    pairs = [
        ("MODE POW", None), ("POW 3000", None), ("PFAC 0.949", None), NO_ERROR,
        ("MODE POW", None), ("POW 3000", None), ("PFAC -0.949", None), NO_ERROR,
    ]  # fmt: skip
    with expected_protocol(C63800, pairs) as load:
        load.set_power(3000, 1000)
        load.set_power(3000, -1000)


def test_resistance_alone_uses_constant_resistance_mode() -> None:
    pairs = [("MODE RES", None), ("RES 17.63", None), NO_ERROR]
    with expected_protocol(C63800, pairs) as load:
        load.set_rlc(r_ohm=17.63)


def test_rlc_sends_microhenry_and_microfarad() -> None:
    pairs = [
        ("MODE RLC", None),
        ("RLC:RL 17.63", None),
        ("RLC:LS 5000", None),
        ("RLC:CAP 180", None),
        NO_ERROR,
    ]
    with expected_protocol(C63800, pairs) as load:
        load.set_rlc(r_ohm=17.63, l_h=5e-3, c_f=180e-6)


def test_inductance_without_capacitance_cannot_be_represented_and_sends_nothing() -> None:
    with expected_protocol(C63800, []) as load, pytest.raises(ValueError, match="needs C"):
        load.set_rlc(r_ohm=10, l_h=0.01)


def test_input_on_off_and_query() -> None:
    pairs = [("LOAD ON", None), NO_ERROR, ("LOAD?", "1"), ("LOAD OFF", None), NO_ERROR]
    with expected_protocol(C63800, pairs) as load:
        load.set_input(True)
        assert load.input_enabled()
        load.set_input(False)


def test_settings_read_mode_power_and_input_back() -> None:
    pairs = [("MODE?", "POW"), ("POW?", "3000.0000"), ("PFAC?", "0.9490"), ("LOAD?", "1")]
    with expected_protocol(C63800, pairs) as load:
        assert load.settings() == {
            "mode": "POW",
            "power_w": 3000.0,
            "power_factor": 0.949,
            "input_on": True,
        }


def test_power_beyond_the_63804_rating_is_refused_before_sending() -> None:
    with expected_protocol(C63800, []) as load, pytest.raises(RangeError, match="4500"):
        load.set_power(4600)


def test_measure_reads_every_field_in_one_message() -> None:
    reply = "229.9100;13.0500;2999.8000;12.5000;3000.1000;0.9999;50.0000"
    with expected_protocol(C63800, [(COMMANDS["measure"](), reply)]) as load:
        assert load.measure() == AcReading(229.91, 13.05, 2999.8, 12.5, 3000.1, 0.9999, 50.0)


@pytest.mark.parametrize(
    ("p", "q", "error", "message"),
    [
        (4600.0, 0.0, LimitError, "power_w"),
        (3000.0, 2500.0, LimitError, "reactive_power_var"),
        (3000.0, -2500.0, LimitError, "reactive_power_var"),
        (0.0, 100.0, ValueError, "P = 0"),
    ],
)
def test_power_beyond_limits_or_unrepresentable_sends_nothing(
    p: float, q: float, error: type[Exception], message: str
) -> None:
    limits = Limits(power_w=(0.0, 4500.0), reactive_power_var=(0.0, 2000.0))
    with expected_protocol(C63800, [], limits=limits) as load, pytest.raises(error, match=message):
        load.set_power(p, q)


def test_safe_state_switches_the_input_off_then_zeroes_the_power() -> None:
    pairs = [("LOAD OFF", None), ("POW 0", None), ("LOAD?", "0")] * 2
    with expected_protocol(C63800, pairs) as load:
        load.safe_state()
        load.safe_state()
