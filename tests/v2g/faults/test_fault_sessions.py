"""Each fault kind in a whole session: our EVCC (BatteryEv) behind a FaultInjector against our
SECC (BenchCharger), a good DUT, over a memory pair in virtual time; the SECC reacts as -20 says
and the trace marks every fault. With a seeded defect (Quirks) the SECC reacts wrongly, and the
trace shows it. Also: the injector is transparent without rules, works on the SECC's side (the EV
is then the DUT), and over TCP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fault_bench import EV, EVSE, FaultRun, charging, run, tcp_run

from rig.v2g.connection import Record, RecordKind
from rig.v2g.controllers import Closure
from rig.v2g.faults import FaultKind, FaultRule
from rig.v2g.messages import decode_payload, from_rational
from rig.v2g.quirks import Quirks
from rig.v2g.timing import EvccTiming
from rig.v2g.v2gtp import HEADER_SIZE, PayloadType
from rig.v2g.vocabulary import ControlMode, Service

LOOP = "DC_ChargeLoopReq"
K = FaultKind


def one_fault(r: FaultRun, kind: FaultKind) -> dict[str, object]:
    """The one fault_injected Event of a run, checked against the injector's own record."""
    (event,) = r.faults()
    assert event["kind"] == kind.value and event["rule"] == 0
    (applied,) = r.injector.applied
    assert applied.event().data == event
    return dict(event)


def ended_safely(r: FaultRun, closure: Closure = Closure.ABORTED) -> None:
    """Both sessions over, the charger told once and safe, both links ended."""
    assert len(r.evse.ended) == 1 and r.evse.ended[0][0] is closure
    assert r.evse.safe and not r.ev.contactors_closed
    assert r.connections[EV].ended and r.connections[EVSE].ended


def held_records(r: FaultRun) -> list[Record]:
    """The RECEIVED records of answers kept from the engine: each follows its marker Event."""
    trace = r.traces[EV if r.injector.inner is r.evcc else EVSE]
    out = []
    for i, x in enumerate(trace):
        if x.kind is RecordKind.EVENT and x.name == "fault_response_held":
            assert trace[i + 1].kind is RecordKind.RECEIVED
            out.append(trace[i + 1])
    return out


def test_without_rules_the_injector_changes_nothing() -> None:
    plain = run([], ev=charging(4))
    assert plain.faults() == [] and plain.injector.applied == []
    assert plain.events(EV, "fault_not_applied") == []
    # the same session as the engines' own bench runs: every message and code
    assert plain.names(EV).count(LOOP) == 4 and plain.names(EV)[-1] == "SessionStopReq"
    assert all(code.startswith("OK") for _, code in plain.codes(EVSE))
    ended_safely(plain, Closure.TERMINATED)
    # frames reached the SECC as the EVCC made them
    assert [r.raw for r in plain.sent(EV)] == [r.raw for r in plain.received(EVSE)]


# --- OUT_OF_SEQUENCE ---------------------------------------------------------------------------


def test_out_of_sequence_request_gets_failed_sequence_error_and_the_session_ends() -> None:
    rule = FaultRule(K.OUT_OF_SEQUENCE, LOOP, nth=2, send="SessionSetupReq")
    r = run([rule])
    fault = one_fault(r, K.OUT_OF_SEQUENCE)
    # the injected request went out before the matched ChargeLoopReq, with the session's ID
    injected = r.sent(EV, "SessionSetupReq")[1]
    assert fault["t_sent"] == injected.time == fault["t_matched"]
    assert r.names(EV)[-2:] == ["SessionSetupReq", LOOP]
    message = decode_payload(PayloadType.COMMON, injected.raw[HEADER_SIZE:])  # type: ignore[index]
    assert message.Header.SessionID == r.secc.session_id != bytes(8)  # type: ignore[union-attr]
    assert fault["session_id"] == r.secc.session_id.hex().upper()
    # the good SECC refuses it and ends the session (FAILED ends it, [V2G20-1643] close later)
    assert r.codes(EVSE)[-1] == ("SessionSetupRes", "FAILED_SequenceError")
    assert r.events(EVSE, "sequence_error") == [
        {"received": "SessionSetupReq", "state": "charge_loop"}
    ]
    assert "FAILED_SequenceError" in r.evse.ended[0][1]
    # its answer was kept from our EVCC, and the trace shows it, marked
    (held,) = r.injector.held_responses
    assert (held.answers, held.name, held.code) == (
        "SessionSetupReq",
        "SessionSetupRes",
        "FAILED_SequenceError",
    )
    marker = r.events(EV, "fault_response_held")
    assert marker == [
        {
            "rule": 0,
            "kind": "out_of_sequence",
            "answers": "SessionSetupReq",
            "message": "SessionSetupRes",
            "code": "FAILED_SequenceError",
        }
    ]
    (answer,) = held_records(r)
    assert answer.name == "SessionSetupRes" and answer.raw == held.frame
    assert r.events(EV, "unexpected_message") == []  # the EVCC never saw it
    # our EVCC's ChargeLoopReq stays unanswered (the SECC is closing): its own timeout ends it
    assert r.events(EV, "timeout") == [{"timer": "evcc.response", "state": "charge_loop"}]
    ended_safely(r)


def test_out_of_sequence_with_replace_sends_only_the_injected_request() -> None:
    rule = FaultRule(K.OUT_OF_SEQUENCE, LOOP, nth=2, send="SessionSetupReq", replace=True)
    r = run([rule])
    assert one_fault(r, K.OUT_OF_SEQUENCE)["replace"] is True
    assert r.names(EV).count(LOOP) == 1  # the matched second one never went out
    assert r.codes(EVSE)[-1] == ("SessionSetupRes", "FAILED_SequenceError")
    assert r.received(EVSE)[-1].name == "SessionSetupReq"
    ended_safely(r)


def test_a_defective_secc_accepts_an_out_of_sequence_request() -> None:
    rule = FaultRule(K.OUT_OF_SEQUENCE, LOOP, nth=2, send="DC_CableCheckReq")
    good = run([rule])
    assert good.codes(EVSE)[-1] == ("DC_CableCheckRes", "FAILED_SequenceError")
    bad = run([rule], evse_quirks=Quirks(accept_out_of_sequence=True))
    (held,) = bad.injector.held_responses
    assert (held.answers, held.name, held.code) == ("DC_CableCheckReq", "DC_CableCheckRes", "OK")
    assert {"quirk": "accept_out_of_sequence", "request": "DC_CableCheckReq"} in bad.events(
        EVSE, "quirk"
    )
    assert bad.events(EVSE, "sequence_error") == []
    # the checks see an out-of-sequence probe answered OK: the data they need is in the trace
    fault = one_fault(bad, K.OUT_OF_SEQUENCE)
    (answer,) = held_records(bad)
    assert answer.data["DC_CableCheckRes"]["ResponseCode"] == "OK"
    assert answer.time > fault["t_sent"]  # type: ignore[operator]


# --- CORRUPT and TRUNCATE ----------------------------------------------------------------------


def test_corrupted_request_gets_a_failed_response() -> None:
    r = run([FaultRule(K.CORRUPT, LOOP, nth=2, bits=3)], fault_seed=1)
    fault = one_fault(r, K.CORRUPT)
    positions = fault["bits"]
    assert isinstance(positions, list) and len(positions) == 3
    assert all(p >= HEADER_SIZE * 8 for p in positions)  # the V2GTP header is left alone
    sent = r.sent(EV, LOOP)[1]
    assert sent.raw is not None
    received = r.received(EVSE)  # the SECC could not decode it: no RECEIVED record for it
    assert [x.name for x in received].count(LOOP) == 1
    (malformed,) = r.events(EVSE, "malformed_message")
    assert malformed["payload_hex"] == sent.raw[HEADER_SIZE : HEADER_SIZE + 64].hex()
    assert r.codes(EVSE)[-1] == ("DC_ChargeLoopRes", "FAILED")
    assert r.events(EV, "response_code") == [{"message": "DC_ChargeLoopRes", "code": "FAILED"}]
    ended_safely(r)


def flipped_bits(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    return [
        8 * i + bit
        for i, (x, y) in enumerate(zip(a, b, strict=True))
        for bit in range(8)
        if (x ^ y) & (0x80 >> bit)
    ]


def test_any_corruption_ends_in_a_failed_response_or_the_timeout_path_or_decodes() -> None:
    clean = run([], ev=charging(4)).sent(EV, LOOP)[1].raw
    assert clean is not None
    outcomes = []
    for seed in range(12):
        r = run([FaultRule(K.CORRUPT, LOOP, nth=2, bits=2)], fault_seed=seed)
        fault = one_fault(r, K.CORRUPT)
        damaged = r.sent(EV, LOOP)[1].raw
        assert damaged is not None
        # exactly the bits the Event names differ from what the EVCC meant to send
        assert flipped_bits(clean, damaged) == fault["bits"]
        answers = [code for name, code in r.codes(EVSE) if name == "DC_ChargeLoopRes"]
        if len(answers) > 1 and answers[1].startswith(
            "FAILED"
        ):  # undecodable, or a flip in the SessionID
            outcomes.append("failed")
            ended_safely(r)
        elif r.events(EV, "timeout"):
            outcomes.append("timeout")
            ended_safely(r)
        else:  # the flips made another valid request (a value changed): the loop goes on
            assert r.events(EVSE, "malformed_message") == [] and answers[1] == "OK"
            outcomes.append("decoded")
            ended_safely(r, Closure.TERMINATED)
    assert outcomes.count("failed") >= 6, outcomes


def test_header_corruption_is_opt_in() -> None:
    rule = FaultRule(K.CORRUPT, LOOP, nth=2, bits=40, header=True)
    r = run([rule], fault_seed=3)
    positions = one_fault(r, K.CORRUPT)["bits"]
    assert isinstance(positions, list) and min(positions) < HEADER_SIZE * 8
    # a damaged header costs the stream its framing: the SECC closes
    assert r.events(EVSE, "v2gtp_error") or r.events(EVSE, "malformed_message")
    ended_safely(r)


def test_truncated_request_leaves_the_secc_waiting_until_the_link_ends() -> None:
    r = run([FaultRule(K.TRUNCATE, LOOP, nth=2, keep=12)])
    fault = one_fault(r, K.TRUNCATE)
    assert fault["keep"] == 12 and fault["length"] == len(r.sent(EV, LOOP)[0].raw or b"")
    assert len(r.sent(EV, LOOP)[1].raw or b"") == 12
    # the SECC answers nothing (it waits for the rest); the EV's own timeout closes the link
    assert r.codes(EVSE).count(("DC_ChargeLoopRes", "OK")) == 1
    assert r.events(EV, "timeout") == [{"timer": "evcc.response", "state": "charge_loop"}]
    (truncated,) = r.events(EVSE, "truncated_frame")
    assert "12 of" in str(truncated["error"])
    ended_safely(r)


# --- DROP, DELAY, REORDER, DUPLICATE -----------------------------------------------------------


def test_dropped_request_ends_the_session_by_the_evs_own_timeout() -> None:
    r = run([FaultRule(K.DROP, LOOP, nth=3)])
    fault = one_fault(r, K.DROP)
    assert fault["t_sent"] is None and fault["nth"] == 3
    assert r.names(EV).count(LOOP) == 2 and len(r.received(EVSE, LOOP)) == 2
    (timeout_at,) = r.event_times(EV, "timeout")
    assert timeout_at == pytest.approx(float(fault["t_matched"]) + 0.5)  # type: ignore[arg-type]
    assert r.evcc.closure is Closure.ABORTED
    assert r.evse.ended[0][1].startswith("connection lost in state charge_loop")
    ended_safely(r)


def test_delayed_request_goes_out_late_and_the_session_goes_on() -> None:
    r = run([FaultRule(K.DELAY, LOOP, nth=2, delay=0.2)])
    fault = one_fault(r, K.DELAY)
    assert fault["t_sent"] == pytest.approx(float(fault["t_matched"]) + 0.2)  # type: ignore[arg-type]
    assert r.sent(EV, LOOP)[1].time == fault["t_sent"]
    assert r.received(EVSE, LOOP)[1].time == pytest.approx(float(fault["t_sent"]) + 0.001)  # type: ignore[arg-type]
    ended_safely(r, Closure.TERMINATED)


def test_a_delay_beyond_the_evs_timeout_loses_the_frame() -> None:
    r = run([FaultRule(K.DELAY, LOOP, nth=2, delay=0.8)])
    fault = one_fault(r, K.DELAY)
    assert fault["t_sent"] is None and fault["lost"] == "session ended first"
    assert r.events(EV, "timeout") == [{"timer": "evcc.response", "state": "charge_loop"}]
    assert len(r.received(EVSE, LOOP)) == 1
    # the injector's timer never reached the EVCC
    assert not any(x.name.startswith("fault.") for x in r.records(EV, RecordKind.EVENT))
    ended_safely(r)


def test_reordered_request_with_nothing_to_overtake_it_goes_out_after_hold() -> None:
    r = run([FaultRule(K.REORDER, LOOP, nth=2, hold=0.1)])
    fault = one_fault(r, K.REORDER)
    assert fault["released_after_hold"] is True and fault["overtaken_by"] is None
    assert fault["t_sent"] == pytest.approx(float(fault["t_matched"]) + 0.1)  # type: ignore[arg-type]
    ended_safely(r, Closure.TERMINATED)


def test_duplicated_request_is_answered_twice_and_the_evcc_hears_one_answer() -> None:
    r = run([FaultRule(K.DUPLICATE, LOOP, nth=2)], ev=charging(4))
    fault = one_fault(r, K.DUPLICATE)
    assert fault["copies"] == 2
    second, third = r.sent(EV, LOOP)[1:3]
    assert second.raw == third.raw and second.time == third.time
    assert len(r.evse.dc_requests) == 5  # the SECC acted on both copies
    assert len(r.received(EVSE, LOOP)) == 5 and len(r.received(EV, "DC_ChargeLoopRes")) == 5
    (held,) = r.injector.held_responses
    assert (held.answers, held.name, held.code) == (LOOP, "DC_ChargeLoopRes", "OK")
    assert r.evcc.loops == 4 and r.events(EV, "unexpected_message") == []
    ended_safely(r, Closure.TERMINATED)


# --- WRONG_VALUE -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [{"Exponent": 3, "Value": 20}, 20_000, 20_000.0])
def test_wrong_discharge_limit_reaches_the_evse_as_sent(value: object) -> None:
    field = "CLReqControlMode.EVMaximumDischargePower"
    r = run([FaultRule(K.WRONG_VALUE, LOOP, nth=2, field=field, value=value)])
    fault = one_fault(r, K.WRONG_VALUE)
    assert fault["field"] == field and fault["was"] == {"Exponent": 0, "Value": 11000}
    # the charger saw 20 kW where the EV's limit is 11 kW (the rig's sign: negative)
    limits = [q.limits.max_discharge_power for q in r.evse.dc_requests if q.limits]
    assert limits == [-11_000.0, -20_000.0, -11_000.0, -11_000.0]
    # a real EXI message carried it (decoded by the SECC, recorded in its trace)
    wire = r.received(EVSE, LOOP)[1].data[LOOP]["BPT_Dynamic_DC_CLReqControlMode"]
    assert from_rational_json(wire["EVMaximumDischargePower"]) == 20_000.0
    assert r.events(EVSE, "malformed_message") == []
    # our EVCC's own record of what it sent carries the wrong value too (the trace tells)
    sent = r.sent(EV, LOOP)[1].data[LOOP]["BPT_Dynamic_DC_CLReqControlMode"]
    assert from_rational_json(sent["EVMaximumDischargePower"]) == 20_000.0
    ended_safely(r, Closure.TERMINATED)


def from_rational_json(obj: dict[str, int]) -> float:
    from rig.v2g.exi import common

    return from_rational(common.RationalNumberType(Exponent=obj["Exponent"], Value=obj["Value"]))


def test_wrong_session_id_gets_failed_unknown_session() -> None:
    rule = FaultRule(K.WRONG_VALUE, LOOP, nth=2, field="Header.SessionID", value="0102030405060708")
    r = run([rule])
    assert one_fault(r, K.WRONG_VALUE)["value"] == "0102030405060708"
    assert r.codes(EVSE)[-1] == ("DC_ChargeLoopRes", "FAILED_UnknownSession")
    ended_safely(r)


# --- SILENCE and CLOSE -------------------------------------------------------------------------


def test_silence_is_ended_by_the_seccs_sequence_timeout() -> None:
    r = run([FaultRule(K.SILENCE, LOOP, nth=2)])
    fault = one_fault(r, K.SILENCE)
    assert fault["t_sent"] is None
    assert r.names(EV).count(LOOP) == 1  # nothing after the match
    # the EVCC's own end (its timeout) is withheld: the link stays open ...
    (suppressed,) = r.events(EV, "fault_suppressed")
    assert suppressed["close"] == "evcc.response expired in state charge_loop"
    assert r.records(EV, RecordKind.CLOSE) == []
    # ... until the SECC's sequence timeout (60 s after its last response) closes it
    assert r.events(EVSE, "timeout") == [
        {"timer": "secc.sequence", "state": "charge_loop", "what": "sequence"}
    ]
    last_response = r.sent(EVSE)[-1].time
    (timeout_at,) = r.event_times(EVSE, "timeout")
    assert timeout_at == pytest.approx(last_response + 60.0)
    assert r.evse.ended == [(Closure.ABORTED, "sequence timeout in state charge_loop")]
    ended_safely(r)


def test_close_ends_the_chargers_session() -> None:
    r = run([FaultRule(K.CLOSE, LOOP, nth=2)])
    fault = one_fault(r, K.CLOSE)
    assert fault["t_sent"] == fault["t_matched"]
    (close,) = r.records(EV, RecordKind.CLOSE)
    assert close.name == fault["reason"] and close.time == fault["t_matched"]
    assert r.names(EV).count(LOOP) == 1
    reason = r.evse.ended[0][1]
    assert reason.startswith("connection lost in state charge_loop: peer closed: fault injection")
    assert r.ev.ended[0][0] is Closure.ABORTED  # our EVCC heard of the close and went safe too
    ended_safely(r)


# --- the other side, and TCP -------------------------------------------------------------------


def test_on_the_seccs_side_a_dropped_response_trips_the_evs_timeout() -> None:
    r = run([FaultRule(K.DROP, "DC_ChargeLoopRes", nth=2)], side=EVSE)
    (fault,) = r.faults(EVSE)
    assert fault["kind"] == "drop" and fault["message"] == "DC_ChargeLoopRes"
    assert r.events(EV, "timeout") == [{"timer": "evcc.response", "state": "charge_loop"}]
    ended_safely(r)


def test_on_the_seccs_side_a_duplicated_response_is_refused_by_a_good_ev() -> None:
    r = run([FaultRule(K.DUPLICATE, "DC_ChargeLoopRes", nth=2)], side=EVSE)
    assert r.faults(EVSE)[0]["copies"] == 2
    (unexpected,) = r.events(EV, "unexpected_message")
    assert unexpected["received"] == "DC_ChargeLoopRes"
    assert r.ev.ended[0] == (Closure.ABORTED, "unexpected DC_ChargeLoopRes in state charge_loop")
    ended_safely(r)


def test_on_the_seccs_side_a_wrong_evse_limit_reaches_the_ev() -> None:
    field = "CLResControlMode.EVSEMaximumDischargePower"
    r = run(
        [FaultRule(K.WRONG_VALUE, "DC_ChargeLoopRes", nth=2, field=field, value=3_000)], side=EVSE
    )
    assert r.faults(EVSE)[0]["value"] == {"Exponent": 0, "Value": 3000}
    limits = [s.limits.max_discharge_power for s in r.ev.dc_statuses if s.limits]
    assert limits[1] == -3_000.0 and limits[0] != -3_000.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def test_over_tcp_on_loopback_in_real_time(loop: asyncio.AbstractEventLoop) -> None:
    fast = EvccTiming(charge_loop_interval=0.01, ongoing_interval=0.01)
    rules = [
        FaultRule(K.DUPLICATE, LOOP, nth=1),
        FaultRule(K.OUT_OF_SEQUENCE, LOOP, nth=3, send="SessionSetupReq"),
    ]
    r = tcp_run(loop, rules, ev=charging(5), ev_timing=fast)
    assert [f["kind"] for f in r.faults()] == ["duplicate", "out_of_sequence"]
    assert [(h.answers, h.code) for h in r.injector.held_responses] == [
        (LOOP, "OK"),
        ("SessionSetupReq", "FAILED_SequenceError"),
    ]
    assert r.events(EV, "unexpected_message") == []
    ended_safely(r)


def test_on_the_seccs_side_an_out_of_sequence_response_is_refused_by_a_good_ev() -> None:
    rule = FaultRule(K.OUT_OF_SEQUENCE, "DC_ChargeLoopRes", nth=2, send="PowerDeliveryRes")
    r = run([rule], side=EVSE)
    (fault,) = r.faults(EVSE)
    assert (
        fault["sent"] == "PowerDeliveryRes"
        and fault["session_id"] == r.secc.session_id.hex().upper()
    )
    (unexpected,) = r.events(EV, "unexpected_message")
    assert unexpected == {
        "received": "PowerDeliveryRes",
        "expected": "DC_ChargeLoopRes",
        "state": "charge_loop",
    }
    assert r.injector.held_responses == []  # a response asks for no answer
    ended_safely(r)


@pytest.mark.parametrize("mode", list(ControlMode))
def test_templates_follow_the_sessions_service_and_control_mode(mode: ControlMode) -> None:
    # an AC_ChargeLoopReq before the AC session's PowerDelivery(Start): out of sequence, and in
    # the variant the session negotiated (learned from the traffic)
    rule = FaultRule(K.OUT_OF_SEQUENCE, "PowerDeliveryReq", nth=1, send="AC_ChargeLoopReq")
    r = run([rule], service=Service.AC_BPT, mode=mode)
    assert (r.injector.view.service, r.injector.view.control_mode) == (Service.AC_BPT, mode)
    injected = r.sent(EV, "AC_ChargeLoopReq")[0].data["AC_ChargeLoopReq"]
    variant = (
        "BPT_Dynamic_AC_CLReqControlMode"
        if mode is ControlMode.DYNAMIC
        else ("BPT_Scheduled_AC_CLReqControlMode")
    )
    assert variant in injected
    assert r.codes(EVSE)[-1] == ("AC_ChargeLoopRes", "FAILED_SequenceError")
    ended_safely(r)
