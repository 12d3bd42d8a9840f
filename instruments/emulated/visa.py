"""An in-process VISA library: pyvisa resources whose far end is an emulated twin.

    library = EmulatedVisaLibrary()
    library.add("USB0::0x0B21::0x0025::EMU0001::INSTR", WT5000Twin(world, clock.now))
    rm = pyvisa.ResourceManager(library)
    analyzer = rm.open_resource("USB0::0x0B21::0x0025::EMU0001::INSTR")

Drivers run unchanged through it. A write hands every complete message (split on the
termination character, the last one also ended by END) to the twin and queues its reply; a read
returns the queued bytes up to and including the termination character. Nothing arrives later in
an emulation, so a read with nothing queued fails at once with VI_ERROR_TMO instead of waiting
out the timeout (the timeout attribute is kept and reported like any other). Each reply is one
message ended by END, so a read never runs into the next reply, with or without termchar. A write while a
reply is unread discards that reply and queues -410 "Query INTERRUPTED" in the twin, as
IEEE 488.2 6.3.2.3 prescribes. Replies travel as latin-1 (one byte per character), so binary
blocks pass unchanged.

Commands that take time (a WT's wait for its next update, a scope's :DIGitize) suspend the twin;
the library then lets the bench's clock run to the twin's `blocked_until` with the sleep hook
given to `use_clock(clock.sleep_until)` (in virtual time: the VirtualClock jumps; nothing else
happens meanwhile, as the caller is blocked in its VISA call) and resumes it. A wait longer than
the session's timeout ends as the real one would: the clock has run to the timeout, the twin's
message is abandoned (-410 in its queue) and the read fails with VI_ERROR_TMO. Without a clock
hook the library cannot let time pass: it resumes the twin `forced` (waits end at once, see
scpi.py) and counts it in `forced_waits`. A twin told to drop the connection ends its session:
every later call on it fails with VI_ERROR_CONN_LOST. Otherwise no wall time is read or slept.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pyvisa import constants, errors, rname
from pyvisa.highlevel import VisaLibraryBase
from pyvisa.typing import VISARMSession, VISASession
from pyvisa.util import LibraryPath

from instruments.emulated.scpi import ErrorCode, ScpiError
from instruments.emulated.twin import ConnectionDropped

StatusCode = constants.StatusCode
Attr = constants.ResourceAttribute


class TwinLike(Protocol):
    """What the library needs of a twin."""

    def handle(self, line: str) -> str | None: ...

    def push_error(self, error: ScpiError) -> None: ...

    @property
    def blocked_until(self) -> float | None: ...

    def resume(self, *, forced: bool = False) -> str | None: ...

    def abort(self) -> None: ...

    def now(self) -> float: ...


_LIBRARY_IDS = itertools.count(1)

#: Attribute values a fresh session reports (VISA 5.0 defaults).
_DEFAULT_ATTRIBUTES: dict[int, Any] = {
    Attr.timeout_value: 2000,
    Attr.termchar: ord("\n"),
    Attr.termchar_enabled: constants.VI_FALSE,
    Attr.send_end_enabled: constants.VI_TRUE,
    Attr.suppress_end_enabled: constants.VI_FALSE,
    Attr.io_prot: constants.IOProtocol.normal,
    Attr.dma_allow_enabled: constants.VI_FALSE,
    Attr.is_4882_compliant: constants.VI_TRUE,
    Attr.resource_lock_state: constants.AccessModes.no_lock,
    Attr.max_queue_length: 50,
}


@dataclass
class _Session:
    resource_name: str
    twin: TwinLike
    attributes: dict[int, Any] = field(default_factory=lambda: dict(_DEFAULT_ATTRIBUTES))
    pending_input: bytearray = field(default_factory=bytearray)
    #: Replies not yet read, each one message (ended by the terminator and END).
    output: deque[bytearray] = field(default_factory=deque)
    #: The twin dropped this session: every call fails with VI_ERROR_CONN_LOST.
    lost: bool = False
    #: A reply lost to a wait past the timeout: the next read times out.
    timed_out: bool = False


class EmulatedVisaLibrary(VisaLibraryBase):
    """A VisaLibraryBase whose resources are twins registered with `add()`."""

    _twins: dict[str, TwinLike]
    _sessions: dict[int, _Session]
    _session_ids: itertools.count[int]
    encoding: str
    #: Longest input kept for one message not yet terminated (bytes); beyond it the input is
    #: handed to the twin as it is, which refuses it (-363) like an overrun input buffer.
    max_input: int = 1 << 20

    @staticmethod
    def get_library_paths() -> Iterable[LibraryPath]:
        # pyvisa caches libraries by path: a fresh path per library keeps benches independent.
        return (LibraryPath(f"emulated:{next(_LIBRARY_IDS)}", "in-process twins"),)

    def _init(self) -> None:
        self._twins = {}
        self._sessions = {}
        self._session_ids = itertools.count(1)
        self.encoding = "latin-1"
        self._sleep_until: Callable[[float], None] | None = None
        #: Waits that ended at once because no clock hook was given (see the module docstring).
        self.forced_waits = 0

    def use_clock(self, sleep_until: Callable[[float], None]) -> None:
        """Let twins' waits run the bench's clock (`clock.sleep_until`)."""
        self._sleep_until = sleep_until

    # --- the emulated bench ------------------------------------------------------------------

    def add(self, resource_name: str, twin: TwinLike) -> str:
        """Attach `twin` under `resource_name`; returns the canonical name pyvisa will list."""
        canonical = rname.to_canonical_name(resource_name)
        if canonical in self._twins:
            raise ValueError(f"{canonical} is already attached")
        self._twins[canonical] = twin
        return canonical

    # --- VISA operations ---------------------------------------------------------------------

    def open_default_resource_manager(self) -> tuple[VISARMSession, StatusCode]:
        return VISARMSession(0), StatusCode.success

    def list_resources(self, session: VISARMSession, query: str = "?*::INSTR") -> tuple[str, ...]:
        return rname.filter(self._twins, query)

    def open(
        self,
        session: VISARMSession,
        resource_name: str,
        access_mode: constants.AccessModes = constants.AccessModes.no_lock,
        open_timeout: int = constants.VI_TMO_IMMEDIATE,
    ) -> tuple[VISASession, StatusCode]:
        try:
            canonical = rname.to_canonical_name(resource_name)
        except rname.InvalidResourceName as error:
            raise errors.VisaIOError(StatusCode.error_invalid_resource_name) from error
        twin = self._twins.get(canonical)
        if twin is None:
            raise errors.VisaIOError(StatusCode.error_resource_not_found)
        handle = next(self._session_ids)
        self._sessions[handle] = _Session(canonical, twin)
        return VISASession(handle), StatusCode.success

    def close(self, session: Any) -> StatusCode:
        if session == 0:
            return StatusCode.success  # the default resource manager session
        self._session(session)
        del self._sessions[session]
        return StatusCode.success

    def write(self, session: VISASession, data: bytes) -> tuple[int, StatusCode]:
        state = self._live(session)
        if state.output:
            # IEEE 488.2 6.3.2.3: a new message before the reply was read interrupts the query.
            state.output.clear()
            state.twin.push_error(ScpiError(ErrorCode.QUERY_INTERRUPTED))
        state.timed_out = False
        state.pending_input.extend(data)
        terminator = state.attributes[Attr.termchar]
        *messages, rest = bytes(state.pending_input).split(bytes([terminator]))
        if rest and (state.attributes[Attr.send_end_enabled] or len(rest) > self.max_input):
            messages.append(rest)  # END asserted with the last byte ends the message too
            rest = b""
        state.pending_input = bytearray(rest)
        for message in messages:
            try:
                reply = self._run(state, message.decode(self.encoding).rstrip("\r"))
            except ConnectionDropped:
                state.lost = True
                raise errors.VisaIOError(StatusCode.error_connection_lost) from None
            if reply is not None:
                state.output.append(bytearray(reply.encode(self.encoding) + b"\n"))
        return len(data), StatusCode.success

    def _run(self, state: _Session, line: str) -> str | None:
        """Hand one message to the twin and let time pass while it is suspended."""
        twin = state.twin
        reply = twin.handle(line)
        started = twin.now()
        timeout_ms = state.attributes.get(Attr.timeout_value, 2000)
        timeout_s = (
            math.inf if timeout_ms in (None, constants.VI_TMO_INFINITE) else timeout_ms / 1000
        )
        while (until := twin.blocked_until) is not None:
            if self._sleep_until is None:
                self.forced_waits += 1
                reply = twin.resume(forced=True)
                continue
            if until - started > timeout_s:
                # The client gives up at its timeout; the instrument drops the message.
                self._sleep_until(started + timeout_s)
                twin.abort()
                state.timed_out = True
                return None
            self._sleep_until(until)
            reply = twin.resume()
        return reply

    def read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        state = self._live(session)
        if not state.output:
            raise errors.VisaIOError(StatusCode.error_timeout)
        message = state.output[0]
        # One reply is one message: the read ends at its END like a USBTMC transfer would,
        # or earlier at the termination character or the count.
        limit = min(count, len(message))
        status = StatusCode.success if limit == len(message) else StatusCode.success_max_count_read
        if state.attributes[Attr.termchar_enabled]:
            stop = message.find(bytes([state.attributes[Attr.termchar]]), 0, limit)
            if stop >= 0:
                limit = stop + 1
                status = StatusCode.success_termination_character_read
        chunk = bytes(message[:limit])
        del message[:limit]
        if not message:
            state.output.popleft()
        return chunk, status

    def clear(self, session: VISASession) -> StatusCode:
        state = self._session(session)
        state.output.clear()
        state.pending_input.clear()
        return StatusCode.success

    def flush(self, session: VISASession, mask: constants.BufferOperation) -> StatusCode:
        self._session(session)
        return StatusCode.success

    def read_stb(self, session: VISASession) -> tuple[int, StatusCode]:
        state = self._session(session)
        # IEEE 488.2 11.2: bit 4 (MAV) while a reply waits in the output queue.
        return (0x10 if state.output else 0), StatusCode.success

    def get_attribute(self, session: Any, attribute: Any) -> tuple[Any, StatusCode]:
        state = self._session(session)
        if attribute == Attr.resource_name:
            return state.resource_name, StatusCode.success
        if attribute in state.attributes:
            return state.attributes[attribute], StatusCode.success
        raise errors.VisaIOError(StatusCode.error_nonsupported_attribute)

    def set_attribute(self, session: Any, attribute: Any, attribute_state: Any) -> StatusCode:
        state = self._session(session)
        state.attributes[attribute] = attribute_state
        return StatusCode.success

    def disable_event(
        self,
        session: VISASession,
        event_type: constants.EventType,
        mechanism: constants.EventMechanism,
    ) -> StatusCode:
        # pyvisa switches events off when closing; the twins raise none, so nothing to do.
        self._session(session)
        return StatusCode.success

    def discard_events(
        self,
        session: VISASession,
        event_type: constants.EventType,
        mechanism: constants.EventMechanism,
    ) -> StatusCode:
        self._session(session)
        return StatusCode.success

    def lock(
        self,
        session: VISASession,
        lock_type: constants.Lock,
        timeout: int,
        requested_key: str | None = None,
    ) -> tuple[str, StatusCode]:
        self._session(session)
        return requested_key or "", StatusCode.success

    def unlock(self, session: VISASession) -> StatusCode:
        self._session(session)
        return StatusCode.success

    def _session(self, session: Any) -> _Session:
        try:
            return self._sessions[cast(int, session)]
        except KeyError:
            raise errors.InvalidSession() from None

    def _live(self, session: Any) -> _Session:
        state = self._session(session)
        if state.lost:
            raise errors.VisaIOError(StatusCode.error_connection_lost)
        return state
