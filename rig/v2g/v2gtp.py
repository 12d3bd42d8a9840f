"""V2GTP framing: the 8-byte header of ISO 15118-20 (and -2) and a reader that finds whole frames.

A frame is `01 FE <payload type: u16> <payload length: u32> <payload>`, big-endian. `frame()`
builds one; a FrameReader is fed bytes in any fragmentation and yields whole frames. It checks
each header as soon as its 8 bytes are in and raises one precise error per defect: a wrong
protocol version, a wrong inverse version, a payload type it does not accept, a length above its
limit (refused from the header alone, so a length of 4 GB never allocates). It buffers at most
one header plus one payload of the allowed size, and `end()` says whether the stream ended in
the middle of a frame. After an error the reader is spent: the byte stream has lost its framing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from rig.v2g.frozen import fast_init

PROTOCOL_VERSION = 0x01
INVERSE_PROTOCOL_VERSION = 0xFE  # the bitwise inverse of the version, a cheap sanity check
HEADER_SIZE = 8
_HEADER = struct.Struct(">BBHI")

#: Largest payload accepted by default (rig's choice): 64 KiB holds the largest -20 messages the
#: rig exchanges (a CertificateInstallationRes with full chains is a few kB) with room to spare.
DEFAULT_MAX_PAYLOAD = 65_536


class PayloadType(IntEnum):
    """V2GTP payload types of ISO 15118-20 (Table 12 as Josev's enum gives it; the rig uses the
    first four and SDP). DIN 70121 and -2 use 0x8001 for all their EXI messages."""

    SAP = 0x8001  # supportedAppProtocol handshake (and every DIN / -2 EXI message)
    COMMON = 0x8002  # -20 CommonMessages ("main stream")
    AC = 0x8003  # -20 AC main stream
    DC = 0x8004  # -20 DC main stream
    ACDP = 0x8005  # (?) not used by the rig
    WPT = 0x8006  # (?) not used by the rig
    SCHEDULE_RENEGOTIATION = 0x8101  # (?) side stream, not used by the rig
    METERING_CONFIRMATION = 0x8102  # (?) side stream, not used by the rig
    ACDP_SYSTEM_STATUS = 0x8103  # (?) side stream, not used by the rig
    PARKING_STATUS = 0x8104  # (?) side stream, not used by the rig
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002  # (?) not used by the rig
    SDP_RESPONSE_WIRELESS = 0x9003  # (?) not used by the rig


#: What a -20 TCP stream carries between EVCC and SECC.
SESSION_PAYLOAD_TYPES = frozenset(
    {PayloadType.SAP, PayloadType.COMMON, PayloadType.AC, PayloadType.DC}
)


@fast_init
@dataclass(frozen=True, slots=True)
class Frame:
    """One whole V2GTP frame: its payload type, payload, and the frame's bytes as received."""

    payload_type: PayloadType
    payload: bytes
    data: bytes  # header and payload


class V2GTPError(Exception):
    """A defect in a V2GTP byte stream. `offset` is the stream position of the offending frame."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (frame at stream offset {offset})")
        self.offset = offset


class WrongProtocolVersion(V2GTPError):
    """Byte 0 of a header is not 0x01."""

    def __init__(self, version: int, offset: int) -> None:
        super().__init__(f"V2GTP protocol version 0x{version:02X}, expected 0x01", offset)
        self.version = version


class WrongInverseVersion(V2GTPError):
    """Byte 1 of a header is not 0xFE (the inverse of the version)."""

    def __init__(self, inverse: int, offset: int) -> None:
        super().__init__(f"V2GTP inverse protocol version 0x{inverse:02X}, expected 0xFE", offset)
        self.inverse = inverse


class UnknownPayloadType(V2GTPError):
    """A payload type this reader does not accept (unknown, or not expected on this stream)."""

    def __init__(self, payload_type: int, offset: int) -> None:
        super().__init__(f"V2GTP payload type 0x{payload_type:04X} not accepted here", offset)
        self.payload_type = payload_type


class PayloadTooLong(V2GTPError):
    """A header announces more payload than the reader's limit; refused before any is read."""

    def __init__(self, length: int, limit: int, offset: int) -> None:
        super().__init__(f"V2GTP payload length {length} exceeds the limit of {limit}", offset)
        self.length = length
        self.limit = limit


class TruncatedFrame(V2GTPError):
    """The stream ended with part of a frame buffered."""

    def __init__(self, have: int, need: int, offset: int) -> None:
        super().__init__(f"stream ended inside a V2GTP frame: {have} of {need} bytes", offset)
        self.have = have
        self.need = need


class ReaderSpent(V2GTPError):
    """feed() after an error or after end(): the stream's framing cannot be trusted any more."""


def frame(payload_type: int, body: bytes) -> bytes:
    """The V2GTP frame carrying `body` with `payload_type`."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type} outside 0..0xFFFF")
    if len(body) > 0xFFFFFFFF:
        raise ValueError(f"payload of {len(body)} bytes does not fit a V2GTP length field")
    return _HEADER.pack(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, payload_type, len(body)) + body


class FrameReader:
    """Whole frames out of a byte stream fed in any fragmentation; bounded buffering."""

    def __init__(
        self,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        accepted: Iterable[int] = SESSION_PAYLOAD_TYPES,
    ) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        # PayloadType() refuses a code outside the enum here, not in the middle of a feed
        self._by_code = {int(t): PayloadType(t) for t in accepted}
        self.accepted = frozenset(self._by_code.values())
        self._buffer = bytearray()
        self._need = HEADER_SIZE  # bytes the frame at the buffer's start needs in total
        self._payload_type: PayloadType | None = None  # set once that frame's header checked
        self._offset = 0  # stream offset of the frame at the buffer's start
        self._spent: V2GTPError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (never more than 8 + max_payload)."""
        return len(self._buffer)

    @property
    def mid_frame(self) -> bool:
        """True when part of a frame has arrived and the rest has not."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`; raises a V2GTPError subclass at the first defect."""
        if self._spent is not None:
            raise ReaderSpent(f"reader spent by an earlier error: {self._spent}", self._offset)
        frames: list[Frame] = []
        pos, end = 0, len(data)
        if not self._buffer:
            # Fast path, the usual case: whole frames at the start of `data`, no copying.
            while end - pos >= HEADER_SIZE:
                payload_type, length = self._check_header(data, pos)
                stop = pos + HEADER_SIZE + length
                if stop > end:
                    break
                frames.append(Frame(payload_type, data[pos + HEADER_SIZE : stop], data[pos:stop]))
                self._offset += stop - pos
                pos = stop
            if pos == end:
                return frames
        view = memoryview(data)
        while pos < end:
            take = min(self._need - len(self._buffer), end - pos)
            self._buffer += view[pos : pos + take]
            pos += take
            if len(self._buffer) < self._need:
                break
            if self._payload_type is None:
                self._payload_type, length = self._check_header(self._buffer, 0)
                self._need = HEADER_SIZE + length
                if len(self._buffer) < self._need:
                    continue
            whole = bytes(self._buffer)
            frames.append(Frame(self._payload_type, whole[HEADER_SIZE:], whole))
            self._offset += self._need
            self._buffer.clear()
            self._need = HEADER_SIZE
            self._payload_type = None
        return frames

    def end(self) -> None:
        """The stream has ended: raises TruncatedFrame if a frame was left incomplete."""
        if self._spent is not None:
            return
        have, need = len(self._buffer), self._need
        self._spent = ReaderSpent("stream ended", self._offset + have)
        if have:
            raise TruncatedFrame(have, need, self._offset)

    def _check_header(self, head: bytes | bytearray, at: int) -> tuple[PayloadType, int]:
        """The payload type and length of the header at head[at:at+8]; spends the reader and
        raises at a defect, before a single payload byte is kept."""
        try:
            if head[at] != PROTOCOL_VERSION:
                raise WrongProtocolVersion(head[at], self._offset)
            if head[at + 1] != INVERSE_PROTOCOL_VERSION:
                raise WrongInverseVersion(head[at + 1], self._offset)
            code = (head[at + 2] << 8) | head[at + 3]
            payload_type = self._by_code.get(code)
            if payload_type is None:
                raise UnknownPayloadType(code, self._offset)
            length = int.from_bytes(head[at + 4 : at + 8], "big")
            if length > self.max_payload:
                raise PayloadTooLong(length, self.max_payload, self._offset)
        except V2GTPError as e:
            self._spent = e
            self._buffer.clear()
            raise
        return payload_type, length
