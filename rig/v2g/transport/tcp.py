"""TCP byte links on an asyncio loop the caller owns: IPv6 link-local (or ::1, 127.0.0.1 in tests).

    server = await TcpServer.start(loop, "fe80::1", 0, on_link, interface="eth1")
    link = await open_tcp_link(loop, "fe80::1", server.port, interface="eth1", timeout=2.0)

Each connection is a TcpLink (a rig.v2g.link.ByteLink). The library never runs or makes a loop;
the lead's real-time clock serves the same loop between deadlines. Sockets are made
synchronously when the coroutine starts, so a test may make them inside a network namespace.

Bounds, because the other end may be anything:
- received bytes are handed to the receiver as they come; bytes that cannot be handed over yet
  (no receiver set, or a delivery in progress) are held up to `max_buffered`, and reading pauses
  beyond that, so TCP's own window pushes back on the sender;
- bytes queued for a peer that does not read are held up to `max_send_buffer`; past that the
  link is aborted with a reason rather than growing without end;
- a server holds at most `max_links` connections at once and refuses more.
The end of the link comes to on_closed(reason) exactly once: our own close(reason), or the peer's
close ("peer closed the connection"), or an error ("connection lost: ...").
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rig.v2g.link import ClosedCallback, DataCallback, LinkClosed
from rig.v2g.netif import endpoint_text, socket_address

#: Received bytes held while they cannot be delivered; reading pauses above this.
MAX_BUFFERED = 64 * 1024
#: Bytes queued for a peer that does not read before the link is aborted. A -20 message is at
#: most a few kB (CertificateInstallationRes the largest), so this is hundreds of messages.
MAX_SEND_BUFFER = 1024 * 1024
#: Seconds a close() may spend flushing to a peer that does not read before the socket is aborted.
CLOSE_FLUSH_TIMEOUT = 5.0
#: Connect timeout when none is given (the EV's communication setup allows 20 s in total).
CONNECT_TIMEOUT = 5.0

PEER_CLOSED = "peer closed the connection"


class TcpConnectError(ConnectionError):
    """A client could not connect (refused, unreachable, or timed out); the text says which."""


class TcpLink(asyncio.Protocol):
    """One TCP connection as a ByteLink."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_buffered: int = MAX_BUFFERED,
        max_send_buffer: int = MAX_SEND_BUFFER,
        on_made: Callable[[TcpLink], None] | None = None,
        interface: str | None = None,
    ) -> None:
        self._loop = loop
        self._interface = interface
        self._max_buffered = max_buffered
        self._max_send_buffer = max_send_buffer
        self._on_made = on_made
        self._transport: asyncio.Transport | None = None
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self._delivering = False
        self._reading_paused = False
        self._closed = False  # no more sends: close() was called or the connection ended
        self._local_close = False  # we ended it: what is still held is dropped
        self._reported = False  # on_closed has been called (or is on its way)
        self._peer = "tcp:(not connected)"
        self.bytes_received = 0
        self.bytes_sent = 0
        self.close_reason: str | None = None

    # --- ByteLink ---

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data = on_data
        self._on_closed = on_closed
        self._drain_held()
        if self._closed and not self._reported and self.close_reason is not None:
            self._loop.call_soon(self._report, self.close_reason)

    def send(self, data: bytes) -> None:
        if self._closed or self._transport is None:
            raise LinkClosed(f"{self._peer}: send after the link ended")
        self._transport.write(data)
        self.bytes_sent += len(data)
        if self._transport.get_write_buffer_size() > self._max_send_buffer:
            self._abort(f"send buffer over {self._max_send_buffer} bytes: the peer is not reading")

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = self._local_close = True
        self.close_reason = reason
        transport = self._transport
        if transport is not None:
            transport.close()  # sends what is queued, then FIN
            # A peer that never reads would keep the socket open for ever.
            self._loop.call_later(CLOSE_FLUSH_TIMEOUT, transport.abort)
        # Reported from the loop, never from inside close(): the caller may be mid-callback.
        self._loop.call_soon(self._report, reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        return self._peer

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # One small request, one small response: never wait to fill a segment (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        self._peer = f"tcp:{endpoint_text(peername, self._interface)}"
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self._local_close:
            return  # after our close(): nobody listens any more
        self.bytes_received += len(data)
        if self._on_data is not None and not self._delivering and not self._held:
            self._delivering = True
            try:
                self._on_data(data)
            finally:
                self._delivering = False
            if self._held:
                self._drain_held()
            return
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self._max_buffered and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        return False  # half-open links have no use in V2G: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed:
            return  # our own close(): already reported with our reason
        self._closed = True
        self.close_reason = PEER_CLOSED if exc is None else f"connection lost: {exc}"
        self._drain_held()
        self._report(self.close_reason)

    # --- inside ---

    def _drain_held(self) -> None:
        if self._on_data is None or self._delivering:
            return
        self._delivering = True
        try:
            while self._held and not self._local_close:
                data = self._held.popleft()
                self._held_bytes -= len(data)
                self._on_data(data)
        finally:
            self._delivering = False
        if self._reading_paused and self._held_bytes <= self._max_buffered // 2:
            self._reading_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    def _report(self, reason: str) -> None:
        if self._reported or self._on_closed is None:
            return
        self._reported = True
        self._on_closed(reason)

    def _abort(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = self._local_close = True
        self.close_reason = reason
        if self._transport is not None:
            self._transport.abort()
        self._loop.call_soon(self._report, reason)


def _stream_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


def tcp_listen_socket(
    host: str, port: int = 0, interface: str | None = None, backlog: int = 4
) -> socket.socket:
    """A listening socket on host:port (port 0: the kernel picks). Made synchronously so that
    a test may make it inside a network namespace."""
    family, address = socket_address(host, port, interface)
    sock = _stream_socket(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class TcpServer:
    """Accepts connections and hands each, as a TcpLink, to `on_link` before any byte arrives."""

    server: asyncio.Server
    on_link: Callable[[TcpLink], None]
    max_links: int
    links: set[TcpLink]
    interface: str | None = None
    refused: int = 0

    @classmethod
    async def start(
        cls,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        on_link: Callable[[TcpLink], None],
        *,
        interface: str | None = None,
        max_links: int = 4,
        max_buffered: int = MAX_BUFFERED,
        max_send_buffer: int = MAX_SEND_BUFFER,
        sock: socket.socket | None = None,
    ) -> TcpServer:
        if sock is None:
            sock = tcp_listen_socket(host, port, interface)
        holder: list[TcpServer] = []

        def made(link: TcpLink) -> None:
            this = holder[0]
            this.links = {x for x in this.links if not x.closed}
            if len(this.links) >= this.max_links:
                this.refused += 1
                link._abort(f"refused: already {this.max_links} connections")
                return
            this.links.add(link)
            this.on_link(link)

        server = await loop.create_server(
            lambda: TcpLink(loop, max_buffered, max_send_buffer, made, interface), sock=sock
        )
        this = cls(server, on_link, max_links, set(), interface)
        holder.append(this)
        return this

    @property
    def sockname(self) -> tuple[str | int, ...]:
        name: tuple[str | int, ...] = self.server.sockets[0].getsockname()
        return name

    @property
    def port(self) -> int:
        return int(self.sockname[1])

    @property
    def name(self) -> str:
        return endpoint_text(self.sockname, self.interface)

    def close(self, close_links: bool = True, reason: str = "server closed") -> None:
        """Stop accepting; end the open links too unless told otherwise."""
        self.server.close()
        if close_links:
            for link in list(self.links):
                link.close(reason)
            self.links.clear()


async def open_tcp_link(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    *,
    interface: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
    max_buffered: int = MAX_BUFFERED,
    max_send_buffer: int = MAX_SEND_BUFFER,
) -> TcpLink:
    """Connect to host:port (a link-local host needs `interface`); TcpConnectError on failure."""
    family, address = socket_address(host, port, interface)
    target = endpoint_text(address, interface)
    sock = _stream_socket(family)
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
        except TimeoutError:
            raise TcpConnectError(f"no connection to {target} within {timeout} s") from None
        except OSError as exc:
            raise TcpConnectError(f"could not connect to {target}: {exc.strerror or exc}") from exc
        _, link = await loop.create_connection(
            lambda: TcpLink(loop, max_buffered, max_send_buffer, interface=interface), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return link
