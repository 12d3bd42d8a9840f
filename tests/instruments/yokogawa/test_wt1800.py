"""WT1800 driver: the WT command set with the WT1800's elements, intervals and ranges."""

from __future__ import annotations

import pytest

from instruments.roles import AcReading, RangeError
from instruments.testing import expected_protocol
from instruments.yokogawa.wt1800 import WT1800

ITEMS = ["URMS", "IRMS", "P", "Q", "S", "LAMBDA", "FU"]


def configure_element6(rate: str, current: list[tuple[str, None]]) -> list[tuple[str, str | None]]:
    return [
        (":COMMunicate:HEADer OFF", None),
        (":NUMeric:FORMat ASCII", None),
        (":NUMeric:NORMal:NUMber 7", None),
        *[(f":NUMeric:NORMal:ITEM{k} {f},6", None) for k, f in enumerate(ITEMS, 1)],
        (f":RATE {rate}", None),
        (":INPut:VOLTage:AUTO:ELEMent6 ON", None),
        *current,
        (":INPut:FILTer:LINE:ELEMent6 OFF", None),
        (":STATus:FILTer1 FALL", None),
        (":STATus:EESR?", "0"),
        (":STATus:ERRor?", '0,"No error"'),
    ]


def test_element_six_with_a_fixed_50_a_range_and_one_fresh_reading() -> None:
    current = [
        (":INPut:CURRent:AUTO:ELEMent6 OFF", None),
        (":INPut:CURRent:RANGe:ELEMent6 50A", None),
    ]
    pairs = [
        *configure_element6("200MS", current),
        (
            ":COMMunicate:WAIT 1;:NUMeric:NORMal:VALue?;:STATus:EESR?",
            "230.0E+00,10.0E+00,2.3E+03,0.0E+00,2.3E+03,1.0E+00,50.0E+00;1",
        ),
    ]
    with expected_protocol(WT1800, pairs) as wt:
        wt.configure({6: "home"}, update_interval_s=0.2, current_ranges={6: 50.0})
        assert wt.read()["home"] == AcReading(230.0, 10.0, 2300.0, 0.0, 2300.0, 1.0, 50.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points": {7: "grid"}}, r"1\.\.6"),
        ({"points": {1: "grid"}, "update_interval_s": 0.01}, "update interval"),
        ({"points": {1: "grid"}, "current_ranges": {1: 30.0}}, "current range"),
    ],
)
def test_what_the_wt5000_can_and_the_wt1800_cannot_is_refused(
    kwargs: dict[str, object], match: str
) -> None:
    with expected_protocol(WT1800, []) as wt, pytest.raises((ValueError, RangeError), match=match):
        wt.configure(**kwargs)  # type: ignore[arg-type]
