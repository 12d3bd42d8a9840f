"""Role: a power analyzer reading several measurement points at once (one element per point)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import AcReading, DcReading


class PowerAnalyzer(Instrument):
    """Reads several measurement points at once (one element per point)."""

    role = Role.POWER_ANALYZER

    @abstractmethod
    def configure(self, points: Mapping[int, str]) -> None:
        """Wire element numbers to point names ('grid', 'evse_ac', 'home', 'evse_dc')."""

    @abstractmethod
    def read(self) -> Mapping[str, AcReading | DcReading]:
        """One coherent reading of every configured point, from an update that completed after
        the previous read (never the same update twice)."""
