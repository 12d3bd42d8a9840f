"""WT5000 driver against exact SCPI pairs (IM WT5000-17EN, NUMeric group; :STATus:ERRor?)."""

from __future__ import annotations

import math

import pytest

from instruments.roles import AcReading, DcReading, Identity, InstrumentError
from instruments.testing import expected_protocol
from instruments.yokogawa.wt5000 import WT5000

NO_ERROR = (":STATus:ERRor?", '0,"No error"')

#: Element 1 AC ("grid"), element 4 DC ("evse_dc"): 7 + 3 numeric items.
CONFIGURE_GRID_AND_DC = [
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
    NO_ERROR,
]


def test_identify_parses_the_four_idn_fields() -> None:
    with expected_protocol(WT5000, [("*IDN?", "YOKOGAWA,WT5000,C2VA12345,F2.03")]) as wt:
        assert wt.identify() == Identity("YOKOGAWA", "WT5000", "C2VA12345", "F2.03")


def test_configure_assigns_seven_ac_items_and_three_dc_items_in_element_order() -> None:
    with expected_protocol(WT5000, CONFIGURE_GRID_AND_DC) as wt:
        wt.configure({4: "evse_dc", 1: "grid"}, dc_elements=[4])


def test_read_returns_one_reading_per_point_from_one_value_query() -> None:
    reply = (
        "229.87E+00,30.456E+00,6.9981E+03,-12.345E+00,7.0012E+03,999.56E-03,50.001E+00,"
        "401.23E+00,-17.442E+00,-6.9981E+03"
    )
    pairs = [*CONFIGURE_GRID_AND_DC, (":NUMeric:NORMal:VALue?", reply)]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        readings = wt.read()
    assert readings["grid"] == AcReading(229.87, 30.456, 6998.1, -12.345, 7001.2, 0.99956, 50.001)
    assert readings["evse_dc"] == DcReading(401.23, -17.442, -6998.1)


def test_missing_data_reads_nan_and_overrange_reads_inf() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC,
        (
            ":NUMeric:NORMal:VALue?",
            "0.0E+00,0.0E+00,0.0E+00,0.0E+00,0.0E+00,NAN,NAN,INF,0.0E+00,0.0E+00",
        ),
    ]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        readings = wt.read()
    grid = readings["grid"]
    assert isinstance(grid, AcReading)
    assert math.isnan(grid.pf) and math.isnan(grid.f_hz)
    assert readings["evse_dc"].v == math.inf  # type: ignore[union-attr]


def test_configure_raises_the_errors_the_analyzer_queued() -> None:
    pairs = [
        *CONFIGURE_GRID_AND_DC[:-1],
        (":STATus:ERRor?", '-224,"Illegal parameter value"'),
        (":STATus:ERRor?", '0,"No error"'),
    ]
    with expected_protocol(WT5000, pairs) as wt, pytest.raises(InstrumentError, match="-224"):
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])


def test_element_beyond_seven_is_refused_before_anything_is_sent() -> None:
    with expected_protocol(WT5000, []) as wt, pytest.raises(ValueError, match=r"1\.\.7"):
        wt.configure({8: "grid"})


def test_read_before_configure_sends_nothing() -> None:
    with expected_protocol(WT5000, []) as wt, pytest.raises(RuntimeError, match="configure"):
        wt.read()


def test_value_count_mismatch_is_an_error_not_a_shifted_reading() -> None:
    pairs = [*CONFIGURE_GRID_AND_DC, (":NUMeric:NORMal:VALue?", "1,2,3")]
    with expected_protocol(WT5000, pairs) as wt:
        wt.configure({1: "grid", 4: "evse_dc"}, dc_elements=[4])
        with pytest.raises(ValueError, match="3 values, 10 configured"):
            wt.read()


def test_safe_state_sends_nothing_because_an_analyzer_has_no_output() -> None:
    with expected_protocol(WT5000, []) as wt:
        wt.safe_state()
        wt.safe_state()


def test_options_from_the_bench_file_configure_the_elements() -> None:
    options = {"elements": {"1": "grid", "4": "evse_dc"}, "dc_elements": [4]}
    with expected_protocol(WT5000, CONFIGURE_GRID_AND_DC, options=options):
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
    ],
)
def test_bad_bench_options_are_refused_before_anything_is_sent(options: dict[str, object]) -> None:
    with pytest.raises(ValueError), expected_protocol(WT5000, [], options=options):
        pass
