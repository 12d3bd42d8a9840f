"""What a SLAC side reports as it goes: frames sent and received, state changes, timeouts, the
outcome. The trace takes these as events (src "slac"); tests and benchmarks read them directly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RecordKind(StrEnum):
    SENT = "sent"
    RECEIVED = "received"
    IGNORED = "ignored"  # a frame the side read and set aside (another run, a stray type)
    UNDECODABLE = "undecodable"
    STATE = "state"
    TIMEOUT = "timeout"
    MATCHED = "matched"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SlacRecord:
    """One thing that happened on one side, at time t on the run's timeline."""

    t: float
    side: str  # "ev" or "evse"
    kind: RecordKind
    name: str  # message name, state name, or what failed
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_event(self) -> dict[str, Any]:
        return {"side": self.side, "kind": str(self.kind), "name": self.name, **self.data}


Recorder = Callable[[SlacRecord], None]


def discard(_: SlacRecord) -> None:
    """The recorder of a side nobody listens to."""


@dataclass(frozen=True, slots=True)
class SlacMatch:
    """The outcome of a successful matching process, as one side saw it."""

    run_id: bytes
    ev_mac: bytes
    evse_mac: bytes
    nid: bytes
    nmk: bytes
    attenuation_db: float | None  # the mean of the averaged profile (None: no profile)
    started_at: float
    matched_at: float

    @property
    def duration(self) -> float:
        return self.matched_at - self.started_at
