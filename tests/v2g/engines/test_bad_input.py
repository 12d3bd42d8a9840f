"""Bad input at the engine level: each defect gets the protocol's FAILED response (or a Close with
a reason where no response can be tied to it), an Event, the power side told to go safe, and never
an exception out of the engine."""

from __future__ import annotations

from collections import deque

import pytest
from engine_bench import EV, EVSE, Bench, answered, at, events, sends, session, to_secc

from rig.v2g.controllers import Closure, EvIntent
from rig.v2g.engine import Close, Event, Output, StartTimer
from rig.v2g.evcc import AppProtocolOffer, Evcc, EvccConfig
from rig.v2g.exchange import EngineUsageError
from rig.v2g.exi import app, common, dc
from rig.v2g.messages import (
    AC_NAMESPACE,
    DC_NAMESPACE,
    DIN_NAMESPACE,
    ISO2_NAMESPACES,
    encode_frame,
    header,
    to_rational,
)
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import T_CLOSE, Secc, SeccState
from rig.v2g.v2gtp import frame
from rig.v2g.vocabulary import Service


def closes_after_the_wait(bench: Bench, outs: list[Output]) -> None:
    """A FAILED answer: the SECC waits for the EV to close, then closes itself [V2G20-1643]."""
    (timer,) = [o for o in outs if isinstance(o, StartTimer) and o.name == T_CLOSE]
    assert timer.deadline == pytest.approx(bench.now + 5.0)
    assert bench.secc.state is SeccState.CLOSING
    later = bench.secc.timer_expired(T_CLOSE, timer.deadline)
    assert any(isinstance(o, Close) for o in later) and bench.secc.finished


def went_safe(bench: Bench) -> None:
    evse = bench.secc.controller
    assert evse.ended and evse.ended[-1][0] is Closure.ABORTED  # type: ignore[attr-defined]
    assert evse.safe  # type: ignore[attr-defined]


# --- V2GTP header defects: the framing is lost, the SECC closes with a reason ---------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (bytes.fromhex("02fe8002000000050000000000"), "WrongProtocolVersion"),
        (bytes.fromhex("01ff8002000000050000000000"), "WrongInverseVersion"),
        (bytes.fromhex("01fe1234000000050000000000"), "UnknownPayloadType"),
        (frame(0x9000, b"\x10\x00"), "UnknownPayloadType"),  # SDP does not travel on TCP
        (bytes.fromhex("01fe8004ffffffff"), "PayloadTooLong"),  # 4 GB: refused from the header
    ],
)
def test_secc_closes_on_a_v2gtp_header_defect(raw: bytes, kind: str) -> None:
    bench = at(SeccState.CHARGE_LOOP)
    outs = to_secc(bench, raw)
    (event,) = events(outs, "v2gtp_error")
    assert event.data["kind"] == kind
    assert not sends(outs) and any(isinstance(o, Close) for o in outs)
    assert bench.secc.finished and bench.secc._wire.reader.buffered == 0
    went_safe(bench)
    assert to_secc(bench, raw) == []  # nothing more once finished


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (bytes.fromhex("02fe8002000000050000000000"), "WrongProtocolVersion"),
        (bytes.fromhex("01fe8001ffffffff"), "PayloadTooLong"),
        (frame(0x8005, b"\x80"), "UnknownPayloadType"),
    ],
)
def test_evcc_closes_on_a_v2gtp_header_defect(raw: bytes, kind: str) -> None:
    ev = BatteryEv()
    evcc = Evcc(ev)
    evcc.start(0.0)
    outs = evcc.receive_data(raw, 0.1)
    (event,) = events(list(outs), "v2gtp_error")
    assert event.data["kind"] == kind
    assert any(isinstance(o, Close) for o in outs) and evcc.finished
    assert ev.ended[0][0] is Closure.ABORTED


def test_a_truncated_frame_then_end_of_stream() -> None:
    bench = at(SeccState.CHARGE_LOOP)
    req = sends(bench.outputs[EV])[-1].frame  # the EV's last request, cut short
    assert to_secc(bench, req[:11]) == []
    outs = bench.secc.connection_lost("peer closed", bench.now)
    assert [e.name for e in outs if isinstance(e, Event)][:2] == [
        "truncated_frame",
        "connection_lost",
    ]
    assert "13 bytes" not in events(outs, "truncated_frame")[0].data["error"]  # it says 11 of N
    assert bench.secc.finished
    went_safe(bench)


def test_the_evcc_sees_its_peer_close_mid_frame() -> None:
    ev = BatteryEv()
    evcc = Evcc(ev)
    evcc.start(0.0)
    part = frame(0x8001, bytes(20))[:10]
    assert not [o for o in evcc.receive_data(part, 0.1) if isinstance(o, Event)]
    outs = evcc.connection_lost("reset by peer", 0.2)
    names = [o.name for o in outs if isinstance(o, Event)]
    assert names[:2] == ["truncated_frame", "connection_lost"] and evcc.finished
    assert ev.ended[0][0] is Closure.ABORTED and not ev.contactors_closed


# --- undecodable and unexpected messages ------------------------------------------------------------


def test_garbage_exi_gets_the_expected_response_with_failed() -> None:
    bench = at(SeccState.CHARGE_LOOP)
    outs = to_secc(bench, frame(0x8004, b"\x80\xff\xff\xff\x00\x13\x37"))
    assert events(outs, "malformed_message")[0].data["payload_type"] == 0x8004
    assert answered(outs) == ("DC_ChargeLoopRes", "FAILED")
    closes_after_the_wait(bench, outs)
    went_safe(bench)


def test_garbage_before_the_handshake_gets_failed_no_negotiation() -> None:
    secc = Secc(BenchCharger())
    secc.start(0.0)
    outs = secc.receive_data(frame(0x8001, b"\x00garbage"), 0.5)
    assert events(list(outs), "malformed_message")
    (send,) = sends(list(outs))
    assert (send.name, send.message.ResponseCode.name) == (
        "supportedAppProtocolRes",
        "Failed_NoNegotiation",
    )


def test_the_evcc_ends_on_an_undecodable_response() -> None:
    ev = BatteryEv()
    evcc = Evcc(ev)
    evcc.start(0.0)
    outs = list(evcc.receive_data(frame(0x8001, b"\x80\x80\x80"), 0.1))
    assert events(outs, "malformed_message") and any(isinstance(o, Close) for o in outs)
    assert ev.ended[0][0] is Closure.ABORTED


def test_an_unknown_session_id_gets_failed_unknown_session() -> None:
    bench = session(ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 50)))
    bench.run_until(lambda: bench.evcc.loops >= 1)
    mine = [s for s in sends(bench.outputs[EV]) if s.name == "DC_ChargeLoopReq"][-1].message
    forged = dc.DC_ChargeLoopReq(
        Header=header(bytes.fromhex("0badc0de0badc0de"), 1),
        MeterInfoRequested=False,
        EVPresentVoltage=mine.EVPresentVoltage,
        CLReqControlMode=mine.CLReqControlMode,
    )
    outs = to_secc(bench, forged)
    assert answered(outs) == ("DC_ChargeLoopRes", "FAILED_UnknownSession")
    assert events(outs, "unknown_session")[0].data["received"] == "0badc0de0badc0de"
    assert events(outs, "response_code")[0].data["code"] == "FAILED_UnknownSession"
    closes_after_the_wait(bench, outs)
    went_safe(bench)


def test_an_out_of_sequence_request_gets_failed_sequence_error() -> None:
    bench = at(SeccState.SERVICE_DETAIL)
    pd = common.PowerDeliveryReq(
        Header=header(bench.secc.session_id, 1),
        EVProcessing=common.processingType.Finished,
        ChargeProgress=common.chargeProgressType.Start,
    )
    outs = to_secc(bench, pd)
    assert answered(outs) == ("PowerDeliveryRes", "FAILED_SequenceError")
    assert events(outs, "sequence_error")[0].data == {
        "received": "PowerDeliveryReq",
        "state": "service_detail",
    }
    closes_after_the_wait(bench, outs)
    went_safe(bench)


def test_a_response_sent_to_the_secc_is_a_sequence_error() -> None:
    bench = at(SeccState.AUTHORIZATION)
    wrong = common.SessionStopRes(
        Header=header(bench.secc.session_id, 1), ResponseCode=common.responseCodeType.OK
    )
    outs = to_secc(bench, wrong)
    # answered as the request the state expects
    assert answered(outs) == ("AuthorizationRes", "FAILED_SequenceError")


def test_a_request_under_the_wrong_payload_type_is_a_sequence_error() -> None:
    bench = at(SeccState.SCHEDULED)
    cable_check = dc.DC_CableCheckReq(Header=header(bench.secc.session_id, 1))
    from rig.v2g.exi import encode

    outs = to_secc(bench, frame(0x8002, encode(cable_check)))  # a DC message as "common"
    assert sends(outs) and sends(outs)[0].message.ResponseCode.name.startswith("FAILED")
    assert bench.secc.state is SeccState.CLOSING


def test_the_evcc_ends_on_an_unexpected_message() -> None:
    ev = BatteryEv()
    evcc = Evcc(ev)
    evcc.start(0.0)
    not_the_answer = common.SessionSetupRes(
        Header=header(bytes(8), 1),
        ResponseCode=common.responseCodeType.OK_NewSessionEstablished,
        EVSEID="X",
    )
    outs = list(evcc.receive_data(encode_frame(not_the_answer)[1], 0.1))
    (event,) = events(outs, "unexpected_message")
    assert event.data["expected"] == "supportedAppProtocolRes"
    assert any(isinstance(o, Close) for o in outs) and ev.ended[0][0] is Closure.ABORTED


def test_the_evcc_ends_on_a_failed_response_code() -> None:
    bench = session(ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 50)))
    bench.run_until(lambda: bench.secc.state is SeccState.CHARGE_LOOP)
    bench.silenced.add(EVSE)  # the real answer is lost; a FAILED one arrives instead
    bench.run_until(lambda: bench.evcc._awaiting and bench.evcc.state.value == "charge_loop")
    failed = dc.DC_ChargeLoopRes(
        Header=header(bench.evcc.session_id, 1),
        ResponseCode=common.responseCodeType.FAILED,
        EVSEPresentCurrent=to_rational(0),
        EVSEPresentVoltage=to_rational(0),
        EVSEPowerLimitAchieved=False,
        EVSECurrentLimitAchieved=False,
        EVSEVoltageLimitAchieved=False,
        CLResControlMode=dc.Scheduled_DC_CLResControlMode(),
    )
    bench.inject(EV, encode_frame(failed)[1])
    assert [e.data["code"] for e in bench.events("response_code", EV)] == ["FAILED"]
    assert bench.evcc.finished and bench.closed[EV]
    ev = bench.evcc.controller
    assert ev.ended[-1][0] is Closure.ABORTED and not ev.contactors_closed  # type: ignore[attr-defined]


# --- a peer that stops answering mid-ChargeLoop -----------------------------------------------------


def test_the_evcc_times_out_when_the_secc_stops_answering() -> None:
    bench = session(ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 50)))
    bench.run_until(lambda: bench.evcc.loops >= 3)
    bench.silenced.add(EVSE)
    bench.run()
    (timeout,) = bench.events("timeout", EV)
    assert timeout.data == {"timer": "evcc.response", "state": "charge_loop"}
    sent_at = [s.time for s in bench.sent if s.side == EV][-1]
    closed_at = next(t for t, side, e in bench.all_events if side == EV and e.name == "session_end")
    assert closed_at - sent_at == pytest.approx(0.5)  # the ChargeLoop timeout (Josev)
    ev = bench.evcc.controller
    assert ev.ended[0][0] is Closure.ABORTED and not ev.contactors_closed  # type: ignore[attr-defined]
    # the SECC then sees the TCP connection go, and its power side goes safe too
    assert bench.events("connection_lost", EVSE)
    went_safe(bench)


def test_the_secc_times_out_when_the_ev_stops_sending() -> None:
    bench = session(ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 50)))
    bench.run_until(lambda: bench.evcc.loops >= 3)
    bench.run_until(lambda: bench.secc._outs == [] and bench.sent[-1].side == EVSE)
    last_answer = bench.sent[-1].time
    bench.hung.add(EV)  # the EV hangs with the TCP connection open
    bench.run()
    (timeout,) = bench.events("timeout", EVSE)
    assert timeout.data["timer"] == "secc.sequence" and timeout.data["state"] == "charge_loop"
    ended_at = next(
        t for t, side, e in bench.all_events if side == EVSE and e.name == "session_end"
    )
    assert ended_at == pytest.approx(last_answer + 60.0)  # V2G_SECC_Sequence_Timeout (Josev)
    assert bench.closed[EVSE] == "sequence timeout"
    went_safe(bench)


# --- supportedAppProtocol: only -20 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "offers",
    [
        (AppProtocolOffer(DIN_NAMESPACE, 2, 0),),
        (AppProtocolOffer(ISO2_NAMESPACES[0], 2, 0),),
        (AppProtocolOffer(DIN_NAMESPACE, 2, 0), AppProtocolOffer(ISO2_NAMESPACES[0], 2, 0)),
        (AppProtocolOffer(DC_NAMESPACE, 2, 0),),  # -20 with a major version we do not speak
    ],
)
def test_an_ev_offering_only_din_or_iso2_gets_failed_no_negotiation(
    offers: tuple[AppProtocolOffer, ...],
) -> None:
    evse = BenchCharger()
    bench = session(ev_config=EvccConfig(app_protocols=offers), evse=evse).run()
    assert bench.codes() == [("supportedAppProtocolRes", "Failed_NoNegotiation")]
    assert bench.names(EV) == ["supportedAppProtocolReq"]
    assert bench.sent[-1].message.SchemaID is None
    (no_negotiation,) = bench.events("no_negotiation", EVSE)
    assert len(no_negotiation.data["offered"]) == len(offers)
    assert [e.data["code"] for e in bench.events("response_code", EV)] == ["Failed_NoNegotiation"]
    assert bench.evcc.finished and bench.secc.finished
    assert evse.ended[0][0] is Closure.ABORTED


def test_the_secc_picks_the_highest_priority_it_supports() -> None:
    secc = Secc(BenchCharger())
    secc.start(0.0)
    req = app.supportedAppProtocolReq(
        AppProtocol=[
            app.AppProtocolType(
                ProtocolNamespace=DIN_NAMESPACE,
                VersionNumberMajor=2,
                VersionNumberMinor=0,
                SchemaID=1,
                Priority=1,
            ),
            app.AppProtocolType(
                ProtocolNamespace=AC_NAMESPACE,
                VersionNumberMajor=1,
                VersionNumberMinor=1,
                SchemaID=7,
                Priority=3,
            ),
            app.AppProtocolType(
                ProtocolNamespace=DC_NAMESPACE,
                VersionNumberMajor=1,
                VersionNumberMinor=0,
                SchemaID=4,
                Priority=2,
            ),
        ]
    )
    (send,) = sends(list(secc.receive_data(encode_frame(req)[1], 0.1)))
    assert (send.message.ResponseCode.name, send.message.SchemaID) == (
        "OK_SuccessfulNegotiation",
        4,
    )
    assert secc.namespace == DC_NAMESPACE
    secc2 = Secc(BenchCharger())
    secc2.start(0.0)
    only_ac = app.supportedAppProtocolReq(AppProtocol=[req.AppProtocol[1]])
    (send,) = sends(list(secc2.receive_data(encode_frame(only_ac)[1], 0.1)))
    assert send.message.ResponseCode.name == "OK_SuccessfulNegotiationWithMinorDeviation"


# --- misuse by the caller is an exception (the peer's input never is) --------------------------------


def test_engine_usage_errors() -> None:
    secc = Secc(BenchCharger())
    with pytest.raises(EngineUsageError):
        secc.receive_data(b"", 0.0)
    secc.start(0.0)
    with pytest.raises(EngineUsageError):
        secc.start(0.0)
    evcc = Evcc(BatteryEv())
    with pytest.raises(EngineUsageError):
        evcc.timer_expired("evcc.response", 0.0)
    evcc.start(0.0)
    with pytest.raises(EngineUsageError):
        evcc.start(1.0)
    assert secc.timer_expired("no such timer", 1.0) == []  # a stale timer is ignored
    with pytest.raises(ValueError, match="runs sessions of"):
        Evcc(BatteryEv(), EvccConfig(services=(Service.WPT,)))


def test_random_bytes_never_raise() -> None:
    """A seeded stream of random frames and bytes into both engines: outputs or a Close, never an
    exception, and the engines end up finished."""
    import random

    rng = random.Random(11)
    for round_ in range(60):
        secc = Secc(BenchCharger(), rng=random.Random(round_))
        secc.start(0.0)
        evcc = Evcc(BatteryEv())
        evcc.start(0.0)
        for engine in (secc, evcc):
            for _ in range(8):
                kind = rng.random()
                if kind < 0.5:
                    data = frame(
                        rng.choice([0x8001, 0x8002, 0x8003, 0x8004]),
                        rng.randbytes(rng.randint(0, 40)),
                    )
                    if rng.random() < 0.5:
                        data = data[: rng.randint(1, len(data))]
                else:
                    data = rng.randbytes(rng.randint(1, 30))
                engine.receive_data(data, 1.0)
            engine.connection_lost("done", 2.0)
            assert engine.finished


class BrokenEv(BatteryEv):
    def dc_loop_request(self, control_mode: object, bidirectional: bool, now: float) -> object:  # type: ignore[override]
        raise RuntimeError("BMS not answering")


def test_an_ev_controller_error_ends_the_session_safely() -> None:
    ev = BrokenEv()
    bench = session(ev=ev).run()
    (error,) = bench.events("controller_error", EV)
    assert "BMS not answering" in error.data["error"] and error.data["state"] == "charge_loop"
    assert bench.evcc.closure is Closure.ABORTED and ev.ended[0][0] is Closure.ABORTED
    assert not ev.contactors_closed
    went_safe(bench)  # the charger sees the connection go and makes itself safe
