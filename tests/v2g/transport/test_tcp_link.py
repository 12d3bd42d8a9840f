"""TCP links on loopback: a whole session through the connection layer, and bad peers.

The bad peers are raw sockets on the test's loop: one that closes mid-frame, one that sends
nothing, floods that must not grow memory, a peer that does not read. In each case the engine
hears of it and nothing hangs (every wait below is bounded).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Iterator

import pytest
from transport_doubles import (
    EchoEngine,
    LoopScheduler,
    PingEngine,
    frame,
    tcp_session,
)

from rig.v2g.connection import Connection, Record, RecordKind
from rig.v2g.link import LinkClosed
from rig.v2g.transport.tcp import (
    MAX_BUFFERED,
    PEER_CLOSED,
    TcpConnectError,
    TcpLink,
    TcpServer,
    open_tcp_link,
    tcp_listen_socket,
)

WAIT = 10.0  # seconds: an upper bound for every wait here, never reached when things work


def kinds(trace: list[Record]) -> list[tuple[str, str]]:
    return [(r.kind.value, r.name) for r in trace]


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
def test_ping_echo_session_over_tcp_in_real_time(
    loop: asyncio.AbstractEventLoop, host: str
) -> None:
    """The same engines as the memory test (test_connection.py), now over real sockets."""
    ping, echo = PingEngine(count=200), EchoEngine()
    session = tcp_session(loop, ping, echo, host)
    assert ping.answered == 200 and ping.end_reason == "done"
    assert echo.requests == 200 and echo.end_reason == f"link ended: {PEER_CLOSED}"
    assert kinds(session.ev_trace[:2]) == [("sent", "PingReq"), ("received", "PingRes")]
    assert kinds(session.ev_trace[-2:]) == [("close", "done"), ("link_closed", "done")]
    assert kinds(session.evse_trace[-2:]) == [
        ("link_closed", PEER_CLOSED),
        ("event", "connection_lost"),
    ]
    assert session.ev.link.peer_name.startswith("tcp:")
    assert all(0 < rtt < 1.0 for rtt in ping.round_trips)


# --- raw peers on the test's loop ---


class EchoServer:
    """Our side under test: EchoEngines behind a TcpServer on ::1, with their traces."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        setup_timeout: float = 20.0,
        max_payload: int = 8192,
        **server_options: object,
    ) -> None:
        self.loop = loop
        self.scheduler = LoopScheduler(loop)
        self.engines: list[EchoEngine] = []
        self.connections: list[Connection] = []
        self.trace: list[Record] = []
        self.ended = asyncio.Event()

        def on_link(link: TcpLink) -> None:
            engine = EchoEngine(setup_timeout, max_payload)
            self.engines.append(engine)
            connection = Connection(
                engine,
                link,
                self.scheduler,
                recorder=self.trace.append,
                on_ended=lambda _: self.ended.set(),
            )
            self.connections.append(connection)
            connection.start()

        self.server = loop.run_until_complete(
            TcpServer.start(loop, "::1", 0, on_link, **server_options)  # type: ignore[arg-type]
        )

    def raw_client(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        self.loop.run_until_complete(self.loop.sock_connect(sock, ("::1", self.server.port)))
        return sock

    def wait_ended(self) -> None:
        self.loop.run_until_complete(asyncio.wait_for(self.ended.wait(), WAIT))

    def read_until_eof(self, sock: socket.socket) -> bytes:
        async def read() -> bytes:
            got = bytearray()
            while chunk := await self.loop.sock_recv(sock, 65536):
                got += chunk
            return bytes(got)

        try:
            return self.loop.run_until_complete(asyncio.wait_for(read(), WAIT))
        except ConnectionResetError:
            return b"<reset>"


@pytest.fixture
def echo_server(loop: asyncio.AbstractEventLoop) -> Iterator[EchoServer]:
    server = EchoServer(loop)
    yield server
    server.server.close()


def test_peer_closing_mid_frame_is_reported_to_the_engine(echo_server: EchoServer) -> None:
    sock = echo_server.raw_client()
    whole = frame(0x8004, b"\x00\x00\x00\x01" + bytes(96))
    loop = echo_server.loop
    sock.send(whole + whole[:11])  # one request, then 11 bytes of the next
    answer = loop.run_until_complete(asyncio.wait_for(loop.sock_recv(sock, 4096), WAIT))
    assert answer == whole
    sock.close()  # a FIN after the 11 bytes (nothing unread on our side, so no RST)
    echo_server.wait_ended()
    engine = echo_server.engines[0]
    assert engine.requests == 1
    assert engine.partial_bytes_at_end == 11
    assert engine.end_reason == f"link ended: {PEER_CLOSED}"
    lost = [r for r in echo_server.trace if r.kind is RecordKind.EVENT]
    assert lost[-1].name == "connection_lost"
    assert lost[-1].data == {"reason": PEER_CLOSED, "partial_bytes": 11}


def test_peer_that_sends_nothing_is_closed_by_the_engines_timer(
    loop: asyncio.AbstractEventLoop,
) -> None:
    server = EchoServer(loop, setup_timeout=0.2)
    try:
        sock = server.raw_client()
        t0 = loop.time()
        assert server.read_until_eof(sock) == b""  # we closed: the silent peer sees EOF
        waited = loop.time() - t0
        sock.close()
        server.wait_ended()
    finally:
        server.server.close()
    assert 0.15 < waited < 2.0
    assert server.engines[0].end_reason == "communication setup timeout"
    assert kinds(server.trace)[:2] == [
        ("event", "timeout"),
        ("close", "communication setup timeout"),
    ]


def test_ev_side_gives_up_on_a_server_that_never_answers(loop: asyncio.AbstractEventLoop) -> None:
    accepted: list[socket.socket] = []
    listener = tcp_listen_socket("::1")
    port = listener.getsockname()[1]
    loop.add_reader(listener.fileno(), lambda: accepted.append(listener.accept()[0]))
    try:
        link = loop.run_until_complete(open_tcp_link(loop, "::1", port))
        ping = PingEngine(count=5, response_timeout=0.2)
        ended = asyncio.Event()
        Connection(ping, link, LoopScheduler(loop), on_ended=lambda _: ended.set()).start()
        loop.run_until_complete(asyncio.wait_for(ended.wait(), WAIT))
    finally:
        loop.remove_reader(listener.fileno())
        listener.close()
        for sock in accepted:
            sock.close()
    assert ping.end_reason == "no answer to request 1 in time"


def test_garbage_flood_is_refused_at_the_first_bad_header(echo_server: EchoServer) -> None:
    sock = echo_server.raw_client()

    async def flood() -> int:
        sent = 0
        try:
            for _ in range(64):  # at most 4 MiB, stops at the reset
                await echo_server.loop.sock_sendall(sock, b"\xff" * 65536)
                sent += 65536
        except (ConnectionResetError, BrokenPipeError):
            pass
        return sent

    echo_server.loop.run_until_complete(asyncio.wait_for(flood(), WAIT))
    echo_server.wait_ended()
    sock.close()
    engine = echo_server.engines[0]
    assert engine.requests == 0
    assert engine.end_reason == "malformed: bad V2GTP header ffffffffffffffff"
    assert len(engine.reader.buffer) <= 256 * 1024 + 8  # one read (asyncio reads <= 256 KiB)


def test_a_header_announcing_a_huge_payload_is_refused_before_any_payload(
    echo_server: EchoServer,
) -> None:
    sock = echo_server.raw_client()
    sock.send(b"\x01\xfe\x80\x04\x7f\xff\xff\xff")  # 2 GiB announced
    assert echo_server.read_until_eof(sock) in (b"", b"<reset>")
    sock.close()
    echo_server.wait_ended()
    assert echo_server.engines[0].end_reason == "malformed: payload length 2147483647 over 8192"


def test_a_peer_that_does_not_read_cannot_grow_our_send_buffer(
    loop: asyncio.AbstractEventLoop,
) -> None:
    limit = 64 * 1024
    server = EchoServer(loop, max_send_buffer=limit)
    try:
        sock = server.raw_client(rcvbuf=4096)
        request = frame(0x8004, bytes(1000))

        async def flood() -> int:
            sent = 0
            try:
                for _ in range(20_000):  # 20 MB at most; the reset comes long before
                    await loop.sock_sendall(sock, request * 16)
                    sent += 16
            except (ConnectionResetError, BrokenPipeError):
                pass
            return sent

        requests_sent = loop.run_until_complete(asyncio.wait_for(flood(), 30))
        server.wait_ended()
        sock.close()
    finally:
        server.server.close()
    link = server.connections[0].link
    assert isinstance(link, TcpLink)
    reason = f"send buffer over {limit} bytes: the peer is not reading"
    assert link.close_reason == reason
    assert server.engines[0].end_reason == f"link ended: {reason}"
    assert requests_sent < 20_000 * 16


def test_bytes_before_the_receiver_is_set_are_held_up_to_a_bound(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """While nobody takes the bytes, reading pauses once MAX_BUFFERED is passed; the sender is
    held back by TCP itself, and everything arrives, in order, once a receiver is set."""
    links: list[TcpLink] = []
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # inherited when accepted
    listener.bind(("::1", 0))
    listener.listen(1)
    listener.setblocking(False)
    server = loop.run_until_complete(TcpServer.start(loop, "::1", 0, links.append, sock=listener))
    payload = bytes(range(256)) * 16384  # 4 MiB
    received = bytearray()
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        sock.setblocking(False)
        loop.run_until_complete(loop.sock_connect(sock, ("::1", server.port)))
        sending = loop.create_task(loop.sock_sendall(sock, payload))
        loop.run_until_complete(asyncio.sleep(0.3))
        link = links[0]
        held_while_nobody_reads = link._held_bytes
        paused = link._reading_paused
        assert not sending.done()  # pushed back
        closed: list[str] = []
        link.set_receiver(received.extend, closed.append)
        loop.run_until_complete(asyncio.wait_for(sending, WAIT))
        sock.close()
        deadline = loop.time() + WAIT
        while not closed and loop.time() < deadline:
            loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        server.close()
    assert paused
    assert MAX_BUFFERED <= held_while_nobody_reads <= MAX_BUFFERED + 256 * 1024
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    assert closed == [PEER_CLOSED]


# --- connecting, closing, limits ---


def test_connect_refused_is_a_precise_error(loop: asyncio.AbstractEventLoop) -> None:
    probe = tcp_listen_socket("::1")
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    with pytest.raises(TcpConnectError, match=rf"could not connect to \[::1\]:{port}: "):
        loop.run_until_complete(open_tcp_link(loop, "::1", port))


def test_connect_timeout_is_a_precise_error(loop: asyncio.AbstractEventLoop) -> None:
    full = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    full.bind(("127.0.0.1", 0))
    full.listen(0)  # one pending connection fills the queue; further SYNs are dropped
    port = full.getsockname()[1]
    first = socket.create_connection(("127.0.0.1", port))
    try:
        with pytest.raises(
            TcpConnectError, match=r"no connection to 127\.0\.0\.1:\d+ within 0\.2 s"
        ):
            loop.run_until_complete(open_tcp_link(loop, "127.0.0.1", port, timeout=0.2))
    finally:
        first.close()
        full.close()


def test_close_is_reported_to_both_ends_once(loop: asyncio.AbstractEventLoop) -> None:
    server_side: list[TcpLink] = []
    server = loop.run_until_complete(TcpServer.start(loop, "::1", 0, server_side.append))
    try:
        link = loop.run_until_complete(open_tcp_link(loop, "::1", server.port))
        ours: list[str] = []
        theirs: list[str] = []
        link.set_receiver(lambda _: None, ours.append)
        loop.run_until_complete(asyncio.sleep(0.02))
        server_side[0].set_receiver(lambda _: None, theirs.append)
        for end in (link, server_side[0]):  # Nagle off on both ends
            assert end._transport is not None
            sock = end._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        link.send(b"bye")
        link.close("SessionStop done")
        link.close("twice")
        with pytest.raises(LinkClosed):
            link.send(b"more")
        assert ours == []  # never inside close()
        loop.run_until_complete(asyncio.sleep(0.1))
    finally:
        server.close()
    assert ours == ["SessionStop done"] and link.closed
    assert theirs == [PEER_CLOSED] and server_side[0].closed
    assert server_side[0].bytes_received == 3


def test_server_refuses_connections_beyond_its_limit(loop: asyncio.AbstractEventLoop) -> None:
    links: list[TcpLink] = []
    server = loop.run_until_complete(TcpServer.start(loop, "::1", 0, links.append, max_links=1))
    try:
        first = loop.run_until_complete(open_tcp_link(loop, "::1", server.port))
        second = loop.run_until_complete(open_tcp_link(loop, "::1", server.port))
        reasons: list[str] = []
        second.set_receiver(lambda _: None, reasons.append)
        loop.run_until_complete(asyncio.sleep(0.1))
    finally:
        server.close()
    assert len(links) == 1 and server.refused == 1
    assert reasons and reasons[0] in (
        PEER_CLOSED,
        "connection lost: [Errno 104] Connection reset by peer",
    )
    first.close()
