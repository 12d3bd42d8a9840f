"""The TLS layer over real TCP on loopback (asyncio, real time), and refusals of an independent
TLS implementation (the openssl command line) offering what -20 forbids."""

from __future__ import annotations

import asyncio
import shutil
import socket

import pytest
from tls_harness import (
    AsyncioLink,
    Endpoint,
    attach,
    evcc_config,
    missing,
    secc_config,
    tcp_pair,
    wait_until,
)

from rig.v2g.pki import Entity, PkiFolder
from rig.v2g.transport.tls import CipherSuite, TlsContext, TlsFailure


def _loopback(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        missing(f"no loopback {host} here: {exc}")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_mutual_auth_session_over_loopback_tcp(pki: PkiFolder, host: str) -> None:
    _loopback(host)

    async def session() -> tuple[Endpoint, Endpoint]:
        client_tcp, server_tcp, server = await tcp_pair(host)
        try:
            secc = attach(TlsContext(secc_config(pki)), server_tcp, echo=b"re:")
            evcc = attach(TlsContext(evcc_config(pki)), client_tcp)
            assert evcc.link is not None
            evcc.link.send(b"supportedAppProtocolReq")
            await wait_until(lambda: bytes(evcc.received) == b"re:supportedAppProtocolReq")
            evcc.link.send(b"SessionSetupReq")
            await wait_until(lambda: evcc.received.endswith(b"re:SessionSetupReq"))
            evcc.link.close("SessionStop")
            await wait_until(lambda: bool(secc.closed) and bool(evcc.closed))
            return evcc, secc
        finally:
            server.close()
            await server.wait_closed()

    evcc, secc = asyncio.run(asyncio.wait_for(session(), 20))
    assert secc.received == b"supportedAppProtocolReqSessionSetupReq"
    assert evcc.session is not None and evcc.session.version == "TLSv1.3"
    assert evcc.session.cipher_suite is CipherSuite.TLS_AES_256_GCM_SHA384
    assert secc.session is not None and secc.session.peer_common_name == "WMIV1234567890ABCDEX"
    assert evcc.closed == ["SessionStop"]
    assert secc.closed == ["peer closed the TLS session (close_notify)"]


def test_refusal_over_tcp_closes_the_socket_with_the_reason(pki: PkiFolder) -> None:
    _loopback("127.0.0.1")

    async def session() -> tuple[Endpoint, Endpoint]:
        client_tcp, server_tcp, server = await tcp_pair("127.0.0.1")
        try:
            secc = attach(TlsContext(secc_config(pki)), server_tcp)
            evcc = attach(TlsContext(evcc_config(pki, Entity.VEHICLE_LEAF_EXPIRED)), client_tcp)
            await wait_until(lambda: bool(secc.closed) and bool(evcc.closed))
            return evcc, secc
        finally:
            server.close()
            await server.wait_closed()

    evcc, secc = asyncio.run(asyncio.wait_for(session(), 20))
    assert secc.link is not None and secc.link.failure is not None
    assert secc.link.failure.failure is TlsFailure.CERTIFICATE_EXPIRED
    assert evcc.link is not None and evcc.link.failure is not None
    assert evcc.link.failure.failure is TlsFailure.CERTIFICATE_EXPIRED
    assert evcc.link.failure.by_peer


@pytest.mark.parametrize(
    ("options", "failure"),
    [
        (["-tls1_2"], TlsFailure.PROTOCOL_VERSION),
        (["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], TlsFailure.CIPHER_SUITE),
    ],
)
def test_openssl_client_offering_what_v2g20_forbids_is_refused(
    pki: PkiFolder, options: list[str], failure: TlsFailure
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("the openssl command is not installed")
        return
    _loopback("127.0.0.1")

    async def session() -> tuple[Endpoint, bytes]:
        loop = asyncio.get_running_loop()
        accepted: list[Endpoint] = []

        def factory() -> AsyncioLink:
            link = AsyncioLink()
            # the TLS layer goes on once TCP is up (connection_made has run)
            link.connected.add_done_callback(
                lambda _: accepted.append(attach(TlsContext(secc_config(pki)), link))
            )
            return link

        server = await loop.create_server(factory, host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        leaf = Entity.VEHICLE_LEAF
        process = await asyncio.create_subprocess_exec(
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-cert",
            str(pki.path(leaf)),
            "-key",
            str(pki.path(leaf, "key")),
            *options,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 15)
            await wait_until(lambda: bool(accepted) and bool(accepted[0].closed))
            return accepted[0], output
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            server.close()
            await server.wait_closed()

    secc, output = asyncio.run(asyncio.wait_for(session(), 30))
    assert secc.link is not None and secc.link.failure is not None, output
    assert secc.link.failure.failure is failure
    assert not secc.link.failure.by_peer
    assert secc.received == b""
    assert b"alert" in output.lower()  # the openssl client was told why, with an alert
