"""Keysight InfiniiVision oscilloscopes (DSOX3000T, MSOX4000 ...) as the rig's scope.

Vertical `:CHANnel<n>:SCALe|OFFSet|PROBe|UNITs|COUPling|DISPlay`, horizontal `:TIMebase:SCALe`
and `:TIMebase:POSition` (time from the trigger to the screen centre, `:TIMebase:REFerence
CENTer`), edge trigger `:TRIGger:EDGE:SOURce|LEVel|SLOPe` in `:TRIGger:SWEep NORMal`, a single
acquisition `:SINGle` (or `:DIGitize`, which returns when the acquisition is done), a software
trigger `:TRIGger:FORCe`; the Run bit (bit 3) of `:OPERegister:CONDition?` is 0 once a single
acquisition has completed. Waveforms: `:WAVeform:SOURce`, `:WAVeform:FORMat WORD` signed,
LSB first, `:WAVeform:POINts:MODE RAW` for the full record, `:WAVeform:PREamble?` (format, type,
points, count, xincrement, xorigin, xreference, yincrement, yorigin, yreference) and
`:WAVeform:DATA?` as an IEEE 488.2 definite-length block; value = (code - yreference) x
yincrement + yorigin, time = (index - xreference) x xincrement + xorigin (FACTS: open drivers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from instruments.commands import Cmd
from instruments.numbers import format_nrf, parse_number
from instruments.roles import (
    AnyResource,
    Coupling,
    Limits,
    ModelRange,
    Oscilloscope,
    RangeError,
    TriggerSlope,
    Waveform,
)

_OPEN = "(?) InfiniiVision programmer's guide as open drivers use it (FACTS)"

#: Every command the driver sends. (?) = not confirmed against the manual text.
COMMANDS: Mapping[str, Cmd] = {
    "channel_display": Cmd(":CHANnel{n}:DISPlay {state}", _OPEN),
    "channel_scale": Cmd(":CHANnel{n}:SCALe {per_div}", _OPEN),
    "channel_offset": Cmd(":CHANnel{n}:OFFSet {offset}", _OPEN),
    "channel_probe": Cmd(":CHANnel{n}:PROBe {ratio}", _OPEN),
    "channel_units": Cmd(":CHANnel{n}:UNITs {unit}", _OPEN),
    "channel_coupling": Cmd(":CHANnel{n}:COUPling {coupling}", _OPEN),
    "channel_scale_query": Cmd(":CHANnel{n}:SCALe?", _OPEN),
    "channel_offset_query": Cmd(":CHANnel{n}:OFFSet?", _OPEN),
    "channel_probe_query": Cmd(":CHANnel{n}:PROBe?", _OPEN),
    "channel_units_query": Cmd(":CHANnel{n}:UNITs?", _OPEN),
    "timebase_reference": Cmd(":TIMebase:REFerence CENTer", _OPEN),
    "timebase_scale": Cmd(":TIMebase:SCALe {seconds}", _OPEN),
    "timebase_position": Cmd(":TIMebase:POSition {seconds}", _OPEN),
    "timebase_scale_query": Cmd(":TIMebase:SCALe?", _OPEN),
    "timebase_position_query": Cmd(":TIMebase:POSition?", _OPEN),
    "trigger_mode": Cmd(":TRIGger:MODE EDGE", _OPEN),
    "trigger_sweep": Cmd(":TRIGger:SWEep NORMal", _OPEN),
    "trigger_source": Cmd(":TRIGger:EDGE:SOURce {source}", _OPEN),
    "trigger_level": Cmd(":TRIGger:EDGE:LEVel {level}", _OPEN),
    "trigger_slope": Cmd(":TRIGger:EDGE:SLOPe {slope}", _OPEN),
    "trigger_source_query": Cmd(":TRIGger:EDGE:SOURce?", _OPEN),
    "trigger_level_query": Cmd(":TRIGger:EDGE:LEVel?", _OPEN),
    "single": Cmd(":SINGle", _OPEN),
    "force": Cmd(":TRIGger:FORCe", _OPEN),
    "operation_condition": Cmd(":OPERegister:CONDition?", "(?) bit 3 = Run"),
    "digitize": Cmd(":DIGitize {sources}", _OPEN),
    "sample_rate_query": Cmd(":ACQuire:SRATe?", _OPEN),
    "acquired_points_query": Cmd(":ACQuire:POINts?", _OPEN),
    "waveform_source": Cmd(":WAVeform:SOURce CHANnel{n}", _OPEN),
    "waveform_format": Cmd(":WAVeform:FORMat WORD", _OPEN),
    "waveform_byte_order": Cmd(":WAVeform:BYTeorder LSBFirst", _OPEN),
    "waveform_signed": Cmd(":WAVeform:UNSigned 0", _OPEN),
    "waveform_points_mode": Cmd(":WAVeform:POINts:MODE RAW", _OPEN),
    "waveform_points": Cmd(":WAVeform:POINts MAXimum", _OPEN),
    "preamble": Cmd(":WAVeform:PREamble?", _OPEN),
    "data": Cmd(":WAVeform:DATA?", _OPEN + "; IEEE 488.2 definite-length block"),
}

#: Run bit of the operation status condition register (set while an acquisition runs).
RUN_BIT = 0x08

_SLOPES: Mapping[TriggerSlope, str] = {
    TriggerSlope.RISING: "POSitive",
    TriggerSlope.FALLING: "NEGative",
    TriggerSlope.EITHER: "EITHer",
}
_UNITS: Mapping[str, str] = {"V": "VOLT", "A": "AMPere"}


@runtime_checkable
class BinaryResource(Protocol):
    """pyvisa's binary-block read (MessageBasedResource.query_binary_values)."""

    def query_binary_values(
        self,
        message: str,
        datatype: str = ...,
        is_big_endian: bool = ...,
        container: Any = ...,
    ) -> object: ...


@dataclass(frozen=True)
class Preamble:
    """`:WAVeform:PREamble?` fields."""

    format: int
    type: int
    points: int
    count: int
    x_increment: float
    x_origin: float
    x_reference: float
    y_increment: float
    y_origin: float
    y_reference: float

    @classmethod
    def parse(cls, reply: str) -> Preamble:
        fields = [field.strip() for field in reply.split(",")]
        if len(fields) != 10:
            raise ValueError(f"preamble needs 10 fields, got {len(fields)}: {reply!r}")
        numbers = [parse_number(field) for field in fields]
        fmt, kind, points, count = (int(n) for n in numbers[:4])
        if points < 0 or points > 1 << 31 or not all(np.isfinite(numbers[4:])):
            raise ValueError(f"preamble out of bounds: {reply!r}")
        return cls(fmt, kind, points, count, *numbers[4:])


class InfiniiVision(Oscilloscope):
    maker = "KEYSIGHT TECHNOLOGIES"
    model = "InfiniiVision"
    CHANNELS: ClassVar[range] = range(1, 5)
    #: (?) per-division settings of a 1:1 probe, and the timebase range.
    RANGES: ClassVar[Mapping[str, ModelRange]] = {
        "per_div": ModelRange(1e-3, 5.0, "V/div"),
        "seconds_per_div": ModelRange(2e-9, 50.0, "s/div"),
        "probe": ModelRange(1e-4, 1e5, ""),
    }

    def __init__(
        self, resource: AnyResource, *, limits: Limits | None = None, name: str | None = None
    ) -> None:
        super().__init__(resource, limits=limits, name=name)
        self._units: dict[int, str] = {}
        self._armed = False
        self._transfer_set = False

    @property
    def channel_count(self) -> int:
        return len(self.CHANNELS)

    def _channel(self, channel: int) -> None:
        if channel not in self.CHANNELS:
            raise RangeError(
                f"{self.label} has channels 1..{self.CHANNELS.stop - 1}, not {channel}"
            )

    def configure_channel(
        self,
        channel: int,
        *,
        per_div: float,
        offset: float = 0.0,
        probe: float = 1.0,
        unit: str = "V",
        coupling: Coupling = Coupling.DC,
    ) -> None:
        self._channel(channel)
        if unit not in _UNITS:
            raise RangeError(f"{self.label}: channel unit {unit!r} is not V or A")
        self.RANGES["probe"].check(self.label, "probe", probe)
        self.RANGES["per_div"].check(self.label, "per_div", per_div / probe)
        self.write(COMMANDS["channel_display"](n=channel, state="ON"))
        self.write(COMMANDS["channel_units"](n=channel, unit=_UNITS[unit]))
        self.write(COMMANDS["channel_probe"](n=channel, ratio=format_nrf(probe)))
        self.write(COMMANDS["channel_scale"](n=channel, per_div=format_nrf(per_div)))
        self.write(COMMANDS["channel_offset"](n=channel, offset=format_nrf(offset)))
        self.write(COMMANDS["channel_coupling"](n=channel, coupling=coupling.value.upper()))
        self.check_errors()
        self._units[channel] = unit

    def set_timebase(self, *, seconds_per_div: float, delay_s: float = 0.0) -> None:
        self.RANGES["seconds_per_div"].check(self.label, "seconds_per_div", seconds_per_div)
        self.write(COMMANDS["timebase_reference"]())
        self.write(COMMANDS["timebase_scale"](seconds=format_nrf(seconds_per_div)))
        self.write(COMMANDS["timebase_position"](seconds=format_nrf(delay_s)))
        self.check_errors()

    def set_edge_trigger(
        self, source: str, *, level: float, slope: TriggerSlope = TriggerSlope.RISING
    ) -> None:
        upper = source.strip().upper()
        if upper == "EXT":
            wire = "EXTernal"
        elif upper.startswith("CHAN") and upper[4:].isdigit():
            self._channel(int(upper[4:]))
            wire = f"CHANnel{int(upper[4:])}"
        else:
            raise RangeError(f"{self.label}: trigger source {source!r} is not CHAN<n> or EXT")
        self.write(COMMANDS["trigger_mode"]())
        self.write(COMMANDS["trigger_sweep"]())
        self.write(COMMANDS["trigger_source"](source=wire))
        self.write(COMMANDS["trigger_level"](level=format_nrf(level)))
        self.write(COMMANDS["trigger_slope"](slope=_SLOPES[slope]))
        self.check_errors()

    def arm(self) -> None:
        self.write(COMMANDS["single"]())
        self.check_errors()
        self._armed = True

    def force_trigger(self) -> None:
        self.write(COMMANDS["force"]())

    def acquisition_complete(self) -> bool:
        condition = int(parse_number(self.query(COMMANDS["operation_condition"]())))
        return self._armed and not condition & RUN_BIT

    def capture(self, channels: Iterable[int]) -> Mapping[int, Waveform]:
        wanted = sorted(set(channels))
        for channel in wanted:
            self._channel(channel)
        sources = ",".join(f"CHANnel{channel}" for channel in wanted)
        self.write(COMMANDS["digitize"](sources=sources))
        self._armed = True
        return {channel: self.fetch(channel) for channel in wanted}

    def fetch(self, channel: int) -> Waveform:
        self._channel(channel)
        if not self._transfer_set:
            self.write(COMMANDS["waveform_format"]())
            self.write(COMMANDS["waveform_byte_order"]())
            self.write(COMMANDS["waveform_signed"]())
            self.write(COMMANDS["waveform_points_mode"]())
            self.write(COMMANDS["waveform_points"]())
            self._transfer_set = True
        self.write(COMMANDS["waveform_source"](n=channel))
        preamble = Preamble.parse(self.query(COMMANDS["preamble"]()))
        if preamble.format != 1:
            raise ValueError(f"{self.label}: expected WORD data (format 1), got {preamble.format}")
        codes = self._read_block(COMMANDS["data"]())
        if codes.size != preamble.points:
            raise ValueError(
                f"{self.label}: {codes.size} points received, preamble says {preamble.points}"
            )
        self.check_errors()
        index = np.arange(codes.size, dtype=np.float64)
        t = (index - preamble.x_reference) * preamble.x_increment + preamble.x_origin
        y = (codes.astype(np.float64) - preamble.y_reference) * preamble.y_increment
        y += preamble.y_origin
        unit = self._units.get(channel)
        if unit is None:
            wire = self.query(COMMANDS["channel_units_query"](n=channel)).upper()
            unit = "A" if wire.startswith("AMP") else "V"
        return Waveform(f"CHAN{channel}", t, y, unit)

    def _read_block(self, command: str) -> np.ndarray:
        resource = self.resource
        if not isinstance(resource, BinaryResource):
            raise TypeError(f"{self.label}: the resource cannot read binary blocks")
        self._remember(command)
        values = self._io(
            command,
            lambda: resource.query_binary_values(
                command, datatype="h", is_big_endian=False, container=np.array
            ),
        )
        return np.asarray(values, dtype=np.int16)

    def settings(self) -> Mapping[str, object]:
        out: dict[str, object] = {
            "seconds_per_div": parse_number(self.query(COMMANDS["timebase_scale_query"]())),
            "delay_s": parse_number(self.query(COMMANDS["timebase_position_query"]())),
            "trigger_source": self.query(COMMANDS["trigger_source_query"]()),
            "trigger_level": parse_number(self.query(COMMANDS["trigger_level_query"]())),
            "sample_rate_hz": parse_number(self.query(COMMANDS["sample_rate_query"]())),
            "record_points": parse_number(self.query(COMMANDS["acquired_points_query"]())),
        }
        for channel in sorted(self._units):
            out[f"channel{channel}"] = {
                "per_div": parse_number(self.query(COMMANDS["channel_scale_query"](n=channel))),
                "offset": parse_number(self.query(COMMANDS["channel_offset_query"](n=channel))),
                "probe": parse_number(self.query(COMMANDS["channel_probe_query"](n=channel))),
                "unit": self.query(COMMANDS["channel_units_query"](n=channel)),
            }
        return out

    def safe_state(self) -> None:
        """A scope drives nothing on the bench: no output to switch off, nothing to send."""
