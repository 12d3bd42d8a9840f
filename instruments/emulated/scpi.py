"""A small SCPI engine for the emulated instruments: parse program messages, run command tables.

What it follows (IEEE 488.2 chapter 7 and SCPI-99 chapter 6):
- headers in long or short form (`:NUMeric:FORMat` == `:NUM:FORM`), case insensitive, optional
  leading colon, optional nodes in square brackets, numeric suffixes (`ITEM<n>`, 1 if omitted);
- several message units per line separated by `;`; a unit without a leading colon is first
  resolved relative to the previous unit's header (`FREQ 50;MODE FIX` = FREQ:MODE), then to
  its parent (`VOLT:LEV 1;RANG 2` = VOLT:RANG), then from the root;
- common commands *IDN?, *RST, *CLS, *OPC, *OPC?, *WAI, *ESR?, *STB?, *TST?;
- an error queue read by `SYSTem:ERRor[:NEXT]?` (or the twin's own error query), bounded, its
  last slot turning into -350 "Queue overflow" when it is full; standard codes -1xx (command),
  -2xx (execution), -363 when a message exceeds the input buffer;
- commands that take time (a wait for the next update, a scope acquisition) suspend the message:
  the handler raises `Blocked(until)`, the engine keeps the rest of the message, and the
  transport lets time pass to `blocked_until` (virtual or real) and calls `resume()`, which runs
  the blocked command again and then the rest. A transport that cannot let time pass calls
  `resume(forced=True)`: waits end at once (the reading may then be stale, as documented where
  that applies) and acquisitions that cannot complete fail with -200.
A command error discards the rest of the message, as a parser cannot trust what follows.

Twins declare their command tables as `Command(pattern, write=..., read=...)` lists.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, TypeVar

T = TypeVar("T")


class ErrorCode(IntEnum):
    """SCPI-99 21.8 standard error numbers used by the twins."""

    NO_ERROR = 0
    COMMAND_ERROR = -100
    SYNTAX_ERROR = -102
    DATA_TYPE_ERROR = -104
    PARAMETER_NOT_ALLOWED = -108
    MISSING_PARAMETER = -109
    UNDEFINED_HEADER = -113
    HEADER_SUFFIX_OUT_OF_RANGE = -114
    INVALID_SUFFIX = -131
    EXECUTION_ERROR = -200
    COMMAND_PROTECTED = -203
    SETTINGS_CONFLICT = -221
    DATA_OUT_OF_RANGE = -222
    ILLEGAL_PARAMETER_VALUE = -224
    DATA_CORRUPT_OR_STALE = -230
    QUEUE_OVERFLOW = -350
    INPUT_BUFFER_OVERRUN = -363
    QUERY_ERROR = -400
    QUERY_INTERRUPTED = -410


ERROR_MESSAGES: Mapping[ErrorCode, str] = {
    ErrorCode.NO_ERROR: "No error",
    ErrorCode.COMMAND_ERROR: "Command error",
    ErrorCode.SYNTAX_ERROR: "Syntax error",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.PARAMETER_NOT_ALLOWED: "Parameter not allowed",
    ErrorCode.MISSING_PARAMETER: "Missing parameter",
    ErrorCode.UNDEFINED_HEADER: "Undefined header",
    ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE: "Header suffix out of range",
    ErrorCode.INVALID_SUFFIX: "Invalid suffix",
    ErrorCode.EXECUTION_ERROR: "Execution error",
    ErrorCode.COMMAND_PROTECTED: "Command protected",
    ErrorCode.SETTINGS_CONFLICT: "Settings conflict",
    ErrorCode.DATA_OUT_OF_RANGE: "Data out of range",
    ErrorCode.ILLEGAL_PARAMETER_VALUE: "Illegal parameter value",
    ErrorCode.DATA_CORRUPT_OR_STALE: "Data corrupt or stale",
    ErrorCode.QUEUE_OVERFLOW: "Queue overflow",
    ErrorCode.INPUT_BUFFER_OVERRUN: "Input buffer overrun",
    ErrorCode.QUERY_ERROR: "Query error",
    ErrorCode.QUERY_INTERRUPTED: "Query INTERRUPTED",
}

# IEEE 488.2 11.5.1.1: standard event status register bits set by each error class.
_ESR_OPC = 0x01
_ESR_QUERY_ERROR = 0x04
_ESR_DEVICE_ERROR = 0x08
_ESR_EXECUTION_ERROR = 0x10
_ESR_COMMAND_ERROR = 0x20


class ScpiError(Exception):
    """Raised by a handler: the engine queues it as `<code>,"<message>[;<detail>]"`."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{int(code)},{ERROR_MESSAGES[code]}" + (f";{detail}" if detail else ""))

    @property
    def entry(self) -> tuple[int, str]:
        text = ERROR_MESSAGES[self.code]
        return int(self.code), f"{text};{self.detail}" if self.detail else text


class Blocked(Exception):
    """Raised by a handler whose command cannot finish before simulation time `until`."""

    def __init__(self, until: float) -> None:
        self.until = until
        super().__init__(f"blocked until t={until}")


@dataclass(frozen=True)
class _Suspended:
    units: tuple[str, ...]
    replies: tuple[str, ...]
    path: tuple[str, ...]
    until: float


@dataclass(frozen=True)
class Keyword:
    """One node of a command header pattern."""

    long: str
    short: str
    optional: bool
    suffix: bool

    def accepts(self, token: str, truncations: bool = False) -> int | None:
        """The numeric suffix carried by `token` (1 if none) if it names this node, else None.

        With `truncations`, any form between the short and the long one is accepted too
        (Yokogawa: "CURSor can be written as CURSO or CURS").
        """
        name, digits = token, ""
        if self.suffix:
            match = _SUFFIXED.fullmatch(token)
            if match is None:
                return None
            name, digits = match.group(1), match.group(2)
        if name in (self.long, self.short) or (
            truncations and name.startswith(self.short) and self.long.startswith(name)
        ):
            return int(digits) if digits else 1
        return None


_SUFFIXED = re.compile(r"([A-Z_]+?)(\d*)")


def compile_pattern(pattern: str) -> tuple[Keyword, ...]:
    """`[SOURce:]VOLTage[:LEVel]` -> keywords; `ITEM<n>` takes a numeric suffix."""
    nodes: list[Keyword] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == ":":
            position += 1
            continue
        optional = char == "["
        if optional:
            end = pattern.index("]", position)
            body = pattern[position + 1 : end].strip(":")
            position = end + 1
        else:
            end = position
            while end < len(pattern) and pattern[end] not in ":[":
                end += 1
            body = pattern[position:end]
            position = end
        suffix = body.endswith("<n>")
        if suffix:
            body = body[:-3]
        if not body or not re.fullmatch(r"[A-Za-z_]+", body):
            raise ValueError(f"bad SCPI pattern {pattern!r} near {body!r}")
        short = "".join(c for c in body if c.isupper() or c == "_")
        nodes.append(Keyword(body.upper(), short or body.upper(), optional, suffix))
    return tuple(nodes)


def _match(
    nodes: Sequence[Keyword], tokens: Sequence[str], truncations: bool = False
) -> list[int] | None:
    """Suffix values if `tokens` spell `nodes` (optional nodes may be left out), else None."""

    def walk(node: int, token: int) -> list[int] | None:
        if node == len(nodes):
            return [] if token == len(tokens) else None
        keyword = nodes[node]
        if token < len(tokens):
            value = keyword.accepts(tokens[token], truncations)
            if value is not None:
                rest = walk(node + 1, token + 1)
                if rest is not None:
                    return [value, *rest] if keyword.suffix else rest
        if keyword.optional:
            rest = walk(node + 1, token)
            if rest is not None:
                return [1, *rest] if keyword.suffix else rest
        return None

    return walk(0, 0)


class Params:
    """The parameters of one message unit, with typed accessors that raise SCPI errors."""

    __slots__ = ("args", "suffixes")

    def __init__(self, args: tuple[str, ...], suffixes: tuple[int, ...]) -> None:
        self.args = args
        self.suffixes = suffixes

    def expect(self, low: int, high: int | None = None) -> None:
        """Between `low` and `high` (default `low`) parameters, else -109 / -108."""
        high = low if high is None else high
        if len(self.args) < low:
            raise ScpiError(ErrorCode.MISSING_PARAMETER)
        if len(self.args) > high:
            raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED)

    def number(
        self,
        index: int = 0,
        *,
        unit: str = "",
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        """<NRf> with an optional unit (and k/m/u multiplier); MIN/MAX map to the range ends."""
        self._present(index)
        text = self.args[index].strip().upper()
        if text in ("MIN", "MINIMUM") and low is not None:
            return low
        if text in ("MAX", "MAXIMUM") and high is not None:
            return high
        match = _NUMERIC.fullmatch(text)
        if match is None:
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, self.args[index])
        value = float(match.group(1))
        suffix = match.group(2)
        if suffix:
            value *= _multiplier(suffix, unit.upper())
        if not math.isfinite(value):
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, self.args[index])
        if (low is not None and value < low) or (high is not None and value > high):
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, self.args[index])
        return value

    def integer(self, index: int = 0, *, low: int | None = None, high: int | None = None) -> int:
        value = self.number(index)
        if value != round(value):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, self.args[index])
        result = round(value)
        if (low is not None and result < low) or (high is not None and result > high):
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, self.args[index])
        return result

    def boolean(self, index: int = 0) -> bool:
        """<Boolean>: ON|OFF or a number (0 is OFF, IEEE 488.2 7.7.2.1 rounding)."""
        self._present(index)
        text = self.args[index].strip().upper()
        if text == "ON":
            return True
        if text == "OFF":
            return False
        numeric = _NUMERIC.fullmatch(text)
        if numeric is not None and not numeric.group(2):
            return round(float(numeric.group(1))) != 0
        raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, self.args[index])

    def choice(self, index: int, options: Mapping[str, T]) -> T:
        """<character data> from `options` keyed by mnemonic pattern, e.g. {'FLOat': ...}."""
        self._present(index)
        text = self.args[index].strip().upper()
        for mnemonic, value in options.items():
            long = mnemonic.upper()
            short = "".join(c for c in mnemonic if not c.islower()) or long
            if text in (long, short):
                return value
        raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, self.args[index])

    def _present(self, index: int) -> None:
        if index >= len(self.args) or not self.args[index].strip():
            raise ScpiError(ErrorCode.MISSING_PARAMETER)


_NUMERIC = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:E[-+]?\d+)?)\s*([A-Z]*)")
_MULTIPLIERS = {"": 1.0, "K": 1e3, "M": 1e-3, "U": 1e-6, "N": 1e-9, "MA": 1e6}


def _multiplier(suffix: str, unit: str) -> float:
    if unit and suffix.endswith(unit):
        prefix = suffix[: -len(unit)]
        if prefix in _MULTIPLIERS:
            return _MULTIPLIERS[prefix]
    raise ScpiError(ErrorCode.INVALID_SUFFIX, suffix)


Write = Callable[[Params], None]
Read = Callable[[Params], str]


@dataclass(frozen=True)
class Command:
    """One command header: what a setting does (`write`) and what its query answers (`read`)."""

    pattern: str
    write: Write | None = None
    read: Read | None = None


def split_units(message: str) -> list[str]:
    """Split a program message on `;` outside quoted strings."""
    if '"' not in message and "'" not in message:
        return message.split(";")
    return _split_outside_quotes(message, ";")


def split_args(text: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    if '"' not in text and "'" not in text:
        return tuple(arg.strip() for arg in text.split(","))
    return tuple(arg.strip() for arg in _split_outside_quotes(text, ","))


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in text:
        if quote is not None:
            current.append(char)
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


class ScpiEngine(ABC):
    """Runs program messages against a command table, with an IEEE 488.2 error queue."""

    #: SCPI-99 requires at least two entries; instruments commonly keep 10 to 30.
    error_queue_length: ClassVar[int] = 10
    #: The header that pops the error queue (Yokogawa: `:STATus:ERRor`).
    error_query_pattern: ClassVar[str] = "SYSTem:ERRor[:NEXT]"
    #: Accept any truncation between the short and long form (not standard SCPI).
    accept_truncations: ClassVar[bool] = False
    #: Longest program message accepted (characters); longer ones are refused with -363.
    input_buffer: ClassVar[int] = 4096

    def __init__(self) -> None:
        self._errors: deque[tuple[int, str]] = deque()
        self._esr = 0
        self._suspended: _Suspended | None = None
        #: True while a forced resume runs: blocking handlers must finish or fail at once.
        self.forced = False
        # Built on first use, so that subclasses may set up what their tables refer to first.
        self._table: list[tuple[tuple[Keyword, ...], Command]] | None = None
        self._resolved: dict[tuple[str, ...], tuple[Command, tuple[int, ...]] | None] = {}
        #: (message unit, path) -> its command, parameters, query flag, new path and header.
        self._parsed: dict[
            tuple[str, tuple[str, ...]],
            tuple[Command, Params, bool, tuple[str, ...], str],
        ] = {}

    @abstractmethod
    def commands(self) -> Sequence[Command]:
        """The instrument's command table (common commands and the error query are built in)."""

    @abstractmethod
    def identity(self) -> str:
        """The *IDN? reply."""

    @abstractmethod
    def reset(self) -> None:
        """*RST: back to the instrument's reset state."""

    def clear_status(self) -> None:  # noqa: B027 - a hook; most models have nothing more
        """*CLS beyond the error queue and the ESR (a model's own event registers)."""

    # --- error queue -------------------------------------------------------------------------

    @property
    def errors(self) -> list[tuple[int, str]]:
        """The queued errors, oldest first (inspection only; does not pop)."""
        return list(self._errors)

    def push_error(self, error: ScpiError) -> None:
        code, message = error.entry
        self.push_entry(code, message)

    def push_entry(self, code: int, message: str) -> None:
        """Queue `code,"message"` and set the IEEE 488.2 event bit of its class."""
        if -199 <= code <= -100:
            self._esr |= _ESR_COMMAND_ERROR
        elif -299 <= code <= -200:
            self._esr |= _ESR_EXECUTION_ERROR
        elif -399 <= code <= -300 or code > 0:
            self._esr |= _ESR_DEVICE_ERROR
        elif -499 <= code <= -400:
            self._esr |= _ESR_QUERY_ERROR
        if len(self._errors) >= self.error_queue_length:
            # SCPI-99 21.8.1: a full queue keeps its entries; the newest slot says overflow.
            self._errors[-1] = ScpiError(ErrorCode.QUEUE_OVERFLOW).entry
        else:
            self._errors.append((code, message))

    def _pop_error(self, params: Params) -> str:
        params.expect(0)
        code, message = self._errors.popleft() if self._errors else (0, "No error")
        return f'{code},"{message}"'

    # --- message execution -------------------------------------------------------------------

    def execute(self, message: str) -> str | None:
        """Run one program message; the joined query replies, or None if nothing was asked
        (also when the message is suspended: see `blocked_until`)."""
        if self._suspended is not None:
            # A transport must resume or abort first; a message arriving now interrupts.
            self.abort()
        if len(message) > self.input_buffer:
            self.push_error(ScpiError(ErrorCode.INPUT_BUFFER_OVERRUN, f"{len(message)} chars"))
            return None
        units = tuple(unit for unit in split_units(message) if unit.strip())
        return self._run(units, [], ())

    def _run(self, units: tuple[str, ...], replies: list[str], path: tuple[str, ...]) -> str | None:
        for index, unit in enumerate(units):
            try:
                path = self._run_unit(unit, path, replies)
            except Blocked as block:
                self._suspended = _Suspended(units[index:], tuple(replies), path, block.until)
                return None
            except ScpiError as error:
                self.push_error(error)
                if -199 <= int(error.code) <= -100:
                    break
        return ";".join(replies) if replies else None

    @property
    def blocked_until(self) -> float | None:
        """When a suspended message can go on (None: nothing is suspended)."""
        return None if self._suspended is None else self._suspended.until

    def resume(self, *, forced: bool = False) -> str | None:
        """Go on with the suspended message (time has reached `blocked_until`, or `forced`)."""
        suspended, self._suspended = self._suspended, None
        if suspended is None:
            return None
        self.forced = forced
        try:
            return self._run(suspended.units, list(suspended.replies), suspended.path)
        finally:
            self.forced = False

    def abort(self) -> None:
        """Drop a suspended message (the client gave up, a device clear): IEEE 488.2's
        -410 Query INTERRUPTED."""
        if self._suspended is not None:
            self._suspended = None
            self.push_error(ScpiError(ErrorCode.QUERY_INTERRUPTED, "waiting command abandoned"))

    def _run_unit(self, unit: str, path: tuple[str, ...], replies: list[str]) -> tuple[str, ...]:
        parsed = self._parsed.get((unit, path))
        if parsed is None:
            parts = unit.split(None, 1)
            if parts[0].startswith("*"):
                is_query = parts[0].endswith("?")
                name = parts[0][:-1] if is_query else parts[0]
                args = split_args(parts[1]) if len(parts) > 1 else ()
                self._common(name.upper(), is_query, Params(args, ()), replies)
                return path
            parsed = self._parse_unit(parts, path)
            if len(self._parsed) >= 4096:
                self._parsed.clear()
            self._parsed[(unit, path)] = parsed
        command, params, is_query, tokens, header = parsed
        if is_query:
            if command.read is None:
                raise ScpiError(ErrorCode.UNDEFINED_HEADER, header)
            replies.append(command.read(params))
        else:
            if command.write is None:
                raise ScpiError(ErrorCode.UNDEFINED_HEADER, header)
            command.write(params)
        return tokens

    def _parse_unit(
        self, parts: list[str], path: tuple[str, ...]
    ) -> tuple[Command, Params, bool, tuple[str, ...], str]:
        """What a message unit (header, then its arguments) resolves to from `path`; the same
        every time, so _run_unit keeps it (a poll sends the same units over and over)."""
        header = parts[0]
        is_query = header.endswith("?")
        name = header[:-1] if is_query else header
        tokens = tuple(name.lstrip(":").upper().split(":"))
        if not all(tokens):
            raise ScpiError(ErrorCode.SYNTAX_ERROR, header)
        found = None
        if not name.startswith(":"):
            # Instruments differ on where the path stands after `FREQ 50` (Keysight: at FREQ,
            # Chroma: at the root); try the deeper reading first, then the shallower ones.
            for prefix in (path, path[:-1]):
                if prefix:
                    found = self._resolve(prefix + tokens)
                    if found is not None:
                        tokens = prefix + tokens
                        break
        if found is None:
            found = self._resolve(tokens)
        if found is None:
            raise ScpiError(ErrorCode.UNDEFINED_HEADER, header)
        args = split_args(parts[1]) if len(parts) > 1 else ()
        return found[0], Params(args, found[1]), is_query, tokens, header

    def _resolve(self, tokens: tuple[str, ...]) -> tuple[Command, tuple[int, ...]] | None:
        try:
            return self._resolved[tokens]
        except KeyError:
            pass
        if self._table is None:
            table = [*self.commands(), Command(self.error_query_pattern, read=self._pop_error)]
            self._table = [(compile_pattern(command.pattern), command) for command in table]
        found: tuple[Command, tuple[int, ...]] | None = None
        for nodes, command in self._table:
            suffixes = _match(nodes, tokens, self.accept_truncations)
            if suffixes is not None:
                found = (command, tuple(suffixes))
                break
        if len(self._resolved) < 4096:
            self._resolved[tokens] = found
        return found

    def _common(self, name: str, is_query: bool, params: Params, replies: list[str]) -> None:
        """IEEE 488.2 10: the mandatory common commands."""
        if is_query:
            if name == "*IDN":
                replies.append(self.identity())
            elif name == "*OPC":
                replies.append("1")
            elif name == "*ESR":
                replies.append(str(self._esr))
                self._esr = 0
            elif name == "*STB":
                # Bit 2: error/event queue not empty (SCPI-99 9.1); bit 5: ESB summary.
                stb = (0x04 if self._errors else 0) | (0x20 if self._esr else 0)
                replies.append(str(stb))
            elif name == "*TST":
                replies.append("0")
            else:
                raise ScpiError(ErrorCode.UNDEFINED_HEADER, name + "?")
            return
        if name == "*RST":
            params.expect(0)
            self.reset()
        elif name == "*CLS":
            params.expect(0)
            self._errors.clear()
            self._esr = 0
            self.clear_status()
        elif name == "*OPC":
            self._esr |= _ESR_OPC
        elif name == "*WAI":
            pass
        else:
            raise ScpiError(ErrorCode.UNDEFINED_HEADER, name)


_NR3_FORMATS = {digits: f"%.{digits}E" for digits in range(1, 10)}


def nr3(value: float, digits: int = 5) -> str:
    """<NR3> as instruments send it (`2.30000E+02`); NAN / INF / -INF for special values."""
    if math.isfinite(value):
        return (_NR3_FORMATS.get(digits) or f"%.{digits}E") % value
    if math.isnan(value):
        return "NAN"
    return "INF" if value > 0 else "-INF"
