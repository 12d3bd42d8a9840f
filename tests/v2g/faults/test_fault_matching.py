"""The injector's mechanics with a stand-in engine: which occurrences a rule takes (nth, window,
count, "*"), how faults stack or conflict, what is reported at the end, and how incoming bytes
are framed, passed on or held back (whole frames, garbage, oversize, a stream cut short)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.v2g.engine import CancelTimer, Close, Event, Output, Received, Send, StartTimer
from rig.v2g.exchange import Wire
from rig.v2g.faults import (
    TIMER_PREFIX,
    FaultInjector,
    FaultKind,
    FaultRule,
    SessionView,
    build_message,
)
from rig.v2g.messages import decode_payload, encode_frame
from rig.v2g.v2gtp import DEFAULT_MAX_PAYLOAD, HEADER_SIZE, PayloadType, frame
from rig.v2g.vocabulary import ControlMode, Service

K = FaultKind
LOOP = "DC_ChargeLoopReq"
SID = bytes.fromhex("0A0B0C0D0E0F1011")
VIEW = SessionView(session_id=SID, timestamp=1_000)


class Talker:
    """A stand-in engine: timer_expired("say:A,B") sends those messages (templates) in one
    batch, "end" closes and finishes; every input is kept in `inputs`."""

    def __init__(self, view: SessionView = VIEW) -> None:
        self.view = view
        self.inputs: list[tuple[str, Any]] = []
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self, now: float) -> list[Output]:
        self.inputs.append(("start", now))
        return []

    def receive_data(self, data: bytes, now: float) -> list[Output]:
        self.inputs.append(("data", data))
        return []

    def timer_expired(self, name: str, now: float) -> list[Output]:
        self.inputs.append(("timer", name))
        if name == "end":
            self._finished = True
            return [Close("done")]
        names = name.removeprefix("say:").split(",")
        return [Wire.send(build_message(n, self.view)) for n in names]

    def connection_lost(self, reason: str, now: float) -> list[Output]:
        self.inputs.append(("lost", reason))
        self._finished = True
        return []


def injector(*rules: FaultRule, view: SessionView = VIEW) -> tuple[FaultInjector, Talker]:
    talker = Talker(view)
    inj = FaultInjector(talker, rules, rng=random.Random(5))
    inj.start(0.0)
    return inj, talker


def say(inj: FaultInjector, names: str, now: float) -> list[Output]:
    return inj.timer_expired(f"say:{names}", now)


def sends(outs: Sequence[Output]) -> list[Send]:
    return [o for o in outs if isinstance(o, Send)]


def events(outs: Sequence[Output], name: str) -> list[dict[str, Any]]:
    return [dict(o.data) for o in outs if isinstance(o, Event) and o.name == name]


def loops_sent(inj: FaultInjector, times: Sequence[float], name: str = LOOP) -> list[float]:
    """Say `name` at each time; the times at which it went out."""
    return [t for t in times if sends(say(inj, name, t))]


def answer(name: str, view: SessionView = VIEW) -> bytes:
    return encode_frame(build_message(name, view))[1]


# --- which occurrences a rule takes ------------------------------------------------------------


def test_nth_takes_only_that_occurrence() -> None:
    inj, _ = injector(FaultRule(K.DROP, LOOP, nth=3))
    assert loops_sent(inj, [1, 2, 3, 4, 5]) == [1, 2, 4, 5]
    (applied,) = inj.applied
    assert (applied.nth, applied.t_matched, applied.t_sent) == (3, 3, None)


def test_count_takes_consecutive_occurrences_from_nth() -> None:
    inj, _ = injector(FaultRule(K.DROP, LOOP, nth=2, count=2))
    assert loops_sent(inj, [1, 2, 3, 4, 5]) == [1, 4, 5]
    assert [a.nth for a in inj.applied] == [2, 3]
    inj, _ = injector(FaultRule(K.DROP, LOOP, count=2))  # no nth: from the first
    assert loops_sent(inj, [1, 2, 3, 4]) == [3, 4]


def test_window_is_half_open_and_count_limits_it() -> None:
    times = [5.0, 10.0, 15.0, 19.999, 20.0, 25.0]
    inj, _ = injector(FaultRule(K.DROP, LOOP, window=(10, 20), count=100))
    assert loops_sent(inj, times) == [5.0, 20.0, 25.0]
    inj, _ = injector(FaultRule(K.DROP, LOOP, window=(10, 20)))  # count 1: the first in it
    assert loops_sent(inj, times) == [5.0, 15.0, 19.999, 20.0, 25.0]


def test_nth_counts_inside_the_window() -> None:
    inj, _ = injector(FaultRule(K.DROP, LOOP, nth=2, window=(10, 20)))
    assert loops_sent(inj, [1, 2, 3, 10, 15, 16]) == [1, 2, 3, 10, 16]
    assert inj.applied[0].nth == 2 and inj.applied[0].t_matched == 15


def test_a_named_message_counts_only_itself_and_star_counts_everything() -> None:
    inj, _ = injector(
        FaultRule(K.DROP, "PowerDeliveryReq", nth=2), FaultRule(K.DUPLICATE, "*", nth=3)
    )
    outs = say(inj, "PowerDeliveryReq", 1) + say(inj, LOOP, 2) + say(inj, LOOP, 3)
    outs += say(inj, "PowerDeliveryReq", 4)
    assert [s.name for s in sends(outs)] == ["PowerDeliveryReq", LOOP, LOOP, LOOP]
    assert [(a.kind, a.message, a.nth) for a in inj.applied] == [
        (K.DUPLICATE, LOOP, 3),
        (K.DROP, "PowerDeliveryReq", 2),
    ]


# --- how faults combine --------------------------------------------------------------------------


def test_reorder_lets_the_next_frame_overtake() -> None:
    inj, _ = injector(FaultRule(K.REORDER, "PowerDeliveryReq", hold=5.0))
    outs = say(inj, f"PowerDeliveryReq,{LOOP}", 1.0)
    assert [s.name for s in sends(outs)] == [LOOP, "PowerDeliveryReq"]
    (timer,) = [o for o in outs if isinstance(o, StartTimer)]
    assert timer.name.startswith(TIMER_PREFIX) and timer.deadline == 6.0
    assert CancelTimer(timer.name) in outs  # no release after hold any more
    (fault,) = events(outs, "fault_injected")
    assert fault["overtaken_by"] == LOOP and fault["released_after_hold"] is False
    assert fault["t_sent"] == 1.0 and fault["held"] == 0.0


def test_content_faults_stack_and_travel_with_a_delay() -> None:
    field = "CLReqControlMode.EVMaximumDischargePower"
    inj, _ = injector(
        FaultRule(K.DELAY, LOOP, delay=0.3),
        FaultRule(K.WRONG_VALUE, LOOP, field=field, value=30_000),
        FaultRule(K.WRONG_VALUE, LOOP, field="EVPresentVoltage", value=123),
    )
    outs = say(inj, LOOP, 2.0)
    assert sends(outs) == [] and events(outs, "fault_injected") == []
    (timer,) = [o for o in outs if isinstance(o, StartTimer)]
    outs = inj.timer_expired(timer.name, 2.3)
    (send,) = sends(outs)
    message: Any = decode_payload(PayloadType.DC, send.frame[HEADER_SIZE:])
    assert message == send.message
    assert message.EVPresentVoltage.Value == 123
    assert message.CLReqControlMode.EVMaximumDischargePower.Value == 30_000
    faults = events(outs, "fault_injected")
    assert [f["kind"] for f in faults] == ["wrong_value", "wrong_value", "delay"]
    assert {f["t_sent"] for f in faults} == {2.3} and {f["t_matched"] for f in faults} == {2.0}


def test_two_delivery_faults_on_one_frame_the_first_wins() -> None:
    inj, _ = injector(FaultRule(K.DROP, LOOP), FaultRule(K.DUPLICATE, LOOP))
    outs = say(inj, LOOP, 1.0)
    assert sends(outs) == []
    (skipped,) = events(outs, "fault_skipped")
    assert skipped["rule"] == 1 and "rule 0" in skipped["reason"]
    outs = inj.timer_expired("end", 2.0)
    (not_applied,) = events(outs, "fault_not_applied")
    assert not_applied["rule"] == 1 and not_applied["matches"] == 1
    assert "rule 0" in not_applied["reason"]


def test_a_field_absent_from_this_variant_is_reported_and_the_frame_goes_unchanged() -> None:
    field = "CLReqControlMode.EVMaximumDischargePower"
    # DC without BPT, Scheduled: the variant has no discharge limits at all
    scheduled = SessionView(session_id=SID, service=Service.DC, control_mode=ControlMode.SCHEDULED)
    inj, _ = injector(FaultRule(K.WRONG_VALUE, LOOP, field=field, value=1), view=scheduled)
    outs = say(inj, LOOP, 1.0)
    (send,) = sends(outs)
    assert send.frame == encode_frame(build_message(LOOP, scheduled))[1]
    (na,) = events(outs, "fault_not_applicable")
    assert na["reason"] == "Scheduled_DC_CLReqControlMode has no EVMaximumDischargePower"
    outs = inj.timer_expired("end", 2.0)
    assert events(outs, "fault_not_applied")[0]["reason"] == na["reason"]


def test_truncate_beyond_the_frame_and_corrupt_beyond_its_bits() -> None:
    inj, _ = injector(FaultRule(K.TRUNCATE, LOOP, keep=10_000))
    outs = say(inj, LOOP, 1.0)
    assert len(sends(outs)[0].frame) < 10_000 and events(outs, "fault_not_applicable")
    inj, _ = injector(FaultRule(K.CORRUPT, "DC_CableCheckReq", bits=10_000))
    outs = say(inj, "DC_CableCheckReq", 1.0)
    (send,) = sends(outs)
    clean = encode_frame(build_message("DC_CableCheckReq", VIEW))[1]
    assert send.frame[:HEADER_SIZE] == clean[:HEADER_SIZE]
    assert send.frame[HEADER_SIZE:] == bytes(b ^ 0xFF for b in clean[HEADER_SIZE:])
    (fault,) = events(outs, "fault_injected")
    assert fault["requested_bits"] == 10_000 and len(fault["bits"]) == 8 * (len(clean) - 8)


def test_silence_withholds_later_frames_held_frames_and_the_close() -> None:
    inj, _ = injector(FaultRule(K.DELAY, LOOP, delay=1.0), FaultRule(K.SILENCE, "PowerDeliveryReq"))
    assert sends(say(inj, LOOP, 1.0)) == []  # held by DELAY
    outs = say(inj, "PowerDeliveryReq", 1.5)
    assert sends(outs) == []
    faults = events(outs, "fault_injected")
    assert [(f["kind"], f["t_sent"]) for f in faults] == [("silence", None), ("delay", None)]
    assert faults[1]["lost"] == "silenced"
    assert sends(say(inj, "SessionStopReq", 2.0)) == []
    outs = inj.timer_expired("end", 3.0)
    assert not any(isinstance(o, Close) for o in outs)
    assert [e.get("close") for e in events(outs, "fault_suppressed")] == ["done"]


def test_rules_that_never_took_effect_are_reported_when_the_session_ends() -> None:
    inj, _ = injector(
        FaultRule(K.DROP, "SessionStopReq"),
        FaultRule(K.DROP, LOOP, nth=5),
        FaultRule(K.DROP, LOOP, nth=1),
    )
    say(inj, LOOP, 1.0)
    say(inj, LOOP, 2.0)
    outs = inj.timer_expired("end", 3.0)
    assert Close("done") in outs
    assert events(outs, "fault_not_applied") == [
        {
            "rule": 0,
            "kind": "drop",
            "message": "SessionStopReq",
            "matches": 0,
            "reason": "no matching message",
        },
        {
            "rule": 1,
            "kind": "drop",
            "message": LOOP,
            "matches": 2,
            "reason": "2 match(es), none at nth=5",
        },
    ]


def test_injector_timers_never_reach_the_engine() -> None:
    inj, talker = injector(FaultRule(K.DELAY, LOOP, delay=0.5))
    outs = say(inj, LOOP, 1.0)
    (timer,) = [o for o in outs if isinstance(o, StartTimer)]
    inj.timer_expired(timer.name, 1.5)
    inj.timer_expired(f"{TIMER_PREFIX}unknown", 1.6)  # stale: ignored
    assert [i for i in talker.inputs if i[0] == "timer"] == [("timer", f"say:{LOOP}")]


# --- what comes in -------------------------------------------------------------------------------


def test_incoming_bytes_reach_the_engine_as_whole_frames() -> None:
    inj, talker = injector()
    data = answer("DC_ChargeLoopRes") + answer("PowerDeliveryRes")
    for i in range(len(data) - 5):
        inj.receive_data(data[i : i + 1], 1.0)
    inj.receive_data(data[-5:], 1.0)
    got = [d for kind, d in talker.inputs if kind == "data"]
    assert got == [answer("DC_ChargeLoopRes"), answer("PowerDeliveryRes")]


def test_a_stream_with_a_bad_header_goes_straight_through() -> None:
    inj, talker = injector()
    first = answer("DC_ChargeLoopRes")
    inj.receive_data(first[:20], 1.0)
    outs = inj.receive_data(first[20:] + b"\x02\xfdgarbage", 1.0)
    (unframed,) = events(outs, "fault_rx_unframed")
    assert "protocol version 0x02" in unframed["error"]
    inj.receive_data(b"more", 1.1)
    got = b"".join(d for kind, d in talker.inputs if kind == "data")
    assert got == first + b"\x02\xfdgarbage" + b"more"  # every byte, in order, once


def test_an_oversize_length_is_passed_on_without_buffering() -> None:
    inj, talker = injector()
    huge = bytes([0x01, 0xFE, 0x80, 0x04, 0xFF, 0xFF, 0xFF, 0xFF])
    outs = inj.receive_data(huge + b"x" * 100, 1.0)
    assert events(outs, "fault_rx_unframed")
    assert talker.inputs[-1] == ("data", huge + b"x" * 100)
    assert inj._rx == bytearray()  # nothing held


def test_a_frame_cut_short_by_the_end_of_the_link_is_handed_on_first() -> None:
    inj, talker = injector()
    partial = answer("DC_ChargeLoopRes")[:30]
    inj.receive_data(partial, 1.0)
    assert not any(kind == "data" for kind, _ in talker.inputs)
    inj.connection_lost("peer closed", 2.0)
    assert talker.inputs[-2:] == [("data", partial), ("lost", "peer closed")]


def test_answers_to_injected_requests_are_held_and_the_engines_pass() -> None:
    inj, talker = injector(FaultRule(K.OUT_OF_SEQUENCE, LOOP, send="SessionSetupReq"))
    outs = say(inj, LOOP, 1.0)
    assert [s.name for s in sends(outs)] == ["SessionSetupReq", LOOP]
    # the answers come in the order asked: the injected request's first
    outs = inj.receive_data(answer("SessionSetupRes") + answer("DC_ChargeLoopRes"), 1.1)
    held = [o for o in outs if isinstance(o, Received)]
    assert [h.name for h in held] == ["SessionSetupRes"]
    assert events(outs, "fault_response_held")[0]["answers"] == "SessionSetupReq"
    assert [d for kind, d in talker.inputs if kind == "data"] == [answer("DC_ChargeLoopRes")]


def test_an_injected_request_the_peer_never_answers_is_forgotten() -> None:
    # the peer answers the engine's ChargeLoopReq but not its copy; once it has answered a later
    # request the copy cannot be answered any more (answers come in order), so the next
    # ChargeLoopRes is the engine's again
    inj, talker = injector(FaultRule(K.DUPLICATE, LOOP))
    say(inj, LOOP, 1.0)  # the engine's, then the copy
    inj.receive_data(answer("DC_ChargeLoopRes"), 1.1)  # the engine's answer; no answer to the copy
    say(inj, "PowerDeliveryReq", 2.0)
    inj.receive_data(answer("PowerDeliveryRes"), 2.1)
    say(inj, LOOP, 3.0)
    outs = inj.receive_data(answer("DC_ChargeLoopRes"), 3.1)
    assert outs == [] and inj.held_responses == []
    assert [d for kind, d in talker.inputs if kind == "data"] == [
        answer("DC_ChargeLoopRes"),
        answer("PowerDeliveryRes"),
        answer("DC_ChargeLoopRes"),
    ]


def test_the_second_answer_to_a_duplicate_is_held_and_an_undecodable_one_too() -> None:
    inj, talker = injector(FaultRule(K.DUPLICATE, LOOP, count=2))
    say(inj, LOOP, 1.0)
    both = answer("DC_ChargeLoopRes") * 2
    outs = inj.receive_data(both, 1.1)
    assert [d for kind, d in talker.inputs if kind == "data"] == [answer("DC_ChargeLoopRes")]
    assert len([o for o in outs if isinstance(o, Received)]) == 1
    say(inj, LOOP, 2.0)
    inj.receive_data(answer("DC_ChargeLoopRes"), 2.1)
    garbage = frame(PayloadType.DC, b"\x80\xff\xff")
    outs = inj.receive_data(garbage, 2.2)
    (marker,) = events(outs, "fault_response_held")
    assert marker["message"] is None and marker["payload_hex"] == "80ffff"
    assert not any(isinstance(o, Received) for o in outs)
    assert inj.held_responses[-1].frame == garbage


def test_a_request_from_the_peer_is_never_taken_for_an_answer() -> None:
    # on the SECC's side the peer sends requests; an injected request of ours is still pending
    inj, talker = injector(FaultRule(K.OUT_OF_SEQUENCE, "DC_ChargeLoopRes", send="SessionStopReq"))
    say(inj, "DC_ChargeLoopRes", 1.0)
    inj.receive_data(answer(LOOP), 1.1)
    assert talker.inputs[-1] == ("data", answer(LOOP))
    assert inj.held_responses == []


@pytest.mark.parametrize("name", ["SessionSetupReq", LOOP, "SessionStopRes"])
def test_out_of_sequence_carries_the_sessions_id_and_the_matched_messages_time(name: str) -> None:
    rule = FaultRule(K.OUT_OF_SEQUENCE, "PowerDeliveryReq", send=name)
    inj, _ = injector(rule, view=SessionView(session_id=SID, timestamp=4242))
    outs = say(inj, "PowerDeliveryReq", 1.0)
    first = sends(outs)[0]
    assert first.name == name
    assert first.message.Header.SessionID == SID and first.message.Header.TimeStamp == 4242


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(["DC_ChargeLoopRes", "SessionSetupRes", "PowerDeliveryRes"]),
            st.binary(max_size=40),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000), max_size=10),
)
def test_incoming_bytes_are_never_lost_duplicated_or_grown(
    pieces: list[str | bytes], cuts: list[int]
) -> None:
    # an injected copy outstanding, so every incoming frame is decoded and judged
    inj, talker = injector(FaultRule(K.DUPLICATE, LOOP, count=3))
    for t in (1.0, 2.0, 3.0):
        say(inj, LOOP, t)
    stream = b"".join(answer(p) if isinstance(p, str) else p for p in pieces)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for a, b in itertools.pairwise(bounds):
        inj.receive_data(stream[a:b], 4.0)
        assert len(inj._rx) <= HEADER_SIZE + DEFAULT_MAX_PAYLOAD
    inj.connection_lost("peer closed", 5.0)
    handed = b"".join(d for kind, d in talker.inputs if kind == "data")
    held = [h.frame for h in inj.held_responses]
    assert len(handed) + sum(map(len, held)) == len(stream)
    assert all(frame in stream for frame in held)
    assert talker.inputs[-1] == ("lost", "peer closed")
