"""Role: a switch unit opening and closing named channels (S3, the transfer switch, contactors)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

from instruments.roles.base import Instrument, Role


class SwitchUnit(Instrument):
    """Relays by name: the bench file maps names ("s3", "transfer_switch", "k1") to channels.

    Safe state opens every named channel: an open S3 separates the island from the grid source
    and an open contactor de-energizes what it feeds.
    """

    role = Role.SWITCH_UNIT

    @property
    @abstractmethod
    def channels(self) -> Mapping[str, int]:
        """Name -> channel number (slot * 100 + channel on Keysight units)."""

    @abstractmethod
    def close_channel(self, name: str) -> None: ...

    @abstractmethod
    def open_channel(self, name: str) -> None: ...

    @abstractmethod
    def channel_closed(self, name: str) -> bool: ...

    @abstractmethod
    def open_all(self) -> None:
        """Open every named channel."""

    def _channel(self, name: str) -> int:
        try:
            return self.channels[name]
        except KeyError:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ValueError(f"{self.label}: no channel named {name!r}; known: {known}") from None
