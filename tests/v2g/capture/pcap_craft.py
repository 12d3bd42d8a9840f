"""Hand-made captures for the reader's tests: frames built by scapy (an independent packet
builder), files packed here field by field (pcap, and pcapng blocks the writer never makes)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

T0_NS = 1_700_000_000_000_000_000
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"  # given: scapy would look them up
A = ("fe80::a", 49200)
B = ("fe80::b", 61000)


def tcp_frame(
    src: tuple[str, int],
    dst: tuple[str, int],
    seq: int,
    payload: bytes = b"",
    *,
    ack: int = 0,
    flags: str = "A",
) -> bytes:
    packet: Packet = (
        Ether(src=MAC_A, dst=MAC_B)
        / IPv6(src=src[0], dst=dst[0])
        / TCP(sport=src[1], dport=dst[1], seq=seq % 2**32, ack=ack % 2**32, flags=flags)
    )
    if payload:
        packet = packet / Raw(payload)
    return bytes(packet)


def tcp4_frame(
    src: tuple[str, int], dst: tuple[str, int], seq: int, payload: bytes, flags: str = "PA"
) -> bytes:
    packet = (
        Ether(src=MAC_A, dst=MAC_B)
        / IP(src=src[0], dst=dst[0])
        / TCP(sport=src[1], dport=dst[1], seq=seq, flags=flags)
        / Raw(payload)
    )
    return bytes(packet)


@dataclass(frozen=True)
class Record:
    """One frame of a crafted file: when, what was captured, how long it was on the wire."""

    time_ns: int
    data: bytes
    wire_length: int | None = None


def pcap(
    records: list[Record], *, linktype: int = 1, nanoseconds: bool = False, order: str = "<"
) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
    unit = 1 if nanoseconds else 1000
    for record in records:
        seconds, rest = divmod(record.time_ns, 10**9)
        wire = len(record.data) if record.wire_length is None else record.wire_length
        out += struct.pack(order + "IIII", seconds, rest // unit, len(record.data), wire)
        out += record.data
    return bytes(out)


def block(block_type: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def section_header(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def interface(
    linktype: int = 1,
    *,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    snaplen: int = 0,
    order: str = "<",
) -> bytes:
    options = b""
    if tsresol is not None:
        options += option(9, bytes((tsresol,)), order)
    if tsoffset is not None:
        options += option(14, struct.pack(order + "q", tsoffset), order)
    if options:
        options += option(0, b"", order)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def enhanced_packet(
    units: int,
    data: bytes,
    *,
    interface_id: int = 0,
    wire_length: int | None = None,
    order: str = "<",
) -> bytes:
    wire = len(data) if wire_length is None else wire_length
    head = struct.pack(
        order + "IIIII", interface_id, units >> 32, units & 0xFFFFFFFF, len(data), wire
    )
    return block(6, head + data, order)


def simple_packet(data: bytes, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", len(data)) + data, order)


def old_packet(units: int, data: bytes, order: str = "<") -> bytes:
    head = struct.pack(
        order + "HHIIII", 0, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return block(2, head + data, order)
