"""The inventory: one row per instrument, errors and calibration flags instead of a crash."""

from __future__ import annotations

import datetime as dt

import pytest

from instruments.ea.psb10000 import PSB10000
from instruments.inventory import InventoryEntry, inventory, parse_due
from instruments.keysight.ac6900 import AC6900
from instruments.roles import Identity, Role
from instruments.testing import TIMEOUT, FakeResource


def test_rows_with_identity_calibration_and_a_serial_mismatch() -> None:
    battery = PSB10000(FakeResource([("*IDN?", "EA Elektro-Automatik,PSB 10750-120,211,V3.02")]))
    grid = AC6900(FakeResource([("*IDN?", TIMEOUT)]), name="grid")
    rows = inventory(
        [
            InventoryEntry("battery", battery, "ea_psb10000", "TCPIP::192.0.2.21::5025::SOCKET",
                           dt.date(2026, 1, 31), serial="212"),
            InventoryEntry("grid", grid, "keysight_ac6900", "USB0::1::2::3::INSTR"),
        ],
        today=dt.date(2026, 2, 1),
    )  # fmt: skip
    first, second = rows
    assert first.role is Role.DC_SOURCE and first.idn == Identity(
        "EA Elektro-Automatik", "PSB 10750-120", "211", "V3.02"
    )
    assert first.calibration_overdue and first.serial_mismatch and first.error is None
    assert second.idn is None and second.error is not None and "no answer" in second.error
    assert not second.calibration_overdue  # no date given: nothing to flag
    record = first.as_record()
    assert record["serial"] == "211" and record["calibration_due"] == "2026-01-31"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (dt.date(2027, 3, 1), dt.date(2027, 3, 1)),
        ("2027-03-01", dt.date(2027, 3, 1)),
        (dt.datetime(2027, 3, 1, 12, 0), dt.date(2027, 3, 1)),
    ],
)
def test_calibration_dates_from_the_bench_file(value: object, expected: dt.date | None) -> None:
    assert parse_due(value) == expected


@pytest.mark.parametrize("value", ["next year", 2027, "2027-13-01"])
def test_what_is_not_a_date_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="calibration_due"):
        parse_due(value)
