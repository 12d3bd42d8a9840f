"""Every response code a peer can provoke, produced by our SECC where the -20 text (or, without it,
Josev and EVerest) says so; each with its Event, and FAILED ending the session safely."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from engine_bench import EV, EVSE, Bench, answered, at, events, no_errors, sends, session, to_secc

from rig.v2g.controllers import (
    AuthMethod,
    Closure,
    DcLimits,
    EvIntent,
    IsolationStatus,
    PowerDeliveryOutcome,
    ScheduleEntry,
    ScheduleTuple,
)
from rig.v2g.engine import Close, Output
from rig.v2g.evcc import EvccConfig
from rig.v2g.exi import common, dc, xmldsig
from rig.v2g.messages import header, to_rational
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import SeccConfig, SeccState
from rig.v2g.timing import SeccTiming
from rig.v2g.vocabulary import ControlMode, Service


def hdr(bench: Bench) -> Any:
    return header(bench.secc.session_id, 1_700_000_000)


def failed_and_safe(bench: Bench, outs: list[Output], name: str, code: str) -> None:
    assert answered(outs) == (name, code)
    assert [e.data["code"] for e in events(outs, "response_code")] == [code]
    assert bench.secc.state is SeccState.CLOSING
    evse = bench.secc.controller
    assert evse.ended[-1][0] is Closure.ABORTED and evse.safe  # type: ignore[attr-defined]


def service_detail(bench: Bench, service_id: int) -> Any:
    return common.ServiceDetailReq(Header=hdr(bench), ServiceID=service_id)


def selection(
    bench: Bench, service_id: int, set_id: int, vas: list[tuple[int, int]] | None = None
) -> Any:
    return common.ServiceSelectionReq(
        Header=hdr(bench),
        SelectedEnergyTransferService=common.SelectedServiceType(
            ServiceID=service_id, ParameterSetID=set_id
        ),
        SelectedVASList=None
        if vas is None
        else common.SelectedServiceListType(
            SelectedService=[
                common.SelectedServiceType(ServiceID=s, ParameterSetID=p) for s, p in vas
            ]
        ),
    )


def dc_cpd(bench: Bench, *, bpt: bool, min_power: float = 0.0, max_power: float = 10_000.0) -> Any:
    r = to_rational
    fields = {
        "EVMaximumChargePower": r(max_power),
        "EVMinimumChargePower": r(min_power),
        "EVMaximumChargeCurrent": r(30),
        "EVMinimumChargeCurrent": r(0),
        "EVMaximumVoltage": r(450),
        "EVMinimumVoltage": r(300),
    }
    if bpt:
        mode = dc.BPT_DC_CPDReqEnergyTransferMode(
            **fields,
            EVMaximumDischargePower=r(10_000),
            EVMinimumDischargePower=r(0),
            EVMaximumDischargeCurrent=r(30),
            EVMinimumDischargeCurrent=r(0),
        )
    else:
        mode = dc.DC_CPDReqEnergyTransferMode(**fields)
    return dc.DC_ChargeParameterDiscoveryReq(Header=hdr(bench), DC_CPDReqEnergyTransferMode=mode)


def power_delivery(
    bench: Bench, progress: str, *, tuple_id: int | None = None, power: float = 5_000.0
) -> Any:
    profile = None
    if tuple_id is not None:
        profile = common.EVPowerProfileType(
            TimeAnchor=1,
            Scheduled_EVPPTControlMode=common.Scheduled_EVPPTControlModeType(
                SelectedScheduleTupleID=tuple_id
            ),
            EVPowerProfileEntries=common.EVPowerProfileEntryListType(
                EVPowerProfileEntry=[
                    common.PowerScheduleEntryType(Duration=60, Power=to_rational(power))
                ]
            ),
        )
    return common.PowerDeliveryReq(
        Header=hdr(bench),
        EVProcessing=common.processingType.Finished,
        ChargeProgress=common.chargeProgressType(progress),
        EVPowerProfile=profile,
    )


def session_stop(bench: Bench, kind: str) -> Any:
    return common.SessionStopReq(
        Header=hdr(bench), ChargingSession=common.chargingSessionType(kind)
    )


# --- ServiceDetail / ServiceSelection ---------------------------------------------------------------


def test_service_detail_of_a_service_not_offered() -> None:
    bench = at(SeccState.SERVICE_DETAIL)
    outs = to_secc(bench, service_detail(bench, Service.WPT.id))
    failed_and_safe(bench, outs, "ServiceDetailRes", "FAILED_ServiceIDInvalid")
    assert sends(outs)[0].message.ServiceID == Service.WPT.id


def test_ac_services_are_not_offered_under_the_dc_namespace() -> None:
    bench = at(SeccState.SERVICE_DETAIL)
    offered = [s.ServiceID for s in bench.sent[-1].message.EnergyTransferServiceList.Service]
    assert offered == [Service.DC_BPT.id, Service.DC.id]
    outs = to_secc(bench, service_detail(bench, Service.AC_BPT.id))
    failed_and_safe(bench, outs, "ServiceDetailRes", "FAILED_ServiceIDInvalid")


def test_selecting_a_service_not_offered() -> None:
    bench = at(SeccState.SERVICE_SELECTION)
    outs = to_secc(bench, selection(bench, Service.AC.id, 1))
    failed_and_safe(bench, outs, "ServiceSelectionRes", "FAILED_NoEnergyTransferServiceSelected")


def test_selecting_a_parameter_set_not_offered() -> None:
    bench = at(SeccState.SERVICE_SELECTION)
    outs = to_secc(bench, selection(bench, Service.DC_BPT.id, 99))
    failed_and_safe(bench, outs, "ServiceSelectionRes", "FAILED_ServiceSelectionInvalid")


def test_selecting_a_value_added_service_none_offered() -> None:
    bench = at(SeccState.SERVICE_SELECTION)
    outs = to_secc(bench, selection(bench, Service.DC_BPT.id, 1, vas=[(65, 1)]))
    failed_and_safe(bench, outs, "ServiceSelectionRes", "FAILED_ServiceSelectionInvalid")


# --- ChargeParameterDiscovery and ScheduleExchange --------------------------------------------------


def test_charge_parameters_of_the_wrong_kind() -> None:
    bench = at(SeccState.CHARGE_PARAMETER_DISCOVERY)  # DC_BPT selected
    outs = to_secc(bench, dc_cpd(bench, bpt=False))
    failed_and_safe(bench, outs, "DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")
    # the minimal response still carries the selected service's variant
    assert (
        type(sends(outs)[0].message.DC_CPDResEnergyTransferMode).__name__
        == "BPT_DC_CPDResEnergyTransferMode"
    )


def test_inconsistent_ev_limits() -> None:
    bench = at(SeccState.CHARGE_PARAMETER_DISCOVERY)
    outs = to_secc(bench, dc_cpd(bench, bpt=True, min_power=20_000, max_power=10_000))
    failed_and_safe(bench, outs, "DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")


class PickyCharger(BenchCharger):
    def charge_parameters(self, service: Service, ev: Any, now: float) -> Any:
        if isinstance(ev, DcLimits) and ev.max_voltage > 440:
            return None  # this charger cannot meet the EV's voltage range
        return super().charge_parameters(service, ev, now)


def test_ev_limits_the_charger_refuses() -> None:
    bench = at(SeccState.CHARGE_PARAMETER_DISCOVERY, evse=PickyCharger())
    outs = to_secc(bench, dc_cpd(bench, bpt=True))
    failed_and_safe(bench, outs, "DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")


def test_schedule_exchange_of_the_other_control_mode() -> None:
    bench = at(SeccState.SCHEDULE_EXCHANGE)  # Dynamic selected
    req = common.ScheduleExchangeReq(
        Header=hdr(bench),
        MaximumSupportingPoints=24,
        Scheduled_SEReqControlMode=common.Scheduled_SEReqControlModeType(),
    )
    outs = to_secc(bench, req)
    failed_and_safe(bench, outs, "ScheduleExchangeRes", "FAILED")
    assert (
        sends(outs)[0].message.Dynamic_SEResControlMode is not None
    )  # schema-valid, Dynamic variant


def test_schedule_entries_are_trimmed_to_the_evs_supporting_points() -> None:
    many = ScheduleTuple(1, tuple(ScheduleEntry(60, 1_000.0 * (i % 5)) for i in range(40)))
    bench = at(
        SeccState.SCHEDULE_EXCHANGE,
        service=Service.DC_BPT,
        mode=ControlMode.SCHEDULED,
        evse=BenchCharger(tuples=(many,)),
    )
    req = common.ScheduleExchangeReq(
        Header=hdr(bench),
        MaximumSupportingPoints=12,
        Scheduled_SEReqControlMode=common.Scheduled_SEReqControlModeType(),
    )
    outs = to_secc(bench, req)
    assert answered(outs) == ("ScheduleExchangeRes", "OK")
    entries = sends(outs)[0].message.Scheduled_SEResControlMode.ScheduleTuple[0].ChargingSchedule
    assert len(entries.PowerSchedule.PowerScheduleEntries.PowerScheduleEntry) == 12
    assert events(outs, "schedule_trimmed")[0].data == {"tuple": 1, "entries": 40, "max": 12}


# --- PowerDelivery ------------------------------------------------------------------------------------


def scheduled_at_pre_charge() -> Bench:
    tuples = (ScheduleTuple(3, (ScheduleEntry(3600, 6_000.0),), (ScheduleEntry(3600, -4_000.0),)),)
    bench = at(SeccState.PRE_CHARGE, mode=ControlMode.SCHEDULED, evse=BenchCharger(tuples=tuples))
    bench.run_until(lambda: bench.secc._precharged)
    return bench


def test_power_delivery_choosing_a_tuple_not_offered() -> None:
    bench = scheduled_at_pre_charge()
    outs = to_secc(bench, power_delivery(bench, "Start", tuple_id=9))
    failed_and_safe(bench, outs, "PowerDeliveryRes", "FAILED_ScheduleSelectionInvalid")


def test_power_delivery_without_a_profile_in_scheduled_mode() -> None:
    bench = scheduled_at_pre_charge()
    outs = to_secc(bench, power_delivery(bench, "Start"))
    failed_and_safe(bench, outs, "PowerDeliveryRes", "FAILED_EVPowerProfileInvalid")


@pytest.mark.parametrize("power", [6_500.0, -4_500.0])
def test_power_delivery_with_a_profile_outside_the_tuple(power: float) -> None:
    bench = scheduled_at_pre_charge()
    outs = to_secc(bench, power_delivery(bench, "Start", tuple_id=3, power=power))
    failed_and_safe(bench, outs, "PowerDeliveryRes", "FAILED_EVPowerProfileInvalid")


def test_a_profile_inside_the_tuple_is_accepted() -> None:
    bench = scheduled_at_pre_charge()
    outs = to_secc(bench, power_delivery(bench, "Start", tuple_id=3, power=-4_000.0))
    assert (
        answered(outs) == ("PowerDeliveryRes", "OK") and bench.secc.state is SeccState.CHARGE_LOOP
    )


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (PowerDeliveryOutcome.NOT_APPLIED, "FAILED_PowerDeliveryNotApplied"),
        (PowerDeliveryOutcome.CONTACTOR_ERROR, "FAILED_ContactorError"),
    ],
)
def test_power_delivery_the_power_side_could_not_apply(
    outcome: PowerDeliveryOutcome, code: str
) -> None:
    evse = BenchCharger(power_delivery_outcome=outcome)
    bench = session(ev=BatteryEv(intents=deque([EvIntent.STOP])), evse=evse).run()
    assert ("PowerDeliveryRes", code) in bench.codes()
    assert [e.data["code"] for e in bench.events("response_code", EV)] == [code]  # the EV saw it
    assert bench.evcc.closure is Closure.ABORTED and bench.secc.closure is Closure.ABORTED
    assert evse.safe


def test_power_delivery_start_before_pre_charge() -> None:
    bench = at(SeccState.SCHEDULED)
    outs = to_secc(bench, power_delivery(bench, "Start"))
    failed_and_safe(bench, outs, "PowerDeliveryRes", "FAILED_SequenceError")


def test_schedule_renegotiation_outside_the_charge_loop() -> None:
    bench = at(SeccState.SCHEDULED)
    outs = to_secc(bench, power_delivery(bench, "ScheduleRenegotiation"))
    failed_and_safe(bench, outs, "PowerDeliveryRes", "FAILED_SequenceError")


# --- CableCheck and Ongoing limits ------------------------------------------------------------------


def test_an_isolation_fault_fails_the_cable_check() -> None:
    evse = BenchCharger(isolation_verdict=IsolationStatus.FAULT, isolation_rounds=1)
    bench = session(evse=evse).run()
    assert bench.codes()[-2:] == [("DC_CableCheckRes", "OK"), ("DC_CableCheckRes", "FAILED")]
    assert bench.evcc.closure is Closure.ABORTED and evse.safe
    assert bench.closed[EV] is not None  # the EV closes on FAILED


def test_an_ongoing_authorization_past_its_limit_fails() -> None:
    evse = BenchCharger(authorization_rounds=10_000)
    timing = SeccTiming(authorization_ongoing=3.0)
    bench = session(evse=evse, secc_config=SeccConfig(timing=timing)).run()
    auth = [c for n, c in bench.codes() if n == "AuthorizationRes"]
    assert auth[-1] == "FAILED" and set(auth[:-1]) == {"OK"}
    assert len(auth) == 13  # Ongoing every 0.25 s from 0 to 2.75 s, FAILED at 3 s
    assert bench.events("timeout", EVSE)[0].data["what"] == "ongoing"
    assert bench.secc.closure is Closure.ABORTED


# --- Authorization ------------------------------------------------------------------------------------


def test_eim_rejected_gives_a_warning_and_the_ev_stops() -> None:
    from rig.v2g.controllers import AuthorizationStatus

    evse = BenchCharger(authorization_verdict=AuthorizationStatus.REJECTED)
    bench = session(evse=evse).run()
    no_errors(bench)
    assert ("AuthorizationRes", "WARNING_EIMAuthorizationFailure") in bench.codes()
    assert bench.names(EV)[-1] == "SessionStopReq" and bench.secc.closure is Closure.TERMINATED


def test_pnc_not_offered_is_an_invalid_selection() -> None:
    bench = at(SeccState.AUTHORIZATION)
    req = common.AuthorizationReq(
        Header=hdr(bench),
        SelectedAuthorizationService=common.authorizationType.PnC,
        PnC_AReqAuthorizationMode=common.PnC_AReqAuthorizationModeType(
            Id="id1",
            GenChallenge=bytes(16),
            ContractCertificateChain=common.ContractCertificateChainType(
                Certificate=b"leaf",
                SubCertificates=common.SubCertificatesType(Certificate=[b"sub"]),
            ),
        ),
    )
    outs = to_secc(bench, req)
    assert answered(outs) == ("AuthorizationRes", "WARNING_AuthorizationSelectionInvalid")
    assert bench.secc.state is SeccState.AUTHORIZATION  # a warning: the EV may choose again


def test_pnc_without_a_signature_fails() -> None:
    config = EvccConfig(
        authorization=AuthMethod.PNC, contract_certificates=(b"leaf-cert", b"sub-ca")
    )
    bench = session(ev_config=config, secc_config=SeccConfig(offer_pnc=True)).run()
    setup = next(s.message for s in bench.sent if s.name == "AuthorizationSetupRes")
    assert [a.value for a in setup.AuthorizationServices] == ["EIM", "PnC"]
    assert len(setup.PnC_ASResAuthorizationMode.GenChallenge) == 16
    assert bench.codes()[-1] == ("AuthorizationRes", "FAILED_SignatureError")
    assert bench.evcc.closure is Closure.ABORTED


def test_pnc_with_a_signature_is_not_verified_here() -> None:
    bench = at(SeccState.AUTHORIZATION, secc_config=SeccConfig(offer_pnc=True))
    challenge = bench.sent[-1].message.PnC_ASResAuthorizationMode.GenChallenge
    signature = xmldsig.SignatureType(
        SignedInfo=xmldsig.SignedInfoType(
            CanonicalizationMethod=xmldsig.CanonicalizationMethodType(
                Algorithm="http://www.w3.org/TR/canonical-exi/"
            ),
            SignatureMethod=xmldsig.SignatureMethodType(
                Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
            ),
            Reference=[
                xmldsig.ReferenceType(
                    URI="#id1",
                    DigestMethod=xmldsig.DigestMethodType(
                        Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"
                    ),
                    DigestValue=bytes(64),
                )
            ],
        ),
        SignatureValue=xmldsig.SignatureValueType(CONTENT=bytes(132)),
    )

    def pnc(gen: bytes) -> Any:
        return common.AuthorizationReq(
            Header=common.MessageHeaderType(
                SessionID=bench.secc.session_id, TimeStamp=1, Signature=signature
            ),
            SelectedAuthorizationService=common.authorizationType.PnC,
            PnC_AReqAuthorizationMode=common.PnC_AReqAuthorizationModeType(
                Id="id1",
                GenChallenge=gen,
                ContractCertificateChain=common.ContractCertificateChainType(
                    Certificate=b"leaf",
                    SubCertificates=common.SubCertificatesType(Certificate=[b"sub"]),
                ),
            ),
        )

    assert answered(to_secc(bench, pnc(bytes(16)))) == (
        "AuthorizationRes",
        "WARNING_ChallengeInvalid",
    )
    assert answered(to_secc(bench, pnc(challenge))) == (
        "AuthorizationRes",
        "WARNING_GeneralPnCAuthorizationError",
    )


# --- SessionStop --------------------------------------------------------------------------------------


def test_service_renegotiation_when_not_supported() -> None:
    bench = at(
        SeccState.POWER_STOPPED,
        evse=BenchCharger(renegotiation_supported=False),
        ev=BatteryEv(intents=deque([EvIntent.STOP])),
    )
    outs = to_secc(bench, session_stop(bench, "ServiceRenegotiation"))
    failed_and_safe(bench, outs, "SessionStopRes", "FAILED_NoServiceRenegotiationSupported")


def test_pause_before_a_service_is_selected() -> None:
    bench = at(SeccState.SERVICE_DISCOVERY)
    outs = to_secc(bench, session_stop(bench, "Pause"))
    failed_and_safe(bench, outs, "SessionStopRes", "FAILED_PauseNotAllowed")


def test_session_stop_during_energy_transfer_is_a_sequence_error() -> None:
    bench = at(SeccState.CHARGE_LOOP)
    outs = to_secc(bench, session_stop(bench, "Terminate"))
    failed_and_safe(bench, outs, "SessionStopRes", "FAILED_SequenceError")


# --- requests the rig does not implement -----------------------------------------------------------


def test_metering_confirmation_is_a_sequence_error() -> None:
    bench = at(SeccState.CHARGE_LOOP)
    req = common.MeteringConfirmationReq(
        Header=hdr(bench),
        SignedMeteringData=common.SignedMeteringDataType(
            Id="m1",
            SessionID=bench.secc.session_id,
            MeterInfo=common.MeterInfoType(MeterID="M", ChargedEnergyReadingWh=1),
            Dynamic_SMDTControlMode=common.Dynamic_SMDTControlModeType(),
        ),
    )
    outs = to_secc(bench, req)
    failed_and_safe(bench, outs, "MeteringConfirmationRes", "FAILED_SequenceError")


def test_certificate_installation_closes_with_a_reason() -> None:
    bench = at(SeccState.AUTHORIZATION_SETUP)
    req = common.CertificateInstallationReq(
        Header=hdr(bench),
        OEMProvisioningCertificateChain=common.SignedCertificateChainType(
            Id="c1", Certificate=b"oem"
        ),
        ListOfRootCertificateIDs=common.ListOfRootCertificateIDsType(
            RootCertificateID=[
                xmldsig.X509IssuerSerialType(X509IssuerName="CN=V2G Root", X509SerialNumber=1)
            ]
        ),
        MaximumContractCertificateChains=1,
    )
    outs = to_secc(bench, req)
    assert not sends(outs)  # CertificateInstallationRes cannot be formed without real chains
    assert events(outs, "sequence_error") and events(outs, "response_code")
    assert any(isinstance(o, Close) for o in outs) and bench.secc.finished
    assert bench.secc.controller.safe  # type: ignore[attr-defined]


# --- a controller that raises --------------------------------------------------------------------------


class BrokenCharger(BenchCharger):
    def dc_charge_loop(self, request: Any, now: float) -> Any:
        raise RuntimeError("power stage not responding")


def test_a_controller_error_fails_safely() -> None:
    evse = BrokenCharger()
    bench = session(evse=evse).run()
    (error,) = bench.events("controller_error", EVSE)
    assert "power stage not responding" in error.data["error"]
    assert bench.codes()[-1] == ("DC_ChargeLoopRes", "FAILED")
    assert evse.ended[0][0] is Closure.ABORTED and evse.safe
