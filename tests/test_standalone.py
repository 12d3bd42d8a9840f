"""`rig ev` and `rig evse` (rig.standalone): bad options, whole sessions between the two tools as
separate processes (loopback; SDP over a veth pair between network namespaces), TLS with the key
log inside the capture, Ctrl-C and SIGTERM mid-session, and the files each run leaves."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest

from rig.standalone import LabCharger, LabEv, main_ev, main_evse
from rig.v2g.controllers import (
    ChargeProgress,
    DcLoopLimits,
    DcLoopRequest,
    EvIntent,
    Notification,
)
from rig.v2g.pcapread import read_capture, split_v2gtp
from rig.v2g.pki import PkiFolder, init_pki
from rig.v2g.tls_records import Direction, KeyLog, application_data, decode_streams
from rig.v2g.vocabulary import ControlMode

TOOL = [sys.executable, "-m", "rig.standalone"]
LISTENING = re.compile(r"^rig evse: listening on \[(?P<address>[^\]%]+)(%\S+)?\]:(?P<port>\d+)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFolder:
    return init_pki(tmp_path_factory.mktemp("standalone") / "pki")


def _loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        from peers.josev import missing

        missing(f"no ::1 here: {exc}")


def _spawn(argv: list[str], log: Path, name: str) -> netns.NsProcess:
    popen = subprocess.Popen(
        [*TOOL, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        cwd=log.parent,
    )
    return netns.NsProcess(name, popen, log)


@pytest.fixture
def processes() -> Iterator[list[netns.NsProcess]]:
    started: list[netns.NsProcess] = []
    yield started
    for process in started:
        if process.running:
            process.stop(grace=3.0)


def _records(out: Path) -> list[dict[str, object]]:
    lines = (out / "trace.jsonl").read_text().splitlines()
    assert lines, "empty trace"
    records = [json.loads(line) for line in lines]  # every line whole JSON
    assert records[0]["kind"] == "header"
    return records[1:]


def _frames(records: list[dict[str, object]], kind: str) -> list[bytes]:
    return [bytes.fromhex(str(r["hex"])) for r in records if r["kind"] == kind]


def _names(records: list[dict[str, object]], kind: str) -> list[str]:
    return [str(r["name"]) for r in records if r["kind"] == kind]


def _events(records: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [r["data"] for r in records if r["kind"] == "event" and r["name"] == name]  # type: ignore[misc]


# --- bad input: one line, exit 2, nothing run ----------------------------------------------------


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET6)
    sock.bind(("::1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("tool", "argv", "says"),
    [
        ("ev", [], "one of the arguments --iface --host is required"),
        ("ev", ["--host", "::1"], "--host needs --port"),
        ("ev", ["--iface", "lo", "--port", "5"], "--port is for --host"),
        ("ev", ["--host", "::1", "--port", "99999"], "port 99999 out of 0..65535"),
        ("ev", ["--host", "not-an-address", "--port", "5"], "not an IP address"),
        ("ev", ["--iface", "nosuchif0"], "no network interface named 'nosuchif0'"),
        ("ev", ["--host", "fe80::1%nosuchif0", "--port", "5"], "no network interface"),
        ("ev", ["--host", "::1", "--port", "5", "--tls"], "--tls needs --pki"),
        ("ev", ["--host", "::1", "--port", "5", "--tls", "--no-tls"], "not allowed with"),
        ("ev", ["--host", "::1", "--port", "5", "--service", "WPT"], "invalid choice"),
        (
            "ev",
            ["--host", "::1", "--port", "5", "--service", "DC", "--discharge-kw", "5"],
            "needs a bidirectional service",
        ),
        ("ev", ["--host", "::1", "--port", "5", "--discharge-kw", "-3"], "positive number"),
        ("ev", ["--host", "::1", "--port", "5", "--duration", "nan"], "positive number"),
        ("ev", ["--host", "::1", "--port", "5", "--tls", "--pki", "/nonexistent"], "--pki:"),
        ("evse", [], "one of the arguments --iface --host is required"),
        ("evse", ["--host", "::1", "--services", "DC_BPT,XYZ"], "unknown service 'XYZ'"),
        ("evse", ["--host", "::1", "--sessions", "-1"], "--sessions must be >= 0"),
        ("evse", ["--iface", "nosuchif0"], "no network interface named 'nosuchif0'"),
        ("evse", ["--host", "::1", "--pki", "x"], "--pki is for --tls"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    tool: str, argv: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = (main_ev if tool == "ev" else main_evse)([*argv, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"rig {tool}: ")
    assert says in captured.err
    assert captured.out == "" and not out.exists()


def test_a_port_in_use_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _loopback()
    sock, port = _busy_port()
    with sock:
        code = main_evse(["--host", "::1", "--port", str(port), "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1
    assert f"cannot listen on [::1]:{port}" in captured.err and "in use" in captured.err


def test_an_output_folder_that_is_a_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main_ev(["--host", "::1", "--port", "5", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err


# --- the controllers ------------------------------------------------------------------------------


def test_the_lab_ev_asks_for_discharge_and_the_lab_charger_gives_it() -> None:
    ev = LabEv(soc=60.0, reserve_soc=30.0, discharge_power=5_000.0)
    request = ev.dc_loop_request(ControlMode.DYNAMIC, True, 0.0)
    assert request.limits is not None
    assert request.limits.max_charge_power == 0.0
    assert request.limits.min_discharge_power == request.limits.max_discharge_power == -5_000.0
    charger = LabCharger(setpoint=11_000.0)
    status = charger.dc_charge_loop(request, 0.0)
    assert status.present_current == pytest.approx(-5_000.0 / ev.voltage)
    assert charger.setpoint == 11_000.0 and len(charger.dc_requests) == 1
    scheduled = ev.dc_loop_request(ControlMode.SCHEDULED, True, 0.0)
    assert scheduled.target_current == pytest.approx(-5_000.0 / ev.voltage)
    # at the reserve the EV asks for nothing
    low = LabEv(soc=30.0, reserve_soc=30.0, discharge_power=5_000.0)
    limits = low.dc_loop_request(ControlMode.DYNAMIC, True, 0.0).limits
    assert limits is not None and limits.min_discharge_power == 0.0
    plain = charger.dc_charge_loop(
        DcLoopRequest(400.0, limits=DcLoopLimits(11_000.0, 0.0, 30.0, 450.0, 300.0)), 1.0
    )
    assert plain.present_current == pytest.approx(11_000.0 / 400.0)


def test_the_lab_ev_stops_after_its_duration_or_when_asked() -> None:
    ev = LabEv(duration=10.0)
    assert ev.intent(5.0) is EvIntent.CHARGE  # the ChargeLoop has not started: no count yet
    ev.power_delivery_done(ChargeProgress.START, 100.0)
    assert ev.intent(109.0) is EvIntent.CHARGE and ev.intent(110.0) is EvIntent.STOP
    other = LabEv()
    other.power_delivery_done(ChargeProgress.START, 0.0)
    assert other.intent(1e6) is EvIntent.CHARGE
    other.request_stop()
    assert other.intent(1e6) is EvIntent.STOP
    charger = LabCharger()
    charger.request_stop()
    (notice,) = charger.notices
    assert notice.notification is Notification.TERMINATE


# --- sessions between the two tools ----------------------------------------------------------------


def _evse(
    tmp_path: Path, processes: list[netns.NsProcess], *argv: str
) -> tuple[netns.NsProcess, int]:
    evse = _spawn(["evse", *argv, "--out", str(tmp_path / "evse")], tmp_path / "evse.log", "evse")
    processes.append(evse)
    port = int(LISTENING.search(evse.wait_for(LISTENING, 30).string).group("port"))  # type: ignore[union-attr]
    return evse, port


def _ev(tmp_path: Path, processes: list[netns.NsProcess], *argv: str) -> netns.NsProcess:
    ev = _spawn(["ev", *argv, "--out", str(tmp_path / "ev")], tmp_path / "ev.log", "ev")
    processes.append(ev)
    return ev


def _summary_ok(process: netns.NsProcess, tool: str) -> None:
    text = process.text()
    assert f"rig {tool}:" in text
    assert "normal SessionStop" in text and "response codes other than OK: none" in text
    assert re.search(r"^timing, .* \(ms\):$", text, re.M)
    assert re.search(r"^  \w+ChargeLoop\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+$", text, re.M)
    assert "(exit 0)" in text


def test_ev_and_evse_run_a_session_over_loopback(
    tmp_path: Path, processes: list[netns.NsProcess]
) -> None:
    _loopback()
    evse, port = _evse(tmp_path, processes, "--host", "::1", "--services", "DC_BPT,AC_BPT")
    ev = _ev(
        tmp_path,
        processes,
        "--host",
        "::1",
        "--port",
        str(port),
        "--duration",
        "0.5",
        "--loop-interval",
        "0.05",
        "--service",
        "AC_BPT",
        "--control-mode",
        "scheduled",
    )
    assert ev.wait(30) == 0, ev.text()
    assert evse.wait(30) == 0, evse.text()
    _summary_ok(ev, "ev")
    _summary_ok(evse, "evse")

    ev_records, evse_records = _records(tmp_path / "ev"), _records(tmp_path / "evse")
    sent = _names(ev_records, "sent")
    assert sent[0] == "supportedAppProtocolReq" and sent[-1] == "SessionStopReq"
    assert "AC_ChargeLoopReq" in sent and _names(evse_records, "received") == sent
    assert _frames(ev_records, "sent") == _frames(evse_records, "received")
    (result,) = _events(ev_records, "session_result")
    assert result["closure"] == "terminated" and result["normal"] is True
    # header TimeStamps are Unix time
    setup = next(r for r in ev_records if r["name"] == "SessionSetupReq")["data"]
    assert abs(setup["SessionSetupReq"]["Header"]["TimeStamp"] - time.time()) < 120  # type: ignore[index]

    for side in ("ev", "evse"):
        out = tmp_path / side
        assert (out / "keylog.txt").read_text() == ""
        assert (out / "keylog.txt").stat().st_mode & 0o777 == 0o600
        capture = read_capture(out / "v2g.pcapng")
        (connection,) = capture.data_connections
        assert connection.client is not None and connection.syn
        client = connection.stream_from(connection.client)
        split = split_v2gtp(client)
        assert [f.payload for f in split.frames] == [f[8:] for f in _frames(ev_records, "sent")]
        assert capture.undecodable == ()


def test_tls_session_puts_the_key_log_into_the_capture(
    tmp_path: Path, processes: list[netns.NsProcess], pki: PkiFolder
) -> None:
    _loopback()
    tls = ["--tls", "--pki", str(pki.directory)]
    evse, port = _evse(tmp_path, processes, "--host", "::1", *tls)
    ev = _ev(
        tmp_path,
        processes,
        "--host",
        "::1",
        "--port",
        str(port),
        "--duration",
        "0.3",
        "--loop-interval",
        "0.05",
        *tls,
    )
    assert ev.wait(30) == 0, ev.text()
    assert evse.wait(30) == 0, evse.text()
    assert "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384" in ev.text()
    for side in ("ev", "evse"):
        out = tmp_path / side
        key_log = (out / "keylog.txt").read_text()
        assert "CLIENT_TRAFFIC_SECRET_0" in key_log and "SERVER_HANDSHAKE_TRAFFIC_SECRET" in key_log
        capture = read_capture(out / "v2g.pcapng")
        assert capture.tls_key_log.decode() == key_log  # the Decryption Secrets Block
        (connection,) = capture.data_connections
        assert connection.client is not None
        server = next(e for e in connection.endpoints if e != connection.client)
        _, decoded = decode_streams(
            KeyLog.parse(key_log),
            connection.stream_from(connection.client).data,
            connection.stream_from(server).data,
        )
        records = _records(out)
        ev_frames = _frames(records, "sent" if side == "ev" else "received")
        assert application_data(decoded, Direction.CLIENT) == b"".join(ev_frames)


def test_ctrl_c_ends_the_ev_session_with_session_stop(
    tmp_path: Path, processes: list[netns.NsProcess]
) -> None:
    _loopback()
    evse, port = _evse(tmp_path, processes, "--host", "::1")
    ev = _ev(tmp_path, processes, "--host", "::1", "--port", str(port), "--loop-interval", "0.05")
    _wait_in_trace(tmp_path / "ev", "DC_ChargeLoopRes")
    ev.signal(signal.SIGINT)
    assert ev.wait(30) == 0, ev.text()
    assert "SIGINT: ending the session" in ev.text()
    assert evse.wait(30) == 0, evse.text()
    sent = _names(_records(tmp_path / "ev"), "sent")
    stop = sent.index("PowerDeliveryReq", sent.index("DC_ChargeLoopReq"))
    assert set(sent[stop + 1 : -1]) == {"DC_WeldingDetectionReq"}
    assert sent[-1] == "SessionStopReq"
    _summary_ok(ev, "ev")


def test_sigterm_to_the_charger_terminates_the_session_through_the_ev(
    tmp_path: Path, processes: list[netns.NsProcess]
) -> None:
    _loopback()
    evse, port = _evse(tmp_path, processes, "--host", "::1", "--sessions", "0")
    ev = _ev(tmp_path, processes, "--host", "::1", "--port", str(port), "--loop-interval", "0.05")
    _wait_in_trace(tmp_path / "evse", "DC_ChargeLoopRes")
    evse.signal(signal.SIGTERM)
    assert evse.wait(30) == 0, evse.text()
    assert ev.wait(30) == 0, ev.text()
    records = _records(tmp_path / "evse")
    notified = [
        r
        for r in records
        if r["kind"] == "sent"
        and r["name"] == "DC_ChargeLoopRes"
        and r["data"]["DC_ChargeLoopRes"].get("EVSEStatus")  # type: ignore[index, union-attr]
    ]
    assert notified[-1]["data"]["DC_ChargeLoopRes"]["EVSEStatus"]["EVSENotification"] == "Terminate"  # type: ignore[index]
    assert _names(records, "received")[-1] == "SessionStopReq"
    assert "draining" in json.dumps(_events(records, "host_closed"))


def test_an_idle_charger_interrupted_exits_130_and_still_writes_its_files(
    tmp_path: Path, processes: list[netns.NsProcess]
) -> None:
    _loopback()
    evse, _ = _evse(tmp_path, processes, "--host", "::1")
    evse.signal(signal.SIGINT)
    assert evse.wait(30) == 130
    assert "sessions: none" in evse.text() and "result: interrupted (exit 130)" in evse.text()
    assert _events(_records(tmp_path / "evse"), "host_closed")
    assert read_capture(tmp_path / "evse" / "v2g.pcapng").format == "pcapng"


def test_an_ev_with_no_charger_exits_1_with_the_reason(
    tmp_path: Path, processes: list[netns.NsProcess]
) -> None:
    _loopback()
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    ev = _ev(tmp_path, processes, "--host", "::1", "--port", str(port))
    assert ev.wait(30) == 1
    assert "no session" in ev.text() and "could not connect" in ev.text()
    assert "(exit 1)" in ev.text()


def _wait_in_trace(out: Path, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    path = out / "trace.jsonl"
    while time.monotonic() < deadline:
        if path.exists() and f'"name":"{name}"' in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {name} in {path} within {timeout} s")


# --- on a veth pair: SDP, live capture, discharge ---------------------------------------------


def test_sdp_session_with_discharge_on_a_veth_pair(tmp_path: Path, veth: netns.VethPair) -> None:
    evse = veth.spawn(
        "evse",
        [
            *TOOL,
            "evse",
            "--iface",
            veth.evse_interface,
            "--services",
            "DC_BPT",
            "--out",
            str(tmp_path / "evse"),
        ],
        name="rig-evse",
        cwd=tmp_path,
    )
    evse.wait_for(LISTENING, 30)
    ev = veth.spawn(
        "ev",
        [
            *TOOL,
            "ev",
            "--iface",
            veth.ev_interface,
            "--discharge-kw",
            "5",
            "--duration",
            "0.5",
            "--loop-interval",
            "0.05",
            "--soc",
            "70",
            "--out",
            str(tmp_path / "ev"),
        ],
        name="rig-ev",
        cwd=tmp_path,
    )
    assert ev.wait(30) == 0, ev.text()
    assert evse.wait(30) == 0, evse.text()
    assert f"SECC: {veth.evse_address} port" in ev.text() and "SDP request(s)" in ev.text()

    ev_records = _records(tmp_path / "ev")
    (found,) = _events(ev_records, "secc_found")
    assert found["address"] == veth.evse_address and found["how"] == "sdp"
    loop = [
        r["data"]["DC_ChargeLoopReq"]
        for r in ev_records
        if r["name"] == "DC_ChargeLoopReq" and r["kind"] == "sent"
    ]  # type: ignore[index]
    mode = loop[0]["BPT_Dynamic_DC_CLReqControlMode"]  # type: ignore[index]
    assert mode["EVMaximumChargePower"]["Value"] == 0  # type: ignore[index]
    res = [r["data"]["DC_ChargeLoopRes"] for r in ev_records if r["name"] == "DC_ChargeLoopRes"]  # type: ignore[index]
    current = res[-1]["EVSEPresentCurrent"]  # type: ignore[index]
    assert current["Value"] * 10 ** current["Exponent"] == pytest.approx(-5_000 / 400, rel=0.01)  # type: ignore[index, operator]

    # as root on a veth end the capture is live; it saw SDP and the session
    for side, address in (("ev", veth.ev_address), ("evse", veth.evse_address)):
        text = (ev if side == "ev" else evse).text()
        assert "v2g.pcapng: live" in text, text
        capture = read_capture(tmp_path / side / "v2g.pcapng")
        assert any(d.payload[:4] == b"\x01\xfe\x90\x00" for d in capture.sdp)
        assert any(d.payload[:4] == b"\x01\xfe\x90\x01" for d in capture.sdp)
        (connection,) = capture.data_connections
        assert connection.client is not None and connection.client.address == veth.ev_address
        split = split_v2gtp(connection.stream_from(connection.client))
        assert [f.payload for f in split.frames] == [f[8:] for f in _frames(ev_records, "sent")]
        assert address in {e.address for e in connection.endpoints}


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)
