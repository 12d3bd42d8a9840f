"""Checking a driver against a table of exact SCPI command/response pairs, with no device attached.

In the style of PyMeasure's `expected_protocol`: list what the driver must send and what the
instrument answers, in order, and the fake resource fails the test at the first difference:

    with expected_protocol(PSB10000, [("SYST:LOCK ON", None), ("VOLT 400", None),
                                      ("SYST:ERR?", '0,"No error"')]) as psb:
        psb.set_voltage(400)

A pair `(command, None)` is a write; `(command, reply)` is a query; `(None, reply)` is a bare
read. A bytes reply is a binary block (`query_binary_values`). The reply `TIMEOUT` makes the read
time out (VI_ERROR_TMO) and `DROPPED` makes the write fail with a lost connection, so that the
drivers' fault handling is checked the same way. On a clean exit every pair must have been used;
an empty table asserts nothing was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import TypeVar

import numpy as np
from pyvisa import errors
from pyvisa.constants import StatusCode

from instruments.blocks import decode_block
from instruments.roles import Instrument, Limits


class Fault(Enum):
    """A table reply that is not a reply: the instrument misbehaves at this point."""

    TIMEOUT = "timeout"
    DROPPED = "dropped"


TIMEOUT = Fault.TIMEOUT
DROPPED = Fault.DROPPED

Reply = str | bytes | Fault
Pair = tuple[str | None, Reply | None]
DriverT = TypeVar("DriverT", bound=Instrument)


class ProtocolMismatch(AssertionError):
    """The driver sent something else than the table says, or left pairs unused."""


class FakeResource:
    """A message-based resource that replays a command/response table."""

    def __init__(self, pairs: Sequence[Pair]) -> None:
        self._pairs = list(pairs)
        self._position = 0
        self._pending: Reply | None = None
        self.sent: list[str] = []
        self.closed = False
        self.read_termination = "\n"
        self.write_termination = "\n"
        self.timeout = 2000

    def _next(self) -> tuple[int, Pair]:
        if self._position >= len(self._pairs):
            raise ProtocolMismatch(
                f"driver went past the end of the table ({len(self._pairs)} pairs); "
                f"sent so far: {self.sent}"
            )
        index = self._position
        self._position += 1
        return index, self._pairs[index]

    def write(self, message: str) -> int:
        if self.closed:
            raise ProtocolMismatch(f"write after close: {message!r}")
        self.sent.append(message)
        if self._pending is not None:
            raise ProtocolMismatch(
                f"{message!r} sent while the reply {self._pending!r} was still unread"
            )
        index, (command, reply) = self._next()
        if command != message:
            raise ProtocolMismatch(f"pair {index}: expected {command!r}, driver sent {message!r}")
        if reply is DROPPED:
            raise errors.VisaIOError(StatusCode.error_connection_lost)
        self._pending = reply
        return len(message)

    def _take(self) -> str | bytes:
        if self._pending is None:
            index, (command, reply) = self._next()
            if command is not None or reply is None:
                raise ProtocolMismatch(
                    f"pair {index}: driver read, but the table expects it to send {command!r}"
                )
        else:
            reply, self._pending = self._pending, None
        if reply is TIMEOUT:
            raise errors.VisaIOError(StatusCode.error_timeout)
        if isinstance(reply, Fault):
            raise errors.VisaIOError(StatusCode.error_connection_lost)
        return reply

    def read(self) -> str:
        reply = self._take()
        if isinstance(reply, bytes):
            raise ProtocolMismatch(f"text read, but the table holds a binary block {reply[:12]!r}")
        return reply

    def query(self, message: str) -> str:
        self.write(message)
        if self._pending is None:
            raise ProtocolMismatch(f"{message!r} was queried but the table gives no reply")
        return self.read()

    def query_binary_values(
        self,
        message: str,
        datatype: str = "f",
        is_big_endian: bool = False,
        container: type = list,
    ) -> object:
        """pyvisa's binary-block query: the table's reply is the whole block, header included."""
        self.write(message)
        reply = self._take()
        if not isinstance(reply, bytes):
            raise ProtocolMismatch(f"{message!r} expects a binary block, the table has {reply!r}")
        payload = decode_block(reply.rstrip(b"\n"))
        dtype = np.dtype(datatype).newbyteorder(">" if is_big_endian else "<")
        values = np.frombuffer(payload, dtype=dtype)
        return container(values) if container is not np.array else np.array(values)

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        if self._pending is not None:
            raise ProtocolMismatch(f"the reply {self._pending!r} was never read")
        if self._position != len(self._pairs):
            raise ProtocolMismatch(
                f"{len(self._pairs) - self._position} pair(s) never used, "
                f"first: {self._pairs[self._position]!r}"
            )


@contextmanager
def expected_protocol(
    driver: type[DriverT],
    pairs: Sequence[Pair],
    *,
    limits: Limits | None = None,
    options: Mapping[str, object] | None = None,
    name: str | None = None,
) -> Iterator[DriverT]:
    """Yield `driver` wired to a FakeResource replaying `pairs`; verify all were used on exit.

    With `options`, the driver is built like the registry builds it (`from_options`), so the
    commands that building sends belong at the start of the table.
    """
    resource = FakeResource(pairs)
    if options is None:
        instrument = driver(resource, limits=limits, name=name)
    else:
        built = driver.from_options(resource, limits=limits, options=options, name=name)
        assert isinstance(built, driver)
        instrument = built
    yield instrument
    resource.assert_done()
