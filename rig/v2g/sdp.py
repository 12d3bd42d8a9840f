"""SECC Discovery Protocol (SDP): how an EV finds the charger's TCP endpoint, ISO 15118-2/-20.

The EV multicasts an SDP request (V2GTP payload type 0x9000) to ff02::1 on the charging
interface, UDP port 15118, saying whether it wants TLS; the SECC answers by unicast with an SDP
response (0x9001): its IPv6 address, its TCP port and the security and transport it offers. The
EV repeats an unanswered request every 250 ms (FACTS.md "ISO 15118-20 sequence"; Josev gives up
after 50 requests) and takes the first valid response.

Three layers, each usable alone:
- the codec: SdpRequest / SdpResponse with encode() and decode_request() / decode_response(),
  strict about sizes and values; every refusal is an SdpError naming its SdpFault;
- the sans-IO parts: SdpDiscovery (the EV's tries and replies, no socket, no clock) and
  answer_request() (what an SECC sends back for a datagram);
- asyncio endpoints on a loop the caller owns: SdpServer (EVSE side) and SdpClient (EV side).
  Retries are timed with the run's Scheduler, so they follow the run's clock.

Direct mode skips SDP on both sides: the EVSE starts no SdpServer and the EV is handed a
SeccEndpoint (address and port) instead of discovering one; SdpResult.direct() records that.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import cast

from rig.v2g.netif import endpoint_text, interface_index, link_local_address
from rig.v2g.scheduler import Scheduler, TimerHandle

SDP_PORT = 15118
SDP_MULTICAST_GROUP = IPv6Address("ff02::1")

#: EV side: seconds between SDP requests (the SDP request timeout). FACTS.md, open code's value.
SDP_RETRY_INTERVAL = 0.25
#: EV side: requests before giving up. Josev's SDP_MAX_REQUEST_COUNTER (?, not from the standard).
SDP_MAX_REQUESTS = 50

V2GTP_VERSION = 0x01
V2GTP_INVERSE_VERSION = 0xFE
V2GTP_HEADER_LENGTH = 8
_HEADER = struct.Struct(">BBHI")


class SdpPayloadType(IntEnum):
    """V2GTP payload types of SDP (DESIGN.md "Domain conventions")."""

    REQUEST = 0x9000
    RESPONSE = 0x9001


class Security(IntEnum):
    """The Security byte of SDP request and response."""

    TLS = 0x00
    NO_TLS = 0x10


class TransportProtocol(IntEnum):
    """The Transport Protocol byte. Only TCP carries V2G messages; 0x10 names UDP in -2 (?)."""

    TCP = 0x00
    UDP = 0x10


REQUEST_PAYLOAD_LENGTH = 2
RESPONSE_PAYLOAD_LENGTH = 20


class SdpFault(Enum):
    """Why a datagram is not a valid SDP message."""

    TOO_SHORT = "shorter than the 8-byte V2GTP header"
    BAD_VERSION = "V2GTP protocol version is not 0x01"
    BAD_INVERSE_VERSION = "V2GTP inverse protocol version is not 0xFE"
    WRONG_PAYLOAD_TYPE = "payload type is not the one expected"
    WRONG_PAYLOAD_LENGTH = "payload length field is not the SDP size"
    LENGTH_MISMATCH = "datagram size differs from header plus payload length"
    BAD_SECURITY = "security byte is neither 0x00 (TLS) nor 0x10 (no TLS)"
    BAD_TRANSPORT = "transport byte is neither 0x00 (TCP) nor 0x10 (UDP)"
    BAD_PORT = "TCP port 0"
    BAD_ADDRESS = "SECC address is unspecified or multicast"


class SdpError(ValueError):
    """A datagram that is not a valid SDP request or response; `fault` says which check failed."""

    def __init__(self, fault: SdpFault, detail: str) -> None:
        super().__init__(f"{fault.value}: {detail}")
        self.fault = fault
        self.detail = detail


def _header(payload_type: SdpPayloadType, length: int) -> bytes:
    return _HEADER.pack(V2GTP_VERSION, V2GTP_INVERSE_VERSION, payload_type, length)


def _payload(data: bytes, expected: SdpPayloadType, length: int) -> bytes:
    """The payload of a V2GTP frame that must carry `expected` with exactly `length` bytes."""
    if len(data) < V2GTP_HEADER_LENGTH:
        raise SdpError(SdpFault.TOO_SHORT, f"{len(data)} bytes: {data.hex()}")
    version, inverse, payload_type, payload_length = _HEADER.unpack_from(data)
    if version != V2GTP_VERSION:
        raise SdpError(SdpFault.BAD_VERSION, f"0x{version:02x}")
    if inverse != V2GTP_INVERSE_VERSION:
        raise SdpError(SdpFault.BAD_INVERSE_VERSION, f"0x{inverse:02x}")
    if payload_type != expected:
        raise SdpError(
            SdpFault.WRONG_PAYLOAD_TYPE, f"0x{payload_type:04x}, expected 0x{expected:04x}"
        )
    if payload_length != length:
        raise SdpError(SdpFault.WRONG_PAYLOAD_LENGTH, f"{payload_length}, expected {length}")
    if len(data) != V2GTP_HEADER_LENGTH + length:
        raise SdpError(
            SdpFault.LENGTH_MISMATCH,
            f"{len(data)} bytes, expected {V2GTP_HEADER_LENGTH + length}",
        )
    return data[V2GTP_HEADER_LENGTH:]


def _security(value: int) -> Security:
    try:
        return Security(value)
    except ValueError:
        raise SdpError(SdpFault.BAD_SECURITY, f"0x{value:02x}") from None


def _transport(value: int) -> TransportProtocol:
    try:
        return TransportProtocol(value)
    except ValueError:
        raise SdpError(SdpFault.BAD_TRANSPORT, f"0x{value:02x}") from None


@dataclass(frozen=True, slots=True)
class SdpRequest:
    """What the EV asks for: TLS or not, over TCP."""

    security: Security = Security.NO_TLS
    transport: TransportProtocol = TransportProtocol.TCP

    def encode(self) -> bytes:
        """The whole datagram: V2GTP header and the 2-byte payload."""
        return _header(SdpPayloadType.REQUEST, REQUEST_PAYLOAD_LENGTH) + bytes(
            (self.security, self.transport)
        )


@dataclass(frozen=True, slots=True)
class SdpResponse:
    """Where the SECC listens and what it offers."""

    address: IPv6Address
    port: int
    security: Security
    transport: TransportProtocol = TransportProtocol.TCP

    def __post_init__(self) -> None:
        if not 0 < self.port <= 0xFFFF:
            raise SdpError(SdpFault.BAD_PORT, f"port {self.port} out of 1..65535")
        if self.address.is_unspecified or self.address.is_multicast:
            raise SdpError(SdpFault.BAD_ADDRESS, str(self.address))

    def encode(self) -> bytes:
        """The whole datagram: V2GTP header and the 20-byte payload."""
        return (
            _header(SdpPayloadType.RESPONSE, RESPONSE_PAYLOAD_LENGTH)
            + self.address.packed
            + struct.pack(">HBB", self.port, self.security, self.transport)
        )


def decode_request(data: bytes) -> SdpRequest:
    """The SDP request in a whole datagram; SdpError if anything is off."""
    payload = _payload(data, SdpPayloadType.REQUEST, REQUEST_PAYLOAD_LENGTH)
    return SdpRequest(_security(payload[0]), _transport(payload[1]))


def decode_response(data: bytes) -> SdpResponse:
    """The SDP response in a whole datagram; SdpError if anything is off."""
    payload = _payload(data, SdpPayloadType.RESPONSE, RESPONSE_PAYLOAD_LENGTH)
    port, security, transport = struct.unpack_from(">HBB", payload, 16)
    return SdpResponse(IPv6Address(payload[:16]), port, _security(security), _transport(transport))


# --- where the EV ends up: discovered or given -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeccEndpoint:
    """The SECC's TCP endpoint. From SDP, or given directly (direct mode skips SDP)."""

    address: IPv6Address | IPv4Address
    port: int
    security: Security = Security.NO_TLS
    #: The interface a link-local address is reached on (its scope).
    interface: str | None = None

    @classmethod
    def parse(
        cls,
        address: str,
        port: int,
        security: Security = Security.NO_TLS,
        interface: str | None = None,
    ) -> SeccEndpoint:
        if "%" in address:  # "fe80::1%veth0"
            address, interface = address.split("%", 1)
        return cls(ip_address(address), port, security, interface)


@dataclass(frozen=True, slots=True)
class SdpTry:
    """One SDP request the EV sent."""

    number: int  # 1-based
    sent_at: float


@dataclass(frozen=True, slots=True)
class SdpReply:
    """One datagram the EV received while discovering, and what it was."""

    received_at: float
    after_try: int  # the number of the latest request sent before it arrived
    source: str
    data: bytes
    response: SdpResponse | None  # None: malformed (see error)
    error: str | None = None


SdpRecord = SdpTry | SdpReply


@dataclass(frozen=True, slots=True)
class SdpResult:
    """How the EV found the SECC: the endpoint, and every try and reply on the way."""

    endpoint: SeccEndpoint
    response: SdpResponse | None
    tries: tuple[SdpTry, ...] = ()
    replies: tuple[SdpReply, ...] = ()

    @classmethod
    def direct(cls, endpoint: SeccEndpoint) -> SdpResult:
        """Direct mode: the endpoint was given, no SDP took place."""
        return cls(endpoint, None)


class SdpFailed(TimeoutError):
    """No valid SDP response after the last request's wait."""

    def __init__(self, tries: tuple[SdpTry, ...], replies: tuple[SdpReply, ...]) -> None:
        bad = sum(1 for r in replies if r.response is None)
        super().__init__(
            f"no valid SDP response after {len(tries)} requests"
            + (f" ({bad} malformed replies)" if bad else "")
        )
        self.tries = tries
        self.replies = replies


class DiscoveryState(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    FOUND = "found"
    FAILED = "failed"


class SdpDiscovery:
    """The EV's side of SDP without sockets or clocks: when to (re)send, what a reply means.

    frame = d.begin(now)                 # send it; wait until d.deadline
    d.datagram(data, source, now)        # -> SdpResponse once a valid one came, else None
    frame = d.timeout(now)               # at d.deadline: resend frame, or None = gave up
    """

    def __init__(
        self,
        request: SdpRequest,
        max_requests: int = SDP_MAX_REQUESTS,
        interval: float = SDP_RETRY_INTERVAL,
        interface: str | None = None,
        recorder: Callable[[SdpRecord], None] | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, not {max_requests}")
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval}")
        self.request = request
        self.frame = request.encode()
        self.max_requests = max_requests
        self.interval = interval
        self.interface = interface
        self.state = DiscoveryState.IDLE
        self.deadline = float("inf")
        self.tries: list[SdpTry] = []
        self.replies: list[SdpReply] = []
        self.response: SdpResponse | None = None
        self._recorder = recorder

    def _send(self, now: float) -> bytes:
        attempt = SdpTry(len(self.tries) + 1, now)
        self.tries.append(attempt)
        self.deadline = now + self.interval
        if self._recorder is not None:
            self._recorder(attempt)
        return self.frame

    def begin(self, now: float) -> bytes:
        if self.state is not DiscoveryState.IDLE:
            raise RuntimeError(f"discovery already {self.state.value}")
        self.state = DiscoveryState.WAITING
        return self._send(now)

    def datagram(self, data: bytes, source: str, now: float) -> SdpResponse | None:
        if self.state is not DiscoveryState.WAITING:
            return None  # late or duplicate replies after the outcome are not recorded
        try:
            response = decode_response(data)
            error = None
        except SdpError as exc:
            response, error = None, str(exc)
        # A datagram is at most 64 KiB; keep only what a valid response could hold.
        reply = SdpReply(now, len(self.tries), source, data[:64], response, error)
        self.replies.append(reply)
        if self._recorder is not None:
            self._recorder(reply)
        if response is None:
            return None
        self.state = DiscoveryState.FOUND
        self.response = response
        self.deadline = float("inf")
        return response

    def timeout(self, now: float) -> bytes | None:
        if self.state is not DiscoveryState.WAITING:
            return None
        if len(self.tries) >= self.max_requests:
            self.state = DiscoveryState.FAILED
            self.deadline = float("inf")
            return None
        return self._send(now)

    def result(self) -> SdpResult:
        if self.response is None:
            raise SdpFailed(tuple(self.tries), tuple(self.replies))
        r = self.response
        return SdpResult(
            SeccEndpoint(r.address, r.port, r.security, self.interface),
            r,
            tuple(self.tries),
            tuple(self.replies),
        )


# --- the SECC's answer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SdpOffer:
    """What an SECC announces: its address and one TCP port per security it serves."""

    address: IPv6Address
    ports: Mapping[Security, int]

    def __post_init__(self) -> None:
        if not self.ports:
            raise ValueError("an SDP offer needs at least one (security, port)")


@dataclass(frozen=True, slots=True)
class SdpAnswer:
    """What the SECC made of one datagram: the response to send back, or why none."""

    request: SdpRequest | None
    response: SdpResponse | None
    note: str


def answer_request(data: bytes, offer: SdpOffer) -> SdpAnswer:
    """The SECC's reply to one datagram. A request for a security not offered gets the offered
    one (the EV decides whether to go on); a malformed datagram or a UDP request gets none."""
    try:
        request = decode_request(data)
    except SdpError as exc:
        return SdpAnswer(None, None, f"ignored: {exc}")
    if request.transport is not TransportProtocol.TCP:
        return SdpAnswer(request, None, "ignored: only TCP is offered")
    offered = request.security in offer.ports
    security = request.security if offered else next(iter(offer.ports))
    response = SdpResponse(offer.address, offer.ports[security], security)
    return SdpAnswer(request, response, "answered")


# --- asyncio endpoints ---------------------------------------------------------------------------


def sdp_server_socket(interface: str, port: int = SDP_PORT) -> socket.socket:
    """A UDP socket that receives SDP requests multicast to ff02::1 on `interface` only.

    Made synchronously so that a caller (a test) can make it inside a network namespace."""
    index = interface_index(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Only this interface: a charger may have a backend link with its own ff02::1.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\0")
        sock.bind(("::", port, 0, 0))
        group = SDP_MULTICAST_GROUP.packed + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def sdp_client_socket(interface: str) -> socket.socket:
    """A UDP socket that multicasts on `interface` (hop limit 1) and hears unicast replies."""
    index = interface_index(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\0")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.bind(("::", 0, 0, index))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class SdpServed:
    """One datagram the SDP server received and what it did about it (for the trace)."""

    received_at: float
    source: str
    data: bytes
    answer: SdpAnswer


class SdpServer(asyncio.DatagramProtocol):
    """EVSE side: answers SDP requests on one interface with `offer`.

    server = await SdpServer.start(loop, scheduler, "eth1", {Security.NO_TLS: tcp_port})
    ...
    server.close()
    """

    def __init__(
        self,
        scheduler: Scheduler,
        offer: SdpOffer,
        recorder: Callable[[SdpServed], None] | None = None,
        interface: str | None = None,
    ) -> None:
        self.offer = offer
        self.interface = interface
        self.scheduler = scheduler
        self.served: list[SdpServed] = []
        #: Oldest records are dropped beyond this: a flood of requests must not grow memory.
        self.max_records = 1000
        self._recorder = recorder
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(
        cls,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler,
        interface: str,
        ports: Mapping[Security, int],
        *,
        address: IPv6Address | None = None,
        port: int = SDP_PORT,
        sock: socket.socket | None = None,
        recorder: Callable[[SdpServed], None] | None = None,
    ) -> SdpServer:
        """Listen on `interface`; answer with `address` (default: the interface's link-local
        address) and the port for the security asked for. `sock` replaces the socket made
        from `interface` and `port` (sdp_server_socket())."""
        if address is None:
            address = link_local_address(interface)
        if sock is None:
            sock = sdp_server_socket(interface, port)
        server = cls(scheduler, SdpOffer(address, dict(ports)), recorder, interface)
        await loop.create_datagram_endpoint(lambda: server, sock=sock)
        return server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: CPython 3.11's selector datagram transport does not derive
        # from asyncio.DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        answer = answer_request(data, self.offer)
        if answer.response is not None and self._transport is not None:
            # Unicast back to the requester's address and port, as open implementations do (?)
            self._transport.sendto(answer.response.encode(), addr)
        source = endpoint_text(addr, self.interface)
        record = SdpServed(self.scheduler.now(), source, data[:64], answer)
        if len(self.served) >= self.max_records:
            del self.served[: self.max_records // 2]
        self.served.append(record)
        if self._recorder is not None:
            self._recorder(record)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for a reply to a vanished EV: nothing to do, the EV will ask again.
        pass

    @property
    def answered(self) -> int:
        return sum(1 for s in self.served if s.answer.response is not None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, str], None], interface: str) -> None:
        self._on_datagram = on_datagram
        self._interface = interface

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._on_datagram(data, endpoint_text(addr, self._interface))

    def error_received(self, exc: Exception) -> None:
        pass  # an unreachable group is the same as no answer: the next try follows


@dataclass
class SdpClient:
    """EV side: multicast requests on `interface` until a valid response comes or tries run out.

    result = await SdpClient("eth1", loop, scheduler).discover()   # SdpFailed if none
    """

    interface: str
    loop: asyncio.AbstractEventLoop
    scheduler: Scheduler
    security: Security = Security.NO_TLS
    max_requests: int = SDP_MAX_REQUESTS
    interval: float = SDP_RETRY_INTERVAL
    port: int = SDP_PORT
    recorder: Callable[[SdpRecord], None] | None = None
    sock: socket.socket | None = None
    discovery: SdpDiscovery | None = field(default=None, init=False)

    async def discover(self) -> SdpResult:
        discovery = self.discovery = SdpDiscovery(
            SdpRequest(self.security),
            self.max_requests,
            self.interval,
            self.interface,
            self.recorder,
        )
        sock = self.sock if self.sock is not None else sdp_client_socket(self.interface)
        # The socket knows its interface's index, also when it was made in another namespace.
        index = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF)
        group = (str(SDP_MULTICAST_GROUP), self.port, 0, index)
        done: asyncio.Future[None] = self.loop.create_future()
        timer: TimerHandle | None = None

        def on_datagram(data: bytes, source: str) -> None:
            found = discovery.datagram(data, source, self.scheduler.now())
            if found is not None and not done.done():
                done.set_result(None)

        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _ClientProtocol(on_datagram, self.interface), sock=sock
        )

        def on_timeout() -> None:
            nonlocal timer
            frame = discovery.timeout(self.scheduler.now())
            if frame is None:
                if not done.done():
                    done.set_result(None)
                return
            transport.sendto(frame, group)
            timer = self.scheduler.call_at(discovery.deadline, on_timeout)

        try:
            transport.sendto(discovery.begin(self.scheduler.now()), group)
            timer = self.scheduler.call_at(discovery.deadline, on_timeout)
            await done
        finally:
            if timer is not None:
                timer.cancel()
            transport.close()
        return discovery.result()


async def locate_secc(
    how: SeccEndpoint | SdpClient,
) -> SdpResult:
    """The EV's way to its SECC: discover with an SdpClient, or take a given endpoint as is."""
    if isinstance(how, SeccEndpoint):
        return SdpResult.direct(how)
    return await how.discover()
