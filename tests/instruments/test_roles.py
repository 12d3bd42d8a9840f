"""Role values, bench limits, *IDN? and error-queue parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instruments.roles import (
    Identity,
    InstrumentConnectionLost,
    InstrumentError,
    InstrumentFault,
    InstrumentTimeout,
    LimitError,
    Limits,
    Role,
    Waveform,
    parse_error,
)


def test_identity_parses_and_prints_ieee_4882_fields() -> None:
    identity = Identity.parse(" YOKOGAWA,WT5000,91N123456,F2.03\n")
    assert identity == Identity("YOKOGAWA", "WT5000", "91N123456", "F2.03")
    assert str(identity) == "YOKOGAWA,WT5000,91N123456,F2.03"


def test_identity_keeps_commas_inside_the_firmware_field() -> None:
    assert Identity.parse("Chroma ATE,61604,123456,1.00,1.01,1.02").firmware == "1.00,1.01,1.02"


def test_identity_with_too_few_fields_is_an_error() -> None:
    with pytest.raises(ValueError, match="maker"):
        Identity.parse("ACME,BOX")


def test_limits_from_the_bench_file_numbers_and_ranges() -> None:
    limits = Limits.from_mapping({"voltage_v": 500, "frequency_hz": [45, 65]})
    assert limits == Limits(voltage_v=(0.0, 500.0), frequency_hz=(45.0, 65.0))


@pytest.mark.parametrize(
    "values",
    [{"volts": 5}, {"voltage_v": "500 V"}, {"frequency_hz": [65, 45]}, {"power_w": True}],
)
def test_limits_reject_what_they_cannot_mean(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Limits.from_mapping(values)


def test_limit_check_refuses_with_the_quantity_value_and_bounds() -> None:
    limits = Limits(voltage_v=(0.0, 500.0))
    limits.check("voltage_v", 500.0)
    with pytest.raises(
        LimitError, match=r"voltage_v: 500.5 V is outside the bench limits \[0, 500\] V"
    ):
        limits.check("voltage_v", 500.5)
    with pytest.raises(LimitError, match="finite"):
        Limits().check("power_w", math.inf)
    Limits().check("power_w", 1e9)  # no limit configured: anything finite passes


def test_limit_error_is_a_value_error() -> None:
    assert issubclass(LimitError, ValueError)


def test_error_queue_replies_parse() -> None:
    assert parse_error('-113,"Undefined header"') == (-113, "Undefined header")
    assert parse_error('+0,"No error"') == (0, "No error")
    with pytest.raises(ValueError):
        parse_error("oops")


def test_instrument_error_lists_every_entry_and_names_the_command() -> None:
    error = InstrumentError(
        "EA PSB 10000", [(-222, "Data out of range"), (-203, "Command protected")], "VOLT 900"
    )
    assert str(error) == (
        'EA PSB 10000: reported -222,"Data out of range"; -203,"Command protected" '
        "after 'VOLT 900'"
    )


def test_every_fault_is_an_instrument_fault_naming_instrument_and_command() -> None:
    for fault in (
        InstrumentError("grid (AC6900)", [(-350, "Queue overflow")], "VOLT 230"),
        InstrumentTimeout("grid (AC6900)", "VOLT 230", 2000),
        InstrumentConnectionLost("grid (AC6900)", "VOLT 230", "reset by peer"),
    ):
        assert isinstance(fault, InstrumentFault)
        assert fault.instrument == "grid (AC6900)" and fault.command == "VOLT 230"
        assert str(fault).startswith("grid (AC6900): ") and str(fault).endswith("'VOLT 230'")


def test_role_names_are_the_bench_file_names() -> None:
    assert [role.value for role in Role] == [
        "power_analyzer",
        "dc_source",
        "grid_simulator",
        "ac_load",
        "scope",
        "switch_unit",
        "rlc_load",
        "control_pilot",
    ]


def test_the_old_single_module_import_path_still_works() -> None:
    import instruments.roles as roles

    for name in (
        "PowerAnalyzer", "DCSource", "GridSimulator", "ACLoad", "Role", "LimitError",
        "AcReading", "DcReading", "Identity", "InstrumentError", "Limits", "parse_error",
        "Oscilloscope", "SwitchUnit", "RlcLoadBank", "Waveform",
    ):  # fmt: skip
        assert hasattr(roles, name), name


def test_a_waveform_keeps_times_and_values_together() -> None:
    t = np.linspace(0.0, 0.1, 1001)
    waveform = Waveform("CHAN1", t, np.sin(t), "V")
    assert len(waveform) == 1001 and waveform.sample_rate_hz == pytest.approx(10_000.0)
    with pytest.raises(ValueError, match="equal"):
        Waveform("CHAN1", t, np.zeros(3), "V")
