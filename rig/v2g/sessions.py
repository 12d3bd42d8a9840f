"""What outlives a TCP connection: a paused session's ID and selections, kept for its resume.

After SessionStop(Pause) the EVCC and the SECC each keep a PausedSession; the next connection's
SessionSetupReq carries its SessionID and the SECC answers OK_OldSessionJoined if its SessionStore
still holds it. The engines are per connection, so the store is handed to each new SECC engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.v2g.controllers import ParameterSet
from rig.v2g.vocabulary import Service


@dataclass(frozen=True, slots=True)
class PausedSession:
    """A paused session: enough to resume it on a new connection."""

    session_id: bytes
    service: Service
    parameter_set: ParameterSet
    evcc_id: str
    evse_id: str


class SessionStore:
    """The SECC's paused sessions by SessionID (bounded: the oldest is dropped first)."""

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError("SessionStore capacity must be >= 1")
        self.capacity = capacity
        self._sessions: dict[bytes, PausedSession] = {}

    def keep(self, session: PausedSession) -> None:
        self._sessions.pop(session.session_id, None)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.capacity:
            del self._sessions[next(iter(self._sessions))]

    def take(self, session_id: bytes) -> PausedSession | None:
        """The paused session with this ID, removed from the store (a session resumes once)."""
        return self._sessions.pop(session_id, None)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)
