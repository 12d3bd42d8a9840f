"""SDP on a real link: our client multicasts to ff02::1 on one end of a veth pair, our server
answers from the other end (network namespaces the test makes; root needed)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import sys
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from netns import VethPair
from transport_doubles import LoopScheduler

from rig.v2g.sdp import (
    SdpClient,
    SdpFailed,
    SdpServer,
    Security,
    locate_secc,
    sdp_client_socket,
    sdp_server_socket,
)

RESPONDER = Path(__file__).resolve().parent / "sdp_responder.py"


def _client(veth: VethPair, loop: asyncio.AbstractEventLoop, **kw: object) -> SdpClient:
    with veth.entered("ev"):
        sock = sdp_client_socket(veth.ev_interface)
    return SdpClient(veth.ev_interface, loop, LoopScheduler(loop), sock=sock, **kw)  # type: ignore[arg-type]


def _server(
    veth: VethPair, loop: asyncio.AbstractEventLoop, ports: dict[Security, int]
) -> SdpServer:
    with veth.entered("evse"):
        server = loop.run_until_complete(
            SdpServer.start(loop, LoopScheduler(loop), veth.evse_interface, ports)
        )
    return server


def test_client_finds_server_by_multicast_on_the_link(
    veth: VethPair, loop: asyncio.AbstractEventLoop
) -> None:
    server = _server(veth, loop, {Security.NO_TLS: 50000, Security.TLS: 50001})
    try:
        result = loop.run_until_complete(_client(veth, loop, security=Security.TLS).discover())
    finally:
        server.close()
    assert result.response is not None
    assert result.endpoint.address == IPv6Address("fe80::1")  # the EVSE end's link-local address
    assert result.endpoint.port == 50001 and result.endpoint.security is Security.TLS
    assert result.endpoint.interface == veth.ev_interface
    assert len(result.tries) == 1 and len(result.replies) == 1
    assert result.replies[0].source.startswith("[fe80::1%")
    served = server.served
    assert len(served) == 1 and served[0].source.startswith("[fe80::2%")
    assert served[0].answer.request is not None
    assert served[0].answer.request.security is Security.TLS


def test_client_retries_until_a_late_server_answers(
    veth: VethPair, loop: asyncio.AbstractEventLoop
) -> None:
    """The first requests find nobody (the server starts 0.6 s late): the client keeps asking
    every 250 ms and takes the first answer."""
    servers: list[SdpServer] = []

    def start_server_late() -> None:
        with veth.entered("evse"):
            sock = sdp_server_socket(veth.evse_interface)
        task = SdpServer.start(
            loop,
            LoopScheduler(loop),
            veth.evse_interface,
            {Security.NO_TLS: 50000},
            address=IPv6Address(veth.evse_address),
            sock=sock,
        )
        loop.create_task(task).add_done_callback(lambda t: servers.append(t.result()))

    client = _client(veth, loop, max_requests=20)
    loop.call_later(0.6, start_server_late)
    try:
        result = loop.run_until_complete(client.discover())
    finally:
        for server in servers:
            server.close()
    times = [t.sent_at for t in result.tries]
    assert 3 <= len(result.tries) <= 6, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.24 <= g <= 0.4 for g in gaps), gaps  # the Scheduler's 250 ms, plus loop delay
    assert result.replies[-1].after_try == len(result.tries)
    assert [r.response is not None for r in result.replies] == [True]
    assert result.endpoint.port == 50000


def test_client_gives_up_after_its_last_request(
    veth: VethPair, loop: asyncio.AbstractEventLoop
) -> None:
    client = _client(veth, loop, max_requests=3, interval=0.1)
    with pytest.raises(SdpFailed, match="after 3 requests") as info:
        loop.run_until_complete(client.discover())
    assert [t.number for t in info.value.tries] == [1, 2, 3]
    assert info.value.replies == ()


def test_client_records_a_malformed_answer_and_keeps_asking(
    veth: VethPair, loop: asyncio.AbstractEventLoop
) -> None:
    """A rogue responder answers the first request with garbage; the real server starts later."""
    with veth.entered("evse"):
        rogue = sdp_server_socket(veth.evse_interface)
    servers: list[SdpServer] = []

    def rogue_answers() -> None:
        _, source = rogue.recvfrom(64)
        rogue.sendto(struct.pack(">BBHI", 1, 0xFE, 0x9001, 20) + b"\x00" * 5, source)
        rogue.close()
        with veth.entered("evse"):
            sock = sdp_server_socket(veth.evse_interface)
        start = SdpServer.start(
            loop,
            LoopScheduler(loop),
            veth.evse_interface,
            {Security.NO_TLS: 50000},
            address=IPv6Address(veth.evse_address),
            sock=sock,
        )
        loop.create_task(start).add_done_callback(lambda t: servers.append(t.result()))

    loop.add_reader(rogue.fileno(), lambda: (loop.remove_reader(rogue.fileno()), rogue_answers()))
    try:
        result = loop.run_until_complete(_client(veth, loop, max_requests=10).discover())
    finally:
        for server in servers:
            server.close()
    bad, good = result.replies[0], result.replies[-1]
    assert bad.response is None and bad.error is not None and "length" in bad.error
    assert good.response is not None and good.after_try >= 2


def test_server_as_its_own_process_answers_our_client(
    veth: VethPair, loop: asyncio.AbstractEventLoop
) -> None:
    """The namespace fixture runs our own entry point on the EVSE end."""
    responder = veth.spawn(
        "evse", [sys.executable, str(RESPONDER), veth.evse_interface, "51234"], name="responder"
    )
    ready = responder.wait_for(r"^ready (\S+) (\d+)$", timeout=20)
    assert ready.group(1) == "fe80::1"
    result = loop.run_until_complete(locate_secc(_client(veth, loop)))
    assert result.endpoint.port == 51234 and result.endpoint.security is Security.NO_TLS
    responder.wait_for(r"^served \[fe80::2%veth-secc\]:\d+ answered$", timeout=5)
    assert responder.stop() == 0
    assert responder.log_path is not None and "answered" in responder.log_path.read_text()


def test_server_hears_only_its_interface(veth: VethPair, loop: asyncio.AbstractEventLoop) -> None:
    """A request sent over loopback inside the EVSE namespace does not reach the SDP server,
    which is bound to the veth interface (SO_BINDTODEVICE)."""
    server = _server(veth, loop, {Security.NO_TLS: 50000})
    try:
        with veth.entered("evse"):
            other = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        other.sendto(b"\x01\xfe\x90\x00\x00\x00\x00\x02\x10\x00", ("::1", 15118))
        loop.run_until_complete(asyncio.sleep(0.1))
        other.close()
    finally:
        server.close()
    assert server.served == []
