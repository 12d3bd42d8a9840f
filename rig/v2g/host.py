"""Session hosts: the EVCC and SECC engines over TCP (and SDP, and TLS) on a caller's asyncio loop.

    evse = SeccHost(loop, scheduler, lambda: Secc(charger), interface="eth1", sdp=True,
                    tls=secc_tls, recorder=trace.append, max_sessions=1)
    evse.start()                      # sockets made now (a test may be inside a namespace)
    ev = EvccHost(loop, scheduler, lambda resume: Evcc(battery, resume=resume),
                  target=SdpTarget("eth0"), tls=evcc_tls, recorder=trace.append)
    ev.start()
    while not (ev.finished and evse.finished):
        clock.run_until(clock.now() + 0.1)      # the owner runs the loop; the hosts never do

Both hosts are non-blocking: start() schedules their work on `loop` and returns; everything
happens while the owner runs the loop (rig.clock.RealClock does it inside run_until). Engine
timers go through `scheduler` (the run's clock), so the engines' timeouts follow the run.

EvccHost: finds the SECC (SDP on a named interface, asking for TLS when `tls` is given; or a
SeccEndpoint given directly), connects, wraps the link in TLS when asked, and runs one engine to
its end. When that engine paused its session (Evcc.paused_session) and `resume_after` is set,
it waits that long, finds the SECC again (a charger may move its port between connections, as
Josev's does) and runs `make_engine(paused)` on a new connection.

SeccHost: listens on the link-local address of an interface (or on `host`: ::1 or 127.0.0.1 in
tests), answers SDP with the security it serves (TLS when `tls` is given, else none; one port),
and serves each accepted connection with a fresh engine. Sessions run one at a time: a
connection that arrives while a session is in progress is refused at once (closed, and recorded
as "connection_refused"), because an SECC serves one EV on one charging cable; a queue would
only make a second EV wait for a session it cannot have. `max_sessions` ends the host after
that many sessions (None: until close()).

What is recorded (the `recorder` gets HostRecords: a connection number and a
rig.v2g.connection.Record): every message each way (name, payload type, the whole frame, the
caller's to_json form, the time on the scheduler's timeline), every engine Event, the end of each
link with its reason, and the host's own events (HostEvent below): SDP requests and replies
with their bytes, the connection with both addresses, the TLS handshake with version and suite or
its refusal with the reason, refused connections, and each session's result. `on_session_end`
gets a SessionResult per connection.

With TLS the engine starts once the handshake is done, so that the first request's record is
the moment it really went out; the handshake has its own bound (`handshake_timeout`, rig's
choice) that closes the link with a reason. Malformed input is the engines' and links' business
(FAILED responses, timeouts, bounded buffers); a host only ends the connection and reports.
`tap` lets the owner wrap each TCP link below TLS (rig.v2g.capture.TappedLink), given both
endpoints' addresses, so a capture holds the TLS records with the real addresses and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv6Address, ip_address
from typing import Any

from rig.v2g.connection import Connection, Record, RecordKind, ToJson
from rig.v2g.controllers import Closure
from rig.v2g.engine import Engine
from rig.v2g.link import ByteLink
from rig.v2g.netif import endpoint_text, link_local_address, socket_address
from rig.v2g.pki import Entity, PkiFolder
from rig.v2g.scheduler import Scheduler, TimerHandle
from rig.v2g.sdp import (
    SDP_MAX_REQUESTS,
    SDP_PORT,
    SDP_RETRY_INTERVAL,
    SdpClient,
    SdpFailed,
    SdpRecord,
    SdpReply,
    SdpRequest,
    SdpServed,
    SdpServer,
    SdpTry,
    SeccEndpoint,
    Security,
    sdp_client_socket,
    sdp_server_socket,
)
from rig.v2g.sessions import PausedSession
from rig.v2g.transport.tcp import (
    CONNECT_TIMEOUT,
    MAX_BUFFERED,
    MAX_SEND_BUFFER,
    TcpLink,
    tcp_listen_socket,
)
from rig.v2g.transport.tls import KeyLogSink, TlsConfig, TlsContext, TlsLink, TlsSessionInfo

#: Seconds a TLS handshake may take before the host closes the link (rig's choice: a -20
#: handshake with P-521 certificates takes tens of ms; the EV's communication setup allows 20 s).
HANDSHAKE_TIMEOUT = 10.0
#: Listen backlog of an SECC: one session at a time, a few more in the queue to be refused.
LISTEN_BACKLOG = 4
#: Where an SECC listens when no port is given: the IETF RFC 6335 dynamic ports. ISO 15118-2
#: [V2G2-064] asks the SECC for one of them; the -20 clause was not at hand (?), but Josev's EVCC
#: refuses an SDP response with any other port ("does not match the mandatory ... port").
DYNAMIC_PORTS = range(49152, 65536)
#: Random ports tried in DYNAMIC_PORTS before giving up (each taken port costs one bind).
PORT_TRIES = 64


class HostEvent(StrEnum):
    """Names of the events a host records itself (the engines' own events keep their names)."""

    LISTENING = "listening"  # SECC: TCP (and SDP) ready; data: address, port, security, sdp
    SDP_REQUEST = "sdp_request"  # EV: one SDP request multicast; data: try, local, hex
    SDP_REPLY = "sdp_reply"  # EV: a datagram while discovering; data: source, valid, error, hex
    SDP_FAILED = "sdp_failed"  # EV: no valid SDP response after the last try
    SDP_SERVED = "sdp_served"  # SECC: a datagram received; data: source, answered, note, hex
    SECC_FOUND = "secc_found"  # EV: the endpoint to connect to (from SDP, or given)
    SECURITY_MISMATCH = "security_mismatch"  # EV: SDP offered another security than asked
    CONNECT_FAILED = "connect_failed"
    CONNECTED = "connected"  # data: local, peer (addresses), tls (bool)
    CONNECTION_REFUSED = "connection_refused"  # SECC: a second connection during a session
    TLS_ESTABLISHED = "tls_established"  # data: version, cipher_suite, group, peer_common_name
    TLS_REFUSED = "tls_refused"  # data: failure, reason, by_peer
    TAP_ERROR = "tap_error"  # the owner's tap raised; the link runs untapped
    SESSION_RESULT = "session_result"  # data: SessionResult.as_dict()
    RESUMING = "resuming"  # EV: a paused session is resumed after `resume_after`
    HOST_ERROR = "host_error"  # a bug in the host or a callback: recorded, the host ends
    HOST_CLOSED = "host_closed"  # close(reason) was called


@dataclass(frozen=True, slots=True)
class HostRecord:
    """One trace line of a host: `connection` is 1, 2, ... per TCP connection, 0 for the host's
    own events outside any connection (SDP, listening, the host's end)."""

    connection: int
    record: Record

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form (one line of a JSON-lines trace)."""
        r = self.record
        out: dict[str, Any] = {
            "t": r.time,
            "connection": self.connection,
            "kind": r.kind.value,
            "name": r.name,
        }
        if r.payload_type is not None:
            out["payload_type"] = r.payload_type
        if r.raw is not None:
            out["hex"] = r.raw.hex()
        if r.data is not None:
            out["data"] = r.data
        return out


HostRecorder = Callable[[HostRecord], None]


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How one connection's session ended. `closure` None: no engine ran (no SECC found, the
    connection or the TLS handshake failed, or the host was closed first)."""

    connection: int
    closure: Closure | None
    reason: str
    peer: str = ""
    tls_version: str | None = None
    cipher_suite: str | None = None
    resumed: bool = False
    messages_sent: int = 0
    messages_received: int = 0
    started: float = 0.0
    ended: float = 0.0

    @property
    def normal(self) -> bool:
        """Ended by a SessionStop exchange (Terminate, or Pause that keeps it resumable)."""
        return self.closure in (Closure.TERMINATED, Closure.PAUSED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "closure": None if self.closure is None else self.closure.value,
            "normal": self.normal,
            "reason": self.reason,
            "peer": self.peer,
            "tls_version": self.tls_version,
            "cipher_suite": self.cipher_suite,
            "resumed": self.resumed,
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "started": self.started,
            "ended": self.ended,
        }


@dataclass(frozen=True, slots=True)
class SdpTarget:
    """EV side: find the SECC by SDP on `interface` (FACTS.md: a request every 250 ms, Josev
    gives up after 50). The security asked for follows the host's TLS setting."""

    interface: str
    max_requests: int = SDP_MAX_REQUESTS
    interval: float = SDP_RETRY_INTERVAL
    port: int = SDP_PORT


@dataclass(frozen=True, slots=True)
class TcpEndpoints:
    """Both ends of one TCP connection as (address, port); addresses without a %scope."""

    local: tuple[str, int]
    peer: tuple[str, int]
    local_is_client: bool
    interface: str | None = None


#: Wraps a connection's TCP link (below TLS): a capture tap, a byte-level fault injector.
LinkTap = Callable[[ByteLink, TcpEndpoints], ByteLink]
SessionEndCallback = Callable[[SessionResult], None]


def evcc_tls_config(
    pki: PkiFolder, *, leaf: Entity = Entity.VEHICLE_LEAF, key_log: KeyLogSink | None = None
) -> TlsConfig:
    """The EV's TLS from a test PKI (``rig pki init``): the vehicle chain, the V2G root trusted."""
    return TlsConfig.evcc(
        pki.chain(leaf), pki.private_key(leaf), (pki.certificate(Entity.V2G_ROOT),), key_log=key_log
    )


def secc_tls_config(
    pki: PkiFolder, *, leaf: Entity = Entity.SECC_LEAF, key_log: KeyLogSink | None = None
) -> TlsConfig:
    """The charger's TLS from a test PKI: the SECC chain, EV chains checked against the OEM
    root (mutual authentication)."""
    return TlsConfig.secc(
        pki.chain(leaf), pki.private_key(leaf), (pki.certificate(Entity.OEM_ROOT),), key_log=key_log
    )


_ENDPOINT_TEXT = re.compile(r"^\[(?P<v6>[^\]]+)\]:(?P<port6>\d+)$|^(?P<v4>[^:]+):(?P<port4>\d+)$")


def parse_endpoint_text(text: str) -> tuple[str, int] | None:
    """(address without scope, port) from "[fe80::2%eth0]:5000" or "127.0.0.1:5000"; a "tcp:"
    prefix is allowed. None for anything else."""
    found = _ENDPOINT_TEXT.match(text.removeprefix("tcp:"))
    if found is None:
        return None
    if found.group("v6") is not None:
        return found.group("v6").split("%", 1)[0], int(found.group("port6"))
    return found.group("v4"), int(found.group("port4"))


def _address_of(sockaddr: Any) -> tuple[str, int]:
    host, port = str(sockaddr[0]), int(sockaddr[1])
    return host.split("%", 1)[0], port


class _TcpLink(TcpLink):
    """A TcpLink that keeps both socket addresses (for the trace and a capture tap)."""

    sockname: Any = None
    peername: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sockname = transport.get_extra_info("sockname")
        self.peername = transport.get_extra_info("peername")
        super().connection_made(transport)


class _Base:
    """What both hosts share: records, connection numbers, results, the session's plumbing."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler,
        *,
        tls: TlsConfig | None,
        recorder: HostRecorder | None,
        to_json: ToJson | None,
        on_session_end: SessionEndCallback | None,
        tap: LinkTap | None,
        handshake_timeout: float,
    ) -> None:
        if handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive")
        self.loop = loop
        self.scheduler = scheduler
        self.tls = tls
        self._tls_context = TlsContext(tls) if tls is not None else None
        self._recorder = recorder
        self._to_json = to_json
        self._on_session_end = on_session_end
        self._tap = tap
        self.handshake_timeout = handshake_timeout
        self.results: list[SessionResult] = []
        #: What the recorder raised, if it did (recording stopped then; the session went on).
        self.recorder_error: Exception | None = None
        self.connections = 0
        self._closing: str | None = None
        self._finished = False

    @property
    def finished(self) -> bool:
        """Nothing more will happen: every session's result has been reported."""
        return self._finished

    @property
    def security(self) -> Security:
        return Security.TLS if self.tls is not None else Security.NO_TLS

    def record(self, connection: int, record: Record) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder(HostRecord(connection, record))
        except Exception as exc:  # a trace writer that fails must not take the session down
            self._recorder = None
            self.recorder_error = exc

    def event(self, connection: int, name: HostEvent, /, **data: Any) -> None:
        self.record(
            connection, Record(self.scheduler.now(), RecordKind.EVENT, name.value, data=data)
        )

    def _report(self, result: SessionResult) -> None:
        self.results.append(result)
        self.event(result.connection, HostEvent.SESSION_RESULT, **result.as_dict())
        if self._on_session_end is not None:
            try:
                self._on_session_end(result)
            except Exception as exc:
                self.event(result.connection, HostEvent.HOST_ERROR, error=repr(exc))

    def _failed(self, connection: int, reason: str, peer: str = "") -> SessionResult:
        now = self.scheduler.now()
        return SessionResult(connection, None, reason, peer, started=now, ended=now)


class _Session:
    """One TCP connection of a host: the tap, TLS, the Connection, and its SessionResult."""

    def __init__(
        self,
        host: _Base,
        number: int,
        tcp: _TcpLink,
        engine: Engine,
        *,
        local_is_client: bool,
        interface: str | None,
        resumed: bool,
        on_done: Callable[[_Session, SessionResult], None],
    ) -> None:
        self.host = host
        self.number = number
        self.engine = engine
        self.resumed = resumed
        self._on_done = on_done
        self.started = host.scheduler.now()
        self.peer = tcp.peer_name
        self.connection: Connection | None = None
        self.tls_link: TlsLink | None = None
        self.tls_info: TlsSessionInfo | None = None
        self._tcp = tcp
        self._handshake_timer: TimerHandle | None = None
        self._end_reason: str | None = None
        self._sent = 0
        self._received = 0
        self._done = False
        local = _address_of(tcp.sockname) if tcp.sockname else ("", 0)
        peer = _address_of(tcp.peername) if tcp.peername else ("", 0)
        self.endpoints = TcpEndpoints(local, peer, local_is_client, interface)
        host.event(
            number,
            HostEvent.CONNECTED,
            local=endpoint_text(tcp.sockname, interface) if tcp.sockname else "",
            peer=endpoint_text(tcp.peername, interface) if tcp.peername else "",
            tls=host.tls is not None,
            resumed=resumed,
        )

    def begin(self) -> None:
        link: ByteLink = self._tcp
        if self.host._tap is not None:
            try:
                link = self.host._tap(self._tcp, self.endpoints)
            except Exception as exc:  # a capture problem must not cost the session
                self.host.event(self.number, HostEvent.TAP_ERROR, error=repr(exc))
                link = self._tcp
        context = self.host._tls_context
        if context is None:
            self._start_engine(link)
            return
        self._handshake_timer = self.host.scheduler.call_at(
            self.host.scheduler.now() + self.host.handshake_timeout, self._handshake_expired
        )
        # An EVCC's ClientHello leaves inside wrap(); the SECC waits for it.
        tls = self.tls_link = context.wrap(link, on_handshake=self._handshake_done)
        if self.connection is None:
            tls.set_receiver(self._data_before_handshake, self._closed_before_handshake)

    def close(self, reason: str) -> None:
        if self.connection is not None:
            self.connection.close(reason)
        elif self.tls_link is not None:
            self.tls_link.close(reason)
        else:
            self._tcp.close(reason)

    # --- TLS ---

    def _handshake_done(self, info: TlsSessionInfo) -> None:
        self._cancel_handshake_timer()
        self.tls_info = info
        suite = info.cipher_suite
        self.host.event(
            self.number,
            HostEvent.TLS_ESTABLISHED,
            version=info.version,
            cipher_suite=suite.value if isinstance(suite, StrEnum) else str(suite),
            group=info.group,
            peer_common_name=info.peer_common_name,
        )
        assert self.tls_link is not None
        # Started here, inside the TLS layer's callback: bytes that came with the handshake's
        # last flight are delivered right after it, to the engine's receiver.
        self._start_engine(self.tls_link)

    def _data_before_handshake(self, data: bytes) -> None:
        pass  # a TlsLink delivers nothing before its handshake: nothing can arrive here

    def _closed_before_handshake(self, reason: str) -> None:
        self._cancel_handshake_timer()
        failure = self.tls_link.failure if self.tls_link is not None else None
        self.host.event(
            self.number,
            HostEvent.TLS_REFUSED,
            failure=failure.failure.value if failure is not None else "closed",
            reason=reason,
            by_peer=failure.by_peer if failure is not None else False,
        )
        self._finish(
            SessionResult(
                self.number,
                None,
                reason,
                self.peer,
                started=self.started,
                ended=self.host.scheduler.now(),
            )
        )

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.connection is None and self.tls_link is not None:
            self.tls_link.close(f"tls handshake not done within {self.host.handshake_timeout} s")

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    # --- the engine ---

    def _start_engine(self, link: ByteLink) -> None:
        self.started = self.host.scheduler.now()
        self.connection = Connection(
            self.engine,
            link,
            self.host.scheduler,
            recorder=self._record,
            to_json=self.host._to_json,
            on_ended=self._connection_ended,
        )
        self.connection.start()

    def _record(self, record: Record) -> None:
        kind = record.kind
        if kind is RecordKind.SENT:
            self._sent += 1
            # The Connection stamps every output of one input with the input's time; a frame
            # is recorded just before it goes to the link, so read the clock again: an SECC's
            # response then shows when it left, and its processing time is visible.
            record = Record(
                self.host.scheduler.now(),
                kind,
                record.name,
                record.payload_type,
                record.raw,
                record.data,
                record.message,
            )
        elif kind is RecordKind.RECEIVED:
            self._received += 1
        elif kind is RecordKind.EVENT and record.name == "session_end" and record.data:
            self._end_reason = str(record.data.get("reason", ""))
        self.host.record(self.number, record)

    def _connection_ended(self, connection: Connection) -> None:
        closure = getattr(self.engine, "closure", None)
        reason = self._end_reason or connection.link_close_reason or "link ended"
        if connection.engine_error is not None:
            reason = f"engine error: {connection.engine_error!r}"
        info = self.tls_info
        failure = self.tls_link.failure if self.tls_link is not None else None
        if failure is not None:
            # TLS 1.3: an EVCC finishes its handshake before the SECC has judged its
            # certificate, so a refusal of the EV's chain arrives after the engine started.
            self.host.event(
                self.number,
                HostEvent.TLS_REFUSED,
                failure=failure.failure.value,
                reason=failure.reason,
                by_peer=failure.by_peer,
            )
        self._finish(
            SessionResult(
                self.number,
                closure if isinstance(closure, Closure) else None,
                reason,
                self.peer,
                tls_version=info.version if info else None,
                cipher_suite=str(info.cipher_suite) if info else None,
                resumed=self.resumed,
                messages_sent=self._sent,
                messages_received=self._received,
                started=self.started,
                ended=self.host.scheduler.now(),
            )
        )

    def _finish(self, result: SessionResult) -> None:
        if self._done:
            return
        self._done = True
        self._on_done(self, result)


class EvccHost(_Base):
    """The EV's side on a real network (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler,
        make_engine: Callable[[PausedSession | None], Engine | None],
        *,
        target: SeccEndpoint | SdpTarget,
        tls: TlsConfig | None = None,
        recorder: HostRecorder | None = None,
        to_json: ToJson | None = None,
        on_session_end: SessionEndCallback | None = None,
        tap: LinkTap | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        resume_after: float | None = None,
        max_resumes: int = 3,
    ) -> None:
        super().__init__(
            loop,
            scheduler,
            tls=tls,
            recorder=recorder,
            to_json=to_json,
            on_session_end=on_session_end,
            tap=tap,
            handshake_timeout=handshake_timeout,
        )
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        if resume_after is not None and resume_after < 0:
            raise ValueError("resume_after must be >= 0")
        self.make_engine = make_engine
        self.target = target
        self.connect_timeout = connect_timeout
        self.resume_after = resume_after
        self.max_resumes = max_resumes
        self.engine: Engine | None = None
        self.endpoint: SeccEndpoint | None = None
        self._session: _Session | None = None
        self._ended: asyncio.Future[SessionResult] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Schedule the work on the loop; it runs while the owner runs the loop."""
        if self._task is not None:
            raise RuntimeError("EvccHost already started")
        self._task = self.loop.create_task(self._run())

    def close(self, reason: str = "closed by the rig") -> None:
        """End now: a running session loses its link (the engine tells its controller to go
        safe); discovery or a connection attempt is abandoned; no resume follows."""
        if self._closing is not None or self._finished:
            return
        self._closing = reason
        self.event(0, HostEvent.HOST_CLOSED, reason=reason)
        if self._session is not None:
            self._session.close(reason)
        elif self._task is not None and not self._task.done():
            self._task.cancel()
        elif self._task is None:
            self._finished = True

    @property
    def in_session(self) -> bool:
        """An engine is running on a connection now."""
        return self._session is not None and self._session.connection is not None

    async def _run(self) -> None:
        resume: PausedSession | None = None
        resumes = 0
        try:
            while self._closing is None:
                engine = self.make_engine(resume)
                if engine is None:
                    break
                self.engine = engine
                result = await self._one_connection(engine, resume)
                self._report(result)
                paused = getattr(engine, "paused_session", None)
                if (
                    self._closing is not None
                    or not isinstance(paused, PausedSession)
                    or self.resume_after is None
                    or resumes >= self.max_resumes
                ):
                    break
                resumes += 1
                self.event(
                    0,
                    HostEvent.RESUMING,
                    session_id=paused.session_id.hex(),
                    after=self.resume_after,
                )
                await self._sleep(self.resume_after)
                resume = paused
        except asyncio.CancelledError:
            # closed while finding or connecting to the SECC (not while waiting to resume:
            # that connection has its result already)
            if self.connections and (
                not self.results or self.results[-1].connection != self.connections
            ):
                self._report(self._failed(self.connections, self._closing or "cancelled"))
        except Exception as exc:  # a bug (ours or a callback's): say so, end, never hang
            self.event(0, HostEvent.HOST_ERROR, error=repr(exc))
            self._report(self._failed(self.connections, f"host error: {exc!r}"))
        finally:
            self._session = None
            self._finished = True

    async def _sleep(self, seconds: float) -> None:
        done: asyncio.Future[None] = self.loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        handle = self.scheduler.call_at(self.scheduler.now() + seconds, wake)
        try:
            await done
        finally:
            handle.cancel()

    async def _one_connection(self, engine: Engine, resume: PausedSession | None) -> SessionResult:
        self.connections += 1
        number = self.connections
        try:
            endpoint = await self._locate(number)
        except _NoSecc as exc:
            return self._failed(number, str(exc))
        self.endpoint = endpoint
        target = endpoint_text((str(endpoint.address), endpoint.port), endpoint.interface)
        try:
            tcp = await self._connect(endpoint)
        except (OSError, TimeoutError) as exc:
            reason = (
                f"no connection to {target} within {self.connect_timeout} s"
                if isinstance(exc, TimeoutError)
                else f"could not connect to {target}: {exc.strerror or exc}"
            )
            self.event(number, HostEvent.CONNECT_FAILED, target=target, reason=reason)
            return self._failed(number, reason, target)
        ended: asyncio.Future[SessionResult] = self.loop.create_future()

        def done(session: _Session, result: SessionResult) -> None:
            if not ended.done():
                ended.set_result(result)

        session = _Session(
            self,
            number,
            tcp,
            engine,
            local_is_client=True,
            interface=endpoint.interface,
            resumed=resume is not None,
            on_done=done,
        )
        self._session = session
        try:
            session.begin()
            if self._closing is not None:  # closed while connecting
                session.close(self._closing)
            return await ended
        finally:
            self._session = None

    async def _locate(self, number: int) -> SeccEndpoint:
        target = self.target
        if isinstance(target, SeccEndpoint):
            self.event(
                number,
                HostEvent.SECC_FOUND,
                address=str(target.address),
                port=target.port,
                how="direct",
            )
            return target
        sock = sdp_client_socket(target.interface)
        try:
            local = link_local_address(target.interface)
        except OSError:
            local = None
        local_port = int(sock.getsockname()[1])
        request = SdpRequest(self.security)

        def sdp_record(item: SdpRecord) -> None:
            if isinstance(item, SdpTry):
                self.event(
                    number,
                    HostEvent.SDP_REQUEST,
                    attempt=item.number,
                    security=request.security.name,
                    local_address=None if local is None else str(local),
                    local_port=local_port,
                    hex=request.encode().hex(),
                )
            elif isinstance(item, SdpReply):
                source = parse_endpoint_text(item.source)
                self.event(
                    number,
                    HostEvent.SDP_REPLY,
                    after_try=item.after_try,
                    source=item.source,
                    source_address=source[0] if source else None,
                    source_port=source[1] if source else None,
                    valid=item.response is not None,
                    error=item.error,
                    hex=item.data.hex(),
                )

        client = SdpClient(
            target.interface,
            self.loop,
            self.scheduler,
            security=self.security,
            max_requests=target.max_requests,
            interval=target.interval,
            port=target.port,
            recorder=sdp_record,
            sock=sock,
        )
        try:
            result = await client.discover()
        except SdpFailed as exc:
            self.event(number, HostEvent.SDP_FAILED, reason=str(exc), tries=len(exc.tries))
            raise _NoSecc(f"SDP on {target.interface}: {exc}") from None
        finally:
            sock.close()
        endpoint = result.endpoint
        self.event(
            number,
            HostEvent.SECC_FOUND,
            address=str(endpoint.address),
            port=endpoint.port,
            security=endpoint.security.name,
            how="sdp",
            tries=len(result.tries),
        )
        if endpoint.security is not self.security:
            why = (
                f"the SECC offers {endpoint.security.name}, the EV asked for "
                f"{self.security.name}"
                + (" and has no TLS credentials" if self.tls is None else " and requires TLS")
            )
            self.event(number, HostEvent.SECURITY_MISMATCH, reason=why)
            raise _NoSecc(why)
        return endpoint

    async def _connect(self, endpoint: SeccEndpoint) -> _TcpLink:
        family, address = socket_address(str(endpoint.address), endpoint.port, endpoint.interface)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, address), self.connect_timeout)
            _, link = await self.loop.create_connection(
                lambda: _TcpLink(
                    self.loop, MAX_BUFFERED, MAX_SEND_BUFFER, interface=endpoint.interface
                ),
                sock=sock,
            )
        except BaseException:
            sock.close()
            raise
        return link


class _NoSecc(Exception):
    """No SECC to connect to (SDP failed, or offered a security the EV cannot use)."""


class SeccHost(_Base):
    """The charger's side on a real network (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler,
        make_engine: Callable[[], Engine],
        *,
        interface: str | None = None,
        host: str | None = None,
        port: int = 0,  # 0: a free one of DYNAMIC_PORTS
        sdp: bool = True,
        sdp_port: int = SDP_PORT,
        tls: TlsConfig | None = None,
        recorder: HostRecorder | None = None,
        to_json: ToJson | None = None,
        on_session_end: SessionEndCallback | None = None,
        tap: LinkTap | None = None,
        max_sessions: int | None = 1,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__(
            loop,
            scheduler,
            tls=tls,
            recorder=recorder,
            to_json=to_json,
            on_session_end=on_session_end,
            tap=tap,
            handshake_timeout=handshake_timeout,
        )
        if interface is None and host is None:
            raise ValueError("SeccHost needs an interface or a host address to listen on")
        if sdp and interface is None:
            raise ValueError("SDP needs the interface its multicast group is joined on")
        if max_sessions is not None and max_sessions < 1:
            raise ValueError("max_sessions must be >= 1 (None: no limit)")
        self.make_engine = make_engine
        self.interface = interface
        self.host = host
        self.sdp = sdp
        self.sdp_port = sdp_port
        self.max_sessions = max_sessions
        self.address: str | None = None
        self.port = port
        self.sdp_server: SdpServer | None = None
        self.listening = False
        self._listen_sock: socket.socket | None = None
        self._sdp_sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._active: _Session | None = None
        self.refused = 0

    @property
    def in_session(self) -> bool:
        return self._active is not None

    @property
    def active_engine(self) -> Engine | None:
        """The engine of the session in progress (its `phase` says where it stands), or None."""
        return self._active.engine if self._active is not None else None

    @property
    def sessions_served(self) -> int:
        return len(self.results)

    def start(self) -> None:
        """Make the listening (and SDP) sockets now, so that the caller may be inside a network
        namespace; serving starts when the owner runs the loop. OSError if the address is
        unusable or the port is taken."""
        if self._task is not None:
            raise RuntimeError("SeccHost already started")
        if self.host is not None:
            address = self.host
        else:
            assert self.interface is not None
            address = str(link_local_address(self.interface))
        sock = self._listen(address)
        try:
            if self.sdp:
                assert self.interface is not None
                self._sdp_sock = sdp_server_socket(self.interface, self.sdp_port)
        except BaseException:
            sock.close()
            raise
        self._listen_sock = sock
        self.address = address.split("%", 1)[0]
        self.port = int(sock.getsockname()[1])
        self._task = self.loop.create_task(self._serve())

    def _listen(self, address: str) -> socket.socket:
        if self.port != 0:
            return tcp_listen_socket(address, self.port, self.interface, LISTEN_BACKLOG)
        rng = random.SystemRandom()
        error: OSError | None = None
        for _ in range(PORT_TRIES):
            try:
                return tcp_listen_socket(
                    address, rng.choice(DYNAMIC_PORTS), self.interface, LISTEN_BACKLOG
                )
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                error = exc
        assert error is not None
        raise error

    async def _serve(self) -> None:
        try:
            assert self._listen_sock is not None
            self._server = await self.loop.create_server(
                lambda: _TcpLink(
                    self.loop,
                    MAX_BUFFERED,
                    MAX_SEND_BUFFER,
                    on_made=self._accepted,
                    interface=self.interface,
                ),
                sock=self._listen_sock,
            )
            self._listen_sock = None  # the server owns it now
            if self._sdp_sock is not None:
                assert self.interface is not None and self.address is not None
                sdp_address = ip_address(self.address)
                assert isinstance(sdp_address, IPv6Address)
                self.sdp_server = await SdpServer.start(
                    self.loop,
                    self.scheduler,
                    self.interface,
                    {self.security: self.port},
                    address=sdp_address,
                    sock=self._sdp_sock,
                    recorder=self._sdp_served,
                )
                self._sdp_sock = None
            self.listening = True
            self.event(
                0,
                HostEvent.LISTENING,
                address=self.address,
                port=self.port,
                interface=self.interface,
                security=self.security.name,
                sdp=self.sdp,
            )
        except asyncio.CancelledError:
            self._release()
            raise
        except Exception as exc:
            self.event(0, HostEvent.HOST_ERROR, error=repr(exc))
            self._release()
            self._finished = True

    def _sdp_served(self, served: SdpServed) -> None:
        source = parse_endpoint_text(served.source)
        response = served.answer.response
        self.event(
            0,
            HostEvent.SDP_SERVED,
            source=served.source,
            source_address=source[0] if source else None,
            source_port=source[1] if source else None,
            answered=response is not None,
            note=served.answer.note,
            hex=served.data.hex(),
            response_hex=response.encode().hex() if response is not None else None,
        )

    def _accepted(self, link: TcpLink) -> None:
        assert isinstance(link, _TcpLink)
        if self._closing is not None or self._active is not None or self._done_serving():
            self.refused += 1
            why = (
                "a session is in progress (one EV at a time)"
                if self._active is not None
                else "the SECC is closing"
            )
            self.event(
                0, HostEvent.CONNECTION_REFUSED, peer=link.peer_name, reason=f"refused: {why}"
            )
            link.close(f"refused: {why}")
            return
        self.connections += 1
        number = self.connections
        try:
            engine = self.make_engine()
        except Exception as exc:
            self.event(number, HostEvent.HOST_ERROR, error=f"make_engine: {exc!r}")
            link.close("no engine")
            self._report(self._failed(number, f"make_engine failed: {exc!r}", link.peer_name))
            self._after_session()
            return
        session = _Session(
            self,
            number,
            link,
            engine,
            local_is_client=False,
            interface=self.interface,
            resumed=False,
            on_done=self._session_done,
        )
        self._active = session
        session.begin()

    def _session_done(self, session: _Session, result: SessionResult) -> None:
        if self._active is session:
            self._active = None
        self._report(result)
        self._after_session()

    def _done_serving(self) -> bool:
        return self.max_sessions is not None and self.connections >= self.max_sessions

    def _after_session(self) -> None:
        if self._done_serving() and self._active is None:
            self._stop_listening()
            self._finished = True
        elif self._closing is not None and self._active is None:
            self._finished = True

    def close(self, reason: str = "closed by the rig") -> None:
        """Stop listening and answering SDP; a running session loses its link (the engine tells
        its controller to go safe)."""
        if self._closing is None:
            self._closing = reason
            self.event(0, HostEvent.HOST_CLOSED, reason=reason)
            self._stop_listening()
        if self._active is not None:
            self._active.close(reason)
        else:
            self._finished = True

    def drain(self, reason: str = "draining") -> None:
        """Accept no more connections and stop answering SDP; the session in progress goes on
        to its end, and the host is finished then (at once if none is in progress)."""
        if self._closing is not None:
            return
        self._closing = reason
        self.event(0, HostEvent.HOST_CLOSED, reason=reason, draining=True)
        self._stop_listening()
        if self._active is None:
            self._finished = True

    def _stop_listening(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._release()
        self.listening = False

    def _release(self) -> None:
        if self.sdp_server is not None:
            self.sdp_server.close()
            self.sdp_server = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for sock in (self._listen_sock, self._sdp_sock):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._listen_sock = self._sdp_sock = None


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "EvccHost",
    "HostEvent",
    "HostRecord",
    "HostRecorder",
    "LinkTap",
    "SdpTarget",
    "SeccHost",
    "SessionResult",
    "TcpEndpoints",
    "evcc_tls_config",
    "parse_endpoint_text",
    "secc_tls_config",
]
