"""Timers: every EVCC message timeout, the SECC's sequence, ongoing and setup timeouts, the
CableCheck and PreCharge limits, the wait before closing after SessionStop [V2G20-1643]; all as
StartTimer/CancelTimer outputs (the engines read no clock), overridable per firmware profile."""

from __future__ import annotations

from collections import deque

import pytest
from engine_bench import EV, EVSE, at, events, session, to_secc

from rig.v2g.controllers import Closure, EvIntent
from rig.v2g.engine import Close, Send, StartTimer
from rig.v2g.evcc import Evcc, EvccConfig
from rig.v2g.exi import common
from rig.v2g.messages import Request, header
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import T_CLOSE, T_SEQUENCE, T_SETUP, Secc, SeccConfig, SeccState
from rig.v2g.timing import EvccTiming, SeccTiming
from rig.v2g.vocabulary import Service


def test_defaults_are_the_open_implementations() -> None:
    ev = EvccTiming()
    assert ev.response_timeout(Request.SESSION_SETUP) == 2.0
    assert ev.response_timeout(Request.SERVICE_DETAIL) == 5.0
    assert (
        ev.response_timeout(Request.DC_CHARGE_LOOP)
        == ev.response_timeout(Request.AC_CHARGE_LOOP)
        == 0.5
    )
    assert ev.response_timeout(Request.CERTIFICATE_INSTALLATION) == 5.0
    assert ev.response_timeout(Request.VEHICLE_CHECK_IN) == 2.0
    assert (ev.communication_setup, ev.ongoing, ev.cable_check_limit, ev.pre_charge_limit) == (
        20,
        60,
        40,
        10,
    )
    evse = SeccTiming()
    assert (evse.communication_setup, evse.sequence, evse.ongoing) == (20, 60, 60)
    assert (evse.authorization_ongoing, evse.close_after_stop) == (180, 5)


def test_a_firmware_profile_overrides_by_name() -> None:
    t = EvccTiming().overridden({"charge_loop": 0.2, "service_detail": 3})
    assert t.response_timeout(Request.DC_CHARGE_LOOP) == 0.2 and t.service_detail == 3
    with pytest.raises(ValueError, match="unknown timing"):
        SeccTiming().overridden({"sequense": 10})
    with pytest.raises(ValueError, match=">= 0"):
        SeccTiming().overridden({"sequence": -1})


@pytest.mark.parametrize("service", [Service.DC_BPT, Service.AC_BPT])
def test_every_request_arms_its_response_timeout(service: Service) -> None:
    ev = BatteryEv(intents=deque([EvIntent.CHARGE, EvIntent.STOP]))
    timing = EvccTiming().overridden(
        {"session_stop": 1.5, "schedule_exchange": 3.5, "cable_check": 2.5}
    )
    bench = session(service, ev=ev, ev_config=EvccConfig(services=(service,), timing=timing)).run()
    outs = bench.outputs[EV]
    armed = 0
    for i, out in enumerate(outs):
        if isinstance(out, Send):
            timer = next(o for o in outs[i + 1 :] if isinstance(o, StartTimer))
            assert timer.name == "evcc.response"
            request = Request(out.name)
            sent_at = next(s.time for s in bench.sent if s.message is out.message)
            assert timer.deadline - sent_at == pytest.approx(timing.response_timeout(request)), (
                out.name
            )
            armed += 1
    assert armed == len(bench.names(EV))


def test_the_secc_arms_its_sequence_timer_after_every_response() -> None:
    bench = session(ev=BatteryEv(intents=deque([EvIntent.STOP]))).run()
    outs = bench.outputs[EVSE]
    responses = [i for i, o in enumerate(outs) if isinstance(o, Send)]
    for i in responses[:-1]:
        timer = next(o for o in outs[i + 1 :] if isinstance(o, StartTimer))
        assert timer.name == T_SEQUENCE
        sent_at = next(s.time for s in bench.sent if s.message is outs[i].message)  # type: ignore[union-attr]
        assert timer.deadline - sent_at == 60.0
    # after SessionStopRes the SECC waits for the EV to close [V2G20-1643] (the EV did, at once)
    last = next(o for o in outs[responses[-1] + 1 :] if isinstance(o, StartTimer))
    assert last.name == T_CLOSE


def test_the_secc_closes_5_s_after_session_stop_if_the_ev_does_not() -> None:
    bench = at(SeccState.WELDING_DETECTION, ev=BatteryEv(intents=deque([EvIntent.STOP])))
    stop = common.SessionStopReq(
        Header=header(bench.secc.session_id, 1),
        ChargingSession=common.chargingSessionType.Terminate,
    )
    outs = to_secc(bench, stop)
    (timer,) = [o for o in outs if isinstance(o, StartTimer)]
    assert (timer.name, timer.deadline) == (T_CLOSE, pytest.approx(bench.now + 5.0))
    assert not [o for o in outs if isinstance(o, Close)]
    later = bench.secc.timer_expired(T_CLOSE, timer.deadline)
    (close,) = [o for o in later if isinstance(o, Close)]
    assert "V2G20-1643" in close.reason and bench.secc.closure is Closure.TERMINATED


def test_communication_setup_timeout_of_the_secc() -> None:
    evse = BenchCharger()
    secc = Secc(evse, SeccConfig(timing=SeccTiming(communication_setup=18.0)))
    (timer,) = [o for o in secc.start(100.0) if isinstance(o, StartTimer)]
    assert (timer.name, timer.deadline) == (T_SETUP, 118.0)
    outs = list(secc.timer_expired(T_SETUP, 118.0))
    assert events(outs, "timeout")[0].data["what"] == "communication setup"
    assert any(isinstance(o, Close) for o in outs) and evse.ended[0][0] is Closure.ABORTED


def test_communication_setup_timeout_of_the_evcc() -> None:
    ev = BatteryEv()
    evcc = Evcc(ev, EvccConfig(timing=EvccTiming(communication_setup=20.0)))
    outs = list(evcc.start(5.0))
    (setup,) = [
        o for o in outs if isinstance(o, StartTimer) and o.name == "evcc.communication_setup"
    ]
    assert setup.deadline == 25.0
    outs = list(evcc.timer_expired("evcc.communication_setup", 25.0))
    assert events(outs, "timeout")[0].data["timer"] == "evcc.communication_setup"
    assert evcc.finished and ev.ended[0][0] is Closure.ABORTED


def test_the_evcc_gives_up_a_cable_check_after_40_s() -> None:
    evse = BenchCharger(isolation_rounds=10_000)
    bench = session(evse=evse).run()
    (timeout,) = bench.events("timeout", EV)
    assert timeout.data == {"timer": "evcc.cable_check_limit", "state": "cable_check"}
    first = next(s.time for s in bench.sent if s.name == "DC_CableCheckReq")
    assert bench.evcc.controller.ended[0][0] is Closure.ABORTED  # type: ignore[attr-defined]
    end = next(t for t, side, e in bench.all_events if side == EV and e.name == "session_end")
    assert end - first == pytest.approx(40.0)
    assert evse.safe


def test_the_evcc_gives_up_a_pre_charge_after_10_s() -> None:
    evse = BenchCharger(precharge_step=1.0)  # 1 V per request: 400 V is far off
    bench = session(evse=evse).run()
    (timeout,) = bench.events("timeout", EV)
    assert timeout.data == {"timer": "evcc.pre_charge_limit", "state": "pre_charge"}
    first = next(s.time for s in bench.sent if s.name == "DC_PreChargeReq")
    end = next(t for t, side, e in bench.all_events if side == EV and e.name == "session_end")
    assert end - first == pytest.approx(10.0)


def test_the_evcc_ongoing_limit_of_a_schedule_exchange() -> None:
    evse = BenchCharger(schedule_rounds=10_000)
    secc_timing = SeccTiming(ongoing=300.0)  # the EV's 60 s comes first
    bench = session(evse=evse, secc_config=SeccConfig(timing=secc_timing)).run()
    (timeout,) = bench.events("timeout", EV)
    assert timeout.data == {"timer": "evcc.ongoing", "state": "schedule_exchange"}
    first = next(s.time for s in bench.sent if s.name == "ScheduleExchangeRes")
    end = next(t for t, side, e in bench.all_events if side == EV and e.name == "session_end")
    assert end - first == pytest.approx(60.0)


def test_the_secc_ongoing_limit_of_a_cable_check() -> None:
    evse = BenchCharger(isolation_rounds=10_000)
    ev_timing = EvccTiming(cable_check_limit=500.0)
    bench = session(evse=evse, ev_config=EvccConfig(timing=ev_timing)).run()
    assert bench.codes()[-1] == ("DC_CableCheckRes", "FAILED")
    first = next(s.time for s in bench.sent if s.name == "DC_CableCheckRes")
    assert bench.sent[-1].time - first == pytest.approx(60.0)
    assert evse.safe
