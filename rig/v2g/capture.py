"""Writing a run's V2G traffic as a pcapng file that Wireshark opens (OUT/v2g.pcapng).

Three ways in, one writer:

- **Synthesized** (emulated plans in virtual time, where no wire exists): `CaptureWriter.sdp()` and
  `CaptureWriter.tcp_session()` turn the bytes the engines exchange into Ethernet/IPv6/UDP and
  Ethernet/IPv6/TCP frames with a believable handshake, MSS-sized segments, consistent sequence and
  acknowledgement numbers, FIN or RST at the end, and correct checksums (so Wireshark reports no
  error). Timestamps are the run's virtual seconds plus a wall-clock epoch the caller gives.
- **Tapped** (a real connection that cannot be sniffed): `TappedLink` wraps a `ByteLink` and
  synthesizes the same frames from the connection's real addresses and ports and the bytes sent
  and received, stamped with the run's real-time clock. It sees what the application wrote, not
  what went on the wire (no retransmissions, no real segment boundaries).
- **Live** (real time, root or CAP_NET_RAW on a named interface): `LiveCapture` runs a scapy
  AsyncSniffer with a BPF filter on the session's TCP ports, UDP 15118 (SDP) and optionally
  HomePlug AV (SLAC) and writes every frame as the kernel saw it.

Which one the rig should use: synthesis for every virtual-time run (both peers in memory); live
capture for real-time runs on a real interface when the process may open a packet socket (it
records what the DUT really sent, including retransmissions and timing on the wire); the tap for
real-time runs where sniffing is not possible (no privilege, no interface, a loopback test). For
TLS the tap must wrap the TCP link (below TLS) so that the file holds TLS records; Wireshark then
decrypts them with OUT/keylog.txt, or, with no separate file, after `inject_tls_keys()` has put a
Decryption Secrets Block at the head of the closed file.

The file is pcapng (one Section Header Block, one Interface Description Block of link type
Ethernet, then Enhanced Packet Blocks and optional Decryption Secrets Blocks), little-endian, with
the timestamp resolution stated in the interface block (if_tsresol). It is written as the run goes
and flushed every `flush_every` packets (1 by default), so a crash keeps what was captured; the
writer holds no packets in memory.

scapy is the packet library of the rig (live sniffing here, verification in the tests), but
building one frame with it costs 0.4-0.5 ms in CPython (tests/benchmarks/test_capture_speed.py),
so an hour of ChargeLoop (57,606 frames with the ACKs) would take 25-30 s. The synthesized path
therefore packs the Ethernet, IPv6, TCP and UDP headers itself (struct, checksums by integer
arithmetic) and writes that hour in about 0.3 s; tests check every frame with scapy and tshark. scapy's own pcapng writer has no Decryption Secrets Block, no if_description and a
fixed microsecond resolution, so the block writer is ours too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from rig.v2g.link import ByteLink, ClosedCallback, DataCallback

#: SDP runs on UDP port 15118: the request to ff02::1, the response from the SECC's port 15118
#: (FACTS.md "ISO 15118-20 sequence"; all three real-car captures in ../shared/pcaps agree).
SDP_PORT = 15118
#: All-nodes link-local multicast, the SDP request's destination, and its Ethernet mapping
#: (RFC 2464 section 7: 33:33 followed by the low 32 bits of the IPv6 address).
SDP_MULTICAST_ADDRESS = "ff02::1"
SDP_MULTICAST_MAC = bytes.fromhex("333300000001")
#: HomePlug AV management frames (SLAC) are ethertype 0x88E1 (ISO 15118-3, FACTS.md "Link layer").
ETHERTYPE_HOMEPLUG_AV = 0x88E1
ETHERTYPE_IPV6 = 0x86DD

#: TCP MSS over Ethernet (MTU 1500) and IPv6: 1500 - 40 (IPv6) - 20 (TCP).
DEFAULT_MSS = 1440
#: Receive window every synthesized segment advertises (no window scaling is negotiated).
DEFAULT_WINDOW = 65535
#: Hop limit of synthesized IPv6 packets: the Linux default, which the EVs in ../shared/pcaps use
#: for SDP and TCP (rig's own choice, not a protocol requirement).
HOP_LIMIT = 64
#: Largest frame written as is; longer frames (offloaded super-segments seen by a live capture)
#: are cut to it and keep their wire length (262144 is tcpdump's default snapshot length).
SNAPLEN = 262144
#: Bound on one Decryption Secrets Block (a TLS key log is a few hundred bytes per session).
MAX_SECRETS_BYTES = 1 << 20

_NS_PER_S = 1_000_000_000
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


class TimestampResolution(IntEnum):
    """Units of the packet timestamps, as the pcapng if_tsresol option states them (10^-value s)."""

    MICROSECONDS = 6
    NANOSECONDS = 9


class _BlockType(IntEnum):
    """pcapng block types (the pcapng specification, draft-ietf-opsawg-pcapng)."""

    SECTION_HEADER = 0x0A0D0D0A
    INTERFACE_DESCRIPTION = 0x00000001
    ENHANCED_PACKET = 0x00000006
    DECRYPTION_SECRETS = 0x0000000A


class _Option(IntEnum):
    """pcapng option codes used here."""

    END = 0
    COMMENT = 1  # opt_comment, any block
    SHB_USERAPPL = 4
    IF_NAME = 2
    IF_DESCRIPTION = 3
    IF_TSRESOL = 9


_ENHANCED_PACKET = int(_BlockType.ENHANCED_PACKET)
_EPB_HEAD = struct.Struct("<IIIIIII")  # type, length, interface, time high, low, caplen, length
_U32 = struct.Struct("<I")
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_LINKTYPE_ETHERNET = 1
#: Decryption Secrets Block secrets type for a TLS key log (NSS key log format), "TLSK".
_SECRETS_TLS_KEY_LOG = 0x544C534B


class TcpFlag(IntFlag):
    """TCP header flags (RFC 9293)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10


# The flags as plain ints for the per-packet path (IntFlag arithmetic costs ~1 us an operation).
_FIN, _SYN, _RST, _PSH, _ACK = (
    int(f) for f in (TcpFlag.FIN, TcpFlag.SYN, TcpFlag.RST, TcpFlag.PSH, TcpFlag.ACK)
)


class TcpState(Enum):
    """Where a synthesized TCP connection stands."""

    NEW = "new"  # before open()
    ESTABLISHED = "established"  # after the three-way handshake
    CLOSED = "closed"  # after the FIN exchange
    RESET = "reset"  # after an RST


class CaptureStateError(RuntimeError):
    """A synthesized connection was asked for something its state does not allow (data before
    open(), anything after close() or reset(), a write after the writer was closed)."""


@dataclass(frozen=True, slots=True)
class CaptureInterface:
    """The one interface a capture file describes (the pcapng Interface Description Block)."""

    name: str
    description: str


#: The interface of synthesized captures: no such interface exists on the machine; the name says
#: so in Wireshark's capture file properties and the description says how the frames were made.
SYNTHETIC_INTERFACE = CaptureInterface(
    name="v2g-synthesized",
    description=(
        "ISO 15118 traffic synthesized by the v2h rig (rig.v2g.capture) from the bytes its "
        "EVCC/SECC exchanged; Ethernet/IPv6/TCP/UDP headers are built, not captured"
    ),
)


def live_interface(name: str, bpf_filter: str) -> CaptureInterface:
    """The interface block of a live capture on `name` with `bpf_filter`."""
    return CaptureInterface(
        name=name,
        description=f"live capture by the v2h rig (rig.v2g.capture.LiveCapture), filter: {bpf_filter}",
    )


#: (IPv6 address, port); a scope suffix ("fe80::1%eth0") is accepted and dropped.
SocketAddress = tuple[str, int]


def _ipv6_bytes(address: str) -> bytes:
    """The 16 bytes of an IPv6 address given as text, with any %scope removed."""
    try:
        return ipaddress.IPv6Address(address.split("%", 1)[0]).packed
    except ValueError as exc:
        raise ValueError(f"not an IPv6 address: {address!r}") from exc


def _port(port: int) -> int:
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return port


def _parse_mac(mac: str | bytes) -> bytes:
    raw = mac if isinstance(mac, bytes) else bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def mac_for_address(address: str) -> bytes:
    """A MAC for a synthesized host, derived deterministically from its IPv6 address.

    A modified EUI-64 interface identifier (ff:fe in the middle, RFC 4291 appendix A) gives back
    the MAC it was made from, so a capture of real hosts keeps their MACs; any other address gets
    a locally administered unicast MAC (02:...) from a hash of the address, the same every run.
    """
    raw = _ipv6_bytes(address)
    if raw[11:13] == b"\xff\xfe":
        return bytes((raw[8] ^ 0x02,)) + raw[9:11] + raw[13:16]
    return b"\x02" + hashlib.blake2s(raw, digest_size=5).digest()


def _word_sum(data: bytes) -> int:
    """The sum of data's big-endian 16-bit words (zero-padded to even length) modulo 0xFFFF.

    Since 2**16 = 1 (mod 0xFFFF), a byte string read as one big integer is congruent to the sum
    of its 16-bit words: one C-level conversion instead of a Python loop per word.
    """
    if len(data) & 1:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF


def _checksum(total: int) -> int:
    """The Internet checksum (RFC 1071) of data whose word sum is `total` (not yet reduced).

    The one's complement sum of non-zero data is never 0 but 0xFFFF in the class of 0 modulo
    0xFFFF; its complement is then 0.
    """
    s = total % 0xFFFF
    return 0xFFFF - s if s else 0


class _Flow:
    """One direction between two hosts: the constant Ethernet and IPv6 header parts, prebuilt."""

    __slots__ = ("_eth", "_ip_tail", "_pseudo", "dport", "sport")

    def __init__(
        self,
        src: bytes,
        src_mac: bytes,
        sport: int,
        dst: bytes,
        dst_mac: bytes,
        dport: int,
        next_header: int,
    ) -> None:
        self.sport = sport
        self.dport = dport
        self._eth = dst_mac + src_mac + struct.pack("!H", ETHERTYPE_IPV6)
        self._ip_tail = bytes((next_header, HOP_LIMIT)) + src + dst
        # Pseudo-header of RFC 8200 section 8.1 without the upper-layer length (added per packet).
        self._pseudo = _word_sum(src + dst) + next_header

    def _ipv6(self, payload_length: int) -> bytes:
        # Version 6, traffic class 0, flow label 0.
        return self._eth + b"\x60\0\0\0" + payload_length.to_bytes(2, "big") + self._ip_tail

    def tcp(
        self, seq: int, ack: int, flags: int, window: int, payload: bytes, options: bytes = b""
    ) -> bytes:
        header_length = 20 + len(options)
        length = header_length + len(payload)
        offset_flags = (header_length // 4) << 12 | flags
        total = (
            self._pseudo
            + length
            + self.sport
            + self.dport
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + offset_flags
            + window
        )
        if options:
            total += _word_sum(options)
        if payload:
            total += _word_sum(payload)
        header = struct.pack(
            "!HHIIHHHH", self.sport, self.dport, seq, ack, offset_flags, window, _checksum(total), 0
        )
        return self._ipv6(length) + header + options + payload

    def udp(self, payload: bytes) -> bytes:
        length = 8 + len(payload)
        if length > 0xFFFF:
            raise ValueError(f"UDP payload too long: {len(payload)} bytes")
        total = self._pseudo + length + self.sport + self.dport + length + _word_sum(payload)
        # A computed 0 is sent as 0xFFFF: over IPv6 a UDP checksum of 0 means none (RFC 8200 8.1).
        checksum = _checksum(total) or 0xFFFF
        header = struct.pack("!HHHH", self.sport, self.dport, length, checksum)
        return self._ipv6(length) + header + payload


@dataclass(frozen=True, slots=True)
class _Host:
    address: bytes
    mac: bytes
    port: int


def _host(endpoint: SocketAddress, mac: str | bytes | None) -> _Host:
    address, port = endpoint
    return _Host(
        _ipv6_bytes(address),
        mac_for_address(address) if mac is None else _parse_mac(mac),
        _port(port),
    )


def _initial_sequence(label: bytes, a: _Host, b: _Host) -> int:
    """A deterministic initial sequence number per connection and side, so that a seeded run
    writes the same file every time."""
    seed = label + a.address + a.port.to_bytes(2, "big") + b.address + b.port.to_bytes(2, "big")
    return int.from_bytes(hashlib.blake2s(seed, digest_size=4).digest(), "big")


class CaptureWriter:
    """A pcapng file written as the run goes: one Ethernet interface, packets, TLS secrets.

    `epoch_ns` is the wall-clock time (ns since the Unix epoch) of the run's t = 0; every `t` given
    to this writer and its sessions is seconds on the run's timeline (virtual or real) and is
    written as epoch + t: in a plan run, the wall time at which the run started. Packets are
    written in call order; callers keep t non-decreasing so that the file is in time order
    (pcapng allows otherwise; Wireshark then shows negative time deltas).

    Thread-safe: a live capture's sniffer thread and the run's thread may write to one writer.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        *,
        epoch_ns: int,
        interface: CaptureInterface = SYNTHETIC_INTERFACE,
        resolution: TimestampResolution = TimestampResolution.MICROSECONDS,
        flush_every: int = 1,
        application: str = "v2h-rig (rig.v2g.capture)",
    ) -> None:
        if flush_every < 1:
            raise ValueError("flush_every must be at least 1")
        if epoch_ns < 0:
            raise ValueError("epoch_ns must not be negative")
        self._owns_file = isinstance(target, str | os.PathLike)
        self._file: BinaryIO = (
            # The writer outlives this call and closes the file in close(): no `with` here.
            open(target, "wb") if isinstance(target, str | os.PathLike) else target  # noqa: SIM115
        )
        self._lock = threading.Lock()
        self._closed = False
        self.resolution = resolution
        self._units_per_s: int = 10 ** int(resolution)
        self._epoch_units: int = epoch_ns // 10 ** (9 - int(resolution))
        self._flush_every = flush_every
        self._unflushed = 0
        #: Delayed ACKs owed by synthesized connections: (due t, session, from_client).
        self._pending_acks: list[tuple[float, TcpSession, bool]] = []
        self.packets_written = 0
        self.interface = interface
        self._write_block(
            _BlockType.SECTION_HEADER,
            struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)
            + _options([(_Option.SHB_USERAPPL, application.encode())]),
        )
        self._write_block(
            _BlockType.INTERFACE_DESCRIPTION,
            struct.pack("<HHI", _LINKTYPE_ETHERNET, 0, SNAPLEN)
            + _options(
                [
                    (_Option.IF_NAME, interface.name.encode()),
                    (_Option.IF_DESCRIPTION, interface.description.encode()),
                    (_Option.IF_TSRESOL, bytes((int(resolution),))),
                ]
            ),
        )
        self._file.flush()

    # -- raw frames and secrets ---------------------------------------------------------------

    def write_frame(self, t: float, frame: bytes, *, comment: str | None = None) -> None:
        """An Ethernet frame at run time t (seconds), as is."""
        with self._lock:
            self._advance(t)
            self._write_packet(self._units(t), frame, len(frame), comment)

    def write_frame_at(
        self,
        epoch_ns: int,
        frame: bytes,
        *,
        wire_length: int | None = None,
        comment: str | None = None,
    ) -> None:
        """An Ethernet frame stamped with an absolute wall-clock time (a live capture's kernel
        timestamp); `wire_length` when the frame was cut shorter than it was on the wire."""
        units: int = epoch_ns // 10 ** (9 - int(self.resolution))
        if units < 0:
            raise ValueError(f"time {epoch_ns} ns is before the Unix epoch")
        with self._lock:
            self._write_packet(
                units, frame, len(frame) if wire_length is None else wire_length, comment
            )

    def write_tls_keys(self, key_log: str | bytes) -> None:
        """A Decryption Secrets Block here, with TLS key log lines (NSS key log format).

        Only useful when the secrets are known before the handshake's packets are written:
        tshark 4.0 loads secrets while it reads and does not decrypt a TLS 1.3 session whose
        ServerHello came before the block (measured; `tshark -2` does not help either; Wireshark
        reads files the same way (?)), and a TLS library logs the secrets only after that
        ServerHello. For
        a run's file use `inject_tls_keys()` after closing the writer; OUT/keylog.txt stays
        the default either way.
        """
        data = _key_log_bytes(key_log)
        if not data:
            return
        with self._lock:
            self._write_block(_BlockType.DECRYPTION_SECRETS, _secrets_body(data, "<"))
            self._file.flush()
            self._unflushed = 0

    # -- synthesized traffic ------------------------------------------------------------------

    def tcp_session(
        self,
        client: SocketAddress,
        server: SocketAddress,
        *,
        client_mac: str | bytes | None = None,
        server_mac: str | bytes | None = None,
        mss: int = DEFAULT_MSS,
        window: int = DEFAULT_WINDOW,
        client_isn: int | None = None,
        server_isn: int | None = None,
        ack_delay: float | None = 0.0,
    ) -> TcpSession:
        """A synthesized TCP connection over IPv6 between two endpoints (EVCC = client).

        MACs default to `mac_for_address`; initial sequence numbers to a hash of the endpoints.
        `ack_delay` decides the pure ACKs: 0 -> the receiver acknowledges every data() at once;
        d > 0 -> it acknowledges d seconds later unless its own data (which carries the ACK) comes
        first, like a delayed-ACK stack; None -> only data, FIN and RST carry acknowledgements.
        """
        return TcpSession(
            self,
            _host(client, client_mac),
            _host(server, server_mac),
            mss=mss,
            window=window,
            client_isn=client_isn,
            server_isn=server_isn,
            ack_delay=ack_delay,
        )

    def sdp(
        self,
        evcc: SocketAddress,
        secc: SocketAddress,
        *,
        evcc_mac: str | bytes | None = None,
        secc_mac: str | bytes | None = None,
    ) -> SdpExchange:
        """Synthesized SDP: requests from `evcc` (its address and UDP port) to ff02::1 port 15118,
        responses from `secc` (its address, normally port 15118) back to the EVCC's port."""
        return SdpExchange(self, _host(evcc, evcc_mac), _host(secc, secc_mac))

    # -- file ---------------------------------------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._file.flush()
                self._unflushed = 0

    def close(self) -> None:
        """Write the delayed ACKs still owed, flush and close (idempotent)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._advance(float("inf"))
                self._file.flush()
            finally:
                self._closed = True
                if self._owns_file:
                    self._file.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside (callers hold the lock) -------------------------------------------------------

    def _units(self, t: float) -> int:
        units: int = self._epoch_units + round(t * self._units_per_s)
        if units < 0:
            raise ValueError(f"time {t} s is before the Unix epoch")
        return units

    def _write_block(self, block_type: int, body: bytes) -> None:
        if self._closed:
            raise CaptureStateError("the capture file is closed")
        total = 12 + len(body)
        self._file.write(struct.pack("<II", block_type, total) + body + struct.pack("<I", total))

    def _write_packet(
        self, units: int, frame: bytes, wire_length: int, comment: str | None
    ) -> None:
        if self._closed:
            raise CaptureStateError("the capture file is closed")
        if len(frame) > SNAPLEN:
            frame = frame[:SNAPLEN]
        n = len(frame)
        options = _options([(_Option.COMMENT, comment.encode())]) if comment else b""
        total = 32 + n + (-n & 3) + len(options)
        self._file.write(
            _EPB_HEAD.pack(
                _ENHANCED_PACKET, total, 0, units >> 32, units & 0xFFFFFFFF, n, max(wire_length, n)
            )
            + frame
            + _PAD[n & 3]
            + options
            + _U32.pack(total)
        )
        self.packets_written += 1
        self._unflushed += 1
        if self._unflushed >= self._flush_every:
            self._file.flush()
            self._unflushed = 0

    def _emit(self, t: float, frame: bytes, comment: str | None = None) -> None:
        self._write_packet(self._units(t), frame, len(frame), comment)

    def _advance(self, t: float) -> None:
        """Write the delayed ACKs due by t first, so that the file stays in time order."""
        if not self._pending_acks:
            return
        due = sorted((p for p in self._pending_acks if p[0] <= t), key=lambda p: p[0])
        for entry in due:
            self._pending_acks.remove(entry)
            when, session, from_client = entry
            session._send_ack(when, from_client)

    def _owe_ack(self, due: float, session: TcpSession, from_client: bool) -> None:
        self._cancel_ack(session, from_client)
        self._pending_acks.append((due, session, from_client))

    def _cancel_ack(self, session: TcpSession, from_client: bool | None = None) -> None:
        if self._pending_acks:
            self._pending_acks = [
                p
                for p in self._pending_acks
                if not (p[1] is session and (from_client is None or p[2] == from_client))
            ]


def _key_log_bytes(key_log: str | bytes) -> bytes:
    data = key_log.encode("ascii") if isinstance(key_log, str) else bytes(key_log)
    if data and not data.endswith(b"\n"):
        data += b"\n"
    if len(data) > MAX_SECRETS_BYTES:
        raise ValueError(f"key log of {len(data)} bytes is over {MAX_SECRETS_BYTES}")
    return data


def _secrets_body(data: bytes, order: str) -> bytes:
    return struct.pack(order + "II", _SECRETS_TLS_KEY_LOG, len(data)) + data + _PAD[len(data) & 3]


def inject_tls_keys(
    source: str | os.PathLike[str],
    key_log: str | bytes,
    target: str | os.PathLike[str] | None = None,
) -> None:
    """Put a Decryption Secrets Block with the TLS key log before the first packet of a closed
    pcapng file (after its section header and interface blocks), so that Wireshark decrypts the
    session with no separate key log file; what `editcap --inject-secrets tls,KEYLOG` does.

    Writes `target` (default: replaces `source` atomically through a temporary file beside it).
    Works on a file cut by a crash too: the blocks after the interfaces are copied as they are.
    """
    data = _key_log_bytes(key_log)
    destination = os.fspath(source if target is None else target)
    temporary = destination + ".keys.tmp"
    with open(source, "rb") as src:
        head = src.read(12)
        if len(head) < 12 or head[:4] != struct.pack("<I", _BlockType.SECTION_HEADER):
            raise ValueError(f"{os.fspath(source)} is not a pcapng file")
        order = "<" if struct.unpack("<I", head[8:12])[0] == _BYTE_ORDER_MAGIC else ">"
        length = struct.unpack(order + "I", head[4:8])[0]
        if length < 28 or length % 4 or length > 1 << 16:
            raise ValueError(f"{os.fspath(source)}: section header block of length {length}")
        prefix = head + src.read(length - 12)
        # The interface blocks stay before the secrets so that packet numbering is unchanged.
        while True:
            block = src.read(8)
            if len(block) < 8:
                rest = block
                break
            block_type, block_length = struct.unpack(order + "II", block)
            if block_type != _BlockType.INTERFACE_DESCRIPTION or not 20 <= block_length <= 1 << 16:
                rest = block
                break
            prefix += block + src.read(block_length - 8)
        with open(temporary, "wb") as out:
            out.write(prefix)
            if data:
                body = _secrets_body(data, order)
                total = 12 + len(body)
                out.write(
                    struct.pack(order + "II", _BlockType.DECRYPTION_SECRETS, total)
                    + body
                    + struct.pack(order + "I", total)
                )
            out.write(rest)
            while chunk := src.read(1 << 20):
                out.write(chunk)
    os.replace(temporary, destination)


def _options(options: Sequence[tuple[int, bytes]]) -> bytes:
    """pcapng options: code, length, value padded to 32 bits; then opt_endofopt."""
    out = b"".join(
        struct.pack("<HH", code, len(value)) + value + _PAD[len(value) & 3]
        for code, value in options
    )
    return out + struct.pack("<HH", _Option.END, 0)


class _Side:
    """One end of a synthesized TCP connection."""

    __slots__ = ("acked", "flow", "seq")

    def __init__(self, flow: _Flow, isn: int) -> None:
        self.flow = flow  # toward the other end
        self.seq = isn  # next sequence number this end sends
        self.acked = 0  # the highest acknowledgement number this end has sent


class TcpSession:
    """A synthesized TCP connection in a CaptureWriter (made by `CaptureWriter.tcp_session`).

    Every byte given to data() appears once, in order, in MSS-sized segments with PSH on the
    last; every segment carries the current acknowledgement of the other side's bytes, so the
    stream reassembles exactly and Wireshark's sequence analysis finds nothing to flag.
    """

    def __init__(
        self,
        writer: CaptureWriter,
        client: _Host,
        server: _Host,
        *,
        mss: int,
        window: int,
        client_isn: int | None,
        server_isn: int | None,
        ack_delay: float | None,
    ) -> None:
        if not 1 <= mss <= 65495:
            raise ValueError(f"MSS out of range: {mss}")
        if not mss < window <= 65535:
            raise ValueError(f"window must exceed the MSS and fit 16 bits: {window}")
        if ack_delay is not None and ack_delay < 0:
            raise ValueError("ack_delay must not be negative")
        self._writer = writer
        self.mss = mss
        self.window = window
        self.ack_delay = ack_delay
        self.client = client
        self.server = server
        to_server = _Flow(
            client.address, client.mac, client.port, server.address, server.mac, server.port, 6
        )
        to_client = _Flow(
            server.address, server.mac, server.port, client.address, client.mac, client.port, 6
        )
        c_isn = _initial_sequence(b"client", client, server) if client_isn is None else client_isn
        s_isn = _initial_sequence(b"server", server, client) if server_isn is None else server_isn
        self._client = _Side(to_server, c_isn & 0xFFFFFFFF)
        self._server = _Side(to_client, s_isn & 0xFFFFFFFF)
        self.state = TcpState.NEW

    def _sides(self, from_client: bool) -> tuple[_Side, _Side]:
        return (self._client, self._server) if from_client else (self._server, self._client)

    def _segment(
        self,
        t: float,
        side: _Side,
        peer: _Side,
        flags: int,
        payload: bytes = b"",
        options: bytes = b"",
        comment: str | None = None,
    ) -> None:
        ack = peer.seq if flags & _ACK else 0
        frame = side.flow.tcp(side.seq, ack, flags, self.window, payload, options)
        self._writer._emit(t, frame, comment)
        if flags & _ACK:
            side.acked = ack
        consumed = len(payload) + (1 if flags & (_SYN | _FIN) else 0)
        side.seq = (side.seq + consumed) & 0xFFFFFFFF

    def _send_ack(self, t: float, from_client: bool) -> None:
        """A pure ACK, if the sender still owes one (called by the writer for delayed ACKs)."""
        side, peer = self._sides(from_client)
        if self.state is TcpState.ESTABLISHED and side.acked != peer.seq:
            self._segment(t, side, peer, _ACK)

    def open(self, t: float) -> None:
        """The three-way handshake at t: SYN, SYN-ACK, ACK, each announcing the MSS."""
        with self._writer._lock:
            if self.state is not TcpState.NEW:
                raise CaptureStateError(f"open() on a connection that is {self.state.value}")
            self._writer._advance(t)
            mss_option = struct.pack("!BBH", 2, 4, self.mss)
            self._segment(t, self._client, self._server, _SYN, options=mss_option)
            self._segment(t, self._server, self._client, _SYN | _ACK, options=mss_option)
            self._segment(t, self._client, self._server, _ACK)
            self.state = TcpState.ESTABLISHED

    def data(
        self, t: float, from_client: bool, payload: bytes, *, comment: str | None = None
    ) -> None:
        """Bytes one side wrote at t (any length; split at the MSS). `comment` (for example the
        message name) is attached to the first segment and shown by Wireshark."""
        if not payload:
            return
        with self._writer._lock:
            self._require_established("data()")
            self._writer._advance(t)
            side, peer = self._sides(from_client)
            # This side's data carries its acknowledgement: a delayed ACK it owed is not needed.
            self._writer._cancel_ack(self, from_client)
            last = len(payload)
            if last <= self.mss and ((side.seq - peer.acked) & 0xFFFFFFFF) + last < self.window:
                # One segment, the usual V2G message: the loop below in short.
                self._segment(t, side, peer, _ACK | _PSH, payload, comment=comment)
                last = 0
            view = memoryview(payload)
            for start in range(0, last, self.mss):
                chunk = bytes(view[start : start + self.mss])
                in_flight = (side.seq - peer.acked) & 0xFFFFFFFF
                if in_flight + len(chunk) >= self.window:
                    # The receiver acknowledges before the window fills, as a real one would.
                    self._segment(t, peer, side, _ACK)
                end = start + len(chunk) == last
                flags = _ACK | _PSH if end else _ACK
                self._segment(t, side, peer, flags, chunk, comment=comment if start == 0 else None)
            if self.ack_delay == 0:
                self._segment(t, peer, side, _ACK)
            elif self.ack_delay is not None:
                self._writer._owe_ack(t + self.ack_delay, self, not from_client)

    def close(self, t: float, from_client: bool) -> None:
        """An orderly close at t started by one side: FIN/ACK, the other's FIN/ACK, the last ACK."""
        with self._writer._lock:
            self._require_established("close()")
            self._writer._advance(t)
            self._writer._cancel_ack(self)
            side, peer = self._sides(from_client)
            self._segment(t, side, peer, _FIN | _ACK)
            self._segment(t, peer, side, _FIN | _ACK)
            self._segment(t, side, peer, _ACK)
            self.state = TcpState.CLOSED

    def reset(self, t: float, from_client: bool = True) -> None:
        """An abort at t: one RST/ACK from the given side."""
        with self._writer._lock:
            self._require_established("reset()")
            self._writer._advance(t)
            self._writer._cancel_ack(self)
            side, peer = self._sides(from_client)
            self._segment(t, side, peer, _RST | _ACK)
            self.state = TcpState.RESET

    def _require_established(self, what: str) -> None:
        if self.state is not TcpState.ESTABLISHED:
            raise CaptureStateError(f"{what} on a connection that is {self.state.value}")

    @property
    def client_sequence(self) -> int:
        """The client's next sequence number (its bytes sent = this - ISN - 1, modulo 2**32)."""
        return self._client.seq

    @property
    def server_sequence(self) -> int:
        return self._server.seq


class SdpExchange:
    """Synthesized SDP datagrams between one EVCC and one SECC (made by `CaptureWriter.sdp`)."""

    def __init__(self, writer: CaptureWriter, evcc: _Host, secc: _Host) -> None:
        self._writer = writer
        group = _ipv6_bytes(SDP_MULTICAST_ADDRESS)
        self._request = _Flow(
            evcc.address, evcc.mac, evcc.port, group, SDP_MULTICAST_MAC, SDP_PORT, 17
        )
        self._response = _Flow(
            secc.address, secc.mac, secc.port, evcc.address, evcc.mac, evcc.port, 17
        )

    def request(self, t: float, payload: bytes, *, comment: str | None = None) -> None:
        """The EVCC's V2GTP-framed SDP request (0x9000) to ff02::1 port 15118 at t."""
        with self._writer._lock:
            self._writer._advance(t)
            self._writer._emit(t, self._request.udp(payload), comment)

    def response(self, t: float, payload: bytes, *, comment: str | None = None) -> None:
        """The SECC's V2GTP-framed SDP response (0x9001) to the EVCC's address and port at t."""
        with self._writer._lock:
            self._writer._advance(t)
            self._writer._emit(t, self._response.udp(payload), comment)


class TappedLink:
    """A ByteLink that passes everything through and records it into a synthesized TcpSession.

    For real connections that cannot be sniffed: build the session from the socket's real
    addresses and ports, wrap the TCP link (below TLS, so the file holds the TLS records), and
    give `now` the run's clock (the writer's epoch is the wall time of t = 0). Recording never
    breaks the link: the first capture error is kept in `capture_error` and recording stops.
    """

    def __init__(
        self,
        inner: ByteLink,
        session: TcpSession,
        now: Callable[[], float],
        *,
        local_is_client: bool,
    ) -> None:
        self._inner = inner
        self._session = session
        self._now = now
        self._local_is_client = local_is_client
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self.capture_error: Exception | None = None
        if session.state is TcpState.NEW:
            self._record(lambda t: session.open(t))

    def _record(self, action: Callable[[float], None]) -> None:
        if self.capture_error is not None or self._session.state not in (
            TcpState.NEW,
            TcpState.ESTABLISHED,
        ):
            return
        try:
            action(self._now())
        except (OSError, ValueError, CaptureStateError) as exc:
            self.capture_error = exc

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data = on_data
        self._on_closed = on_closed
        self._inner.set_receiver(self._received, self._ended)

    def _received(self, data: bytes) -> None:
        self._record(lambda t: self._session.data(t, not self._local_is_client, data))
        if self._on_data is not None:
            self._on_data(data)

    def _ended(self, reason: str) -> None:
        # Whoever has not closed yet is the peer: the FIN exchange is recorded as the peer's.
        self._record(lambda t: self._session.close(t, not self._local_is_client))
        if self._on_closed is not None:
            self._on_closed(reason)

    def send(self, data: bytes) -> None:
        # Recorded first: a link that delivers at once would otherwise put the answer before
        # the question. A closed link records nothing and raises LinkClosed below.
        if not self._inner.closed:
            self._record(lambda t: self._session.data(t, self._local_is_client, data))
        self._inner.send(data)

    def close(self, reason: str = "closed") -> None:
        self._record(lambda t: self._session.close(t, self._local_is_client))
        self._inner.close(reason)

    @property
    def closed(self) -> bool:
        return self._inner.closed

    @property
    def peer_name(self) -> str:
        return self._inner.peer_name


#: Linux hardware types (include/uapi/linux/if_arp.h) whose packet sockets give Ethernet frames.
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772


def _hardware_type(interface: str) -> int | None:
    """The interface's ARPHRD type from sysfs, or None where that cannot be read (not Linux)."""
    try:
        with open(f"/sys/class/net/{interface}/type", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


if TYPE_CHECKING:

    def _tapped_link_is_a_byte_link(link: TappedLink) -> ByteLink:
        return link  # mypy checks that TappedLink satisfies the ByteLink protocol


def live_filter(tcp_ports: Sequence[int] = (), *, sdp: bool = True, slac: bool = False) -> str:
    """The BPF filter of a live V2G capture: IPv6 TCP on the session's ports (all TCP over IPv6
    when none is given: the EVCC learns the SECC's port only from SDP), UDP 15118 for SDP, and
    HomePlug AV frames (SLAC) when asked."""
    ip6 = [f"tcp port {_port(p)}" for p in tcp_ports] or ["tcp"]
    if sdp:
        ip6.append(f"udp port {SDP_PORT}")
    parts = [f"(ip6 and ({' or '.join(ip6)}))"]
    if slac:
        parts.append(f"(ether proto 0x{ETHERTYPE_HOMEPLUG_AV:04x})")
    return " or ".join(parts)


class LiveCapture:
    """Frames sniffed from a real interface (scapy AsyncSniffer), written through a CaptureWriter.

    Needs a packet socket (root or CAP_NET_RAW). The BPF filter is compiled by libpcap through
    scapy; where libpcap is missing the same selection is made in Python (`filter_mode` says which,
    and the Python form costs a dissection per frame on the interface). The writer's interface
    should be `live_interface(name, live.bpf_filter)`. Kernel timestamps are kept as they are.
    """

    def __init__(
        self,
        writer: CaptureWriter,
        interface: str,
        *,
        tcp_ports: Sequence[int] = (),
        sdp: bool = True,
        slac: bool = False,
        bpf: bool = True,
    ) -> None:
        self._writer = writer
        self.interface = interface
        self._bpf = bpf  # False: select in Python as when libpcap is missing (tests use it)
        self._tcp_ports = frozenset(_port(p) for p in tcp_ports)
        self._sdp = sdp
        self._slac = slac
        self.bpf_filter = live_filter(tcp_ports, sdp=sdp, slac=slac)
        self.filter_mode = ""
        self.frames = 0
        #: Frames the sniffer thread could not write (kept, not raised: the thread must go on).
        self.errors: list[str] = []
        self._sniffer: Any = None

    def start(self, timeout: float = 5.0) -> None:
        """Open the packet socket and start sniffing; returns once the socket is listening, so
        traffic sent afterwards is captured. Raises ValueError for an unknown interface, the
        sniffer's own error if it fails to start, RuntimeError if it has not within `timeout`."""
        # The layers register Ethernet as link type 1, so that frames dissect (the Python filter
        # needs it) instead of arriving as raw bytes with a warning.
        import scapy.layers.inet6
        import scapy.layers.l2  # noqa: F401
        from scapy.sendrecv import AsyncSniffer

        try:
            socket.if_nametoindex(self.interface)
        except OSError as exc:
            raise ValueError(f"no network interface {self.interface!r} here") from exc
        if self._writer.interface.name != self.interface:
            raise ValueError(
                f"the writer describes interface {self._writer.interface.name!r}, not "
                f"{self.interface!r}: give it live_interface({self.interface!r}, bpf_filter)"
            )
        hardware = _hardware_type(self.interface)
        if hardware not in (None, _ARPHRD_ETHER, _ARPHRD_LOOPBACK):
            # The file declares Ethernet framing; a tunnel or PPP link would be misread.
            raise ValueError(f"{self.interface} is not an Ethernet interface (ARPHRD {hardware})")
        self.filter_mode = "python"
        if self._bpf:
            try:
                from scapy.arch.common import compile_filter

                compile_filter(self.bpf_filter, iface=self.interface)
                self.filter_mode = "bpf"
            except (ImportError, OSError):  # no libpcap to compile with: select in Python
                pass
        started = threading.Event()
        options: dict[str, Any] = {
            "iface": self.interface,
            "prn": self._on_frame,
            "store": False,
            "started_callback": started.set,
        }
        if self.filter_mode == "bpf":
            options["filter"] = self.bpf_filter
        else:
            options["lfilter"] = self._selected
        sniffer = AsyncSniffer(**options)
        sniffer.start()
        self._sniffer = sniffer
        # Waiting in slices notices a sniffer thread that died at once (its error is kept).
        for _ in range(max(1, round(timeout / 0.05))):
            if started.wait(0.05):
                return
            if sniffer.thread is not None and not sniffer.thread.is_alive():
                break
        self._sniffer = None
        error = getattr(sniffer, "exception", None)
        if isinstance(error, Exception):
            raise error
        if sniffer.running:
            sniffer.stop(join=True)
        raise RuntimeError(f"live capture on {self.interface} did not start within {timeout} s")

    def stop(self) -> None:
        """Stop sniffing and flush the writer (frames still queued in the kernel are not read:
        stop once the traffic has been seen, for example when `frames` stops growing)."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is not None and sniffer.running:
            sniffer.stop(join=True)
        if not self._writer.closed:
            self._writer.flush()

    def _selected(self, packet: Any) -> bool:
        """The BPF filter's selection, for when libpcap cannot compile it."""
        from scapy.layers.inet import TCP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        if self._slac and packet.haslayer(Ether) and packet[Ether].type == ETHERTYPE_HOMEPLUG_AV:
            return True
        if not packet.haslayer(IPv6):
            return False
        if packet.haslayer(TCP):
            ports = {packet[TCP].sport, packet[TCP].dport}
            return not self._tcp_ports or bool(ports & self._tcp_ports)
        if self._sdp and packet.haslayer(UDP):
            return SDP_PORT in (packet[UDP].sport, packet[UDP].dport)
        return False

    def _on_frame(self, packet: Any) -> None:
        try:
            frame = bytes(packet)
            stamp = packet.time
            # scapy gives an EDecimal (exact) or a float; both convert without a float round trip
            # for the former.
            epoch_ns = (
                int(stamp * _NS_PER_S) if not isinstance(stamp, float) else round(stamp * _NS_PER_S)
            )
            wire = getattr(packet, "wirelen", None)
            self._writer.write_frame_at(
                epoch_ns, frame, wire_length=wire if isinstance(wire, int) else None
            )
            self.frames += 1
        except Exception as exc:  # the sniffer thread must survive one bad frame
            if len(self.errors) < 100:
                self.errors.append(f"{type(exc).__name__}: {exc}")
