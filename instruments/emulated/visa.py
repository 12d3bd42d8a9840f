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
IEEE 488.2 6.3.2.3 prescribes. No wall time is read or slept.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pyvisa import constants, errors, rname
from pyvisa.highlevel import VisaLibraryBase
from pyvisa.typing import VISARMSession, VISASession
from pyvisa.util import LibraryPath

from instruments.emulated.scpi import ErrorCode, ScpiError

StatusCode = constants.StatusCode
Attr = constants.ResourceAttribute


class TwinLike(Protocol):
    """What the library needs of a twin."""

    def handle(self, line: str) -> str | None: ...

    def push_error(self, error: ScpiError) -> None: ...


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


class EmulatedVisaLibrary(VisaLibraryBase):
    """A VisaLibraryBase whose resources are twins registered with `add()`."""

    _twins: dict[str, TwinLike]
    _sessions: dict[int, _Session]
    _session_ids: itertools.count[int]
    encoding: str

    @staticmethod
    def get_library_paths() -> Iterable[LibraryPath]:
        # pyvisa caches libraries by path: a fresh path per library keeps benches independent.
        return (LibraryPath(f"emulated:{next(_LIBRARY_IDS)}", "in-process twins"),)

    def _init(self) -> None:
        self._twins = {}
        self._sessions = {}
        self._session_ids = itertools.count(1)
        self.encoding = "ascii"

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
        state = self._session(session)
        if state.output:
            # IEEE 488.2 6.3.2.3: a new message before the reply was read interrupts the query.
            state.output.clear()
            state.twin.push_error(ScpiError(ErrorCode.QUERY_INTERRUPTED))
        state.pending_input.extend(data)
        terminator = state.attributes[Attr.termchar]
        *messages, rest = bytes(state.pending_input).split(bytes([terminator]))
        if rest and state.attributes[Attr.send_end_enabled]:
            messages.append(rest)  # END asserted with the last byte ends the message too
            rest = b""
        state.pending_input = bytearray(rest)
        for message in messages:
            reply = state.twin.handle(message.decode(self.encoding).rstrip("\r"))
            if reply is not None:
                state.output.append(bytearray(reply.encode(self.encoding) + b"\n"))
        return len(data), StatusCode.success

    def read(self, session: VISASession, count: int) -> tuple[bytes, StatusCode]:
        state = self._session(session)
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
