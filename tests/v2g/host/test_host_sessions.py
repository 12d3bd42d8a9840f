"""Whole -20 sessions between our EVCC and SECC hosts over real sockets: TCP on loopback, TLS 1.3
with mutual authentication, SDP over a veth pair between two network namespaces; sessions in
turn, a refused second connection, pause and resume on a new connection, and the ends a host can
come to (closed by the rig, no SECC, no SDP answer, a security the EV cannot use)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from host_helpers import Trace, battery, drive, evcc_factory, secc_factory
from netns import VethPair

from rig.clock import RealClock
from rig.v2g.connection import RecordKind
from rig.v2g.controllers import Closure, EvIntent
from rig.v2g.exi import to_json
from rig.v2g.host import (
    EvccHost,
    HostEvent,
    SdpTarget,
    SeccHost,
    SessionResult,
    evcc_tls_config,
    parse_endpoint_text,
    secc_tls_config,
)
from rig.v2g.pki import Entity, PkiFolder
from rig.v2g.reference import BenchCharger
from rig.v2g.sdp import SeccEndpoint
from rig.v2g.sessions import SessionStore
from rig.v2g.vocabulary import ControlMode, Service


def _loopback(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        from peers.josev import missing

        missing(f"no loopback {host} here: {exc}")


def _hosts(
    clock: RealClock,
    host: str = "::1",
    *,
    ev_loops: int = 3,
    service: Service = Service.DC_BPT,
    mode: ControlMode = ControlMode.DYNAMIC,
    evse_tls: object = None,
    ev_tls: object = None,
    max_sessions: int | None = 1,
) -> tuple[EvccHost, SeccHost, Trace, Trace, BenchCharger, object]:
    charger = BenchCharger()
    ev = battery(ev_loops)
    ev_trace, evse_trace = Trace(), Trace()
    evse = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger),
        host=host,
        sdp=False,
        tls=evse_tls,  # type: ignore[arg-type]
        recorder=evse_trace,
        to_json=to_json,
        max_sessions=max_sessions,
    )
    evse.start()
    evcc = EvccHost(
        clock.loop,
        clock,
        evcc_factory(ev, service, mode),
        target=SeccEndpoint.parse(host, evse.port),
        tls=ev_tls,  # type: ignore[arg-type]
        recorder=ev_trace,
        to_json=to_json,
    )
    return evcc, evse, ev_trace, evse_trace, charger, ev


def _same_session_both_ways(ev_trace: Trace, evse_trace: Trace) -> None:
    sent = ev_trace.messages(RecordKind.SENT)
    assert sent[0] == "supportedAppProtocolReq" and sent[-1] == "SessionStopReq"
    assert evse_trace.messages(RecordKind.RECEIVED) == sent
    assert ev_trace.messages(RecordKind.RECEIVED) == evse_trace.messages(RecordKind.SENT)


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
@pytest.mark.parametrize(
    ("service", "mode"),
    [(Service.DC_BPT, ControlMode.DYNAMIC), (Service.AC_BPT, ControlMode.SCHEDULED)],
)
def test_a_whole_session_over_tcp_on_loopback(
    clock: RealClock, host: str, service: Service, mode: ControlMode
) -> None:
    _loopback(host)
    evcc, evse, ev_trace, evse_trace, charger, ev = _hosts(clock, host, service=service, mode=mode)
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)

    for results in (evcc.results, evse.results):
        (result,) = results
        assert result.closure is Closure.TERMINATED and result.normal
        assert result.reason == "SessionStop(Terminate)"
        assert result.messages_sent == result.messages_received > 10
    _same_session_both_ways(ev_trace, evse_trace)
    loop_name = "DC_ChargeLoopReq" if service.is_dc else "AC_ChargeLoopReq"
    assert ev_trace.messages(RecordKind.SENT).count(loop_name) == 3

    # every message record: time, payload type, the whole frame, the decoded JSON form
    frames = [
        r for r in ev_trace.records if r.record.kind in (RecordKind.SENT, RecordKind.RECEIVED)
    ]
    for r in frames:
        rec = r.record
        assert r.connection == 1 and rec.raw is not None and rec.raw[:2] == b"\x01\xfe"
        assert rec.payload_type == int.from_bytes(rec.raw[2:4], "big")
        assert list(rec.data) == [rec.name]
        line = json.loads(json.dumps(r.as_dict()))
        assert line["hex"] == rec.raw.hex() and line["name"] == rec.name
    times = [r.record.time for r in ev_trace.records]
    assert times == sorted(times)

    # both ends named the same connection
    (ev_conn,) = ev_trace.events(HostEvent.CONNECTED)
    (evse_conn,) = evse_trace.events(HostEvent.CONNECTED)
    assert ev_conn["local"] == evse_conn["peer"] and ev_conn["peer"] == evse_conn["local"]
    assert parse_endpoint_text(ev_conn["peer"]) == (host, evse.port)
    assert [e["closure"] for e in ev_trace.events(HostEvent.SESSION_RESULT)] == ["terminated"]
    assert evse_trace.events(HostEvent.LISTENING)[0]["port"] == evse.port

    # the physical sides were told, and are safe
    assert charger.ended == [(Closure.TERMINATED, "SessionStop(Terminate)")] and charger.safe
    assert ev.ended[0][0] is Closure.TERMINATED and not ev.contactors_closed  # type: ignore[attr-defined]


def test_mutual_tls_session_records_the_handshake(clock: RealClock, pki: PkiFolder) -> None:
    _loopback("::1")
    evcc, evse, ev_trace, evse_trace, _charger, _ = _hosts(
        clock, evse_tls=secc_tls_config(pki), ev_tls=evcc_tls_config(pki)
    )
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)

    assert [r.normal for r in evcc.results + evse.results] == [True, True]
    (ev_tls,) = ev_trace.events(HostEvent.TLS_ESTABLISHED)
    (evse_tls,) = evse_trace.events(HostEvent.TLS_ESTABLISHED)
    for info in (ev_tls, evse_tls):
        assert info["version"] == "TLSv1.3"
        assert info["cipher_suite"] in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
    assert (
        ev_tls["peer_common_name"]
        == pki.certificate(Entity.SECC_LEAF).subject.rfc4514_string().split("CN=")[1].split(",")[0]
    )
    assert evse_tls["peer_common_name"] == "WMIV1234567890ABCDEX"
    assert evcc.results[0].tls_version == "TLSv1.3"
    _same_session_both_ways(ev_trace, evse_trace)
    # the engine started after the handshake: the first request's record follows it
    order = [r.record.name for r in ev_trace.records]
    assert order.index(HostEvent.TLS_ESTABLISHED) < order.index("supportedAppProtocolReq")
    assert ev_trace.closed_reasons() == ["SessionStop(Terminate) answered"]
    assert evse_trace.closed_reasons() == ["peer closed the TLS session (close_notify)"]


def test_a_refused_ev_certificate_ends_both_sides_with_the_reason(
    clock: RealClock, pki: PkiFolder
) -> None:
    _loopback("::1")
    evcc, evse, ev_trace, evse_trace, charger, ev = _hosts(
        clock,
        evse_tls=secc_tls_config(pki),
        ev_tls=evcc_tls_config(pki, leaf=Entity.VEHICLE_LEAF_EXPIRED),
    )
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)

    (refusal,) = evse_trace.events(HostEvent.TLS_REFUSED)
    assert (
        refusal["failure"] == "certificate_expired"
        and "EV certificate expired" in refusal["reason"]
    )
    (secc_result,) = evse.results
    assert secc_result.closure is None and "certificate_expired" in secc_result.reason
    assert charger.ended == [] and charger.safe  # no engine ran: nothing was switched on
    # TLS 1.3: the EV's side of the handshake had finished; the SECC's alert ends its session
    (told,) = ev_trace.events(HostEvent.TLS_REFUSED)
    assert told["failure"] == "certificate_expired" and told["by_peer"] is True
    (ev_result,) = evcc.results
    assert ev_result.closure is Closure.ABORTED and not ev_result.normal
    assert ev.ended and ev.ended[0][0] is Closure.ABORTED  # type: ignore[attr-defined]
    assert ev_trace.messages(RecordKind.RECEIVED) == []


def test_the_ev_refuses_a_charger_with_an_untrusted_certificate(
    clock: RealClock, pki: PkiFolder
) -> None:
    _loopback("::1")
    evcc, evse, ev_trace, _evse_trace, charger, ev = _hosts(
        clock,
        evse_tls=secc_tls_config(pki, leaf=Entity.SECC_LEAF_WRONG_ROOT),
        ev_tls=evcc_tls_config(pki),
    )
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)
    (refusal,) = ev_trace.events(HostEvent.TLS_REFUSED)
    assert refusal["failure"] == "unknown_ca" and refusal["by_peer"] is False
    assert [r.closure for r in evcc.results + evse.results] == [None, None]
    assert ev_trace.messages(RecordKind.SENT) == []  # not one byte of -20 before TLS is up
    assert ev.ended == [] and charger.ended == []  # type: ignore[attr-defined]


def test_a_second_connection_during_a_session_is_refused(clock: RealClock) -> None:
    _loopback("::1")
    evcc, evse, _ev_trace, evse_trace, _charger, _ = _hosts(clock, ev_loops=15)
    evcc.start()
    drive(clock, lambda: "DC_ChargeLoopReq" in evse_trace.messages(RecordKind.RECEIVED))

    async def intruder() -> bytes:
        reader, writer = await asyncio.open_connection("::1", evse.port)
        try:
            return await asyncio.wait_for(reader.read(100), 5)
        finally:
            writer.close()

    task = clock.loop.create_task(intruder())
    drive(clock, task.done)
    assert task.result() == b""  # closed at once, nothing said
    (refused,) = evse_trace.events(HostEvent.CONNECTION_REFUSED)
    assert "a session is in progress" in refused["reason"]
    drive(clock, lambda: evcc.finished and evse.finished)
    assert [r.normal for r in evse.results] == [True] and evse.refused == 1


def test_sessions_in_turn_up_to_max_sessions(clock: RealClock) -> None:
    _loopback("::1")
    charger = BenchCharger()
    evse_trace = Trace()
    evse = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger),
        host="::1",
        sdp=False,
        recorder=evse_trace,
        max_sessions=2,
    )
    evse.start()
    for _n in (1, 2):
        evcc = EvccHost(
            clock.loop, clock, evcc_factory(battery(2)), target=SeccEndpoint.parse("::1", evse.port)
        )
        evcc.start()
        drive(clock, lambda evcc=evcc: evcc.finished)  # type: ignore[misc]
        assert evcc.results[0].normal, evcc.results
    drive(clock, lambda: evse.finished)
    assert [r.connection for r in evse.results] == [1, 2]
    assert all(r.normal for r in evse.results) and not evse.listening
    # the listening socket is gone: a third EV is refused by the kernel
    third = EvccHost(
        clock.loop, clock, evcc_factory(battery(2)), target=SeccEndpoint.parse("::1", evse.port)
    )
    third.start()
    drive(clock, lambda: third.finished)
    (result,) = third.results
    assert result.closure is None and "could not connect" in result.reason


def test_pause_and_resume_on_a_new_connection(clock: RealClock) -> None:
    _loopback("::1")
    charger, store = BenchCharger(), SessionStore()
    ev = battery(2, EvIntent.PAUSE)
    ev.intents.extend([EvIntent.CHARGE, EvIntent.STOP])
    ev_trace, evse_trace = Trace(), Trace()
    evse = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger, store),
        host="::1",
        sdp=False,
        recorder=evse_trace,
        to_json=to_json,
        max_sessions=2,
    )
    evse.start()
    evcc = EvccHost(
        clock.loop,
        clock,
        evcc_factory(ev),
        target=SeccEndpoint.parse("::1", evse.port),
        recorder=ev_trace,
        to_json=to_json,
        resume_after=0.05,
    )
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)

    assert [(r.closure, r.resumed) for r in evcc.results] == [
        (Closure.PAUSED, False),
        (Closure.TERMINATED, True),
    ]
    assert [r.closure for r in evse.results] == [Closure.PAUSED, Closure.TERMINATED]
    assert len(ev_trace.events(HostEvent.RESUMING)) == 1
    setup = [
        r.record.data["SessionSetupRes"]
        for r in evse_trace.records
        if r.record.kind is RecordKind.SENT and r.record.name == "SessionSetupRes"
    ]
    assert [s["ResponseCode"] for s in setup] == ["OK_NewSessionEstablished", "OK_OldSessionJoined"]
    assert setup[0]["Header"]["SessionID"] == setup[1]["Header"]["SessionID"]
    assert [c for c, _ in charger.ended] == [Closure.PAUSED, Closure.TERMINATED]


def test_closing_the_ev_host_mid_session_makes_both_sides_safe(clock: RealClock) -> None:
    _loopback("::1")
    evcc, evse, ev_trace, _evse_trace, charger, ev = _hosts(clock, ev_loops=1000)
    evcc.start()
    drive(clock, lambda: ev_trace.messages(RecordKind.SENT).count("DC_ChargeLoopReq") >= 2)
    assert evcc.in_session and charger.contactors_closed
    evcc.close("operator pressed stop")
    drive(clock, lambda: evcc.finished and evse.finished)
    (ev_result,) = evcc.results
    assert ev_result.closure is Closure.ABORTED and "operator pressed stop" in ev_result.reason
    assert ev.ended[0][0] is Closure.ABORTED and not ev.contactors_closed  # type: ignore[attr-defined]
    assert charger.ended[0][0] is Closure.ABORTED and charger.safe
    assert ev_trace.events(HostEvent.HOST_CLOSED) == [{"reason": "operator pressed stop"}]


def test_closing_the_evse_host_mid_session_makes_both_sides_safe(clock: RealClock) -> None:
    _loopback("::1")
    evcc, evse, _ev_trace, evse_trace, charger, ev = _hosts(clock, ev_loops=1000)
    evcc.start()
    drive(clock, lambda: evse_trace.messages(RecordKind.SENT).count("DC_ChargeLoopRes") >= 2)
    evse.close("charger shutting down")
    drive(clock, lambda: evcc.finished and evse.finished)
    assert evse.results[0].closure is Closure.ABORTED and charger.safe
    assert evcc.results[0].closure is Closure.ABORTED
    assert ev.ended[0][0] is Closure.ABORTED  # type: ignore[attr-defined]
    assert not evse.listening


def test_no_secc_listening_ends_the_ev_host_with_the_reason(clock: RealClock) -> None:
    _loopback("::1")
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]  # free once closed: nobody listens there
    trace = Trace()
    ev = battery(2)
    evcc = EvccHost(
        clock.loop, clock, evcc_factory(ev), target=SeccEndpoint.parse("::1", port), recorder=trace
    )
    evcc.start()
    drive(clock, lambda: evcc.finished, timeout=5)
    (result,) = evcc.results
    assert result.closure is None and "could not connect" in result.reason
    assert trace.events(HostEvent.CONNECT_FAILED)[0]["reason"] == result.reason
    assert ev.ended == []  # type: ignore[attr-defined]  (no engine ran)


def test_close_before_the_loop_ran_finishes_at_once(clock: RealClock) -> None:
    evcc = EvccHost(
        clock.loop, clock, evcc_factory(battery(1)), target=SeccEndpoint.parse("::1", 9)
    )
    evcc.close("never mind")
    assert evcc.finished and evcc.results == []


# --- SDP over a veth pair (root: network namespaces) ------------------------------------------


def _sdp_session(
    clock: RealClock, veth: VethPair, pki: PkiFolder | None
) -> tuple[EvccHost, SeccHost, Trace, Trace]:
    ev_trace, evse_trace = Trace(), Trace()
    with veth.entered("evse"):
        evse = SeccHost(
            clock.loop,
            clock,
            secc_factory(BenchCharger()),
            interface=veth.evse_interface,
            sdp=True,
            tls=secc_tls_config(pki) if pki else None,
            recorder=evse_trace,
        )
        evse.start()
    evcc = EvccHost(
        clock.loop,
        clock,
        evcc_factory(battery(2)),
        target=SdpTarget(veth.ev_interface),
        tls=evcc_tls_config(pki) if pki else None,
        recorder=ev_trace,
    )
    # The EV's sockets are made while the loop runs: run it inside the EV's namespace.
    with veth.entered("ev"):
        drive(clock, lambda: evse.listening)
        evcc.start()
        drive(clock, lambda: evcc.finished and evse.finished)
    return evcc, evse, ev_trace, evse_trace


@pytest.mark.parametrize("tls", [False, True], ids=["no-tls", "tls"])
def test_sdp_finds_the_secc_over_a_veth_pair(
    clock: RealClock, veth: VethPair, pki: PkiFolder, tls: bool
) -> None:
    evcc, evse, ev_trace, evse_trace = _sdp_session(clock, veth, pki if tls else None)
    assert [r.normal for r in evcc.results + evse.results] == [True, True], (
        evcc.results,
        evse.results,
    )
    security = "TLS" if tls else "NO_TLS"
    request = ev_trace.events(HostEvent.SDP_REQUEST)[0]
    assert request["security"] == security and request["local_address"] == veth.ev_address
    reply = next(r for r in ev_trace.events(HostEvent.SDP_REPLY) if r["valid"])
    assert reply["source_address"] == veth.evse_address
    (found,) = ev_trace.events(HostEvent.SECC_FOUND)
    assert (found["address"], found["port"], found["security"]) == (
        veth.evse_address,
        evse.port,
        security,
    )
    served = [s for s in evse_trace.events(HostEvent.SDP_SERVED) if s["answered"]]
    assert served and served[0]["source_address"] == veth.ev_address
    assert served[0]["source_port"] == request["local_port"]
    (conn,) = evse_trace.events(HostEvent.CONNECTED)
    assert conn["local"].startswith(f"[{veth.evse_address}%{veth.evse_interface}]:")
    assert bool(ev_trace.events(HostEvent.TLS_ESTABLISHED)) == tls


def test_sdp_gives_up_when_nobody_answers(clock: RealClock, veth: VethPair) -> None:
    trace = Trace()
    evcc = EvccHost(
        clock.loop,
        clock,
        evcc_factory(battery(1)),
        target=SdpTarget(veth.ev_interface, max_requests=3, interval=0.05),
        recorder=trace,
    )
    with veth.entered("ev"):
        evcc.start()
        drive(clock, lambda: evcc.finished, timeout=5)
    assert len(trace.events(HostEvent.SDP_REQUEST)) == 3
    (failed,) = trace.events(HostEvent.SDP_FAILED)
    assert failed["tries"] == 3
    assert evcc.results[0].closure is None and "SDP on veth-evcc" in evcc.results[0].reason


def test_an_ev_that_requires_tls_does_not_connect_to_a_plain_secc(
    clock: RealClock, veth: VethPair, pki: PkiFolder
) -> None:
    ev_trace, evse_trace = Trace(), Trace()
    with veth.entered("evse"):
        evse = SeccHost(
            clock.loop,
            clock,
            secc_factory(BenchCharger()),
            interface=veth.evse_interface,
            recorder=evse_trace,
        )
        evse.start()
    evcc = EvccHost(
        clock.loop,
        clock,
        evcc_factory(battery(1)),
        target=SdpTarget(veth.ev_interface),
        tls=evcc_tls_config(pki),
        recorder=ev_trace,
    )
    with veth.entered("ev"):
        drive(clock, lambda: evse.listening)
        evcc.start()
        drive(clock, lambda: evcc.finished)
    (mismatch,) = ev_trace.events(HostEvent.SECURITY_MISMATCH)
    assert "offers NO_TLS" in mismatch["reason"] and "requires TLS" in mismatch["reason"]
    assert evse_trace.events(HostEvent.CONNECTED) == []
    evse.close()
    drive(clock, lambda: evse.finished)
    assert isinstance(evcc.results[0], SessionResult) and evcc.results[0].closure is None
