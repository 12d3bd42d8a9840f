"""V2GTP payloads of the real-car captures in ../shared/pcaps, for the DIN 70121 and -2 codec tests.

A small reader of its own, so that the codec tests need nothing beyond the standard library:
pcap and pcapng files, Ethernet (with 802.1Q tags), IPv6 (with extension headers), TCP. Each
direction of each TCP connection is put back together by sequence number (retransmitted and
overlapping segments are kept once), then cut into V2GTP messages: 01 FE <payload type> <length>.
A connection's namespace set follows its supportedAppProtocol exchange, as an SECC decides it:
the response's SchemaID names one AppProtocol entry of the request, and that entry's
ProtocolNamespace names the set ("din" or "iso2") of every later message in both directions.

Every length read from a file is bounded; a malformed file raises CaptureError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

V2GTP_VERSION = b"\x01\xfe"
V2GTP_HEADER = 8
PAYLOAD_EXI = 0x8001  # supportedAppProtocol and the DIN / -2 messages alike
MAX_V2GTP_PAYLOAD = 1 << 16  # far above any DIN / -2 message; a larger length is garbage
MAX_RECORD = 1 << 18  # bytes of one captured frame
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options (fragments unhandled)
TCP = 6
LINKTYPE_ETHERNET = 1

# The AppProtocol namespaces a car offers -> our namespace set.
NAMESPACE_SETS = {
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
}


class CaptureError(Exception):
    """A capture this reader cannot use (names the file and what is wrong)."""


@dataclass(frozen=True)
class Frame:
    """One captured link-layer frame."""

    index: int  # 1-based, as Wireshark numbers them
    time: float
    data: bytes


def frames(path: Path) -> Iterator[Frame]:
    """The Ethernet frames of a pcap or pcapng file."""
    raw = path.read_bytes()
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(raw, path)
    elif raw[:4] in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
    ):
        yield from _pcap(raw, path)
    else:
        raise CaptureError(f"{path.name}: neither pcap nor pcapng")


def _pcap(raw: bytes, path: Path) -> Iterator[Frame]:
    magic = raw[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    if len(raw) < 24:
        raise CaptureError(f"{path.name}: truncated pcap header")
    (linktype,) = struct.unpack_from(order + "I", raw, 20)
    if linktype & 0xFFFF != LINKTYPE_ETHERNET:
        raise CaptureError(f"{path.name}: link type {linktype}, expected Ethernet")
    pos, index = 24, 0
    while pos + 16 <= len(raw):
        sec, frac, incl, _orig = struct.unpack_from(order + "IIII", raw, pos)
        pos += 16
        if incl > MAX_RECORD or pos + incl > len(raw):
            raise CaptureError(f"{path.name}: record at byte {pos - 16} runs past the end")
        index += 1
        yield Frame(index, sec + frac * scale, raw[pos : pos + incl])
        pos += incl


def _pcapng(raw: bytes, path: Path) -> Iterator[Frame]:
    pos, index = 0, 0
    order = "<"
    links: list[tuple[int, float]] = []  # per interface: link type, seconds per tick
    while pos + 12 <= len(raw):
        if raw[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order first
            order = "<" if raw[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack_from(order + "II", raw, pos)
        if blen < 12 or blen % 4 or pos + blen > len(raw):
            raise CaptureError(f"{path.name}: block at byte {pos} has length {blen}")
        body = raw[pos + 8 : pos + blen - 4]
        if btype == 1:  # interface description
            (linktype,) = struct.unpack_from(order + "H", body, 0)
            links.append((linktype, _tick(body[8:], order)))
        elif btype == 6:  # enhanced packet
            iface, hi, lo, cap, _orig = struct.unpack_from(order + "IIIII", body, 0)
            if iface >= len(links) or cap > len(body) - 20:
                raise CaptureError(f"{path.name}: packet block at byte {pos} is inconsistent")
            index += 1
            linktype, tick = links[iface]
            if linktype == LINKTYPE_ETHERNET:
                yield Frame(index, ((hi << 32) | lo) * tick, body[20 : 20 + cap])
        elif btype == 3:  # simple packet: interface 0, no time stamp
            index += 1
            if links and links[0][0] == LINKTYPE_ETHERNET:
                (orig,) = struct.unpack_from(order + "I", body, 0)
                yield Frame(index, 0.0, body[4 : 4 + min(orig, len(body) - 4)])
        pos += blen


def _tick(options: bytes, order: str) -> float:
    """Seconds per time-stamp unit of an interface (option if_tsresol; default microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        pos += 4 + length + (-length % 4)
    return 1e-6


@dataclass(frozen=True)
class Segment:
    """The TCP part of one frame."""

    frame: int
    time: float
    src: tuple[bytes, int]  # (IPv6 address, port)
    dst: tuple[bytes, int]
    seq: int
    flags: int
    payload: bytes


SYN, FIN, RST = 0x02, 0x01, 0x04


def tcp_segment(frame: Frame) -> Segment | None:
    """The TCP segment of an Ethernet/IPv6 frame, or None for anything else."""
    data = frame.data
    if len(data) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", data, 12)
    pos = 14
    while ethertype == ETHERTYPE_VLAN and len(data) >= pos + 4:
        (ethertype,) = struct.unpack_from("!H", data, pos + 2)
        pos += 4
    if ethertype != ETHERTYPE_IPV6 or len(data) < pos + 40:
        return None
    (plen,) = struct.unpack_from("!H", data, pos + 4)
    nxt = data[pos + 6]
    src, dst = data[pos + 8 : pos + 24], data[pos + 24 : pos + 40]
    end = min(len(data), pos + 40 + plen)
    pos += 40
    while nxt in IPV6_EXTENSIONS and pos + 2 <= end:
        nxt, hlen = data[pos], (data[pos + 1] + 1) * 8
        pos += hlen
    if nxt != TCP or pos + 20 > end:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", data, pos)
    offset = (data[pos + 12] >> 4) * 4
    flags = data[pos + 13]
    if offset < 20 or pos + offset > end:
        return None
    return Segment(
        frame.index, frame.time, (src, sport), (dst, dport), seq, flags, data[pos + offset : end]
    )


@dataclass
class _Direction:
    """One direction of a TCP connection: received bytes placed by sequence number."""

    isn: int | None = None
    pieces: dict[int, tuple[bytes, int, float]] = field(default_factory=dict)  # off -> data

    def add(self, seg: Segment) -> None:
        if seg.flags & SYN:
            self.isn = seg.seq
            return
        if not seg.payload:
            return
        if self.isn is None:  # capture started mid-connection: count from the first byte seen
            self.isn = seg.seq - 1
        offset = (seg.seq - self.isn - 1) % (1 << 32)
        self.pieces.setdefault(offset, (seg.payload, seg.frame, seg.time))

    def stream(self) -> tuple[bytes, list[tuple[int, int, float]]]:
        """The contiguous bytes from the start, and (stream offset, frame, time) per piece."""
        out = bytearray()
        marks: list[tuple[int, int, float]] = []
        for offset in sorted(self.pieces):
            data, frame, t = self.pieces[offset]
            if offset > len(out):
                break  # a gap: bytes never captured; stop rather than guess
            new = data[len(out) - offset :]
            if new:
                marks.append((len(out), frame, t))
                out += new
        return bytes(out), marks


@dataclass(frozen=True)
class Message:
    """One V2GTP message of a capture, with the namespace set it was decoded with."""

    capture: str
    connection: int  # index of the TCP connection in the capture
    from_ev: bool
    frame: int  # frame that carried its first byte
    time: float
    payload_type: int
    payload: bytes
    ns: str  # "app", "din", "iso2"; "" when the negotiation did not name a set


def _connections(path: Path) -> list[tuple[_Direction, _Direction]]:
    """(towards the server, towards the client) of every TCP connection, in order of SYN."""
    conns: dict[tuple[tuple[bytes, int], tuple[bytes, int]], tuple[_Direction, _Direction]] = {}
    order: list[tuple[_Direction, _Direction]] = []
    for frame in frames(path):
        seg = tcp_segment(frame)
        if seg is None:
            continue
        if seg.flags & SYN and not seg.flags & 0x10:  # SYN without ACK: the client opens
            pair = (_Direction(), _Direction())
            conns[(seg.src, seg.dst)] = pair
            order.append(pair)
        key = (seg.src, seg.dst)
        if key in conns:
            conns[key][0].add(seg)
        elif (seg.dst, seg.src) in conns:
            conns[(seg.dst, seg.src)][1].add(seg)
        elif seg.payload:
            # a connection opened before the capture: take the first sender for the client (the
            # EVCC, which speaks first in V2G: supportedAppProtocolReq)
            pair = (_Direction(), _Direction())
            conns[(seg.src, seg.dst)] = pair
            order.append(pair)
            pair[0].add(seg)
    return order


def _v2gtp(data: bytes, marks: list[tuple[int, int, float]], where: str) -> Iterator[Any]:
    pos = 0
    while pos + V2GTP_HEADER <= len(data):
        if data[pos : pos + 2] != V2GTP_VERSION:
            raise CaptureError(f"{where}: no V2GTP header at stream byte {pos}")
        ptype, length = struct.unpack_from("!HI", data, pos + 2)
        if length > MAX_V2GTP_PAYLOAD:
            raise CaptureError(f"{where}: V2GTP length {length} at stream byte {pos}")
        if pos + V2GTP_HEADER + length > len(data):
            break  # the capture ends inside the message
        frame, t = next((f, t) for off, f, t in reversed(marks) if off <= pos)
        yield frame, t, ptype, data[pos + V2GTP_HEADER : pos + V2GTP_HEADER + length]
        pos += V2GTP_HEADER + length


def messages(path: Path, exi: Any) -> list[Message]:
    """Every V2GTP message of every TCP connection of `path`, in capture order per direction,
    with the namespace set its connection negotiated (decoding supportedAppProtocol with `exi`,
    the rig.v2g.exi module, as an SECC would)."""
    out: list[Message] = []
    for index, (to_server, to_client) in enumerate(_connections(path)):
        ev = list(_v2gtp(*to_server.stream(), f"{path.name} connection {index} EV"))
        evse = list(_v2gtp(*to_client.stream(), f"{path.name} connection {index} EVSE"))
        ns = ""
        if ev and evse:
            req = exi.decode("app", ev[0][3])
            res = exi.decode("app", evse[0][3])
            offered = {p.SchemaID: p.ProtocolNamespace for p in req.AppProtocol}
            ns = NAMESPACE_SETS.get(offered.get(res.SchemaID, ""), "")
        for from_ev, items in ((True, ev), (False, evse)):
            for i, (frame, t, ptype, payload) in enumerate(items):
                out.append(
                    Message(
                        path.name, index, from_ev, frame, t, ptype, payload, "app" if i == 0 else ns
                    )
                )
    out.sort(key=lambda m: (m.connection, m.time, m.frame))
    return out
