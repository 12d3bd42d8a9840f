"""Serving twins as raw SCPI sockets on the loopback interface, like port-5025 instruments.

    handle = serve({"analyzer": wt5000, "battery": psb}, sleep_until=clock.sleep_until)
    handle.address("battery")   # 'TCPIP::127.0.0.1::<port>::SOCKET', for pyvisa-py or any VISA
    handle.close()

Each twin gets its own listening socket (ephemeral ports unless `ports` says otherwise) and a
thread per client connection. Messages are newline-terminated both ways (a trailing CR is
ignored); replies travel as latin-1, so binary blocks pass unchanged. All twins share one World,
so one lock serialises every message across all of them; code that advances the World itself
while serving must hold `handle.lock` too.

Bounded and fair: a line longer than `max_line` bytes is read away in bounded pieces and
refused (-363 Input buffer overrun) without being held; a twin suspended by a command that
takes time (a WT waiting for its next update, a scope's :DIGitize) waits with the real clock
(`sleep_until`, the bench's RealClock) outside the lock, so a slow command, a slow reader or a
silent client only ever holds its own connection's thread; a wait longer than `max_wait_s`
is abandoned (-410). At most `max_connections` clients per twin; idle connections end after
`idle_timeout_s`. A twin told to drop the connection (`twin.faults.drop()`) gets its socket
closed. Without `sleep_until` the server cannot let time pass for a suspended twin and resumes
it forced (see scpi.py).
Only 127.0.0.1 / ::1 are allowed: the emulation is for this machine's tools, not the network.
`close()` stops accepting, ends the open connections and joins the threads.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol

from instruments.emulated.scpi import ErrorCode, ScpiError
from instruments.emulated.twin import ConnectionDropped

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

logger = logging.getLogger(__name__)


class LineTwin(Protocol):
    def handle(self, line: str) -> str | None: ...

    def push_error(self, error: ScpiError) -> None: ...

    @property
    def blocked_until(self) -> float | None: ...

    def resume(self, *, forced: bool = False) -> str | None: ...

    def abort(self) -> None: ...

    def now(self) -> float: ...


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
        limits: _Limits,
    ) -> None:
        self.address_family = family
        self.twin = twin
        self.lock = lock
        self.limits = limits
        self.closing = False
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Connection)

    def verify_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> bool:
        with self.connections_lock:
            return len(self.connections) < self.limits.max_connections

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):  # already gone
                    connection.shutdown(socket.SHUT_RDWR)


class _Limits:
    def __init__(
        self,
        *,
        max_line: int,
        max_connections: int,
        max_wait_s: float,
        idle_timeout_s: float,
        sleep_until: Callable[[float], None] | None,
    ) -> None:
        self.max_line = max_line
        self.max_connections = max_connections
        self.max_wait_s = max_wait_s
        self.idle_timeout_s = idle_timeout_s
        self.sleep_until = sleep_until


class _Connection(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        server = self.server
        with server.connections_lock:
            server.connections.add(self.connection)
        self.connection.settimeout(server.limits.idle_timeout_s)
        try:
            while not server.closing:
                line = self._read_line()
                if line is None:
                    break
                if not line.strip():
                    continue
                reply = self._run(line)
                if reply is not None:
                    self.wfile.write(reply.encode("latin-1", errors="replace") + b"\n")
                    self.wfile.flush()
        except ConnectionDropped:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # connection reset, idle timeout, or shut down by close()
        finally:
            with server.connections_lock:
                server.connections.discard(self.connection)

    def _read_line(self) -> str | None:
        """The next line, or None at the end of the connection; overlong lines are drained in
        bounded pieces and refused with -363."""
        limit = self.server.limits.max_line
        raw = self.rfile.readline(limit + 1)
        if not raw:
            return None
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = self.rfile.readline(limit + 1)
            with self.server.lock:
                self.server.twin.push_error(
                    ScpiError(ErrorCode.INPUT_BUFFER_OVERRUN, f"line over {limit} bytes")
                )
            return ""
        return raw.decode("latin-1").rstrip("\r\n")

    def _run(self, line: str) -> str | None:
        server, twin = self.server, self.server.twin
        limits = server.limits
        with server.lock:
            reply = self._guarded(lambda: twin.handle(line), line)
            started = twin.now()
        while True:
            with server.lock:
                until = twin.blocked_until
                if until is None:
                    return reply
                if limits.sleep_until is None:
                    reply = self._guarded(lambda: twin.resume(forced=True), line)
                    continue
                if until - started > limits.max_wait_s or server.closing:
                    twin.abort()
                    return None
            limits.sleep_until(until)  # outside the lock: the other clients go on
            with server.lock:
                reply = self._guarded(twin.resume, line)

    @staticmethod
    def _guarded(call: Callable[[], str | None], line: str) -> str | None:
        try:
            return call()
        except ConnectionDropped:
            raise
        except Exception:
            # A twin bug must not take the bench down; the client sees a timeout.
            logger.exception("twin failed on %r", line)
            return None


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
            server.closing = True
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
    sleep_until: Callable[[float], None] | None = None,
    max_line: int = 64 * 1024,
    max_connections: int = 16,
    max_wait_s: float = 60.0,
    idle_timeout_s: float = 3600.0,
) -> ServerHandle:
    """Serve each twin on its own loopback socket; `ports` maps names to fixed ports (0 = any);
    `sleep_until` is the bench clock's (RealClock.sleep_until) for commands that take time."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"twins are served on loopback only (127.0.0.1 or ::1), not {host!r}")
    ports = dict(ports or {})
    stray = sorted(set(ports) - set(twins))
    if stray:
        raise ValueError(f"ports given for unknown twins {stray}")
    limits = _Limits(
        max_line=max_line,
        max_connections=max_connections,
        max_wait_s=max_wait_s,
        idle_timeout_s=idle_timeout_s,
        sleep_until=sleep_until,
    )
    bind_host = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    shared_lock = lock if lock is not None else threading.Lock()
    servers: dict[str, _Server] = {}
    try:
        for name, twin in twins.items():
            servers[name] = _Server(
                (bind_host, ports.get(name, 0)), family, twin, shared_lock, limits
            )
    except OSError:
        for server in servers.values():
            server.server_close()
        raise
    return ServerHandle(bind_host, servers, shared_lock)
