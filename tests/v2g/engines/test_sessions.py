"""Whole -20 sessions between our EVCC and SECC as two objects passing bytes (no sockets), with the
reference EV and charger: every service and control mode, both sign conventions, the Ongoing
loops, pause and resume, renegotiation, and every EVSENotification obeyed."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from engine_bench import EV, EVSE, ROUND_TRIPPED, Bench, no_errors, session

from rig.v2g.controllers import (
    Channel,
    ChargeProgress,
    Closure,
    EvIntent,
    EvseNotice,
    Notification,
    ScheduleEntry,
    ScheduleTuple,
)
from rig.v2g.evcc import EvccConfig, ResumePath
from rig.v2g.messages import DischargeSign, Request
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import SeccConfig
from rig.v2g.sessions import SessionStore
from rig.v2g.vocabulary import ControlMode, Service

SETUP = [
    "supportedAppProtocolReq",
    "SessionSetupReq",
    "AuthorizationSetupReq",
    "AuthorizationReq",
    "ServiceDiscoveryReq",
    "ServiceDetailReq",
    "ServiceSelectionReq",
]
DC_START = [
    "DC_ChargeParameterDiscoveryReq",
    "ScheduleExchangeReq",
    "DC_CableCheckReq*3",  # the charger's isolation check answers Ongoing twice
    "DC_PreChargeReq*4",  # 150 V steps to 400 V, then one more saying Finished
    "PowerDeliveryReq",
]
AC_START = ["AC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq", "PowerDeliveryReq"]
DC_STOP = ["PowerDeliveryReq", "DC_WeldingDetectionReq*2", "SessionStopReq"]
AC_STOP = ["PowerDeliveryReq", "SessionStopReq"]


def ev_stopping_after(loops: int, last: EvIntent = EvIntent.STOP, **kw: object) -> BatteryEv:
    return BatteryEv(intents=deque([EvIntent.CHARGE] * (loops - 1) + [last]), **kw)  # type: ignore[arg-type]


def sent(bench: Bench, name: str, side: str | None = None) -> list[object]:
    return [s.message for s in bench.sent if s.name == name and (side is None or s.side == side)]


def expected_codes(bench: Bench) -> None:
    """Every response OK but the handshake's and SessionSetup's own OK codes."""
    for name, code in bench.codes():
        want = {
            "supportedAppProtocolRes": "OK_SuccessfulNegotiation",
            "SessionSetupRes": "OK_NewSessionEstablished",
        }.get(name, "OK")
        assert code == want, (name, code)


@pytest.mark.parametrize("mode", list(ControlMode))
@pytest.mark.parametrize("service", [Service.DC_BPT, Service.DC, Service.AC_BPT, Service.AC])
def test_whole_session_of_every_service_and_control_mode(
    service: Service, mode: ControlMode
) -> None:
    ev = ev_stopping_after(4)
    evse = BenchCharger()
    bench = session(service, mode, ev=ev, evse=evse).run()
    no_errors(bench)
    loop = "DC_ChargeLoopReq*4" if service.is_dc else "AC_ChargeLoopReq*4"
    start, stop = (DC_START, DC_STOP) if service.is_dc else (AC_START, AC_STOP)
    assert bench.squeezed(EV) == [*SETUP, *start, loop, *stop]
    assert [n.replace("Res", "Req") for n in bench.names(EVSE)] == bench.names(
        EV
    )  # one answer each
    expected_codes(bench)
    selection = sent(bench, "ServiceSelectionReq")[0]
    assert selection.SelectedEnergyTransferService.ServiceID == service.id  # type: ignore[attr-defined]
    progress = [m.ChargeProgress.value for m in sent(bench, "PowerDeliveryReq")]  # type: ignore[attr-defined]
    assert progress == ["Start", "Stop"]
    assert sent(bench, "SessionStopReq")[0].ChargingSession.value == "Terminate"  # type: ignore[attr-defined]
    # the control-mode variant on the wire is the selected one
    loop_req = sent(bench, "DC_ChargeLoopReq" if service.is_dc else "AC_ChargeLoopReq")[0]
    variant = type(loop_req.CLReqControlMode).__name__  # type: ignore[attr-defined]
    assert variant.startswith("BPT_") == service.bidirectional
    assert ("Dynamic" in variant) == (mode is ControlMode.DYNAMIC)
    # the phases each side reported
    middle = ["cable_check", "precharge"] if service.is_dc else []
    for side in (EV, EVSE):
        assert bench.phases(side) == ["setup", *middle, "charge_loop", "stopping", "stopped"]
    assert bench.secc.closure is Closure.TERMINATED and bench.evcc.closure is Closure.TERMINATED
    assert bench.closed[EV] is not None  # the EV closes the TCP connection after SessionStopRes
    assert evse.ended == [(Closure.TERMINATED, "SessionStop(Terminate)")] and evse.safe
    assert ev.ended[0][0] is Closure.TERMINATED and not ev.contactors_closed


def test_dc_bpt_dynamic_follows_the_chargers_setpoint_both_ways() -> None:
    ev = BatteryEv(soc=60.0, intents=deque([EvIntent.CHARGE] * 9 + [EvIntent.STOP]))
    evse = BenchCharger(setpoint=7_000.0)
    bench = session(Service.DC_BPT, ControlMode.DYNAMIC, ev=ev, evse=evse)
    bench.run_until(lambda: bench.evcc.loops >= 5)
    soc_after_charging = ev.soc
    assert soc_after_charging > 60.0
    evse.setpoint = -7_000.0  # the home needs power: discharge
    bench.run()
    no_errors(bench)
    assert ev.soc < soc_after_charging
    currents = [s.present_current for s in ev.dc_statuses]
    assert currents[0] == pytest.approx(7_000.0 / 400.0) and currents[-1] == pytest.approx(
        -7_000.0 / 400.0
    )
    res = sent(bench, "DC_ChargeLoopRes")[-1]
    assert res.EVSEPresentCurrent.Value < 0  # type: ignore[attr-defined]  # signed on the wire (?)
    limits = res.CLResControlMode  # type: ignore[attr-defined]
    assert type(limits).__name__ == "BPT_Dynamic_DC_CLResControlMode"
    assert (limits.EVSEMaximumDischargePower.Value, limits.EVSEMaximumChargePower.Value) == (
        7000,
        0,
    )


def test_the_reserve_travels_as_ev_minimum_v2x_energy_request() -> None:
    ev = ev_stopping_after(3, soc=40.0, reserve_soc=30.0, capacity_wh=60_000.0)
    evse = BenchCharger(setpoint=-11_000.0)
    bench = session(ev=ev, evse=evse).run()
    no_errors(bench)
    req = sent(bench, "ScheduleExchangeReq")[0].Dynamic_SEReqControlMode  # type: ignore[attr-defined]
    # (30 % - 40 %) of 60 kWh: negative, the battery is above its reserve (OCPP 2.1's reading)
    assert (req.EVMinimumV2XEnergyRequest.Value, req.EVMinimumV2XEnergyRequest.Exponent) == (
        -6000,
        0,
    )
    assert evse.schedule_requests[0].energy is not None
    assert evse.schedule_requests[0].energy.minimum_v2x == -6_000.0
    loop = evse.dc_requests[0]
    assert loop.energy is not None and loop.energy.minimum_v2x == pytest.approx(-6_000.0)
    assert loop.display is not None and loop.display.minimum_soc == 30


def test_the_ev_stops_discharging_at_its_reserve() -> None:
    ev = ev_stopping_after(3, soc=30.0, reserve_soc=30.0)
    evse = BenchCharger(setpoint=-11_000.0)
    bench = session(ev=ev, evse=evse).run()
    no_errors(bench)
    assert all(
        r.limits is not None and r.limits.max_discharge_power == 0.0 for r in evse.dc_requests
    )
    assert all(s.present_current == 0.0 for s in ev.dc_statuses)
    assert ev.soc == 30.0


def test_dc_bpt_scheduled_with_a_discharging_schedule() -> None:
    tuples = (
        ScheduleTuple(1, (ScheduleEntry(3600, 11_000.0),), (ScheduleEntry(3600, -5_000.0),)),
        ScheduleTuple(2, (ScheduleEntry(1800, 3_000.0), ScheduleEntry(1800, 6_000.0))),
    )
    evse = BenchCharger(tuples=tuples)
    ev = ev_stopping_after(3, start_discharging=True)
    bench = session(Service.DC_BPT, ControlMode.SCHEDULED, ev=ev, evse=evse).run()
    no_errors(bench)
    res = sent(bench, "ScheduleExchangeRes")[0].Scheduled_SEResControlMode  # type: ignore[attr-defined]
    assert [t.ScheduleTupleID for t in res.ScheduleTuple] == [1, 2]
    discharging = res.ScheduleTuple[0].DischargingSchedule.PowerSchedule.PowerScheduleEntries
    assert (
        discharging.PowerScheduleEntry[0].Power.Value == 5000
    )  # a magnitude (the default reading)
    assert res.ScheduleTuple[1].DischargingSchedule is None
    pd = sent(bench, "PowerDeliveryReq")[0]
    assert pd.EVPowerProfile.Scheduled_EVPPTControlMode.SelectedScheduleTupleID == 1  # type: ignore[attr-defined]
    assert pd.EVPowerProfile.EVPowerProfileEntries.EVPowerProfileEntry[0].Power.Value == -5000  # type: ignore[attr-defined]
    assert pd.BPT_ChannelSelection.value == "Discharge"  # type: ignore[attr-defined]
    command = evse.power_deliveries[0]
    assert command.channel is Channel.DISCHARGE and command.profile is not None
    assert command.profile.schedule_tuple_id == 1
    assert command.profile.entries == (ScheduleEntry(3600.0, -5_000.0),)
    assert ev.soc < 50.0  # the EV set a negative target current and the charger followed
    assert all(r.target_current is not None and r.target_current < 0 for r in evse.dc_requests)


def test_ac_bpt_dynamic_target_power_steers_the_ev() -> None:
    ev = ev_stopping_after(4)
    evse = BenchCharger(setpoint=-4_000.0)
    bench = session(Service.AC_BPT, ControlMode.DYNAMIC, ev=ev, evse=evse).run()
    no_errors(bench)
    res = sent(bench, "AC_ChargeLoopRes")[0].CLResControlMode  # type: ignore[attr-defined]
    assert type(res).__name__ == "BPT_Dynamic_AC_CLResControlMode"
    assert res.EVSETargetActivePower.Value == -4000
    assert [s.target_active_power for s in ev.ac_statuses] == [-4_000.0] * 4
    assert [r.present_active_power for r in evse.ac_requests] == [0.0, -4_000.0, -4_000.0, -4_000.0]
    assert ev.soc < 50.0
    detail = sent(bench, "ServiceDetailRes")[0].ServiceParameterList.ParameterSet[0]  # type: ignore[attr-defined]
    names = {p.Name: p.intValue for p in detail.Parameter}
    assert names["GridCodeIslandingDetectionMethod"] == 1 and names["BPTChannel"] == 1
    assert names["GeneratorMode"] == 1 and names["ControlMode"] == 2


def test_ac_bpt_scheduled_profile_is_checked_against_the_tuple() -> None:
    ev = ev_stopping_after(2, start_discharging=True)
    bench = session(Service.AC_BPT, ControlMode.SCHEDULED, ev=ev).run()
    no_errors(bench)
    pd = sent(bench, "PowerDeliveryReq")[0]
    assert pd.BPT_ChannelSelection.value == "Discharge"  # type: ignore[attr-defined]
    assert bench.codes()[-4:] == [
        ("AC_ChargeLoopRes", "OK"),
        ("AC_ChargeLoopRes", "OK"),
        ("PowerDeliveryRes", "OK"),
        ("SessionStopRes", "OK"),
    ]


@pytest.mark.parametrize("sign", list(DischargeSign))
@pytest.mark.parametrize("service", [Service.DC_BPT, Service.AC_BPT])
def test_both_sign_conventions_send_and_accept(service: Service, sign: DischargeSign) -> None:
    ev = ev_stopping_after(2)
    evse = BenchCharger(setpoint=-3_000.0)
    bench = session(
        service, ControlMode.DYNAMIC, ev=ev, evse=evse, ev_sign=sign, evse_sign=sign
    ).run()
    no_errors(bench)
    want = 11000 if sign is DischargeSign.MAGNITUDE else -11000
    kind = "DC" if service.is_dc else "AC"
    cpd_req = sent(bench, f"{kind}_ChargeParameterDiscoveryReq")[0]
    cpd_res = sent(bench, f"{kind}_ChargeParameterDiscoveryRes")[0]
    assert (
        cpd_req.__getattribute__(f"{kind}_CPDReqEnergyTransferMode").EVMaximumDischargePower.Value
        == want
    )
    assert (
        cpd_res.__getattribute__(f"{kind}_CPDResEnergyTransferMode").EVSEMaximumDischargePower.Value
        == want
    )
    # inside the rig, discharge limits are negative whatever the wire said
    assert evse.ev_parameters is not None and evse.ev_parameters.max_discharge_power == -11_000.0
    assert ev.evse_limits is not None and ev.evse_limits.max_discharge_power == -11_000.0
    if service.is_dc:
        loop_req = sent(bench, "DC_ChargeLoopReq")[0].CLReqControlMode  # type: ignore[attr-defined]
        assert loop_req.EVMaximumDischargePower.Value == want
        loop_res = sent(bench, "DC_ChargeLoopRes")[0].CLResControlMode  # type: ignore[attr-defined]
        assert loop_res.EVSEMaximumDischargePower.Value == (
            3000 if sign is DischargeSign.MAGNITUDE else -3000
        )
        assert evse.dc_requests[0].limits is not None
        assert evse.dc_requests[0].limits.max_discharge_power == -11_000.0
        assert ev.dc_statuses[0].limits is not None
        assert ev.dc_statuses[0].limits.max_discharge_power == -3_000.0
    else:
        assert evse.ac_requests[0].max_discharge_power == -11_000.0


@pytest.mark.parametrize(
    ("ev_sign", "evse_sign"),
    [
        (DischargeSign.NEGATIVE, DischargeSign.MAGNITUDE),
        (DischargeSign.MAGNITUDE, DischargeSign.NEGATIVE),
    ],
)
def test_a_peer_of_the_other_convention_is_understood_and_reported(
    ev_sign: DischargeSign, evse_sign: DischargeSign
) -> None:
    ev = ev_stopping_after(3)
    evse = BenchCharger(setpoint=-3_000.0)
    bench = session(ev=ev, evse=evse, ev_sign=ev_sign, evse_sign=evse_sign).run()
    assert evse.ev_parameters is not None and evse.ev_parameters.max_discharge_power == -11_000.0
    assert ev.evse_limits is not None and ev.evse_limits.max_discharge_power == -11_000.0
    assert ev.dc_statuses[-1].limits is not None
    assert ev.dc_statuses[-1].limits.max_discharge_power == -3_000.0
    for side in (EV, EVSE):
        fields = [e.data["field"] for e in bench.events("discharge_sign_mismatch", side)]
        assert fields and len(fields) == len(set(fields))  # reported, once per field
    assert "EVMaximumDischargePower" in [
        e.data["field"] for e in bench.events("discharge_sign_mismatch", EVSE)
    ]
    assert bench.secc.closure is Closure.TERMINATED  # the session itself went through


def test_ongoing_loops_of_authorization_schedule_cable_check_and_pre_charge() -> None:
    ev = ev_stopping_after(1)
    evse = BenchCharger(
        authorization_rounds=2, schedule_rounds=3, isolation_rounds=4, precharge_step=50.0
    )
    bench = session(ev=ev, evse=evse).run()
    no_errors(bench)
    squeezed = bench.squeezed(EV)
    assert "AuthorizationReq*3" in squeezed and "ScheduleExchangeReq*4" in squeezed
    assert "DC_CableCheckReq*5" in squeezed
    assert "DC_PreChargeReq*9" in squeezed  # 8 steps of 50 V to 400 V, then Finished
    auth = [m.EVSEProcessing.value for m in sent(bench, "AuthorizationRes")]  # type: ignore[attr-defined]
    assert auth == ["Ongoing", "Ongoing", "Finished"]
    cable = [m.EVSEProcessing.value for m in sent(bench, "DC_CableCheckRes")]  # type: ignore[attr-defined]
    assert cable == ["Ongoing"] * 4 + ["Finished"]
    pre = [m.EVProcessing.value for m in sent(bench, "DC_PreChargeReq")]  # type: ignore[attr-defined]
    assert pre == ["Ongoing"] * 8 + ["Finished"]
    voltages = [m.EVSEPresentVoltage.Value for m in sent(bench, "DC_PreChargeRes")]  # type: ignore[attr-defined]
    assert voltages == [50, 100, 150, 200, 250, 300, 350, 400, 400]
    # each repeat waits the pacing interval: no busy loop
    times = [s.time for s in bench.sent if s.name == "DC_CableCheckReq"]
    assert all(b - a == pytest.approx(0.25) for a, b in itertools.pairwise(times))


def test_pause_and_resume_with_the_same_session_id_on_a_new_connection() -> None:
    store = SessionStore()
    ev = ev_stopping_after(2, last=EvIntent.PAUSE)
    evse = BenchCharger()
    first = session(ev=ev, evse=evse, store=store).run()
    no_errors(first)
    assert first.squeezed(EV)[-3:] == [
        "PowerDeliveryReq",
        "DC_WeldingDetectionReq*2",
        "SessionStopReq",
    ]
    assert sent(first, "SessionStopReq")[0].ChargingSession.value == "Pause"  # type: ignore[attr-defined]
    paused = first.evcc.paused_session
    assert paused is not None and paused.session_id == first.secc.session_id
    assert paused.session_id in store
    assert first.phases(EV)[-1] == "paused" and first.phases(EVSE)[-1] == "paused"
    assert evse.ended[-1][0] is Closure.PAUSED and evse.safe

    ev.intents = deque([EvIntent.CHARGE, EvIntent.STOP])
    second = session(ev=ev, evse=evse, store=store, resume=paused, seed=99).run()
    no_errors(second)
    setup = sent(second, "SessionSetupReq")[0]
    assert setup.Header.SessionID == paused.session_id  # type: ignore[attr-defined]
    assert ("SessionSetupRes", "OK_OldSessionJoined") in second.codes()
    assert second.secc.session_id == paused.session_id and second.secc.resumed
    # EVerest's reading: the resumed session goes on at ChargeParameterDiscovery
    assert second.squeezed(EV) == [
        "supportedAppProtocolReq",
        "SessionSetupReq",
        *DC_START,
        "DC_ChargeLoopReq*2",
        *DC_STOP,
    ]
    assert second.evcc.session_id == paused.session_id
    assert [e.data["resumed"] for e in second.events("session_established")] == [True, True]
    assert paused.session_id not in store  # a session resumes once


def test_resume_through_authorization_setup_as_josev_does() -> None:
    store = SessionStore()
    ev = ev_stopping_after(1, last=EvIntent.PAUSE)
    first = session(ev=ev, store=store).run()
    paused = first.evcc.paused_session
    assert paused is not None
    ev.intents = deque([EvIntent.STOP])
    config = EvccConfig(resume_path=ResumePath.AUTHORIZATION_SETUP)
    second = session(ev=ev, store=store, resume=paused, ev_config=config).run()
    no_errors(second)
    assert ("SessionSetupRes", "OK_OldSessionJoined") in second.codes()
    assert second.squeezed(EV)[:3] == [
        "supportedAppProtocolReq",
        "SessionSetupReq",
        "AuthorizationSetupReq",
    ]
    assert second.secc.session_id == paused.session_id


def test_a_resume_the_secc_does_not_know_gets_a_new_session() -> None:
    ev = ev_stopping_after(1, last=EvIntent.PAUSE)
    first = session(ev=ev).run()
    paused = first.evcc.paused_session
    assert paused is not None
    ev.intents = deque([EvIntent.STOP])
    second = session(ev=ev, resume=paused, store=SessionStore(), seed=8).run()  # another charger
    no_errors(second)
    assert ("SessionSetupRes", "OK_NewSessionEstablished") in second.codes()
    assert second.events("resume_refused", EV)
    assert second.squeezed(EV)[:3] == [
        "supportedAppProtocolReq",
        "SessionSetupReq",
        "AuthorizationSetupReq",
    ]
    assert second.evcc.session_id == second.secc.session_id != paused.session_id


def test_service_renegotiation_started_by_the_ev() -> None:
    ev = BatteryEv(
        intents=deque(
            [EvIntent.CHARGE, EvIntent.RENEGOTIATE_SERVICE, EvIntent.CHARGE, EvIntent.STOP]
        )
    )
    bench = session(ev=ev).run()
    no_errors(bench)
    assert bench.squeezed(EV) == [
        *SETUP,
        *DC_START,
        "DC_ChargeLoopReq*2",
        "PowerDeliveryReq",
        "DC_WeldingDetectionReq*2",
        "SessionStopReq",
        "ServiceDiscoveryReq",
        "ServiceDetailReq",
        "ServiceSelectionReq",
        *DC_START,
        "DC_ChargeLoopReq*2",
        *DC_STOP,
    ]
    stops = [m.ChargingSession.value for m in sent(bench, "SessionStopReq")]  # type: ignore[attr-defined]
    assert stops == ["ServiceRenegotiation", "Terminate"]
    ids = {
        s.message.Header.SessionID
        for s in bench.sent
        if s.name.startswith(("Service", "DC_", "Power", "Session", "Auth"))
    }
    ids.discard(bytes(8))  # SessionSetupReq asks for a new session with zeros
    assert ids == {bench.secc.session_id}  # one session, one connection
    assert bench.phases(EV) == [
        "setup",
        "cable_check",
        "precharge",
        "charge_loop",
        "stopping",
        "setup",
        "cable_check",
        "precharge",
        "charge_loop",
        "stopping",
        "stopped",
    ]


def test_no_renegotiation_when_the_charger_does_not_support_it() -> None:
    ev = BatteryEv(intents=deque([EvIntent.RENEGOTIATE_SERVICE]))
    evse = BenchCharger(renegotiation_supported=False)
    bench = session(ev=ev, evse=evse).run()
    no_errors(bench)
    assert sent(bench, "ServiceDiscoveryRes")[0].ServiceRenegotiationSupported is False  # type: ignore[attr-defined]
    assert [m.ChargingSession.value for m in sent(bench, "SessionStopReq")] == ["Terminate"]  # type: ignore[attr-defined]


def run_with_notice(
    notice: Notification, *, ev: BatteryEv | None = None, loops: int = 2
) -> tuple[Bench, BatteryEv, BenchCharger]:
    ev = ev or BatteryEv(intents=deque([EvIntent.CHARGE] * 6 + [EvIntent.STOP]))
    evse = BenchCharger()
    bench = session(ev=ev, evse=evse)
    bench.run_until(lambda: bench.evcc.loops >= loops)
    evse.notify(EvseNotice(notice, 60.0))
    bench.run()
    return bench, ev, evse


def test_pause_notification_is_obeyed() -> None:
    bench, ev, _evse = run_with_notice(Notification.PAUSE)
    no_errors(bench)
    assert bench.squeezed(EV)[-4:] == [
        "DC_ChargeLoopReq*3",
        "PowerDeliveryReq",
        "DC_WeldingDetectionReq*2",
        "SessionStopReq",
    ]
    assert sent(bench, "SessionStopReq")[0].ChargingSession.value == "Pause"  # type: ignore[attr-defined]
    status = sent(bench, "DC_ChargeLoopRes")[2].EVSEStatus  # type: ignore[attr-defined]
    assert (status.EVSENotification.value, status.NotificationMaxDelay) == ("Pause", 60)
    assert [e.data["obeyed"] for e in bench.events("notification", EV)] == [True]
    assert ev.notices[0][1] is True
    assert not bench.events("notification_not_obeyed")
    assert bench.evcc.paused_session is not None and bench.secc.closure is Closure.PAUSED


def test_terminate_notification_is_obeyed() -> None:
    bench, _, _ = run_with_notice(Notification.TERMINATE)
    no_errors(bench)
    assert bench.squeezed(EV)[-4:] == [
        "DC_ChargeLoopReq*3",
        "PowerDeliveryReq",
        "DC_WeldingDetectionReq*2",
        "SessionStopReq",
    ]
    assert sent(bench, "SessionStopReq")[0].ChargingSession.value == "Terminate"  # type: ignore[attr-defined]
    assert bench.secc.closure is Closure.TERMINATED and not bench.events("notification_not_obeyed")


def test_service_renegotiation_notification_is_obeyed() -> None:
    bench, _, _ = run_with_notice(Notification.SERVICE_RENEGOTIATION)
    no_errors(bench)
    names = bench.squeezed(EV)
    at = names.index("DC_ChargeLoopReq*3")
    assert names[at + 1 : at + 6] == [
        "PowerDeliveryReq",
        "DC_WeldingDetectionReq*2",
        "SessionStopReq",
        "ServiceDiscoveryReq",
        "ServiceDetailReq",
    ]
    assert sent(bench, "SessionStopReq")[0].ChargingSession.value == "ServiceRenegotiation"  # type: ignore[attr-defined]
    assert bench.secc.closure is Closure.TERMINATED  # the renegotiated session ended normally


def test_schedule_renegotiation_notification_is_obeyed() -> None:
    bench, _, evse = run_with_notice(Notification.SCHEDULE_RENEGOTIATION)
    no_errors(bench)
    names = bench.squeezed(EV)
    at = names.index("DC_ChargeLoopReq*3")
    # no second cable check or pre-charge: the output is live already
    assert names[at + 1 : at + 5] == [
        "PowerDeliveryReq",
        "ScheduleExchangeReq",
        "PowerDeliveryReq",
        "DC_ChargeLoopReq*5",
    ]
    progress = [m.ChargeProgress.value for m in sent(bench, "PowerDeliveryReq")]  # type: ignore[attr-defined]
    assert progress == ["Start", "ScheduleRenegotiation", "Start", "Stop"]
    assert [c.progress for c in evse.power_deliveries] == [
        ChargeProgress.START,
        ChargeProgress.SCHEDULE_RENEGOTIATION,
        ChargeProgress.START,
        ChargeProgress.STOP,
    ]
    assert len(evse.schedule_requests) == 2 and not bench.events("notification_not_obeyed")


def test_standby_then_exit_standby_notification_is_obeyed() -> None:
    # loop 1 charges, loop 2 asks for Standby, loops 3-4 stay there, loop 5 brings ExitStandby
    ev = BatteryEv(
        intents=deque([EvIntent.CHARGE] + [EvIntent.STANDBY] * 3 + [EvIntent.CHARGE, EvIntent.STOP])
    )
    bench = session(ev=ev)
    bench.run_until(lambda: bench.evcc.standby and bench.evcc.loops >= 4)
    assert bench.evcc.phase.value == "standby" and bench.secc.phase.value == "standby"
    bench.secc.controller.notify(EvseNotice(Notification.EXIT_STANDBY, 10.0))  # type: ignore[attr-defined]
    bench.run()
    no_errors(bench)
    progress = [m.ChargeProgress.value for m in sent(bench, "PowerDeliveryReq")]  # type: ignore[attr-defined]
    assert progress == ["Start", "Standby", "Start", "Stop"]
    assert [e.data for e in bench.events("notification", EV)] == [
        {"notification": "ExitStandby", "max_delay": 10.0, "obeyed": True}
    ]
    assert bench.phases(EV) == [
        "setup",
        "cable_check",
        "precharge",
        "charge_loop",
        "standby",
        "charge_loop",
        "stopping",
        "stopped",
    ]
    assert not bench.events("notification_not_obeyed")


def test_metering_confirmation_is_reported_as_not_supported() -> None:
    bench, ev, _ = run_with_notice(Notification.METERING_CONFIRMATION)
    no_errors(bench)
    assert [e.data["obeyed"] for e in bench.events("notification", EV)] == [False]
    assert ev.notices[0][1] is False
    assert bench.squeezed(EV)[-4] == "DC_ChargeLoopReq*7"  # the session went on as planned


def test_go_to_pause_in_schedule_exchange_pauses_at_once() -> None:
    bench = session(evse=BenchCharger(go_to_pause=True)).run()
    no_errors(bench)
    assert bench.squeezed(EV)[-3:] == [
        "DC_ChargeParameterDiscoveryReq",
        "ScheduleExchangeReq",
        "SessionStopReq",
    ]
    assert sent(bench, "SessionStopReq")[0].ChargingSession.value == "Pause"  # type: ignore[attr-defined]
    assert bench.evcc.paused_session is not None


def test_standby_refused_keeps_the_energy_transfer() -> None:
    ev = BatteryEv(intents=deque([EvIntent.STANDBY, EvIntent.CHARGE, EvIntent.STOP]))
    bench = session(ev=ev, secc_config=SeccConfig(standby_allowed=False)).run()
    no_errors(bench)
    assert ("PowerDeliveryRes", "WARNING_StandbyNotAllowed") in bench.codes()
    assert [e.data["code"] for e in bench.events("response_code", EV)] == [
        "WARNING_StandbyNotAllowed"
    ]
    assert not bench.evcc.standby and "standby" not in bench.phases(EV)
    assert bench.secc.closure is Closure.TERMINATED


def test_meter_info_when_the_ev_asks() -> None:
    ev = ev_stopping_after(3, meter_info=True)
    evse = BenchCharger(setpoint=-7_200.0)
    bench = session(ev=ev, evse=evse).run()
    no_errors(bench)
    meters = [s.meter for s in ev.dc_statuses]
    assert all(m is not None and m.meter_id == "RIG-METER-1" for m in meters)
    info = sent(bench, "DC_ChargeLoopRes")[-1].MeterInfo  # type: ignore[attr-defined]
    assert info.BPT_DischargedEnergyReadingWh == 1  # 7.2 kW for 0.5 s of metered loop time


def test_identity_fields_are_configurable() -> None:
    bench = session(
        ev=ev_stopping_after(1),
        ev_config=EvccConfig(evcc_id="VIN0123456789ABCD"),
        secc_config=SeccConfig(evse_id="NL*ABC*E42*1"),
    ).run()
    assert sent(bench, "SessionSetupReq")[0].EVCCID == "VIN0123456789ABCD"  # type: ignore[attr-defined]
    assert sent(bench, "SessionSetupRes")[0].EVSEID == "NL*ABC*E42*1"  # type: ignore[attr-defined]
    assert bench.evcc.evse_id == "NL*ABC*E42*1" and bench.secc.evcc_id == "VIN0123456789ABCD"


def test_every_message_type_round_trips_through_the_codec() -> None:
    """Decoding what the engines send gives what they meant: the bench checks each Send; here a
    set of sessions covers every request and response of the rig's -20 sequence."""
    for service in (Service.DC_BPT, Service.AC_BPT):
        for mode in ControlMode:
            session(service, mode, ev=ev_stopping_after(2)).run()
    session(ev=BatteryEv(intents=deque([EvIntent.PAUSE]))).run()
    implemented = {r for r in Request} - {
        Request.CERTIFICATE_INSTALLATION,
        Request.METERING_CONFIRMATION,
        Request.VEHICLE_CHECK_IN,
        Request.VEHICLE_CHECK_OUT,
    }
    wanted = {r.value for r in implemented} | {r.response for r in implemented}
    assert wanted <= ROUND_TRIPPED, sorted(wanted - ROUND_TRIPPED)


def test_a_session_survives_any_fragmentation_of_the_byte_stream() -> None:
    import random

    rng = random.Random(5)

    def pieces(data: bytes) -> list[bytes]:
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 6))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    bench = session(ev=ev_stopping_after(3), fragment=pieces).run()
    no_errors(bench)
    assert bench.squeezed(EV) == [*SETUP, *DC_START, "DC_ChargeLoopReq*3", *DC_STOP]


def test_a_notification_in_power_delivery_res_is_obeyed_too() -> None:
    """Our SECC sends notifications in ChargeLoopRes; an EVSE may put one in PowerDeliveryRes."""
    from rig.v2g.exi import common
    from rig.v2g.messages import encode_frame, header

    bench = session(ev=BatteryEv(intents=deque([EvIntent.CHARGE] * 5)))
    bench.run_until(lambda: bench.evcc.state.value == "power_delivery" and bench.evcc._awaiting)
    bench.silenced.add(EVSE)  # the SECC's own answer is replaced by one with a notification
    bench.run_until(lambda: bench.secc.state.value == "charge_loop")
    res = common.PowerDeliveryRes(
        Header=header(bench.evcc.session_id, 1),
        ResponseCode=common.responseCodeType.OK,
        EVSEStatus=common.EVSEStatusType(
            NotificationMaxDelay=30, EVSENotification=common.evseNotificationType.Terminate
        ),
    )
    bench.inject(EV, encode_frame(res)[1])
    bench.silenced.discard(EVSE)
    bench.run()
    assert [e.data["notification"] for e in bench.events("notification", EV)] == ["Terminate"]
    progress = [m.ChargeProgress.value for m in sent(bench, "PowerDeliveryReq")]  # type: ignore[attr-defined]
    assert progress == ["Start", "Stop"] and "DC_ChargeLoopReq" not in bench.names(EV)
    assert bench.evcc.closure is Closure.TERMINATED
