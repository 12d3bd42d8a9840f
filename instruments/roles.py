"""Instrument roles: the small interfaces the rig programs against, and the values they return.

In the labgrid spirit a role says what a bench needs (measure power, be the EV battery, be the
grid, be the home load); vendor detail lives in the drivers. Every role shares the base
`Instrument`: identity (*IDN?), the bench's hard limits, the error queue, and `safe_state()`.

Sign convention inside the rig: power and current are positive when energy flows into the EV.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

import pyvisa.resources

from instruments.numbers import format_nrf, parse_boolean

#: Every command sent to an instrument and every reply, at DEBUG (`rig run -v` logs them per plan).
IO_LOG = logging.getLogger("instruments.io")


class Role(StrEnum):
    """What an instrument does on the bench (the bench file's `role:` values)."""

    POWER_ANALYZER = "power_analyzer"
    DC_SOURCE = "dc_source"
    GRID_SIMULATOR = "grid_simulator"
    AC_LOAD = "ac_load"


@dataclass(frozen=True)
class Identity:
    """An instrument's answer to *IDN?: `<maker>,<model>,<serial>,<firmware>` (IEEE 488.2 10.14)."""

    maker: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def parse(cls, idn: str) -> Identity:
        # Some products put commas inside the firmware field: split into four at most.
        parts = [part.strip() for part in idn.strip().split(",", 3)]
        if len(parts) != 4:
            raise ValueError(f"*IDN? reply is not <maker>,<model>,<serial>,<firmware>: {idn!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.maker},{self.model},{self.serial},{self.firmware}"


@dataclass(frozen=True)
class AcReading:
    """One coherent AC measurement at a point (rig sign at that point)."""

    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float


@dataclass(frozen=True)
class DcReading:
    """One coherent DC measurement; current and power positive into the EV battery."""

    v: float
    i: float
    p_w: float


class LimitError(ValueError):
    """A setpoint beyond the bench's hard limits: refused before anything is sent, never clamped."""


class InstrumentError(RuntimeError):
    """The instrument reported errors in its queue (IEEE 488.2 / SCPI `<code>,"<message>"`)."""

    def __init__(self, instrument: str, errors: Sequence[tuple[int, str]]) -> None:
        self.instrument = instrument
        self.errors = tuple(errors)
        listed = "; ".join(f'{code},"{message}"' for code, message in self.errors)
        super().__init__(f"{instrument} reported: {listed}")


#: A closed interval (low, high) in the quantity's SI unit.
Range = tuple[float, float]


@dataclass(frozen=True)
class Limits:
    """The bench's hard limits for one instrument (bench file `limits:`); every field optional.

    Drivers check the values they are about to command (magnitudes for current and power
    limits) against these before any byte goes out.
    """

    voltage_v: Range | None = None
    current_a: Range | None = None
    power_w: Range | None = None
    reactive_power_var: Range | None = None
    frequency_hz: Range | None = None

    _UNITS: ClassVar[Mapping[str, str]] = {
        "voltage_v": "V",
        "current_a": "A",
        "power_w": "W",
        "reactive_power_var": "var",
        "frequency_hz": "Hz",
    }

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Limits:
        """Limits from plain numbers: a scalar x means (0, x); a pair means (low, high)."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown limit(s) {unknown}; known: {sorted(known)}")
        parsed: dict[str, Range] = {}
        for name, value in values.items():
            parsed[name] = _as_range(name, value)
        return cls(**parsed)

    def check(self, quantity: str, value: float) -> None:
        """Raise LimitError unless `value` is finite and inside the limit named `quantity`."""
        unit = self._UNITS[quantity]
        if not math.isfinite(value):
            raise LimitError(f"{quantity}: {value!r} {unit} is not a finite setpoint; refused")
        bounds: Range | None = getattr(self, quantity)
        if bounds is None:
            return
        low, high = bounds
        if not low <= value <= high:
            raise LimitError(
                f"{quantity}: {format_nrf(value)} {unit} is outside the bench limits "
                f"[{format_nrf(low)}, {format_nrf(high)}] {unit}; refused, nothing sent"
            )


def _as_range(name: str, value: object) -> Range:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0.0, float(value))
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = value
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            if float(low) > float(high):
                raise ValueError(f"limit {name}: low {low} above high {high}")
            return (float(low), float(high))
    raise ValueError(f"limit {name}: expected a number or a (low, high) pair, got {value!r}")


@runtime_checkable
class Resource(Protocol):
    """What a driver needs of a pyvisa message-based resource (or a test double of one)."""

    def write(self, message: str) -> object: ...

    def query(self, message: str) -> str: ...

    def close(self) -> None: ...


#: What drivers accept: anything message-based; `ResourceManager.open_resource()` is typed as
#: returning the base `pyvisa.resources.Resource`, so that is accepted and checked at run time.
AnyResource = Resource | pyvisa.resources.Resource


def as_resource(resource: AnyResource) -> Resource:
    """`resource` as a message-based resource, or TypeError (e.g. a register-based one)."""
    if not isinstance(resource, Resource):
        raise TypeError(f"{resource!r} is not a message-based resource (write/query/close)")
    return resource


class Instrument(ABC):
    """Base of every driver: holds the resource, the role, the model and the bench limits."""

    role: ClassVar[Role]
    maker: ClassVar[str]
    model: ClassVar[str]
    #: The query that pops one entry of the instrument's error queue.
    error_query: ClassVar[str] = "SYST:ERR?"
    #: Message terminator on the wire, both directions.
    termination: ClassVar[str] = "\n"
    #: Longest error queue drained by check_errors() (IEEE 488.2 queues are short).
    _MAX_ERRORS: ClassVar[int] = 32

    def __init__(self, resource: AnyResource, *, limits: Limits | None = None) -> None:
        self.resource = as_resource(resource)
        self.limits = limits if limits is not None else Limits()
        for attribute in ("read_termination", "write_termination"):
            if hasattr(resource, attribute):
                setattr(resource, attribute, self.termination)

    @classmethod
    def from_options(
        cls, resource: AnyResource, *, limits: Limits | None, options: Mapping[str, object]
    ) -> Instrument:
        """Build the driver from a bench file entry; drivers with options override this."""
        if options:
            raise ValueError(f"{cls.model} driver takes no options, got {sorted(options)}")
        return cls(resource, limits=limits)

    def write(self, command: str) -> None:
        if IO_LOG.isEnabledFor(logging.DEBUG):
            IO_LOG.debug("%s %s > %s", self.maker, self.model, command)
        self.resource.write(command)

    def query(self, command: str) -> str:
        reply = self.resource.query(command).strip()
        if IO_LOG.isEnabledFor(logging.DEBUG):
            IO_LOG.debug("%s %s > %s < %s", self.maker, self.model, command, reply)
        return reply

    def identify(self) -> Identity:
        return Identity.parse(self.query("*IDN?"))

    def check_errors(self) -> None:
        """Drain the error queue; raise InstrumentError if the instrument refused anything."""
        found: list[tuple[int, str]] = []
        for _ in range(self._MAX_ERRORS):
            code, message = parse_error(self.query(self.error_query))
            if code == 0:
                break
            found.append((code, message))
        if found:
            raise InstrumentError(f"{self.maker} {self.model}", found)

    @abstractmethod
    def safe_state(self) -> None:
        """Outputs off, setpoints zero, contactors open. Must not raise for an instrument already
        safe; every step is attempted even if an earlier one fails."""

    def close(self) -> None:
        self.resource.close()

    def _confirm_off(self, query: str) -> None:
        """After a safe-state sequence: read the output back, which also proves that every
        command before it was executed (IEEE 488.2 executes a session's messages in order)."""
        if parse_boolean(self.query(query)):
            raise InstrumentError(f"{self.maker} {self.model}", [(0, f"{query} still reads on")])

    def _send_all(self, commands: Sequence[str]) -> None:
        """Send every command even if one fails (safe state), then re-raise the first failure."""
        first: Exception | None = None
        for command in commands:
            try:
                self.write(command)
            except Exception as error:  # keep going: the next step may still help
                first = first or error
        if first is not None:
            raise first


def parse_error(reply: str) -> tuple[int, str]:
    """`-113,"Undefined header"` -> (-113, 'Undefined header') (SCPI-99 21.8.8)."""
    code_text, _, message = reply.strip().partition(",")
    try:
        code = int(code_text.strip())
    except ValueError as error:
        raise ValueError(f"not an error-queue reply: {reply!r}") from error
    return code, message.strip().strip('"')


class PowerAnalyzer(Instrument):
    """Reads several measurement points at once (one element per point)."""

    role = Role.POWER_ANALYZER

    @abstractmethod
    def configure(self, points: Mapping[int, str]) -> None:
        """Wire element numbers to point names ('grid', 'evse_ac', 'home', 'evse_dc')."""

    @abstractmethod
    def read(self) -> Mapping[str, AcReading | DcReading]:
        """One coherent reading of every configured point."""


class DCSource(Instrument):
    """A bidirectional DC source acting as the EV battery emulator."""

    role = Role.DC_SOURCE

    @abstractmethod
    def set_voltage(self, v: float) -> None: ...

    @abstractmethod
    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        """Magnitudes: source = the emulator delivers (EV discharging), sink = it absorbs."""

    @abstractmethod
    def set_power_limits(self, *, source_w: float, sink_w: float) -> None: ...

    @abstractmethod
    def set_output(self, on: bool) -> None: ...

    @abstractmethod
    def output_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> DcReading:
        """Rig sign: positive when the emulator sinks, i.e. energy flows into the EV."""


class GridSimulator(Instrument):
    """An AC source standing in for the grid; output off means the grid is gone."""

    role = Role.GRID_SIMULATOR

    @abstractmethod
    def set_voltage(self, v_rms: float) -> None: ...

    @abstractmethod
    def set_frequency(self, hz: float) -> None: ...

    @abstractmethod
    def set_output(self, on: bool) -> None: ...

    @abstractmethod
    def output_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> AcReading:
        """At the source terminals: positive power when the grid delivers (import)."""


class ACLoad(Instrument):
    """The home load: constant power, or an RLC load for islanding tests."""

    role = Role.AC_LOAD

    @abstractmethod
    def set_power(self, p_w: float, q_var: float = 0.0) -> None: ...

    @abstractmethod
    def set_rlc(
        self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None
    ) -> None: ...

    @abstractmethod
    def set_input(self, on: bool) -> None: ...

    @abstractmethod
    def input_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> AcReading:
        """Positive power when the load consumes."""
