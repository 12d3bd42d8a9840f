"""Keysight DAQ970A data acquisition / switch unit as the rig's switch unit (S3, contactors).

Relays are addressed by channel lists: `ROUTe:CLOSe (@101,102)`, `ROUTe:OPEN (@101)`, and
`ROUTe:CLOSe? (@101,102)` answers one 1|0 per channel in list order (FACTS, shared with the
34980A). The bench file names the channels (`channels: {s3: 101, transfer_switch: 102}`);
channel numbers are slot x 100 + channel, slots 1 to 3. An actuator module (DAQM903A, 20 Form C
relays) drives contactor coils; which module sits in a slot is read with `SYSTem:CTYPe?` (?).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from instruments import options as opt
from instruments.commands import Cmd
from instruments.numbers import parse_boolean
from instruments.roles import (
    AnyResource,
    Instrument,
    InstrumentError,
    Limits,
    RangeError,
    SwitchUnit,
)

_ROUTE = "(?) FACTS: DAQ970A/34980A ROUTe subsystem as open drivers use it"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "close": Cmd("ROUT:CLOS (@{channels})", _ROUTE),
    "open": Cmd("ROUT:OPEN (@{channels})", _ROUTE),
    "closed_query": Cmd("ROUT:CLOS? (@{channels})", _ROUTE + "; one 1|0 per channel"),
    "card_type": Cmd("SYST:CTYP? {slot}", "(?) module identity per slot"),
}


def channel_list(channels: Iterable[int]) -> str:
    return ",".join(str(channel) for channel in channels)


class DAQ970A(SwitchUnit):
    maker = "Keysight Technologies"
    model = "DAQ970A"
    SLOTS: ClassVar[range] = range(1, 4)
    #: (?) highest channel number on a module (the DAQM901A multiplexer has 20 + 2 current).
    CHANNELS_PER_SLOT: ClassVar[int] = 40

    def __init__(
        self,
        resource: AnyResource,
        *,
        limits: Limits | None = None,
        name: str | None = None,
        channels: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        self._channels = dict(channels or {})
        for label, channel in self._channels.items():
            slot, number = divmod(channel, 100)
            if slot not in self.SLOTS or not 1 <= number <= self.CHANNELS_PER_SLOT:
                raise RangeError(
                    f"{self.model}: channel {channel} ({label}) is not slot 1..3 x 100 + 1..40"
                )

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Option `channels`: {name: channel number}."""
        unknown = sorted(set(options) - {"channels"})
        if unknown:
            raise ValueError(f"DAQ970A options: unknown {unknown}; known: ['channels']")
        channels = opt.names_to_numbers("channels", options.get("channels", {}))
        return cls(resource, limits=limits, name=name, channels=channels)

    @property
    def channels(self) -> Mapping[str, int]:
        return dict(self._channels)

    def close_channel(self, name: str) -> None:
        self.write(COMMANDS["close"](channels=self._channel(name)))
        self.check_errors()

    def open_channel(self, name: str) -> None:
        self.write(COMMANDS["open"](channels=self._channel(name)))
        self.check_errors()

    def channel_closed(self, name: str) -> bool:
        return parse_boolean(self.query(COMMANDS["closed_query"](channels=self._channel(name))))

    def _states(self) -> dict[str, bool]:
        names = sorted(self._channels, key=self._channels.__getitem__)
        if not names:
            return {}
        reply = self.query(
            COMMANDS["closed_query"](channels=channel_list(self._channels[n] for n in names))
        )
        states = [parse_boolean(field) for field in reply.split(",")]
        if len(states) != len(names):
            raise ValueError(f"{self.label}: {len(states)} states for {len(names)} channels")
        return dict(zip(names, states, strict=True))

    def open_all(self) -> None:
        if self._channels:
            listed = channel_list(sorted(self._channels.values()))
            self.write(COMMANDS["open"](channels=listed))
            self.check_errors()

    def settings(self) -> Mapping[str, object]:
        slots = sorted({channel // 100 for channel in self._channels.values()})
        return {
            "channels": dict(self._channels),
            "closed": self._states(),
            "modules": {slot: self.query(COMMANDS["card_type"](slot=slot)) for slot in slots},
        }

    def safe_state(self) -> None:
        """Open every named channel (S3 open, contactors de-energized), then read back that
        none is closed."""
        if not self._channels:
            return
        listed = channel_list(sorted(self._channels.values()))
        self._send_all([COMMANDS["open"](channels=listed)])
        still = [name for name, closed in self._states().items() if closed]
        if still:
            raise InstrumentError(self.label, [(0, f"still closed: {', '.join(still)}")])
