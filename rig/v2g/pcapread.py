"""Reading V2G captures (pcap, pcapng): TCP streams reassembled per direction, SDP, SLAC frames.

    capture = read_capture("OUT/v2g.pcapng")        # or a real car's capture, or bytes
    for connection in capture.connections:
        for stream in connection.streams:            # one per direction
            split = split_v2gtp(stream)              # V2GTP frames with frame numbers and times
    capture.sdp, capture.homeplug, capture.undecodable

What it handles: pcap (micro- and nanosecond, either byte order) and pcapng (sections, several
interfaces, if_tsresol and if_tsoffset, EPB/SPB/PB, Decryption Secrets Blocks with a TLS key log);
Ethernet (with up to two VLAN tags), Linux cooked (SLL, SLL2) and raw IP link types; IPv6 with
extension headers and IPv4; TCP reassembly with out-of-order and retransmitted segments, a stream
cut mid-segment, and connections reopened on the same ports.

Every input is bounded and nothing in a file makes it raise: a length field that points past the
block, the packet or the file (a 4 GB caplen, an IPv6 payload length beyond the frame, a TCP data
offset beyond the segment, a V2GTP length over the limit) becomes an `Undecodable` with the frame
number (1-based, as Wireshark numbers frames) and the reading goes on where it can (it stops only
when the file's own framing is lost). Memory grows with the useful content of the file; a length
field can make the reader ask for at most `ReaderLimits.max_block` (16 MiB) at once, and
`ReaderLimits` holds every other bound.

The parsing is our own (struct over bytes) rather than scapy's dissectors: they cost ~80 us a
frame and trust length fields; tests compare this reader with scapy and tshark on the same files.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import BinaryIO, NamedTuple

_NS_PER_S = 1_000_000_000


class ProblemKind(Enum):
    """Why part of a capture could not be decoded."""

    NOT_A_CAPTURE = "not a pcap or pcapng file"
    TRUNCATED_FILE = "the file ends inside a block or record"
    BAD_BLOCK = "a block or record header that cannot be right"
    BAD_FRAME = "a frame whose lengths contradict each other"
    CUT_FRAME = "a frame shorter than its headers say (cut by the capture or a lying length)"
    BAD_HEADER = "a protocol header that cannot be parsed"
    FRAGMENT = "an IP fragment (not reassembled)"
    SEQUENCE_JUMP = "a TCP segment far outside its stream"
    STREAM_GAP = "TCP stream bytes never captured"
    LIMIT = "a reader limit was reached"
    V2GTP_HEADER = "bytes that are not a V2GTP header"
    V2GTP_LENGTH = "a V2GTP payload length over the limit"
    V2GTP_INCOMPLETE = "a V2GTP frame that does not complete"


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Something in the capture that could not be decoded, and where."""

    frame: int | None  # the frame number (1-based), None for the file itself
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """Every bound of the reader (rig's own choices, sized far above any V2G session)."""

    max_block: int = 16 << 20  # one pcapng block or pcap record
    max_frame: int = 1 << 20  # one captured frame
    max_key_log: int = 1 << 20  # all Decryption Secrets Blocks together
    max_out_of_order: int = 4 << 20  # segments waiting for a gap to fill, per direction
    max_sequence_jump: int = 64 << 20  # how far ahead of the stream a segment may start
    max_stream: int = 512 << 20  # bytes kept per direction
    max_connections: int = 100_000
    max_udp: int = 100_000  # SDP datagrams kept
    max_homeplug: int = 100_000  # HomePlug AV frames kept
    max_problems: int = 10_000  # Undecodable records kept (the rest are counted)


class LinkType(IntEnum):
    """Link types this reader decodes (tcpdump.org LINKTYPE_ values)."""

    ETHERNET = 1
    RAW = 101
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_ETHERTYPE_HOMEPLUG_AV = 0x88E1
_ETHERTYPE_VLAN = (0x8100, 0x88A8)
_SDP_PORT = 15118


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame of the file as captured."""

    number: int  # 1-based
    time_ns: int  # since the Unix epoch
    linktype: int
    data: bytes
    wire_length: int  # its length on the wire (more than len(data) when the capture cut it)


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    address: str  # compressed text form, e.g. "fe80::1"
    port: int

    def __str__(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """A UDP datagram to or from port 15118 (SDP)."""

    frame: int
    time_ns: int
    src: Endpoint
    dst: Endpoint
    payload: bytes
    cut: bool  # fewer bytes captured than the datagram held


@dataclass(frozen=True, slots=True)
class HomePlugFrame:
    """A HomePlug AV management frame (ethertype 0x88E1: SLAC and the modem's own messages)."""

    frame: int
    time_ns: int
    src_mac: bytes
    dst_mac: bytes
    mmv: int | None  # management message version
    mmtype: int | None  # MMTYPE (little-endian on the wire); None if the frame is too short


@dataclass(frozen=True, slots=True)
class ByteMark:
    """From stream offset `offset` on (to the next mark), the bytes came in frame `frame`."""

    offset: int
    time_ns: int
    frame: int


@dataclass(frozen=True, slots=True)
class StreamRun:
    """Contiguous bytes of a TCP stream; `marks` say which frame brought which of them."""

    offset: int
    data: bytes
    marks: tuple[ByteMark, ...]

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    def mark_at(self, offset: int) -> ByteMark:
        """The mark of the frame that brought the byte at stream offset `offset`."""
        i = bisect.bisect_right(self.marks, offset, key=lambda m: m.offset) - 1
        return self.marks[max(i, 0)]


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Stream bytes [offset, offset + length) that the capture does not hold."""

    offset: int
    length: int
    frame: int  # the first frame after the gap


@dataclass(frozen=True, slots=True)
class TcpStream:
    """One direction of a TCP connection, reassembled."""

    src: Endpoint
    dst: Endpoint
    runs: tuple[StreamRun, ...]  # in stream order; more than one only around gaps
    gaps: tuple[StreamGap, ...]
    isn: int | None  # the initial sequence number, None when the SYN was not captured
    fin: bool
    segments: int  # segments that carried payload
    retransmitted_bytes: int  # payload bytes seen again after they were first captured
    conflicting_retransmissions: int  # retransmissions whose bytes differed from the first copy

    @property
    def data(self) -> bytes:
        """All captured bytes in order (gaps left out: see `gaps`)."""
        return b"".join(run.data for run in self.runs)

    @property
    def complete(self) -> bool:
        """True when every byte from the stream start to its end was captured."""
        return not self.gaps and (not self.runs or self.runs[0].offset == 0)


@dataclass(frozen=True, slots=True)
class TcpConnection:
    """One TCP connection: a SYN (or the first segment seen) on a 4-tuple until RST or FINs."""

    index: int  # 0-based, in order of the first frame
    client: Endpoint | None  # who sent the SYN; None when no SYN was captured
    endpoints: tuple[Endpoint, Endpoint]  # (first seen source, first seen destination)
    first_frame: int
    last_frame: int
    syn: bool
    reset: bool
    streams: tuple[TcpStream, TcpStream]  # from endpoints[0], from endpoints[1]

    def stream_from(self, src: Endpoint) -> TcpStream:
        for stream in self.streams:
            if stream.src == src:
                return stream
        raise KeyError(f"{src} is not an end of this connection")

    @property
    def payload_bytes(self) -> int:
        return sum(len(run.data) for stream in self.streams for run in stream.runs)


@dataclass(frozen=True, slots=True)
class Capture:
    """What read_capture() found in a file."""

    format: str  # "pcap", "pcapng" or "unknown"
    frames: int
    connections: tuple[TcpConnection, ...]
    sdp: tuple[UdpDatagram, ...]  # UDP datagrams to or from port 15118
    homeplug: tuple[HomePlugFrame, ...]
    tls_key_log: bytes  # from Decryption Secrets Blocks (pcapng)
    undecodable: tuple[Undecodable, ...]
    undecodable_dropped: int  # beyond ReaderLimits.max_problems

    @property
    def data_connections(self) -> tuple[TcpConnection, ...]:
        """The connections that carried payload bytes."""
        return tuple(c for c in self.connections if c.payload_bytes)


class _Problems:
    """A bounded list of Undecodable records."""

    def __init__(self, limit: int) -> None:
        self.items: list[Undecodable] = []
        self.dropped = 0
        self._limit = limit

    def add(self, frame: int | None, kind: ProblemKind, detail: str) -> None:
        if len(self.items) < self._limit:
            self.items.append(Undecodable(frame, kind, detail))
        else:
            self.dropped += 1


# -- frames from the file ---------------------------------------------------------------------

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BYTE_ORDER = 0x1A2B3C4D


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    resolution: tuple[bool, int]  # (power of two, exponent): units of 10**-e or 2**-e seconds
    offset_s: int

    def time_ns(self, units: int) -> int:
        binary, exponent = self.resolution
        if binary:
            ns = (units * _NS_PER_S) >> exponent
        elif exponent <= 9:
            ns = units * 10 ** (9 - exponent)
        else:
            ns = units // 10 ** (exponent - 9)
        return ns + self.offset_s * _NS_PER_S


class FrameReader:
    """The frames of a pcap or pcapng file, in file order, with bounded reads.

    Iterate once. Problems with the file go to `problems`; `tls_key_log` collects Decryption
    Secrets Blocks; `format` says what the file was.
    """

    def __init__(self, source: BinaryIO, problems: _Problems, limits: ReaderLimits) -> None:
        self._f = source
        self.problems = problems
        self.limits = limits
        self.format = "unknown"
        self.frames = 0
        self._key_log = bytearray()

    @property
    def tls_key_log(self) -> bytes:
        return bytes(self._key_log)

    def _read(self, n: int) -> bytes:
        # n is always checked against a limit first: a length field never sizes an allocation.
        return self._f.read(n)

    def __iter__(self) -> Iterator[CapturedFrame]:
        head = self._read(4)
        if head == _PCAPNG_SHB:
            self.format = "pcapng"
            yield from self._pcapng(head)
        elif head in _PCAP_MAGICS:
            self.format = "pcap"
            yield from self._pcap(head)
        else:
            self.problems.add(
                None, ProblemKind.NOT_A_CAPTURE, f"starts with {head.hex() or 'nothing'}"
            )

    # pcap: a 24-byte file header, then records of a 16-byte header and the frame.
    def _pcap(self, magic: bytes) -> Iterator[CapturedFrame]:
        order, ns_per_unit = _PCAP_MAGICS[magic]
        header = self._read(20)
        if len(header) < 20:
            self.problems.add(None, ProblemKind.TRUNCATED_FILE, "pcap file header cut")
            return
        network = struct.unpack(order + "I", header[16:20])[0]
        linktype = network & 0x0FFFFFFF  # the top bits carry the FCS length
        record = struct.Struct(order + "IIII")
        while True:
            number = self.frames + 1
            raw = self._read(16)
            if not raw:
                return
            if len(raw) < 16:
                self.problems.add(number, ProblemKind.TRUNCATED_FILE, "pcap record header cut")
                return
            seconds, fraction, caplen, wire_length = record.unpack(raw)
            if caplen > self.limits.max_frame:
                # The record's own length is all that frames the next one: reading stops.
                self.problems.add(
                    number, ProblemKind.BAD_BLOCK, f"pcap record claims {caplen} captured bytes"
                )
                return
            data = self._read(caplen)
            if len(data) < caplen:
                self.problems.add(
                    number,
                    ProblemKind.TRUNCATED_FILE,
                    f"pcap record has {len(data)} of {caplen} bytes",
                )
                return
            self.frames = number
            yield CapturedFrame(
                number,
                seconds * _NS_PER_S + fraction * ns_per_unit,
                linktype,
                data,
                max(wire_length, caplen),
            )

    # pcapng: blocks of type, length, body, length.
    def _pcapng(self, first: bytes) -> Iterator[CapturedFrame]:
        order = "<"
        interfaces: list[_Interface] = []
        head = first + self._read(4)
        while True:
            number = self.frames + 1
            if head[:4] == _PCAPNG_SHB:
                head += self._read(4)  # the byte-order magic decides how to read the length
                if len(head) < 12:
                    self.problems.add(number, ProblemKind.TRUNCATED_FILE, "section header cut")
                    return
                if head[8:12] == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif head[8:12] == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    self.problems.add(
                        number, ProblemKind.BAD_BLOCK, "section header byte-order magic"
                    )
                    return
                interfaces = []
            elif len(head) < 8:
                if head:
                    self.problems.add(number, ProblemKind.TRUNCATED_FILE, "block header cut")
                return
            block_type, length = struct.unpack(order + "II", head[:8])
            minimum = 28 if block_type == 0x0A0D0D0A else 12
            if length < minimum or length % 4 or length > self.limits.max_block:
                self.problems.add(
                    number,
                    ProblemKind.BAD_BLOCK,
                    f"block type 0x{block_type:08x} claims length {length}",
                )
                return
            rest = self._read(length - len(head))  # the body and the trailing length
            if len(rest) < length - len(head):
                self.problems.add(
                    number,
                    ProblemKind.TRUNCATED_FILE,
                    f"block type 0x{block_type:08x} of {length} bytes cut",
                )
                return
            if rest[-4:] != head[4:8]:
                self.problems.add(
                    number,
                    ProblemKind.BAD_BLOCK,
                    f"block type 0x{block_type:08x}: trailing length differs",
                )
                return
            body = head[8:] + rest[:-4]
            if block_type in (0x00000006, 0x00000002, 0x00000003):
                self.frames = number
                frame = self._packet_block(number, block_type, body, order, interfaces)
                if frame is not None:
                    yield frame
            elif block_type == 0x00000001:
                interface = _interface_block(body, order)
                if interface is None:
                    self.problems.add(
                        number, ProblemKind.BAD_BLOCK, "interface description too short"
                    )
                    # Keep the numbering of interfaces: a placeholder that decodes nothing.
                    interface = _Interface(-1, 0, (False, 6), 0)
                interfaces.append(interface)
            elif block_type == 0x0000000A:
                self._secrets_block(number, body, order)
            # Other blocks (name resolution, statistics, custom) carry nothing this reader uses.
            head = self._read(8)

    def _packet_block(
        self, number: int, block_type: int, body: bytes, order: str, interfaces: list[_Interface]
    ) -> CapturedFrame | None:
        if block_type == 0x00000003:  # Simple Packet Block: interface 0, no timestamp
            if len(body) < 4 or not interfaces:
                self.problems.add(
                    number, ProblemKind.BAD_FRAME, "simple packet block without interface"
                )
                return None
            interface = interfaces[0]
            wire_length = struct.unpack(order + "I", body[:4])[0]
            caplen = min(wire_length, len(body) - 4)
            if interface.snaplen:
                caplen = min(caplen, interface.snaplen)
            return CapturedFrame(number, 0, interface.linktype, body[4 : 4 + caplen], wire_length)
        if block_type == 0x00000006:
            if len(body) < 20:
                self.problems.add(number, ProblemKind.BAD_FRAME, "enhanced packet block too short")
                return None
            index, high, low, caplen, wire_length = struct.unpack(order + "IIIII", body[:20])
        else:  # obsolete Packet Block
            if len(body) < 20:
                self.problems.add(number, ProblemKind.BAD_FRAME, "packet block too short")
                return None
            index, _, high, low, caplen, wire_length = struct.unpack(order + "HHIIII", body[:20])
        if index >= len(interfaces):
            self.problems.add(number, ProblemKind.BAD_FRAME, f"unknown interface {index}")
            return None
        if caplen > len(body) - 20:
            self.problems.add(
                number,
                ProblemKind.BAD_FRAME,
                f"captured length {caplen} beyond its block ({len(body) - 20})",
            )
            return None
        interface = interfaces[index]
        return CapturedFrame(
            number,
            interface.time_ns(high << 32 | low),
            interface.linktype,
            body[20 : 20 + caplen],
            max(wire_length, caplen),
        )

    def _secrets_block(self, number: int, body: bytes, order: str) -> None:
        if len(body) < 8:
            self.problems.add(number, ProblemKind.BAD_BLOCK, "decryption secrets block too short")
            return
        secrets_type, length = struct.unpack(order + "II", body[:8])
        if length > len(body) - 8:
            self.problems.add(
                number, ProblemKind.BAD_BLOCK, f"secrets length {length} beyond its block"
            )
            return
        if secrets_type != 0x544C534B:  # only TLS key logs are of use here
            return
        if len(self._key_log) + length > self.limits.max_key_log:
            self.problems.add(number, ProblemKind.LIMIT, "TLS key log over the limit")
            return
        self._key_log += body[8 : 8 + length]


def _interface_block(body: bytes, order: str) -> _Interface | None:
    if len(body) < 8:
        return None
    linktype, _, snaplen = struct.unpack(order + "HHI", body[:8])
    resolution = (False, 6)
    offset_s = 0
    pos = 8
    while pos + 4 <= len(body):
        code, length = struct.unpack(order + "HH", body[pos : pos + 4])
        value = body[pos + 4 : pos + 4 + length]
        if code == 0 or len(value) < length:
            break
        if code == 9 and length == 1:  # if_tsresol
            resolution = (bool(value[0] & 0x80), value[0] & 0x7F)
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            offset_s = struct.unpack(order + "q", value)[0]
        pos += 4 + length + (-length & 3)
    if resolution[1] > 63:  # not a meaningful resolution; 2**-127 s would be nonsense
        resolution = (False, 6)
    return _Interface(linktype, snaplen, resolution, offset_s)


# -- protocol headers -------------------------------------------------------------------------


#: An endpoint inside the reader: (raw address bytes, port); compared and hashed in C.
_Key = tuple[bytes, int]


class _Segment(NamedTuple):
    """A TCP segment on its way to reassembly (a tuple: one is made per frame)."""

    frame: int
    time_ns: int
    src: _Key
    dst: _Key
    seq: int
    flags: int
    payload: bytes
    declared: int  # payload bytes the headers announce (more than len(payload) when cut)


_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_IPV6_EXTENSIONS = {0, 43, 60, 51, 135, 139, 140}  # hop-by-hop, routing, destination, AH, ...


class _Dissector:
    """Frame bytes -> TCP segments, SDP datagrams and HomePlug AV frames."""

    def __init__(self, problems: _Problems, limits: ReaderLimits) -> None:
        self.problems = problems
        self.limits = limits
        self.sdp: list[UdpDatagram] = []
        self.homeplug: list[HomePlugFrame] = []
        self._addresses: dict[bytes, str] = {}

    def _address(self, raw: bytes) -> str:
        text = self._addresses.get(raw)
        if text is None:
            text = str(ipaddress.ip_address(raw))
            if len(self._addresses) < 65536:
                self._addresses[raw] = text
        return text

    def dissect(self, frame: CapturedFrame) -> _Segment | None:
        data = frame.data
        cut = len(data) < frame.wire_length
        linktype = frame.linktype
        if linktype == LinkType.ETHERNET:
            if len(data) < 14:
                return self._bad(
                    frame, ProblemKind.CUT_FRAME, f"Ethernet header cut ({len(data)} bytes)"
                )
            ethertype = int.from_bytes(data[12:14], "big")
            pos = 14
            for _ in range(2):
                if ethertype not in _ETHERTYPE_VLAN:
                    break
                if len(data) < pos + 4:
                    return self._bad(frame, ProblemKind.CUT_FRAME, "VLAN tag cut")
                ethertype = int.from_bytes(data[pos + 2 : pos + 4], "big")
                pos += 4
            if ethertype == _ETHERTYPE_HOMEPLUG_AV:
                self._homeplug(frame, data, pos)
                return None
        elif linktype == LinkType.LINUX_SLL:
            if len(data) < 16:
                return self._bad(frame, ProblemKind.CUT_FRAME, "cooked header cut")
            ethertype, pos = int.from_bytes(data[14:16], "big"), 16
        elif linktype == LinkType.LINUX_SLL2:
            if len(data) < 20:
                return self._bad(frame, ProblemKind.CUT_FRAME, "cooked header cut")
            ethertype, pos = int.from_bytes(data[0:2], "big"), 20
        elif linktype in (LinkType.RAW, LinkType.IPV4, LinkType.IPV6):
            if not data:
                return self._bad(frame, ProblemKind.CUT_FRAME, "empty frame")
            ethertype, pos = (_ETHERTYPE_IPV6 if data[0] >> 4 == 6 else _ETHERTYPE_IPV4), 0
        else:
            return None  # a link type with no V2G traffic on it
        if ethertype == _ETHERTYPE_IPV6:
            return self._ipv6(frame, data, pos, cut)
        if ethertype == _ETHERTYPE_IPV4:
            return self._ipv4(frame, data, pos, cut)
        return None

    def _bad(self, frame: CapturedFrame, kind: ProblemKind, detail: str) -> _Segment | None:
        """Record why a frame is undecodable; the frame yields nothing."""
        self.problems.add(frame.number, kind, detail)
        return None

    def _homeplug(self, frame: CapturedFrame, data: bytes, pos: int) -> None:
        if len(self.homeplug) >= self.limits.max_homeplug:
            self.problems.add(frame.number, ProblemKind.LIMIT, "HomePlug AV frames over the limit")
            return
        mmv = data[pos] if len(data) > pos else None
        mmtype = int.from_bytes(data[pos + 1 : pos + 3], "little") if len(data) >= pos + 3 else None
        self.homeplug.append(
            HomePlugFrame(frame.number, frame.time_ns, data[6:12], data[0:6], mmv, mmtype)
        )

    def _ipv6(self, frame: CapturedFrame, data: bytes, pos: int, cut: bool) -> _Segment | None:
        if len(data) < pos + 40:
            return self._bad(frame, ProblemKind.CUT_FRAME, "IPv6 header cut")
        if data[pos] >> 4 != 6:
            return self._bad(
                frame, ProblemKind.BAD_HEADER, f"IP version {data[pos] >> 4} in an IPv6 frame"
            )
        payload_length = int.from_bytes(data[pos + 4 : pos + 6], "big")
        next_header = data[pos + 6]
        src = data[pos + 8 : pos + 24]
        dst = data[pos + 24 : pos + 40]
        start = pos + 40
        end = start + payload_length
        if payload_length == 0 and next_header == 0:
            return self._bad(frame, ProblemKind.BAD_HEADER, "IPv6 jumbogram (payload length 0)")
        if end > len(data) and not cut:
            return self._bad(
                frame,
                ProblemKind.BAD_HEADER,
                f"IPv6 payload length {payload_length} beyond the frame ({len(data) - start} bytes)",
            )
        for _ in range(8):  # a bounded walk through extension headers
            if next_header not in _IPV6_EXTENSIONS:
                break
            if len(data) < start + 8:
                return self._bad(frame, ProblemKind.CUT_FRAME, "IPv6 extension header cut")
            if next_header == 51:  # AH counts 4-octet units minus 2
                ext_length = (data[start + 1] + 2) * 4
            else:
                ext_length = (data[start + 1] + 1) * 8
            next_header = data[start]
            start += ext_length
        if next_header == 44:  # fragment header
            if len(data) < start + 8:
                return self._bad(frame, ProblemKind.CUT_FRAME, "IPv6 fragment header cut")
            return self._bad(frame, ProblemKind.FRAGMENT, "IPv6 fragment")
        if start > end:
            return self._bad(
                frame, ProblemKind.BAD_HEADER, "IPv6 extension headers beyond the payload"
            )
        return self._transport(frame, data, next_header, src, dst, start, end)

    def _ipv4(self, frame: CapturedFrame, data: bytes, pos: int, cut: bool) -> _Segment | None:
        if len(data) < pos + 20:
            return self._bad(frame, ProblemKind.CUT_FRAME, "IPv4 header cut")
        header_length = (data[pos] & 0x0F) * 4
        total = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if data[pos] >> 4 != 4 or header_length < 20 or total < header_length:
            return self._bad(frame, ProblemKind.BAD_HEADER, "IPv4 header lengths")
        end = pos + total
        if end > len(data) and not cut:
            return self._bad(
                frame, ProblemKind.BAD_HEADER, f"IPv4 total length {total} beyond the frame"
            )
        if int.from_bytes(data[pos + 6 : pos + 8], "big") & 0x3FFF:  # MF or a fragment offset
            return self._bad(frame, ProblemKind.FRAGMENT, "IPv4 fragment")
        return self._transport(
            frame,
            data,
            data[pos + 9],
            data[pos + 12 : pos + 16],
            data[pos + 16 : pos + 20],
            pos + header_length,
            end,
        )

    def _transport(
        self,
        frame: CapturedFrame,
        data: bytes,
        protocol: int,
        src: bytes,
        dst: bytes,
        start: int,
        end: int,
    ) -> _Segment | None:
        available = min(end, len(data))
        if protocol == 6:
            if available < start + 20:
                return self._bad(frame, ProblemKind.CUT_FRAME, "TCP header cut")
            sport, dport, seq, _, offset_flags = struct.unpack("!HHIIH", data[start : start + 14])
            header_length = (offset_flags >> 12) * 4
            if header_length < 20:
                return self._bad(
                    frame, ProblemKind.BAD_HEADER, f"TCP data offset {header_length} bytes"
                )
            if start + header_length > end:
                return self._bad(
                    frame,
                    ProblemKind.BAD_HEADER,
                    f"TCP header length {header_length} beyond the segment ({end - start} bytes)",
                )
            if available < start + header_length:
                return self._bad(frame, ProblemKind.CUT_FRAME, "TCP options cut")
            payload = data[start + header_length : available]
            declared = end - start - header_length
            if len(payload) < declared:
                self.problems.add(
                    frame.number,
                    ProblemKind.CUT_FRAME,
                    f"TCP segment cut: {len(payload)} of {declared} payload bytes captured",
                )
            return _Segment(
                frame.number,
                frame.time_ns,
                (src, sport),
                (dst, dport),
                seq,
                offset_flags & 0x3F,
                payload,
                declared,
            )
        if protocol == 17:
            if available < start + 8:
                return self._bad(frame, ProblemKind.CUT_FRAME, "UDP header cut")
            sport, dport, length = struct.unpack("!HHH", data[start : start + 6])
            if _SDP_PORT not in (sport, dport):
                return None
            if length < 8 or start + length > end:
                return self._bad(frame, ProblemKind.BAD_HEADER, f"UDP length {length}")
            payload = data[start + 8 : min(start + length, available)]
            if len(self.sdp) >= self.limits.max_udp:
                return self._bad(frame, ProblemKind.LIMIT, "SDP datagrams over the limit")
            self.sdp.append(
                UdpDatagram(
                    frame.number,
                    frame.time_ns,
                    Endpoint(self._address(src), sport),
                    Endpoint(self._address(dst), dport),
                    payload,
                    len(payload) < length - 8,
                )
            )
        return None


# -- TCP reassembly ---------------------------------------------------------------------------


class _Direction:
    """Reassembly of one direction: bytes in stream order, out-of-order segments held back."""

    def __init__(
        self, src: Endpoint, dst: Endpoint, limits: ReaderLimits, problems: _Problems
    ) -> None:
        self.src = src
        self.dst = dst
        self.limits = limits
        self.problems = problems
        self.isn: int | None = None
        self.base: int | None = None  # the sequence number of stream offset 0
        self.next = 0  # every offset below this is delivered or declared a gap
        self.runs: list[tuple[int, bytearray, list[ByteMark]]] = []
        self.gaps: list[StreamGap] = []
        self.pending: dict[int, tuple[bytes, int, int]] = {}  # offset -> (bytes, time, frame)
        self.pending_bytes = 0
        self.declared_end = 0  # the end of the stream as the headers announced it
        self.fin = False
        self.segments = 0
        self.retransmitted = 0
        self.conflicts = 0
        self.kept = 0  # bytes held in runs
        self.full = False

    @property
    def has_data(self) -> bool:
        return bool(self.runs) or bool(self.pending)

    def syn(self, seq: int) -> None:
        if not self.has_data:
            self.isn = seq
            self.base = (seq + 1) & 0xFFFFFFFF

    def offset_of(self, seq: int) -> int:
        """Stream offset of a sequence number, unwrapped around the next expected offset."""
        assert self.base is not None
        delta = (seq - self.base - self.next) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        return self.next + delta

    def segment(self, seg: _Segment) -> None:
        if self.base is None:
            self.base = seg.seq  # no SYN seen: the first segment starts the stream
        start = self.offset_of(seg.seq) + (1 if seg.flags & _SYN else 0)
        if seg.flags & _FIN:
            self.fin = True
        if not seg.payload and not seg.declared:
            return
        if start - self.next > self.limits.max_sequence_jump:
            self.problems.add(
                seg.frame,
                ProblemKind.SEQUENCE_JUMP,
                f"{self.src} -> {self.dst}: segment starts {start - self.next} bytes ahead of the stream",
            )
            return
        self.declared_end = max(self.declared_end, start + seg.declared)
        if seg.payload:
            self.segments += 1
            self._add(start, seg.payload, seg.time_ns, seg.frame)

    def _add(self, start: int, data: bytes, time_ns: int, frame: int) -> None:
        end = start + len(data)
        if end <= self.next:
            self._retransmitted(start, data)
            return
        if start < self.next:
            self._retransmitted(start, data[: self.next - start])
            data = data[self.next - start :]
            start = self.next
        if start > self.next:
            held = self.pending.get(start)
            if held is None or len(held[0]) < len(data):
                self.pending_bytes += len(data) - (len(held[0]) if held else 0)
                self.pending[start] = (data, time_ns, frame)
            if self.pending_bytes > self.limits.max_out_of_order:
                self._skip_to_pending()
            return
        self._deliver(start, data, time_ns, frame)
        self._drain()

    def _retransmitted(self, start: int, data: bytes) -> None:
        self.retransmitted += len(data)
        for run_start, run, _ in reversed(self.runs):
            if run_start <= start and start + len(data) <= run_start + len(run):
                if run[start - run_start : start - run_start + len(data)] != data:
                    self.conflicts += 1
                return
            if run_start + len(run) <= start:
                return

    def _deliver(self, start: int, data: bytes, time_ns: int, frame: int) -> None:
        if self.full:
            self.next = start + len(data)
            return
        if self.runs and self.runs[-1][0] + len(self.runs[-1][1]) == start:
            run = self.runs[-1]
        else:
            run = (start, bytearray(), [])
            self.runs.append(run)
        if self.kept + len(data) > self.limits.max_stream:
            self.problems.add(
                frame, ProblemKind.LIMIT, f"{self.src} -> {self.dst}: stream over the limit"
            )
            self.full = True
        else:
            run[2].append(ByteMark(start, time_ns, frame))
            run[1].extend(data)
            self.kept += len(data)
        self.next = start + len(data)

    def _drain(self) -> None:
        while self.pending:
            ready = [o for o in self.pending if o <= self.next]
            if not ready:
                return
            for offset in sorted(ready):
                data, time_ns, frame = self.pending.pop(offset)
                self.pending_bytes -= len(data)
                end = offset + len(data)
                if end <= self.next:
                    self._retransmitted(offset, data)
                    continue
                if offset < self.next:
                    self._retransmitted(offset, data[: self.next - offset])
                    data = data[self.next - offset :]
                    offset = self.next
                self._deliver(offset, data, time_ns, frame)

    def _skip_to_pending(self) -> None:
        """Give up on the bytes before the first held segment: a gap."""
        first = min(self.pending)
        frame = self.pending[first][2]
        self.gaps.append(StreamGap(self.next, first - self.next, frame))
        self.problems.add(
            frame,
            ProblemKind.STREAM_GAP,
            f"{self.src} -> {self.dst}: {first - self.next} bytes missing",
        )
        self.next = first
        self._drain()

    def finish(self, last_frame: int) -> TcpStream:
        while self.pending:
            self._skip_to_pending()
        if self.declared_end > self.next:
            self.gaps.append(StreamGap(self.next, self.declared_end - self.next, last_frame))
            self.problems.add(
                last_frame,
                ProblemKind.STREAM_GAP,
                f"{self.src} -> {self.dst}: the last {self.declared_end - self.next} bytes were not captured",
            )
        runs = tuple(
            StreamRun(start, bytes(data), tuple(marks)) for start, data, marks in self.runs if data
        )
        return TcpStream(
            self.src,
            self.dst,
            runs,
            tuple(self.gaps),
            self.isn,
            self.fin,
            self.segments,
            self.retransmitted,
            self.conflicts,
        )


class _Connection:
    def __init__(
        self,
        index: int,
        seg: _Segment,
        endpoints: tuple[Endpoint, Endpoint],
        limits: ReaderLimits,
        problems: _Problems,
    ) -> None:
        self.index = index
        self.first_frame = seg.frame
        self.last_frame = seg.frame
        self.client: Endpoint | None = None
        self.client_isn: int | None = None
        self.reset = False
        self.syn = False
        src, dst = endpoints
        self.directions = {
            seg.src: _Direction(src, dst, limits, problems),
            seg.dst: _Direction(dst, src, limits, problems),
        }
        self.order = (seg.src, seg.dst)
        self.endpoints = endpoints

    @property
    def ended(self) -> bool:
        return self.reset or all(d.fin for d in self.directions.values())

    @property
    def has_data(self) -> bool:
        return any(d.has_data for d in self.directions.values())

    def finish(self) -> TcpConnection:
        a, b = self.order
        return TcpConnection(
            self.index,
            self.client,
            self.endpoints,
            self.first_frame,
            self.last_frame,
            self.syn,
            self.reset,
            (
                self.directions[a].finish(self.last_frame),
                self.directions[b].finish(self.last_frame),
            ),
        )


class _Reassembler:
    """TCP segments -> connections (per 4-tuple, renewed by a new SYN) -> directions."""

    def __init__(self, limits: ReaderLimits, problems: _Problems) -> None:
        self.limits = limits
        self.problems = problems
        self.current: dict[tuple[_Key, _Key], _Connection] = {}
        self.connections: list[_Connection] = []
        self._endpoints: dict[_Key, Endpoint] = {}

    def _endpoint(self, key: _Key) -> Endpoint:
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = Endpoint(str(ipaddress.ip_address(key[0])), key[1])
            self._endpoints[key] = endpoint
        return endpoint

    def segment(self, seg: _Segment) -> None:
        key = (seg.src, seg.dst) if seg.src < seg.dst else (seg.dst, seg.src)
        connection = self.current.get(key)
        opening = seg.flags & _SYN and not seg.flags & _ACK
        if (
            opening
            and connection is not None
            and (
                connection.ended
                or connection.has_data
                or (connection.client_isn is not None and connection.client_isn != seg.seq)
            )
        ):
            connection = None  # a new connection on the same ports
        if connection is None:
            if len(self.connections) >= self.limits.max_connections:
                self.problems.add(seg.frame, ProblemKind.LIMIT, "TCP connections over the limit")
                return
            endpoints = (self._endpoint(seg.src), self._endpoint(seg.dst))
            connection = _Connection(
                len(self.connections), seg, endpoints, self.limits, self.problems
            )
            self.connections.append(connection)
            self.current[key] = connection
        connection.last_frame = seg.frame
        direction = connection.directions[seg.src]
        if opening:
            connection.syn = True
            connection.client = direction.src
            connection.client_isn = seg.seq
            direction.syn(seg.seq)
        elif seg.flags & _SYN:
            direction.syn(seg.seq)
        if seg.flags & _RST:
            connection.reset = True
            return  # an RST's payload (diagnostic text at most) is not stream data
        direction.segment(seg)

    def finish(self) -> tuple[TcpConnection, ...]:
        return tuple(c.finish() for c in self.connections)


def _open(source: str | os.PathLike[str] | bytes | BinaryIO) -> tuple[BinaryIO, bool]:
    if isinstance(source, bytes | bytearray | memoryview):
        import io

        return io.BytesIO(bytes(source)), True
    if isinstance(source, str | os.PathLike):
        return open(source, "rb"), True
    return source, False


def read_frames(
    source: str | os.PathLike[str] | bytes | BinaryIO, limits: ReaderLimits = ReaderLimits()
) -> tuple[list[CapturedFrame], list[Undecodable]]:
    """Every frame of a capture, as captured, and what could not be read."""
    problems = _Problems(limits.max_problems)
    f, owned = _open(source)
    try:
        frames = list(FrameReader(f, problems, limits))
    finally:
        if owned:
            f.close()
    return frames, problems.items


def read_capture(
    source: str | os.PathLike[str] | bytes | BinaryIO, limits: ReaderLimits = ReaderLimits()
) -> Capture:
    """Read a pcap or pcapng file (path, bytes or binary file) and reassemble what V2G needs."""
    problems = _Problems(limits.max_problems)
    dissector = _Dissector(problems, limits)
    reassembler = _Reassembler(limits, problems)
    f, owned = _open(source)
    try:
        reader = FrameReader(f, problems, limits)
        for frame in reader:
            segment = dissector.dissect(frame)
            if segment is not None:
                reassembler.segment(segment)
    finally:
        if owned:
            f.close()
    connections = reassembler.finish()
    return Capture(
        reader.format,
        reader.frames,
        connections,
        tuple(dissector.sdp),
        tuple(dissector.homeplug),
        reader.tls_key_log,
        tuple(sorted(problems.items, key=_problem_order)),
        problems.dropped,
    )


def _problem_order(problem: Undecodable) -> tuple[int, str]:
    return (-1 if problem.frame is None else problem.frame, problem.kind.name)


# -- V2GTP ------------------------------------------------------------------------------------

V2GTP_HEADER_LENGTH = 8
#: A V2GTP payload length above this is not believed (rig's own bound; -20 messages are far smaller).
MAX_V2GTP_PAYLOAD = 16 << 20
_V2GTP_VERSION = b"\x01\xfe"  # protocol version 0x01 and its inverse (DESIGN.md, V2GTP)


@dataclass(frozen=True, slots=True)
class V2gtpFrame:
    """One V2GTP frame found in a stream or a datagram."""

    payload_type: int
    payload: bytes
    offset: int  # stream offset of its header
    first_frame: int  # capture frame of its first byte
    last_frame: int  # capture frame that completed it
    start_ns: int
    end_ns: int  # when its last byte was captured: when a peer could act on it


@dataclass(frozen=True, slots=True)
class V2gtpSplit:
    frames: tuple[V2gtpFrame, ...]
    undecodable: tuple[Undecodable, ...]


def split_v2gtp(
    source: TcpStream | UdpDatagram, *, max_payload: int = MAX_V2GTP_PAYLOAD
) -> V2gtpSplit:
    """Cut a reassembled stream (or one SDP datagram) into V2GTP frames: header 01 FE, payload
    type u16, payload length u32 (big-endian), payload.

    A test helper, not the stack's framing layer: it never raises. Bytes that are not a header,
    a length over `max_payload` and a frame that never completes (at the end of the stream or at
    a gap) are recorded as Undecodable with the frame number of their first byte; after them it
    looks for the next plausible header.
    """
    if isinstance(source, UdpDatagram):
        runs: tuple[StreamRun, ...] = (
            StreamRun(0, source.payload, (ByteMark(0, source.time_ns, source.frame),)),
        )
        last_is_end: tuple[bool, ...] = (True,)
    else:
        runs = source.runs
        # A run followed by a gap ends early; the stream's last run ends at the stream's end.
        last_is_end = tuple(
            i == len(runs) - 1 and not _gap_after(source, run) for i, run in enumerate(runs)
        )
    frames: list[V2gtpFrame] = []
    problems: list[Undecodable] = []
    for run, at_end in zip(runs, last_is_end, strict=True):
        _split_run(run, at_end, max_payload, frames, problems)
    return V2gtpSplit(tuple(frames), tuple(problems))


def _gap_after(stream: TcpStream, run: StreamRun) -> bool:
    return any(gap.offset >= run.end for gap in stream.gaps)


def _plausible(data: bytes, pos: int, max_payload: int) -> bool:
    if data[pos : pos + 2] != _V2GTP_VERSION:
        return False
    if len(data) < pos + V2GTP_HEADER_LENGTH:
        return True  # a header cut by the end: plausible as far as it goes
    return int.from_bytes(data[pos + 4 : pos + 8], "big") <= max_payload


def _split_run(
    run: StreamRun,
    at_end: bool,
    max_payload: int,
    frames: list[V2gtpFrame],
    problems: list[Undecodable],
) -> None:
    data = run.data
    pos = 0
    size = len(data)
    marks = run.marks
    last_mark = len(marks) - 1
    m = 0  # the mark of the byte at `pos`; positions only grow, so a pointer beats bisecting

    def mark_of(offset: int) -> ByteMark:
        nonlocal m
        while m < last_mark and marks[m + 1].offset <= offset:
            m += 1
        return marks[m]

    while pos < size:
        mark = mark_of(run.offset + pos)
        if not _plausible(data, pos, max_payload):
            kind = ProblemKind.V2GTP_HEADER
            detail = f"stream offset {run.offset + pos}: {data[pos : pos + 8].hex()} is not a V2GTP header"
            if data[pos : pos + 2] == _V2GTP_VERSION:
                kind = ProblemKind.V2GTP_LENGTH
                length = int.from_bytes(data[pos + 4 : pos + 8], "big")
                detail = (
                    f"stream offset {run.offset + pos}: payload length {length} over {max_payload}"
                )
            problems.append(Undecodable(mark.frame, kind, detail))
            pos = _next_header(data, pos + 1, max_payload)
            continue
        if size - pos < V2GTP_HEADER_LENGTH:
            problems.append(
                Undecodable(
                    mark.frame,
                    ProblemKind.V2GTP_INCOMPLETE,
                    f"stream offset {run.offset + pos}: header of {size - pos} of 8 bytes "
                    + ("at the end of the stream" if at_end else "before a gap"),
                )
            )
            return
        payload_type = int.from_bytes(data[pos + 2 : pos + 4], "big")
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        end = pos + V2GTP_HEADER_LENGTH + length
        if end > size:
            problems.append(
                Undecodable(
                    mark.frame,
                    ProblemKind.V2GTP_INCOMPLETE,
                    f"stream offset {run.offset + pos}: frame of {end - pos} bytes has {size - pos} "
                    + ("at the end of the stream" if at_end else "before a gap"),
                )
            )
            return
        last = mark_of(run.offset + end - 1)
        frames.append(
            V2gtpFrame(
                payload_type,
                data[pos + V2GTP_HEADER_LENGTH : end],
                run.offset + pos,
                mark.frame,
                last.frame,
                mark.time_ns,
                last.time_ns,
            )
        )
        pos = end


def _next_header(data: bytes, start: int, max_payload: int) -> int:
    """The next position that could start a V2GTP frame, or the end."""
    pos = start
    while True:
        pos = data.find(_V2GTP_VERSION, pos)
        if pos < 0:
            return len(data)
        if _plausible(data, pos, max_payload):
            return pos
        pos += 1
