"""Test harness of the TLS layer: a memory pipe, plain (misbehaving) peers, an asyncio TCP link.

- MemoryPipe: two ByteLink ends that hand bytes to each other through one FIFO queue; run()
  delivers until nothing is in flight (a bounded number of steps, so a bug cannot hang a test).
  Every byte sent is kept in wire order, so a test can decode the session from the wire.
- StdlibPeer / OpenSslPeer: a plain ssl.SSLObject or pyOpenSSL Connection over a pipe end,
  configured the way a misbehaving peer is (TLS 1.2, a suite outside -20's list).
- AsyncioLink: a ByteLink over an asyncio TCP connection, for the real-time tests.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from OpenSSL import SSL

from rig.v2g.link import ClosedCallback, DataCallback, LinkClosed
from rig.v2g.pki import Entity, PkiFolder
from rig.v2g.transport.tls import TlsConfig, TlsContext, TlsLink, TlsSessionInfo


def missing(reason: str) -> None:
    """tests/conftest.py's missing(): skip locally, fail under RIG_REQUIRE_OPTIONAL=1."""
    if os.environ.get("RIG_REQUIRE_OPTIONAL", "") not in ("", "0"):
        pytest.fail(f"required under RIG_REQUIRE_OPTIONAL=1: {reason}", pytrace=False)
    pytest.skip(reason)


# --- memory pipe ---------------------------------------------------------------------------------


class PipeEnd:
    """One end of a MemoryPipe; a rig.v2g.link.ByteLink."""

    def __init__(self, pipe: MemoryPipe, name: str) -> None:
        self.pipe = pipe
        self.name = name
        self.peer: PipeEnd = self
        self._closed = False
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._early: list[bytes | str] = []
        self.closed_reason: str | None = None

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data, self._on_closed = on_data, on_closed
        early, self._early = self._early, []
        for item in early:
            self._arrive(item)

    def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed(f"{self.name}: send after close")
        data = bytes(data)
        self.pipe.wire.append((self.name, data))
        self.pipe.queue.append(lambda: self.peer._arrive(data))

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        self.pipe.queue.append(lambda: self._report(reason))
        self.pipe.queue.append(lambda: self.peer._arrive(f"peer closed: {reason}"))

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        return f"memory:{self.peer.name}"

    def _arrive(self, item: bytes | str) -> None:
        if self._on_data is None:
            self._early.append(item)
            return
        if isinstance(item, bytes):
            if not self._closed:
                self._on_data(item)
        elif not self._closed:
            self._closed = True
            self._report(item)

    def _report(self, reason: str) -> None:
        if self.closed_reason is None and self._on_closed is not None:
            self.closed_reason = reason
            self._on_closed(reason)


class MemoryPipe:
    """Two connected ends, `evcc` and `secc`, and the bytes each sent, in order."""

    def __init__(self) -> None:
        self.queue: deque[Callable[[], None]] = deque()
        self.wire: list[tuple[str, bytes]] = []
        self.evcc = PipeEnd(self, "evcc")
        self.secc = PipeEnd(self, "secc")
        self.evcc.peer, self.secc.peer = self.secc, self.evcc

    def run(self, max_steps: int = 100_000) -> int:
        steps = 0
        while self.queue:
            steps += 1
            if steps > max_steps:
                raise AssertionError(f"memory pipe still busy after {max_steps} deliveries")
            self.queue.popleft()()
        return steps

    def stream(self, sender: str) -> bytes:
        return b"".join(data for name, data in self.wire if name == sender)


# --- an endpoint that records what reaches it ----------------------------------------------------


@dataclass
class Endpoint:
    """What the layer above a link saw: data, the closing reason, the handshake."""

    link: TlsLink | None = None
    received: bytearray = field(default_factory=bytearray)
    closed: list[str] = field(default_factory=list)
    session: TlsSessionInfo | None = None
    echo: bytes | None = None  # reply with echo + data to every chunk

    def on_data(self, data: bytes) -> None:
        self.received += data
        if self.echo is not None and self.link is not None and not self.link.closed:
            self.link.send(self.echo + data)

    def on_closed(self, reason: str) -> None:
        self.closed.append(reason)

    def on_handshake(self, info: TlsSessionInfo) -> None:
        self.session = info


def attach(context: TlsContext, lower: object, echo: bytes | None = None) -> Endpoint:
    endpoint = Endpoint(echo=echo)
    endpoint.link = context.wrap(lower, on_handshake=endpoint.on_handshake)  # type: ignore[arg-type]
    endpoint.link.set_receiver(endpoint.on_data, endpoint.on_closed)
    return endpoint


# --- configurations from the test PKI ------------------------------------------------------------


def evcc_config(
    pki: PkiFolder, leaf: Entity | None = Entity.VEHICLE_LEAF, **options: object
) -> TlsConfig:
    if leaf is None:
        return TlsConfig.evcc((), None, (pki.certificate(Entity.V2G_ROOT),), **options)
    return TlsConfig.evcc(
        pki.chain(leaf), pki.private_key(leaf), (pki.certificate(Entity.V2G_ROOT),), **options
    )


def secc_config(pki: PkiFolder, leaf: Entity = Entity.SECC_LEAF, **options: object) -> TlsConfig:
    return TlsConfig.secc(
        pki.chain(leaf), pki.private_key(leaf), (pki.certificate(Entity.OEM_ROOT),), **options
    )


def session_over_pipe(
    evcc: TlsConfig, secc: TlsConfig, request: bytes = b"hello"
) -> tuple[MemoryPipe, Endpoint, Endpoint]:
    """A handshake, one request from the EVCC and its echo from the SECC, all delivered."""
    pipe = MemoryPipe()
    server = attach(TlsContext(secc), pipe.secc, echo=b"re:")
    client = attach(TlsContext(evcc), pipe.evcc)
    assert client.link is not None
    client.link.send(request)
    pipe.run()
    return pipe, client, server


# --- plain peers -----------------------------------------------------------------------------------


class StdlibPeer:
    """The standard library's ssl.SSLObject over a pipe end, configured by the test."""

    def __init__(self, end: PipeEnd, context: ssl.SSLContext, server_side: bool) -> None:
        self.end = end
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side)
        self.error: ssl.SSLError | None = None
        self.established = False
        self.received = bytearray()
        self.closed: list[str] = []
        end.set_receiver(self._data, self.closed.append)
        if not server_side:
            self._step()

    def _data(self, data: bytes) -> None:
        self.incoming.write(data)
        self._step()

    def _step(self) -> None:
        try:
            if not self.established:
                self.obj.do_handshake()
                self.established = True
            while True:
                self.received += self.obj.read(1 << 16)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        except ssl.SSLError as exc:
            self.error = exc
        self._flush()
        if self.error is not None and not self.end.closed:
            self.end.close(f"stdlib ssl: {self.error}")

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data and not self.end.closed:
            self.end.send(data)


class OpenSslPeer:
    """A raw pyOpenSSL connection over a pipe end (not our layer): free to misbehave."""

    def __init__(self, end: PipeEnd, context: SSL.Context, server_side: bool) -> None:
        self.end = end
        self.conn = SSL.Connection(context, None)
        if server_side:
            self.conn.set_accept_state()
        else:
            self.conn.set_connect_state()
        self.error: SSL.Error | None = None
        self.established = False
        self.closed: list[str] = []
        end.set_receiver(self._data, self.closed.append)
        if not server_side:
            self._step()

    def _data(self, data: bytes) -> None:
        self.conn.bio_write(data)
        self._step()

    def _step(self) -> None:
        try:
            if not self.established:
                self.conn.do_handshake()
                self.established = True
            while True:
                self.conn.recv(1 << 16)
        except (SSL.WantReadError, SSL.ZeroReturnError):
            pass
        except SSL.Error as exc:
            self.error = exc
        while True:
            try:
                out = self.conn.bio_read(1 << 16)
            except SSL.WantReadError:
                break
            if not self.end.closed:
                self.end.send(out)
        if self.error is not None and not self.end.closed:
            self.end.close(f"pyOpenSSL: {self.error}")


# --- asyncio TCP -------------------------------------------------------------------------------


class AsyncioLink(asyncio.Protocol):
    """A ByteLink over an asyncio TCP connection (test helper; the rig's own is transport.tcp)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._early: list[bytes] = []
        self._closed = False
        self._reason: str | None = None
        self._reported = False
        self.connected = asyncio.get_running_loop().create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._on_data is None:
            self._early.append(data)
        elif not self._closed:
            self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._report(self._reason or f"peer closed TCP ({exc or 'EOF'})")

    # ByteLink
    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data, self._on_closed = on_data, on_closed
        early, self._early = self._early, []
        for data in early:
            on_data(data)

    def send(self, data: bytes) -> None:
        if self._closed or self.transport is None:
            raise LinkClosed("tcp: send after close")
        self.transport.write(data)

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        self._reason = reason
        if self.transport is not None:
            self.transport.close()  # connection_lost reports, through the loop

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        if self.transport is None:
            return "tcp:?"
        host, port = self.transport.get_extra_info("peername")[:2]
        return f"[{host}]:{port}"

    def _report(self, reason: str) -> None:
        if not self._reported and self._on_closed is not None:
            self._reported = True
            self._on_closed(reason)


async def tcp_pair(host: str) -> tuple[AsyncioLink, AsyncioLink, asyncio.Server]:
    """A connected (client, server) pair of links on `host` (a loopback address)."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[AsyncioLink] = loop.create_future()

    def factory() -> AsyncioLink:
        link = AsyncioLink()
        if not accepted.done():
            accepted.set_result(link)
        return link

    server = await loop.create_server(factory, host=host, port=0)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(AsyncioLink, host=host, port=port)
    server_link = await asyncio.wait_for(accepted, 5)
    await asyncio.wait_for(server_link.connected, 5)
    return client, server_link, server


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll the loop until predicate() holds (bounded: fails the test after `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)
