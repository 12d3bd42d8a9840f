"""Serving twins as raw SCPI sockets on the loopback interface, like port-5025 instruments.

    handle = serve({"analyzer": wt5000, "battery": psb})
    handle.address("battery")   # 'TCPIP::127.0.0.1::<port>::SOCKET', for pyvisa-py or any VISA
    handle.close()

Each twin gets its own listening socket (ephemeral ports unless `ports` says otherwise) and a
thread per client connection. Messages are newline-terminated both ways (a trailing CR is
ignored). All twins share one World, so one lock serialises every message across all of them;
code that advances the World itself while serving must hold `handle.lock` too.
Only 127.0.0.1 / ::1 are allowed: the emulation is for this machine's tools, not the network.
`close()` stops accepting, ends the open connections and joins the threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

logger = logging.getLogger(__name__)


class LineTwin(Protocol):
    def handle(self, line: str) -> str | None: ...


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        twin: LineTwin,
        lock: threading.Lock,
    ) -> None:
        self.address_family = family
        self.twin = twin
        self.lock = lock
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Connection)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):  # already gone
                    connection.shutdown(socket.SHUT_RDWR)


class _Connection(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        server = self.server
        with server.connections_lock:
            server.connections.add(self.connection)
        try:
            for raw in self.rfile:
                line = raw.decode("ascii", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                with server.lock:
                    try:
                        reply = server.twin.handle(line)
                    except Exception:
                        # A twin bug must not take the bench down; the client sees a timeout.
                        logger.exception("twin failed on %r", line)
                        continue
                if reply is not None:
                    self.wfile.write(reply.encode("ascii", errors="replace") + b"\n")
                    self.wfile.flush()
        except OSError:
            pass  # connection reset or shut down by close()
        finally:
            with server.connections_lock:
                server.connections.discard(self.connection)


class ServerHandle:
    """The running servers: their ports and VISA addresses, and a clean `close()`."""

    def __init__(self, host: str, servers: Mapping[str, _Server], lock: threading.Lock) -> None:
        self.host = host
        #: Held while a twin handles a message; hold it too when touching the World from outside.
        self.lock = lock
        self._servers = dict(servers)
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"scpi-{name}",
                daemon=True,
            )
            for name, server in self._servers.items()
        ]
        for thread in self._threads:
            thread.start()
        self.closed = False

    @property
    def ports(self) -> dict[str, int]:
        return {name: int(server.server_address[1]) for name, server in self._servers.items()}

    def address(self, name: str) -> str:
        """The VISA resource name of one twin's socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"TCPIP::{host}::{self.ports[name]}::SOCKET"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for server in self._servers.values():
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def serve(
    twins: Mapping[str, LineTwin],
    *,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    lock: threading.Lock | None = None,
) -> ServerHandle:
    """Serve each twin on its own loopback socket; `ports` maps names to fixed ports (0 = any)."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"twins are served on loopback only (127.0.0.1 or ::1), not {host!r}")
    ports = dict(ports or {})
    stray = sorted(set(ports) - set(twins))
    if stray:
        raise ValueError(f"ports given for unknown twins {stray}")
    bind_host = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    shared_lock = lock if lock is not None else threading.Lock()
    servers: dict[str, _Server] = {}
    try:
        for name, twin in twins.items():
            servers[name] = _Server((bind_host, ports.get(name, 0)), family, twin, shared_lock)
    except OSError:
        for server in servers.values():
            server.server_close()
        raise
    return ServerHandle(bind_host, servers, shared_lock)
