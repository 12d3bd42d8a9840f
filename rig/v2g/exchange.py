"""What the EVCC and SECC engines share: bytes in to decoded messages, messages out to Send.

`Wire` wraps a FrameReader and the EXI codec. `receive(data)` returns, in order, one item per
whole frame: an Inbound (decoded, with the frame for the trace) or an Undecodable (the payload
and the codec's complaint); a defect of the byte stream itself raises the V2GTPError. `send()`
encodes a message into its Send output. Also here: the errors an engine raises at its caller
for misuse (never for anything a peer does), and small helpers both engines use for outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rig.v2g.engine import Event, Send
from rig.v2g.exi import EXIDecodeError
from rig.v2g.frozen import fast_init
from rig.v2g.messages import decode_payload, encode_frame, message_name
from rig.v2g.v2gtp import (
    DEFAULT_MAX_PAYLOAD,
    SESSION_PAYLOAD_TYPES,
    FrameReader,
    PayloadType,
)
from rig.v2g.vocabulary import SessionPhase

#: How much of an undecodable payload an Event quotes (hex), so a 64 KiB frame of garbage does
#: not end up whole in every trace record.
QUOTE_BYTES = 64


class EngineUsageError(RuntimeError):
    """The engine's caller broke the Engine contract (start() twice, a call before start())."""


@fast_init
@dataclass(frozen=True, slots=True)
class Inbound:
    """A whole frame that decoded to a message."""

    frame: bytes
    payload_type: PayloadType
    name: str
    message: Any


@fast_init
@dataclass(frozen=True, slots=True)
class Undecodable:
    """A whole frame whose payload is not a message of its payload type's grammar."""

    payload_type: PayloadType
    payload: bytes
    error: str

    def event(self) -> Event:
        return Event(
            "malformed_message",
            {
                "payload_type": int(self.payload_type),
                "length": len(self.payload),
                "error": self.error,
                "payload_hex": self.payload[:QUOTE_BYTES].hex(),
            },
        )


class Wire:
    """V2GTP frames and EXI for one connection (bounded by `max_payload`)."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.reader = FrameReader(max_payload=max_payload, accepted=SESSION_PAYLOAD_TYPES)

    def receive(self, data: bytes) -> list[Inbound | Undecodable]:
        """Decoded frames completed by `data`; raises the reader's V2GTPError on a defect."""
        items: list[Inbound | Undecodable] = []
        for f in self.reader.feed(data):
            try:
                message = decode_payload(f.payload_type, f.payload)
            except EXIDecodeError as e:
                items.append(Undecodable(f.payload_type, f.payload, str(e)))
                continue
            items.append(Inbound(f.data, f.payload_type, message_name(message), message))
        return items

    @property
    def mid_frame(self) -> bool:
        return self.reader.mid_frame

    @staticmethod
    def send(message: Any) -> Send:
        """The Send output of a message (raises EXIEncodeError if it breaks the schema)."""
        payload_type, data = encode_frame(message)
        return Send(data, int(payload_type), message_name(message), message)


def phase_event(phase: SessionPhase) -> Event:
    return Event("session_phase", {"phase": phase.value})
