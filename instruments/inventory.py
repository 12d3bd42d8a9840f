"""The bench's instrument inventory: who answers, as what, and whether it is due for calibration.

`inventory(entries, today=...)` asks every open driver for its *IDN? and returns one row per
instrument (role, model, IDN, address, calibration due), the way a lab auditor lists a bench
before a run (QCoDeS stations snapshot the same). An instrument that does not answer gets a row
with the error instead of ending the listing; a serial that differs from the bench file's, and a
calibration date in the past, are flagged in the row. `today` is given by the caller: nothing
here reads the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from instruments.roles import Identity, Instrument, InstrumentFault, Role


@dataclass(frozen=True)
class InventoryEntry:
    """One open instrument as the bench file describes it."""

    name: str
    driver: Instrument
    model: str
    address: str
    calibration_due: dt.date | None = None
    serial: str | None = None


@dataclass(frozen=True)
class InventoryRow:
    name: str
    role: Role
    model: str
    address: str
    idn: Identity | None
    calibration_due: dt.date | None
    #: Calibration date in the past (False when the bench gives no date).
    calibration_overdue: bool
    #: The bench file names a serial and the instrument reports another one.
    serial_mismatch: bool
    error: str | None = None

    def as_record(self) -> dict[str, object]:
        """Plain values for record.json and reports."""
        return {
            "name": self.name,
            "role": self.role.value,
            "model": self.model,
            "address": self.address,
            "idn": None if self.idn is None else str(self.idn),
            "serial": None if self.idn is None else self.idn.serial,
            "firmware": None if self.idn is None else self.idn.firmware,
            "calibration_due": None
            if self.calibration_due is None
            else self.calibration_due.isoformat(),
            "calibration_overdue": self.calibration_overdue,
            "serial_mismatch": self.serial_mismatch,
            "error": self.error,
        }


def parse_due(value: object) -> dt.date | None:
    """A bench file's `calibration_due`: a YAML date, an ISO date string, or nothing."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"calibration_due {value!r} is not an ISO date (2027-03-01)") from None
    raise ValueError(f"calibration_due {value!r} is not a date")


def inventory(entries: Iterable[InventoryEntry], *, today: dt.date) -> list[InventoryRow]:
    """Identify every instrument; one row each, in the order given."""
    rows: list[InventoryRow] = []
    for entry in entries:
        idn: Identity | None = None
        error: str | None = None
        try:
            idn = entry.driver.identify()
        except (InstrumentFault, ValueError) as failure:
            error = str(failure)
        due = entry.calibration_due
        rows.append(
            InventoryRow(
                name=entry.name,
                role=entry.driver.role,
                model=entry.model,
                address=entry.address,
                idn=idn,
                calibration_due=due,
                calibration_overdue=due is not None and due < today,
                serial_mismatch=(
                    idn is not None and entry.serial is not None and idn.serial != entry.serial
                ),
                error=error,
            )
        )
    return rows
