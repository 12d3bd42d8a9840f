"""The base every driver shares: identity, bench limits, the error queue, faults, safe state.

A driver talks to a pyvisa message-based resource (or a test double of one). Everything that can
go wrong on the wire ends as one precise exception naming the instrument and the command:
the instrument refused something (InstrumentError, from its error queue), it did not answer in
time (InstrumentTimeout), or the connection is gone (InstrumentConnectionLost).
"""

from __future__ import annotations

import logging
import math
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

import pyvisa.errors
import pyvisa.resources
from pyvisa.constants import StatusCode

from instruments.numbers import format_nrf, parse_boolean

T = TypeVar("T")
#: Every command sent to an instrument and every reply, at DEBUG (`rig run -v` logs them per plan).
IO_LOG = logging.getLogger("instruments.io")


class Role(StrEnum):
    """What an instrument does on the bench (the bench file's `role:` values)."""

    POWER_ANALYZER = "power_analyzer"
    DC_SOURCE = "dc_source"
    GRID_SIMULATOR = "grid_simulator"
    AC_LOAD = "ac_load"
    SCOPE = "scope"
    SWITCH_UNIT = "switch_unit"
    RLC_LOAD = "rlc_load"
    CONTROL_PILOT = "control_pilot"


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


class LimitError(ValueError):
    """A setpoint beyond the bench's hard limits: refused before anything is sent, never clamped."""


class RangeError(ValueError):
    """A setpoint beyond what the instrument model can do (its datasheet range): refused before
    anything is sent, so the instrument never has to reject it."""


class InstrumentFault(RuntimeError):
    """Something went wrong talking to one instrument; names the instrument and the command."""

    def __init__(self, instrument: str, command: str | None, what: str) -> None:
        self.instrument = instrument
        self.command = command
        where = f" after {command!r}" if command else ""
        super().__init__(f"{instrument}: {what}{where}")


class InstrumentError(InstrumentFault):
    """The instrument reported errors in its queue (IEEE 488.2 / SCPI `<code>,"<message>"`)."""

    def __init__(
        self, instrument: str, errors: Sequence[tuple[int, str]], command: str | None = None
    ) -> None:
        self.errors = tuple(errors)
        listed = "; ".join(f'{code},"{message}"' for code, message in self.errors)
        super().__init__(instrument, command, f"reported {listed}")


class InstrumentTimeout(InstrumentFault):
    """No answer within the resource's timeout (VISA VI_ERROR_TMO)."""

    def __init__(self, instrument: str, command: str | None, timeout_ms: object = None) -> None:
        self.timeout_ms = timeout_ms
        within = f" within {timeout_ms} ms" if timeout_ms is not None else ""
        super().__init__(instrument, command, f"no answer{within}")


class InstrumentConnectionLost(InstrumentFault):
    """The session to the instrument is gone (connection reset or closed by the far end)."""

    def __init__(self, instrument: str, command: str | None, reason: str = "") -> None:
        super().__init__(instrument, command, f"connection lost{f' ({reason})' if reason else ''}")


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
    #: Grid simulator ramps: the fastest voltage and frequency slew the bench allows.
    voltage_slew_v_per_s: Range | None = None
    frequency_slew_hz_per_s: Range | None = None

    _UNITS: ClassVar[Mapping[str, str]] = {
        "voltage_v": "V",
        "current_a": "A",
        "power_w": "W",
        "reactive_power_var": "var",
        "frequency_hz": "Hz",
        "voltage_slew_v_per_s": "V/s",
        "frequency_slew_hz_per_s": "Hz/s",
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


@dataclass(frozen=True)
class ModelRange:
    """What one model can be set to for one quantity (its datasheet range), in SI units."""

    low: float
    high: float
    unit: str

    def check(self, instrument: str, quantity: str, value: float) -> None:
        if not math.isfinite(value):
            raise RangeError(f"{instrument}: {quantity} {value!r} is not a finite setpoint")
        if not self.low <= value <= self.high:
            raise RangeError(
                f"{instrument}: {quantity} {format_nrf(value)} {self.unit} is beyond the model's "
                f"range [{format_nrf(self.low)}, {format_nrf(self.high)}] {self.unit}; "
                "refused, nothing sent"
            )


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


#: VISA status codes that mean the session itself is gone, not just slow.
_CONNECTION_LOST = frozenset(
    {
        StatusCode.error_connection_lost,
        StatusCode.error_io,
        StatusCode.error_invalid_object,
        StatusCode.error_resource_not_found,
        StatusCode.error_closing_failed,
    }
)


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
    #: How many of the commands sent since the last error check an InstrumentError names.
    _REMEMBERED: ClassVar[int] = 4

    def __init__(
        self, resource: AnyResource, *, limits: Limits | None = None, name: str | None = None
    ) -> None:
        self.resource = as_resource(resource)
        self.limits = limits if limits is not None else Limits()
        #: The bench's name for this instrument ("analyzer"), used in every error message.
        self.name = name
        self._since_check: list[str] = []
        for attribute in ("read_termination", "write_termination"):
            if hasattr(resource, attribute):
                setattr(resource, attribute, self.termination)

    @classmethod
    def from_options(
        cls,
        resource: AnyResource,
        *,
        limits: Limits | None,
        options: Mapping[str, object],
        name: str | None = None,
    ) -> Instrument:
        """Build the driver from a bench file entry; drivers with options override this."""
        if options:
            raise ValueError(f"{cls.model} driver takes no options, got {sorted(options)}")
        return cls(resource, limits=limits, name=name)

    @property
    def label(self) -> str:
        """How errors name this instrument: `analyzer (YOKOGAWA WT5000)` or `YOKOGAWA WT5000`."""
        model = f"{self.maker} {self.model}"
        return f"{self.name} ({model})" if self.name else model

    # --- the wire -------------------------------------------------------------------------------

    def _io(self, command: str, action: Callable[[], T]) -> T:
        """Run one resource call; map whatever the transport raises to an InstrumentFault."""
        try:
            return action()
        except pyvisa.errors.VisaIOError as error:
            if error.error_code == StatusCode.error_timeout:
                if _peer_closed(self.resource):
                    raise InstrumentConnectionLost(
                        self.label, command, "closed by the instrument"
                    ) from error
                timeout = getattr(self.resource, "timeout", None)
                raise InstrumentTimeout(self.label, command, timeout) from error
            if error.error_code in _CONNECTION_LOST:
                raise InstrumentConnectionLost(self.label, command, str(error)) from error
            raise InstrumentFault(self.label, command, str(error)) from error
        except pyvisa.errors.InvalidSession as error:
            raise InstrumentConnectionLost(self.label, command, "session closed") from error
        except OSError as error:  # sockets: reset, broken pipe, refused
            raise InstrumentConnectionLost(self.label, command, str(error)) from error

    def write(self, command: str) -> None:
        self._remember(command)
        if IO_LOG.isEnabledFor(logging.DEBUG):
            IO_LOG.debug("%s > %s", self.label, command)
        self._io(command, lambda: self.resource.write(command))

    def query(self, command: str) -> str:
        self._remember(command)
        reply = self._io(command, lambda: self.resource.query(command)).strip()
        if IO_LOG.isEnabledFor(logging.DEBUG):
            IO_LOG.debug("%s > %s < %s", self.label, command, reply)
        return reply

    def _remember(self, command: str) -> None:
        self._since_check.append(command)
        if len(self._since_check) > self._REMEMBERED:
            del self._since_check[0]

    # --- what every instrument does --------------------------------------------------------------

    def identify(self) -> Identity:
        return Identity.parse(self.query("*IDN?"))

    def check_errors(self) -> None:
        """Drain the error queue; raise InstrumentError naming what was sent since the last
        check if the instrument refused anything."""
        sent = "; ".join(self._since_check) or None
        self._since_check = []
        found: list[tuple[int, str]] = []
        for _ in range(self._MAX_ERRORS):
            code, message = parse_error(self.query(self.error_query))
            if code == 0:
                break
            found.append((code, message))
        self._since_check = []
        if found:
            raise InstrumentError(self.label, found, sent)

    @abstractmethod
    def settings(self) -> Mapping[str, object]:
        """What a lab records about this instrument's configuration (ranges, update rate,
        wiring, filters), read back from the instrument itself."""

    @abstractmethod
    def safe_state(self) -> None:
        """Outputs off, setpoints zero, contactors open. Must not raise for an instrument already
        safe; every step is attempted even if an earlier one fails. Ends by reading back that
        the outputs are off."""

    def close(self) -> None:
        self._io("close", self.resource.close)

    def _confirm_off(self, query: str) -> None:
        """After a safe-state sequence: read the output back, which also proves that every
        command before it was executed (IEEE 488.2 executes a session's messages in order)."""
        if parse_boolean(self.query(query)):
            raise InstrumentError(self.label, [(0, f"{query} still reads on")], query)

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


def _peer_closed(resource: object) -> bool:
    """True if the resource is a raw socket whose far end has closed the connection.

    pyvisa-py's socket sessions read a closed connection as a timeout; a zero-byte peek that
    does not block tells the two apart. Anything that is not such a session answers False.
    """
    try:
        session = resource.visalib.sessions[resource.session]  # type: ignore[attr-defined]
        sock = session.interface
    except (AttributeError, KeyError, TypeError, pyvisa.errors.Error):
        return False
    if not isinstance(sock, socket.socket):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, just nothing to read
    except OSError:
        return True


def parse_error(reply: str) -> tuple[int, str]:
    """`-113,"Undefined header"` -> (-113, 'Undefined header') (SCPI-99 21.8.8)."""
    code_text, _, message = reply.strip().partition(",")
    try:
        code = int(code_text.strip())
    except ValueError as error:
        raise ValueError(f"not an error-queue reply: {reply!r}") from error
    return code, message.strip().strip('"')
