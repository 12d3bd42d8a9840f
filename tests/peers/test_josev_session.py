"""Josev's EVCC against Josev's SECC on a veth pair, through the session harness.

This proves the harness (tests/peers/josev_session.py): SDP by multicast on the link, the -20
session to SessionStop, the service and control mode asked for, both logs read, both processes
stopped. When the rig's engines land, the same harness runs our EVCC against Josev's SECC and
Josev's EVCC against our SECC.

Two combinations run by default (each costs 6-8 s of wall time here): DC_BPT dynamic and AC_BPT
scheduled, which between them cover both services and both control modes. RIG_PEER_MATRIX=1
adds the other two; .ci/run sets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from peers import josev
from peers.josev_session import (
    JosevOutcome,
    JosevRole,
    JosevSession,
    JosevSettings,
    PeerMessage,
    parse_messages,
)

DEFAULT = [("DC_BPT", "dynamic"), ("AC_BPT", "scheduled")]
MORE = [("DC_BPT", "scheduled"), ("AC_BPT", "dynamic")]
CONTROL_MODE_ID = {"scheduled": 1, "dynamic": 2}
SERVICE_ID = {"AC_BPT": 5, "DC_BPT": 6}


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)


def _require_peer() -> Path:
    reason = josev.unavailable_reason()
    if reason is not None:
        josev.missing(reason)
    return josev.peer_python()


def _run_pair(
    veth: netns.VethPair, tmp_path: Path, service: str, mode: str
) -> tuple[JosevOutcome, JosevOutcome, list[str], list[str], tuple[int, int]]:
    python = _require_peer()
    secc = JosevSession.start(
        veth,
        "evse",
        JosevSettings(JosevRole.SECC, veth.evse_interface, service, mode),
        tmp_path / "secc",
        python,
    )
    evcc: JosevSession | None = None
    try:
        secc.wait_ready()
        evcc = JosevSession.start(
            veth,
            "ev",
            JosevSettings(JosevRole.EVCC, veth.ev_interface, service, mode, charge_loops=2),
            tmp_path / "evcc",
            python,
        )
        ev_outcome = evcc.wait_session_end()
        secc_outcome = secc.wait_session_end(timeout=15)
    finally:
        codes = (evcc.stop() if evcc is not None else -1, secc.stop())
    return (
        ev_outcome,
        secc_outcome,
        list(evcc.process.lines),
        list(secc.process.lines),
        codes,
    )


def _body(messages: list[PeerMessage], name: str) -> dict[str, object]:
    found = [m.body for m in messages if m.name == name]
    assert found, f"no {name}"
    return found[0]


def _check_session(
    service: str,
    mode: str,
    ev: JosevOutcome,
    secc: JosevOutcome,
    ev_lines: list[str],
    secc_lines: list[str],
    codes: tuple[int, int],
) -> None:
    assert ev.session_stopped, f"EVCC did not reach SessionStop:\n{ev.log_tail}"
    assert secc.session_stopped, f"SECC did not answer SessionStop:\n{secc.log_tail}"
    assert ev.failed_responses() == [] and secc.failed_responses() == []
    assert codes == (0, 0)  # both stopped cleanly by the harness (SIGINT)
    assert ev.log_path is not None and ev.log_path.read_text().count("\n") >= len(ev_lines) - 1

    # SDP went over the link by multicast, and the answer named the EVSE end's address.
    assert any("SDPResponse received: [ IP address: fe80::1," in line for line in ev_lines)
    assert any(
        "SDPRequest received: [Security: NO_TLS, Protocol: TCP]" in line for line in secc_lines
    )

    # The -20 session, as each side saw it: what the EV sent is what the SECC received.
    sent = ev.names("sent")
    assert sent[0] == "supportedAppProtocolReq" and sent[-1] == "SessionStopReq"
    assert secc.names("received") == sent
    assert ev.names("received") == secc.names("sent")
    dc = service.startswith("DC")
    loop_name = "DC_ChargeLoopReq" if dc else "AC_ChargeLoopReq"
    assert sent.count(loop_name) >= 2
    if dc:
        assert "DC_CableCheckReq" in sent and "DC_PreChargeReq" in sent
        assert "DC_WeldingDetectionReq" in sent

    # The service and control mode asked for were the ones selected and used.
    messages = list(ev.messages)
    sap = _body(messages, "supportedAppProtocolReq")
    assert sap["AppProtocol"] == [
        {
            "ProtocolNamespace": f"urn:iso:std:iso:15118:-20:{'DC' if dc else 'AC'}",
            "VersionNumberMajor": 1,
            "VersionNumberMinor": 0,
            "SchemaID": 1,
            "Priority": 1,
        }
    ]
    selected = _body(messages, "ServiceSelectionReq")["SelectedEnergyTransferService"]
    assert isinstance(selected, dict) and selected["ServiceID"] == SERVICE_ID[service]
    detail = _body(messages, "ServiceDetailRes")["ServiceParameterList"]
    assert isinstance(detail, dict)
    chosen = [
        p for p in detail["ParameterSet"] if p["ParameterSetID"] == selected["ParameterSetID"]
    ]
    control = [p for p in chosen[0]["Parameter"] if p["Name"] == "ControlMode"]
    assert control[0]["intValue"] == CONTROL_MODE_ID[mode]
    charge_loop = _body(messages, loop_name)
    mode_element = f"BPT_{mode.capitalize()}_{'DC' if dc else 'AC'}_CLReqControlMode"
    assert mode_element in charge_loop


@pytest.mark.peer
@pytest.mark.parametrize(("service", "mode"), DEFAULT, ids=[f"{s}-{m}" for s, m in DEFAULT])
def test_josev_evcc_against_josev_secc_on_a_veth_pair(
    veth: netns.VethPair, tmp_path: Path, service: str, mode: str
) -> None:
    _check_session(service, mode, *_run_pair(veth, tmp_path, service, mode))


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize(("service", "mode"), MORE, ids=[f"{s}-{m}" for s, m in MORE])
def test_josev_evcc_against_josev_secc_other_combinations(
    veth: netns.VethPair, tmp_path: Path, service: str, mode: str
) -> None:
    if os.environ.get("RIG_PEER_MATRIX", "") in ("", "0"):
        pytest.skip("set RIG_PEER_MATRIX=1 for the whole service/control-mode matrix")
    _check_session(service, mode, *_run_pair(veth, tmp_path, service, mode))


# --- the harness's own pieces, no peer needed ---

LOG = [
    "INFO    2026-12-05 13:49:02,118 - iso15118.shared.exi_codec (248): Message to encode "
    '(ns=Namespace.SAP): {"supportedAppProtocolReq": {"AppProtocol": []}}',
    "INFO    2026-12-05 13:49:02,200 - iso15118.shared.comm_session (431): Sent supportedAppProtocolReq",
    "INFO    2026-12-05 13:49:02,582 - iso15118.shared.exi_codec (302): Decoded message "
    '(ns=Namespace.SAP): {"supportedAppProtocolRes":{"ResponseCode":"OK_SuccessfulNegotiation","SchemaID":1}}',
    "INFO    2026-12-05 13:49:03,579 - iso15118.shared.exi_codec (302): Decoded message "
    '(ns=Namespace.ISO_V20_COMMON_MSG): {"SessionSetupRes":{"ResponseCode":"FAILED"}}',
    "INFO    2026-12-05 13:49:03,579 - iso15118.shared.exi_codec (302): Decoded message "
    "(ns=Namespace.ISO_V20_COMMON_MSG): {not json",
    "a line of something else",
]


def test_the_log_parser_reads_messages_directions_and_codes() -> None:
    messages = parse_messages(LOG)
    assert [(m.direction, m.name, m.namespace) for m in messages] == [
        ("sent", "supportedAppProtocolReq", "SAP"),
        ("received", "supportedAppProtocolRes", "SAP"),
        ("received", "SessionSetupRes", "ISO_V20_COMMON_MSG"),
    ]
    outcome = JosevOutcome(JosevRole.EVCC, False, tuple(messages), None, None, 0.0)
    assert outcome.failed_responses() == [("SessionSetupRes", "FAILED")]


def test_settings_make_josevs_environment_and_ev_config(tmp_path: Path) -> None:
    secc = JosevSettings(JosevRole.SECC, "veth-secc", "AC_BPT", "scheduled")
    env = secc.environment(tmp_path)
    assert env["NETWORK_INTERFACE"] == "veth-secc" and env["PROTOCOLS"] == "ISO_15118_20_AC"
    assert env["SECC_ENFORCE_TLS"] == "false" and env["LOG_LEVEL"] == "INFO"
    evcc = JosevSettings(JosevRole.EVCC, "veth-evcc", "DC_BPT", "dynamic", charge_loops=5)
    assert evcc.environment(tmp_path)["EVCC_CONFIG_PATH"] == str(tmp_path / "evcc_config.json")
    config = evcc.evcc_config()
    assert config["supportedProtocols"] == ["ISO_15118_20_DC"]
    assert config["supportedEnergyServices"] == ["DC_BPT"]
    assert config["useTls"] is False and config["chargeLoopCycle"] == 5
    argv = evcc.launcher_argv(Path("/peer/python"))
    assert argv[2:] == ["launch", "evcc", "--service", "DC_BPT", "--control-mode", "dynamic"]
    with pytest.raises(ValueError):
        JosevSettings(JosevRole.EVCC, "x", "WPT")
    with pytest.raises(ValueError):
        JosevSettings(JosevRole.EVCC, "x", "DC", "sometimes")
