"""Bad input over real TCP, through the hosts, from a raw socket peer on loopback: a V2GTP header
with a wrong version, a wrong payload type, a length of 4 GB, a truncated frame, garbage EXI, an
unknown SessionID, an out-of-sequence request, a peer that stops answering mid-ChargeLoop, a peer
that closes mid-frame. Each gets the protocol's FAILED response or the timeout path, a recorded
event, the controller told to go safe (session_ended), and the host ends: no crash, no hang
(every wait here is bounded), bounded memory."""

from __future__ import annotations

import asyncio
import dataclasses
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from host_helpers import FAST, Trace, battery, drive, evcc_factory, secc_factory
from raw_peer import RawPeer, drive_engine

from rig.clock import RealClock
from rig.v2g.connection import RecordKind
from rig.v2g.controllers import Closure
from rig.v2g.engine import Send
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.exi import common, to_json
from rig.v2g.host import EvccHost, HostEvent, SeccHost, parse_endpoint_text, secc_tls_config
from rig.v2g.messages import code_name, encode_frame, header
from rig.v2g.pki import PkiFolder
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.sdp import SeccEndpoint
from rig.v2g.secc import Secc
from rig.v2g.timing import SeccTiming
from rig.v2g.v2gtp import frame
from rig.v2g.vocabulary import ControlMode, Service

T = TypeVar("T")
#: Short SECC timeouts so the timeout paths run in a fraction of a second.
QUICK = SeccTiming(communication_setup=1.0, sequence=0.5, close_after_stop=0.3)


def _run(clock: RealClock, coro: Awaitable[T], timeout: float = 10.0) -> T:
    task = clock.loop.create_task(coro)  # type: ignore[arg-type]
    drive(clock, task.done, timeout)
    return task.result()


@dataclass
class Evse:
    host: SeccHost
    trace: Trace
    charger: BenchCharger

    def ended_safely(self) -> None:
        (result,) = self.host.results
        assert result.closure is Closure.ABORTED and not result.normal
        assert self.charger.ended and self.charger.ended[0][0] is Closure.ABORTED
        assert self.charger.safe
        assert self.trace.events(HostEvent.SESSION_RESULT)[0]["closure"] == "aborted"


def _evse(clock: RealClock) -> Evse:
    charger, trace = BenchCharger(), Trace()
    host = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger, timing=QUICK),
        host="::1",
        sdp=False,
        recorder=trace,
        to_json=to_json,
    )
    host.start()
    return Evse(host, trace, charger)


def _ev_engine() -> Evcc:
    return Evcc(BatteryEv(), EvccConfig(services=(Service.DC_BPT,), timing=FAST))


def _is(name: str) -> Callable[[Send], bool]:
    return lambda send: send.name == name


async def _after_session_setup(evse: Evse, clock: RealClock) -> tuple[RawPeer, Send]:
    """A raw EV that did supportedAppProtocol and SessionSetup; the AuthorizationSetupReq its
    engine would send next (not sent)."""
    peer = await RawPeer.connect("::1", evse.host.port)
    nxt = await drive_engine(peer, _ev_engine(), clock.now, _is("AuthorizationSetupReq"))
    assert nxt is not None
    return peer, nxt


# --- the SECC host against a raw EV ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (bytes.fromhex("02fe8001000000050000000000"), "WrongProtocolVersion"),
        (bytes.fromhex("01ff8001000000050000000000"), "WrongInverseVersion"),
        (bytes.fromhex("01fe1234000000050000000000"), "UnknownPayloadType"),
        (frame(0x9000, b"\x10\x00"), "UnknownPayloadType"),  # SDP does not travel on TCP
        (bytes.fromhex("01fe8001ffffffff"), "PayloadTooLong"),  # 4 GB, refused from the header
    ],
    ids=["version", "inverse-version", "payload-type", "sdp-on-tcp", "4GB"],
)
def test_a_v2gtp_header_defect_closes_the_connection(
    clock: RealClock, raw: bytes, kind: str
) -> None:
    evse = _evse(clock)

    async def ev() -> bytes:
        peer = await RawPeer.connect("::1", evse.host.port)
        peer.send(raw)
        return await peer.end(3.0)

    tracemalloc.start()
    try:
        started = clock.now()
        assert _run(clock, ev()) == b""  # no response can be tied to a broken stream: closed
        elapsed = clock.now() - started
        drive(clock, lambda: evse.host.finished)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0  # at once, not after a timeout
    assert peak < 2 << 20  # a 4 GB length allocates nothing
    (event,) = evse.trace.events("v2gtp_error")
    assert event["kind"] == kind
    assert any("V2GTP error" in r for r in evse.trace.closed_reasons())
    evse.ended_safely()


@pytest.mark.parametrize("where", ["before the handshake", "after SessionSetup"])
def test_garbage_exi_gets_a_failed_response(clock: RealClock, where: str) -> None:
    evse = _evse(clock)
    garbage = bytes([0x80]) + bytes(range(1, 200))

    async def ev() -> Any:
        if where == "before the handshake":
            peer = await RawPeer.connect("::1", evse.host.port)
            peer.send(frame(0x8001, garbage))
        else:
            peer, _ = await _after_session_setup(evse, clock)
            peer.send(frame(0x8002, garbage))
        answer = await peer.message()
        assert await peer.end(3.0) == b""  # then the SECC closes [V2G20-1643]
        return answer

    answer = _run(clock, ev())
    if where == "before the handshake":
        assert type(answer).__name__ == "supportedAppProtocolRes"
        assert code_name(answer.ResponseCode) == "Failed_NoNegotiation"
    else:
        assert type(answer).__name__ == "AuthorizationSetupRes"
        assert code_name(answer.ResponseCode) == "FAILED"
    drive(clock, lambda: evse.host.finished)
    assert evse.trace.events("malformed_message")
    evse.ended_safely()


def test_an_unknown_session_id_gets_failed_unknown_session(clock: RealClock) -> None:
    evse = _evse(clock)

    async def ev() -> Any:
        peer, nxt = await _after_session_setup(evse, clock)
        request = nxt.message
        forged = common.AuthorizationSetupReq(
            Header=header(
                bytes(b ^ 0xFF for b in request.Header.SessionID), request.Header.TimeStamp
            )
        )
        peer.send(encode_frame(forged)[1])
        answer = await peer.message()
        await peer.end(3.0)
        return answer

    answer = _run(clock, ev())
    assert code_name(answer.ResponseCode) == "FAILED_UnknownSession"
    drive(clock, lambda: evse.host.finished)
    assert evse.trace.events("unknown_session")
    evse.ended_safely()


def test_an_out_of_sequence_request_gets_failed_sequence_error(clock: RealClock) -> None:
    evse = _evse(clock)

    async def ev() -> Any:
        peer, nxt = await _after_session_setup(evse, clock)
        session_id = nxt.message.Header.SessionID
        # a PowerDelivery long before any service was selected
        early = common.PowerDeliveryReq(
            Header=header(session_id, nxt.message.Header.TimeStamp),
            EVProcessing=common.processingType.Finished,
            ChargeProgress=common.chargeProgressType.Start,
        )
        peer.send(encode_frame(early)[1])
        answer = await peer.message()
        await peer.end(3.0)
        return answer

    answer = _run(clock, ev())
    assert type(answer).__name__ == "PowerDeliveryRes"
    assert code_name(answer.ResponseCode) == "FAILED_SequenceError"
    drive(clock, lambda: evse.host.finished)
    assert evse.trace.events("sequence_error")
    evse.ended_safely()


def test_a_truncated_frame_then_silence_ends_by_the_setup_timeout(clock: RealClock) -> None:
    evse = _evse(clock)
    whole = frame(0x8001, bytes(40))

    async def ev() -> bytes:
        peer = await RawPeer.connect("::1", evse.host.port)
        peer.send(whole[:20])  # the rest never comes; the EV stays connected
        return await peer.end(5.0)

    assert _run(clock, ev()) == b""
    drive(clock, lambda: evse.host.finished)
    (timeout,) = evse.trace.events("timeout")
    assert timeout["what"] == "communication setup"
    evse.ended_safely()


def test_a_peer_that_closes_mid_frame(clock: RealClock) -> None:
    evse = _evse(clock)

    async def ev() -> None:
        peer, nxt = await _after_session_setup(evse, clock)
        peer.send(nxt.frame[: len(nxt.frame) // 2])
        await peer.writer.drain()
        peer.close()

    _run(clock, ev())
    drive(clock, lambda: evse.host.finished)
    assert evse.trace.events("truncated_frame")
    (lost,) = evse.trace.events("connection_lost")
    assert lost["state"] == "authorization_setup"
    evse.ended_safely()


def test_an_ev_that_stops_mid_charge_loop_ends_by_the_sequence_timeout(clock: RealClock) -> None:
    evse = _evse(clock)
    loops: list[Send] = []

    def third_loop(send: Send) -> bool:
        if send.name == "DC_ChargeLoopReq":
            loops.append(send)
        return len(loops) == 3

    async def ev() -> bytes:
        peer = await RawPeer.connect("::1", evse.host.port)
        assert await drive_engine(peer, _ev_engine(), clock.now, third_loop) is not None
        return await peer.end(5.0)  # silent from here: the SECC must end it

    assert _run(clock, ev()) == b""
    drive(clock, lambda: evse.host.finished)
    assert evse.trace.messages(RecordKind.RECEIVED).count("DC_ChargeLoopReq") == 2
    timeouts = evse.trace.events("timeout")
    assert [t["what"] for t in timeouts] == ["sequence"] and timeouts[0]["state"] == "charge_loop"
    assert evse.charger.power_deliveries[0].progress.value == "Start"  # energy had flowed
    evse.ended_safely()


# --- the EVCC host against a raw SECC ---------------------------------------------------------------


@dataclass
class Ev:
    host: EvccHost
    trace: Trace
    battery: BatteryEv

    def ended_safely(self) -> None:
        (result,) = self.host.results
        assert result.closure is Closure.ABORTED and not result.normal
        assert self.battery.ended and self.battery.ended[0][0] is Closure.ABORTED
        assert not self.battery.contactors_closed and self.battery.power == 0.0


def _ev_against(
    clock: RealClock, secc: Callable[[RawPeer], Awaitable[None]], loops: int = 100
) -> tuple[Ev, asyncio.Server]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = RawPeer(reader, writer)
        try:
            await secc(peer)
        finally:
            peer.close()

    server = clock.loop.run_until_complete(asyncio.start_server(handler, "::1", 0))
    port = server.sockets[0].getsockname()[1]
    ev, trace = battery(loops), Trace()
    host = EvccHost(
        clock.loop,
        clock,
        evcc_factory(ev, Service.DC_BPT, ControlMode.DYNAMIC),
        target=SeccEndpoint.parse("::1", port),
        recorder=trace,
        to_json=to_json,
    )
    host.start()
    return Ev(host, trace, ev), server


def _secc_engine() -> Secc:
    return Secc(BenchCharger())


def _answer_first_request_with(raw: bytes) -> Callable[[RawPeer], Awaitable[None]]:
    async def secc(peer: RawPeer) -> None:
        assert await peer.frame() is not None  # supportedAppProtocolReq
        peer.send(raw)
        await peer.end(5.0)

    return secc


@pytest.mark.parametrize(
    ("raw", "event", "kind"),
    [
        (bytes.fromhex("02fe8001000000050000000000"), "v2gtp_error", "WrongProtocolVersion"),
        (bytes.fromhex("01fe8001ffffffff"), "v2gtp_error", "PayloadTooLong"),
        (frame(0x8005, b"\x80"), "v2gtp_error", "UnknownPayloadType"),  # ACDP: not -20 main
        (frame(0x8001, bytes([0x80]) + bytes(range(1, 60))), "malformed_message", None),
    ],
    ids=["version", "4GB", "payload-type", "garbage-exi"],
)
def test_the_ev_host_ends_safely_on_a_bad_answer(
    clock: RealClock, raw: bytes, event: str, kind: str | None
) -> None:
    ev, server = _ev_against(clock, _answer_first_request_with(raw))
    try:
        drive(clock, lambda: ev.host.finished, timeout=5)
    finally:
        server.close()
    (found,) = ev.trace.events(event)
    if kind is not None:
        assert found["kind"] == kind
    ev.ended_safely()


def test_the_ev_host_ends_safely_when_the_secc_stops_answering_mid_charge_loop(
    clock: RealClock,
) -> None:
    answered: list[str] = []

    async def secc(peer: RawPeer) -> None:
        def third_loop_res(send: Send) -> bool:
            answered.append(send.name)
            return answered.count("DC_ChargeLoopRes") == 3

        assert await drive_engine(peer, _secc_engine(), clock.now, third_loop_res) is not None
        await peer.end(5.0)  # silent: the EV's ChargeLoop timeout must end it

    ev, server = _ev_against(clock, secc)
    try:
        drive(clock, lambda: ev.host.finished, timeout=10)
    finally:
        server.close()
    (timeout,) = ev.trace.events("timeout")
    assert timeout["timer"] == "evcc.response" and timeout["state"] == "charge_loop"
    assert ev.trace.messages(RecordKind.RECEIVED).count("DC_ChargeLoopRes") == 2
    assert len(ev.battery.dc_statuses) == 2
    ev.ended_safely()


def test_the_ev_host_ends_safely_when_the_secc_closes_mid_frame(clock: RealClock) -> None:
    async def secc(peer: RawPeer) -> None:
        res = await drive_engine(peer, _secc_engine(), clock.now, _is("DC_ChargeLoopRes"))
        assert res is not None
        peer.send(res.frame[:10])
        await peer.writer.drain()

    ev, server = _ev_against(clock, secc)
    try:
        drive(clock, lambda: ev.host.finished, timeout=10)
    finally:
        server.close()
    assert ev.trace.events("truncated_frame")
    (lost,) = ev.trace.events("connection_lost")
    assert lost["state"] == "charge_loop"
    ev.ended_safely()


def test_the_ev_host_ends_safely_on_a_foreign_session_id(clock: RealClock) -> None:
    async def secc(peer: RawPeer) -> None:
        res = await drive_engine(peer, _secc_engine(), clock.now, _is("AuthorizationSetupRes"))
        assert res is not None
        message = res.message
        wrong = dataclasses.replace(message, Header=header(b"\xee" * 8, message.Header.TimeStamp))
        peer.send(encode_frame(wrong)[1])
        await peer.end(5.0)

    ev, server = _ev_against(clock, secc)
    try:
        drive(clock, lambda: ev.host.finished, timeout=10)
    finally:
        server.close()
    (unexpected,) = ev.trace.events("unexpected_message")
    assert unexpected["session_id"] == "ee" * 8
    ev.ended_safely()


# --- TLS and the host's own callbacks ---------------------------------------------------------------


def _tls_evse(clock: RealClock, pki: PkiFolder, handshake_timeout: float = 5.0) -> Evse:
    charger, trace = BenchCharger(), Trace()
    host = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger, timing=QUICK),
        host="::1",
        sdp=False,
        tls=secc_tls_config(pki),
        recorder=trace,
        handshake_timeout=handshake_timeout,
    )
    host.start()
    return Evse(host, trace, charger)


def test_a_peer_that_never_starts_tls_is_closed_after_the_handshake_timeout(
    clock: RealClock, pki: PkiFolder
) -> None:
    evse = _tls_evse(clock, pki, handshake_timeout=0.3)

    async def ev() -> bytes:
        peer = await RawPeer.connect("::1", evse.host.port)
        return await peer.end(5.0)

    started = clock.now()
    assert _run(clock, ev()) == b""
    assert clock.now() - started < 2.0
    drive(clock, lambda: evse.host.finished)
    (refused,) = evse.trace.events(HostEvent.TLS_REFUSED)
    assert "tls handshake not done within 0.3 s" in refused["reason"]
    (result,) = evse.host.results
    assert result.closure is None and evse.charger.ended == [] and evse.charger.safe


def test_plain_v2gtp_to_a_tls_secc_is_refused_as_not_tls(clock: RealClock, pki: PkiFolder) -> None:
    evse = _tls_evse(clock, pki)

    async def ev() -> bytes:
        peer = await RawPeer.connect("::1", evse.host.port)
        peer.send(frame(0x8001, bytes(30)))
        return await peer.end(5.0)

    _run(clock, ev())
    drive(clock, lambda: evse.host.finished)
    (refused,) = evse.trace.events(HostEvent.TLS_REFUSED)
    assert refused["failure"] in ("protocol_error", "protocol_version")
    assert evse.host.results[0].closure is None


def test_a_failing_recorder_or_callback_does_not_stop_the_session(clock: RealClock) -> None:
    charger = BenchCharger()
    calls = 0

    def broken_recorder(record: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError("disk full")

    def broken_callback(result: object) -> None:
        raise RuntimeError("bug in the caller")

    evse = SeccHost(
        clock.loop,
        clock,
        secc_factory(charger),
        host="::1",
        sdp=False,
        recorder=broken_recorder,
        on_session_end=broken_callback,
    )
    evse.start()
    evcc = EvccHost(
        clock.loop, clock, evcc_factory(battery(2)), target=SeccEndpoint.parse("::1", evse.port)
    )
    evcc.start()
    drive(clock, lambda: evcc.finished and evse.finished)
    assert [r.normal for r in evcc.results + evse.results] == [True, True]
    assert isinstance(evse.recorder_error, OSError) and calls == 5  # recording stopped there
    assert charger.ended[0][0] is Closure.TERMINATED


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("[fe80::2%veth-evcc]:5000", ("fe80::2", 5000)),
        ("tcp:[::1]:49152", ("::1", 49152)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("memory:ev", None),
        ("[::1]", None),
    ],
)
def test_endpoint_text_is_parsed_back(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_endpoint_text(text) == parsed
