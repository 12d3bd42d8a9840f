"""Seeded protocol defects of an emulated DUT: each knob changes what goes on the wire in the named
way (so a check can be shown to fail against it), and nothing changes with the knobs off."""

from __future__ import annotations

from collections import deque

import pytest
from engine_bench import EV, EVSE, answered, at, events, no_errors, sends, session, to_secc

from rig.v2g.controllers import ChargeProgress, Closure, EvIntent, EvseNotice, Notification
from rig.v2g.engine import StartTimer
from rig.v2g.exi import dc
from rig.v2g.messages import header
from rig.v2g.quirks import NO_QUIRKS, Quirks
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import SeccState


def test_no_quirks_by_default() -> None:
    assert not NO_QUIRKS.any and NO_QUIRKS.delays("DC_ChargeLoopRes") == 0.0
    assert Quirks(ignore_pause=True).any


def test_quirks_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match="not a -20 response"):
        Quirks(wrong_response_codes={"DC_ChargeLoopReq": "FAILED"})
    with pytest.raises(ValueError, match="not a -20 response code"):
        Quirks(wrong_response_codes={"PowerDeliveryRes": "NOT_A_CODE"})
    with pytest.raises(ValueError):
        Quirks(response_delay=-1.0)
    with pytest.raises(ValueError):
        Quirks(delayed_responses=frozenset({"supportedAppProtocolRes"}))


def test_respond_late_within_the_evs_timeout() -> None:
    quirks = Quirks(response_delay=0.3, delayed_responses=frozenset({"DC_ChargeLoopRes"}))
    bench = session(
        ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 3 + [EvIntent.STOP])), evse_quirks=quirks
    ).run()
    no_errors(bench)
    reqs = [s.time for s in bench.sent if s.name == "DC_ChargeLoopReq"]
    ress = [s.time for s in bench.sent if s.name == "DC_ChargeLoopRes"]
    assert [b - a for a, b in zip(reqs, ress, strict=True)] == pytest.approx([0.3] * 4)
    # other responses are not delayed
    pd_req = [s.time for s in bench.sent if s.name == "PowerDeliveryReq"]
    pd_res = [s.time for s in bench.sent if s.name == "PowerDeliveryRes"]
    assert pd_req == pd_res
    delays = [
        o
        for o in bench.outputs[EVSE]
        if isinstance(o, StartTimer) and o.name.startswith("secc.delayed_response")
    ]
    assert len(delays) == 4  # a StartTimer, then the Send
    assert len(bench.events("quirk", EVSE)) == 4


def test_respond_late_beyond_the_evs_timeout_ends_the_session() -> None:
    quirks = Quirks(response_delay=0.8, delayed_responses=frozenset({"DC_ChargeLoopRes"}))
    evse = BenchCharger()
    bench = session(
        ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 5)), evse=evse, evse_quirks=quirks
    ).run()
    (timeout,) = bench.events("timeout", EV)
    assert timeout.data == {"timer": "evcc.response", "state": "charge_loop"}
    assert bench.evcc.closure is Closure.ABORTED and evse.safe


def test_accept_out_of_sequence() -> None:
    def cable_check_in_the_loop(quirks: Quirks) -> list[object]:
        bench = at(SeccState.CHARGE_LOOP, evse_quirks=quirks)
        return to_secc(bench, dc.DC_CableCheckReq(Header=header(bench.secc.session_id, 1)))  # type: ignore[return-value]

    strict = cable_check_in_the_loop(NO_QUIRKS)
    assert answered(strict) == ("DC_CableCheckRes", "FAILED_SequenceError")  # type: ignore[arg-type]
    lax = cable_check_in_the_loop(Quirks(accept_out_of_sequence=True))
    assert answered(lax) == ("DC_CableCheckRes", "OK")  # type: ignore[arg-type]
    assert events(lax, "quirk")[0].data == {
        "quirk": "accept_out_of_sequence",
        "request": "DC_CableCheckReq",
    }  # type: ignore[arg-type]


def test_wrong_response_code_for_a_named_message() -> None:
    quirks = Quirks(wrong_response_codes={"PowerDeliveryRes": "FAILED_PowerDeliveryNotApplied"})
    evse = BenchCharger()
    bench = session(
        ev=BatteryEv(intents=deque([EvIntent.STOP])), evse=evse, evse_quirks=quirks
    ).run()
    assert bench.codes()[-1] == ("PowerDeliveryRes", "FAILED_PowerDeliveryNotApplied")
    assert evse.power_deliveries[0].progress is ChargeProgress.START  # it did start the power
    assert bench.events("quirk", EVSE)[0].data["code"] == "FAILED_PowerDeliveryNotApplied"
    assert [e.data["code"] for e in bench.events("response_code", EV)] == [
        "FAILED_PowerDeliveryNotApplied"
    ]
    assert bench.evcc.closure is Closure.ABORTED


def test_secc_ignoring_a_stop_keeps_the_power_on() -> None:
    evse = BenchCharger()
    bench = session(
        ev=BatteryEv(intents=deque([EvIntent.CHARGE, EvIntent.STOP])),
        evse=evse,
        evse_quirks=Quirks(ignore_pause=True),
    )
    bench.run_until(lambda: bench.secc.state is SeccState.POWER_STOPPED)
    assert evse.contactors_closed and evse.present_current > 0  # still delivering after Stop
    assert [c.progress for c in evse.power_deliveries] == [ChargeProgress.START]
    assert bench.events("quirk", EVSE)[0].data == {"quirk": "ignore_pause", "progress": "Stop"}
    bench.run()
    assert evse.safe  # the end of the session still makes it safe


def test_ev_ignoring_a_pause_keeps_charging_and_the_secc_notices() -> None:
    ev = BatteryEv(intents=deque([EvIntent.CHARGE] * 20 + [EvIntent.STOP]))
    evse = BenchCharger()
    bench = session(ev=ev, evse=evse, ev_quirks=Quirks(ignore_pause=True))
    bench.run_until(lambda: bench.evcc.loops >= 2)
    evse.notify(EvseNotice(Notification.PAUSE, 2.0))
    bench.run()
    assert [e.data["obeyed"] for e in bench.events("notification", EV)] == [False]
    assert bench.events("quirk", EV)[0].data == {"quirk": "ignore_pause", "notification": "Pause"}
    (late,) = bench.events("notification_not_obeyed", EVSE)
    assert late.data == {"notification": "Pause", "max_delay": 2.0}
    assert bench.squeezed(EV)[-4] == "DC_ChargeLoopReq*21"  # it just kept on
    assert sends(bench.outputs[EV])[-1].message.ChargingSession.value == "Terminate"
