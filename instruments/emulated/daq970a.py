"""Emulated Keysight DAQ970A switch unit: named relay channels that operate the bench.

`ROUT:CLOS (@101,102)` / `ROUT:OPEN (@101:103)` operate channels, `ROUT:CLOS? (@...)` and
`ROUT:OPEN? (@...)` answer one 1|0 per channel in list order. The `channels` option names
channels ({s3: 101, transfer_switch: 102, k1: 103}); the `drives` option says what a named
channel operates on the emulated bench: `s3` (switch S3 between the grid source and the site,
through the SiteWiring) or `transfer_switch` (the site's transfer switch in the World); by
default a channel named `s3` or `transfer_switch` drives that. Other channels only keep their
state. Closing a channel energizes its relay, which closes the contactor it drives. `*RST`
opens every channel (?), which opens S3: the grid is gone for the site.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin
from instruments.options import index, names_to_numbers

DRIVES = ("s3", "transfer_switch")
_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")


def parse_channel_list(params: Params) -> list[int]:
    """`(@101,102:104)` from the unit's (comma-split) parameters."""
    text = ",".join(params.args).strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ScpiError(ErrorCode.DATA_TYPE_ERROR, text)
    channels: list[int] = []
    for part in text[2:-1].split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, part)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first or last - first > 1000:
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, part)
        channels.extend(range(first, last + 1))
        if len(channels) > 1000:
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, "channel list too long")
    return channels


class DAQ970ATwin(Twin):
    maker = "Keysight Technologies"
    default_model = "DAQ970A"
    firmware = "A.02.02-01.00-02.01-00.02-03-02"  # (?) four firmware fields, as the unit lists
    option_names = frozenset({"channels", "drives", "modules"})
    SLOTS = range(1, 4)
    CHANNELS_PER_SLOT = 40

    def configure(self) -> None:
        self.names = names_to_numbers("channels", self.options.get("channels", {}))
        drives_raw = self.options.get("drives")
        if drives_raw is None:
            self.drives = {name: name for name in self.names if name in DRIVES}
        elif isinstance(drives_raw, Mapping):
            self.drives = {str(k): str(v) for k, v in drives_raw.items()}
        else:
            raise ValueError(
                f"option drives: expected {{channel name: s3|transfer_switch}}, got {drives_raw!r}"
            )
        for name, target in self.drives.items():
            if name not in self.names or target not in DRIVES:
                raise ValueError(f"option drives: {name!r} -> {target!r} (known targets: {DRIVES})")
        modules = self.options.get("modules", {})
        if not isinstance(modules, Mapping):
            raise ValueError("option modules: expected {slot: module}")
        self.modules = {slot: "DAQM903A" for slot in self.SLOTS}  # (?) actuator modules
        self.modules.update({index("modules", k): str(v) for k, v in modules.items()})
        self.closed: set[int] = set()
        # The relays start as the bench stands: S3 and the transfer switch closed if so.
        for name, target in self.drives.items():
            now_closed = (
                self.site.s3_closed if target == "s3" else self.world.transfer_switch_closed
            )
            if now_closed:
                self.closed.add(self.names[name])

    def reset(self) -> None:
        for channel in sorted(self.closed):
            self._operate(channel, False)

    def state(self) -> dict[str, bool | float | str]:
        by_number = {number: name for name, number in self.names.items()}
        return {
            by_number.get(ch, str(ch)): ch in self.closed
            for ch in sorted(set(by_number) | self.closed)
        }

    def commands(self) -> Sequence[Command]:
        return [
            Command("ROUTe:CLOSe", write=self._close, read=self._closed_query),
            Command("ROUTe:OPEN", write=self._open, read=self._open_query),
            Command("ROUTe:OPEN:ALL", write=self._open_all),
            Command("SYSTem:CTYPe", read=self._card_type),
        ]

    def _valid(self, channels: list[int]) -> list[int]:
        for channel in channels:
            slot, number = divmod(channel, 100)
            if slot not in self.SLOTS or not 1 <= number <= self.CHANNELS_PER_SLOT:
                raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, str(channel))
        return channels

    def _operate(self, channel: int, close: bool) -> None:
        if close:
            self.closed.add(channel)
        else:
            self.closed.discard(channel)
        by_number = {number: name for name, number in self.names.items()}
        name = by_number.get(channel)
        target = self.drives.get(name) if name is not None else None
        if target == "s3":
            self.site.set_s3(close)
        elif target == "transfer_switch":
            self.world.set_transfer_switch(close)

    def _close(self, params: Params) -> None:
        for channel in self._valid(parse_channel_list(params)):
            self._operate(channel, True)

    def _open(self, params: Params) -> None:
        for channel in self._valid(parse_channel_list(params)):
            self._operate(channel, False)

    def _open_all(self, params: Params) -> None:
        self.reset()

    def _closed_query(self, params: Params) -> str:
        channels = self._valid(parse_channel_list(params))
        return ",".join("1" if channel in self.closed else "0" for channel in channels)

    def _open_query(self, params: Params) -> str:
        channels = self._valid(parse_channel_list(params))
        return ",".join("0" if channel in self.closed else "1" for channel in channels)

    def _card_type(self, params: Params) -> str:
        params.expect(1)
        slot = params.integer(0, low=1, high=3)
        return f"Keysight Technologies,{self.modules[slot]},0,1.0"
