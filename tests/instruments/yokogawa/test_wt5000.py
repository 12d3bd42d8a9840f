"""WT5000 driver against exact SCPI pairs (NUMeric group, :RATE, the end-of-update wait)."""

from __future__ import annotations

import math

import pytest

from instruments.roles import (
    AcReading,
    DcReading,
    Identity,
    InstrumentError,
    InstrumentTimeout,
    RangeError,
)
from instruments.testing import TIMEOUT, expected_protocol
from instruments.yokogawa.wt5000 import WT5000
from instruments.yokogawa.wt_series import rate_text

NO_ERROR = (":STATus:ERRor?", '0,"No error"')

#: Element 1 AC ("grid"), element 4 DC ("evse_dc"): 7 + 3 numeric items, 50 ms updates,
#: both elements auto-ranging with the line filter off.
CONFIGURE_GRID_AND_DC = [
    (":COMMunicate:HEADer OFF", None),
    (":NUMeric:FORMat ASCII", None),
    (":NUMeric:NORMal:NUMber 10", None),
    (":NUMeric:NORMal:ITEM1 URMS,1", None),
    (":NUMeric:NORMal:ITEM2 IRMS,1", None),
    (":NUMeric:NORMal:ITEM3 P,1", None),
    (":NUMeric:NORMal:ITEM4 Q,1", None),
    (":NUMeric:NORMal:ITEM5 S,1", None),
    (":NUMeric:NORMal:ITEM6 LAMBDA,1", None),
    (":NUMeric:NORMal:ITEM7 FU,1", None),
    (":NUMeric:NORMal:ITEM8 UDC,4", None),
    (":NUMeric:NORMal:ITEM9 IDC,4", None),
    (":NUMeric:NORMal:ITEM10 P,4", None),
    (":RATE 50MS", None),
    (":INPut:VOLTage:AUTO:ELEMent1 ON", None),
    (":INPut:CURRent:AUTO:ELEMent1 ON", None),
    (":INPut:FILTer:LINE:ELEMent1 OFF", None),
    (":INPut:VOLTage:AUTO:ELEMent4 ON", None),
    (":INPut:CURRent:AUTO:ELEMent4 ON", None),
    (":INPut:FILTer:LINE:ELEMent4 OFF", None),
    (":STATus:FILTer1 FALL", None),
    (":STATus:EESR?", "1"),
    NO_ERROR,
]
VALUES = (
    "229.87E+00,30.456E+00,6.9981E+03,-12.345E+00,7.0012E+03,999.56E-03,50.001E+00,"
    "401.23E+00,-17.442E+00,-6.9981E+03"
)
#: One fresh reading in one message: wait for the end of an update, read it, clear the event.
READ_MESSAGE = ":COMMunicate:WAIT 1;:NUMeric:NORMal:VALue?;:STATus:EESR?"
READ = [(READ_MESSAGE, f"{VALUES};1")]


def test_identify_parses_the_four_idn_fields() -> None:
    with expected_protocol(WT5000, [("*IDN?", "YOKOGAWA,WT5000,C2VA12345,F2.03")]) as wt:
        assert wt.identify() == Identity("YOKOGAWA", "WT5000", "C2VA12345", "F2.03")


def test_configure_assigns_items_sets_the_update_rate_and_arms_the_update_event() -> None:
    with expected_protocol(WT5000, CONFIGURE_GRID_AND_DC) as wt:
        wt.configure({4: "evse_dc", 1: "grid"}, dc_elements=[4])
        assert wt.update_interval_s == 0.05


def test_fixed_ranges_and_a_line_filter_are_sent_per_element() -> None:
    pairs = [
        (":COMMunicate:HEADer OFF", None),
        (":NUMeric:FORMat ASCII", None),
        (":NUMeric:NORMal:NUMber 7", None),
        *[
            (f":NUMeric:NORMal:ITEM{k} {f},2", None)
            for k, f in enumerate(["URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU"], 1)
        ],
        (":RATE 100MS", None),
        (":INPut:VOLTage:AUTO:ELEMent2 OFF", None),
        (":INPut:VOLTage:RANGe:ELEMent2 300V", None),
        (":INPut:CURRent:AUTO:ELEMent2 OFF", None),
        (":INPut:CURRent:RANGe:ELEMent2 20A", None),
        (":INPut:FILTer:LINE:ELEMent2 1000HZ", None),
        (":STATus:FILTer1 FALL", None),
        (":STATus:EESR?", "0"),
        NO_ERROR,
    ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure(
            {2: "evse_ac"},
            update_interval_s=0.1,
            voltage_ranges={2: 300.0},
            current_ranges={2: 20.0},
            line_filter_hz=1000.0,
        )


def test_read_waits_for_a_fresh_update_then_clears_the_event() -> None:
    pairs = [*CONFIGURE_GRID_AND_DC, *READ, *READ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        readings = wt.read()
        wt.read()  # every read waits again: never the same update twice
    assert readings["grid"] == AcReading(229.87, 30.456, 6998.1, -12.345, 7001.2, 0.99956, 50.001)
    assert readings["evse_dc"] == DcReading(401.23, -17.442, -6998.1)


def test_missing_data_reads_nan_and_overrange_reads_inf() -> None:
    nan_values = "0.0E+00,0.0E+00,0.0E+00,0.0E+00,0.0E+00,NAN,NAN,INF,0.0E+00,0.0E+00"
    pairs = [
        *CONFIGURE_GRID_AND_DC,
        (READ_MESSAGE, f"{nan_values};1"),
    ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        readings = wt.read()
    grid = readings["grid"]
    assert isinstance(grid, AcReading)
    assert math.isnan(grid.pf) and math.isnan(grid.f_hz)
    assert readings["evse_dc"].v == math.inf  # type: ignore[union-attr]


def test_a_read_that_gets_no_answer_names_the_analyzer_and_the_query() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC,
        (READ_MESSAGE, TIMEOUT),
    ]
    with expected_protocol(WT5000, pairs, name="analyzer") as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        with pytest.raises(InstrumentTimeout) as caught:
            wt.read()
    assert caught.value.instrument == "analyzer (YOKOGAWA WT5000)"
    assert caught.value.command == READ_MESSAGE


def test_configure_raises_the_errors_the_analyzer_queued_naming_what_was_sent() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC[:-1],
        (":STATus:ERRor?", '-224,"Illegal parameter value"'),
        (":STATus:ERRor?", '0,"No error"'),
    ]
    with expected_protocol(WT5000, pairs) as wt, pytest.raises(InstrumentError) as caught:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
    assert caught.value.errors == ((-224, "Illegal parameter value"),)
    assert caught.value.command is not None and ":STATus:EESR?" in caught.value.command


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"points": {8: "grid"}}, ValueError, r"1\.\.7"),
        ({"points": {1: "grid"}, "update_interval_s": 0.03}, RangeError, "update interval"),
        ({"points": {1: "grid"}, "voltage_ranges": {1: 400.0}}, RangeError, "voltage range"),
        ({"points": {1: "grid"}, "current_ranges": {2: 5.0}}, ValueError, "unwired element"),
        ({"points": {1: "grid"}, "line_filter_hz": 123.0}, RangeError, "line filter"),
        ({"points": {}}, ValueError, "no elements"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with expected_protocol(WT5000, []) as wt, pytest.raises(error, match=match):
        wt.configure(**kwargs)  # type: ignore[arg-type]


def test_read_before_configure_sends_nothing() -> None:
    with expected_protocol(WT5000, []) as wt, pytest.raises(RuntimeError, match="configure"):
        wt.read()


def test_value_count_mismatch_is_an_error_not_a_shifted_reading() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC,
        (READ_MESSAGE, "1,2,3;1"),
    ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        with pytest.raises(ValueError, match="3 values, 10 configured"):
            wt.read()


def test_settings_report_rate_wiring_ranges_and_filters_as_the_analyzer_says() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC,
        (":RATE?", "50.0E-03"),
        (":INPut:WIRing?", "P1W2,P1W2,P1W2,P1W2"),
        (":INPut:VOLTage:AUTO:ELEMent1?", "1"),
        (":INPut:VOLTage:RANGe:ELEMent1?", "300.0E+00"),
        (":INPut:CURRent:AUTO:ELEMent1?", "0"),
        (":INPut:CURRent:RANGe:ELEMent1?", "20.0E+00"),
        (":INPut:FILTer:LINE:ELEMent1?", "OFF"),
        (":INPut:VOLTage:AUTO:ELEMent4?", "0"),
        (":INPut:VOLTage:RANGe:ELEMent4?", "600.0E+00"),
        (":INPut:CURRent:AUTO:ELEMent4?", "1"),
        (":INPut:CURRent:RANGe:ELEMent4?", "30.0E+00"),
        (":INPut:FILTer:LINE:ELEMent4?", "OFF"),
    ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        settings = wt.settings()
    assert settings["update_interval_s"] == 0.05
    assert settings["element1"] == {
        "point": "grid",
        "voltage_range_v": 300.0,
        "voltage_auto": True,
        "current_range_a": 20.0,
        "current_auto": False,
        "line_filter": "OFF",
    }


def test_safe_state_sends_nothing_because_an_analyzer_has_no_output() -> None:
    with expected_protocol(WT5000, []) as wt:
        wt.safe_state()
        wt.safe_state()


def test_options_from_the_bench_file_configure_the_elements() -> None:
    options = {"elements": {"1": "grid", "4": "evse_dc"}, "dc_elements": [4]}
    with expected_protocol(WT5000, CONFIGURE_GRID_AND_DC, options=options):
        pass


def test_the_bench_file_update_interval_and_ranges_with_units() -> None:
    options = {
        "elements": {2: "evse_ac"},
        "update_interval": "100 ms",
        "voltage_range": "300 V",
        "current_range": {2: "20 A"},
        "line_filter": "1 kHz",
    }
    pairs = [
        (":COMMunicate:HEADer OFF", None),
        (":NUMeric:FORMat ASCII", None),
        (":NUMeric:NORMal:NUMber 7", None),
        *[
            (f":NUMeric:NORMal:ITEM{k} {f},2", None)
            for k, f in enumerate(["URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU"], 1)
        ],
        (":RATE 100MS", None),
        (":INPut:VOLTage:AUTO:ELEMent2 OFF", None),
        (":INPut:VOLTage:RANGe:ELEMent2 300V", None),
        (":INPut:CURRent:AUTO:ELEMent2 OFF", None),
        (":INPut:CURRent:RANGe:ELEMent2 20A", None),
        (":INPut:FILTer:LINE:ELEMent2 1000HZ", None),
        (":STATus:FILTer1 FALL", None),
        (":STATus:EESR?", "0"),
        NO_ERROR,
    ]
    with expected_protocol(WT5000, pairs, options=options):
        pass


@pytest.mark.parametrize(
    "options",
    [
        {"elements": {"one": "grid"}},
        {"elements": {1: 5}},
        {"elements": ["grid"]},
        {"elements": {1: "grid"}, "dc_elements": "1"},
        {"elements": {1: "grid"}, "dc_elements": [2]},
        {"wiring": {1: "grid"}},
        {"elements": {1: "grid"}, "update_interval": "fast"},
        {"update_interval": "50 ms"},
    ],
)
def test_bad_bench_options_are_refused_before_anything_is_sent(options: dict[str, object]) -> None:
    with pytest.raises(ValueError), expected_protocol(WT5000, [], options=options):
        pass


def test_rate_text_uses_yokogawa_time_units() -> None:
    assert [rate_text(s) for s in (0.01, 0.05, 0.5, 1.0, 20.0)] == [
        "10MS",
        "50MS",
        "500MS",
        "1S",
        "20S",
    ]
