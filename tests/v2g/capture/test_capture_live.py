"""A live capture (scapy AsyncSniffer through CaptureWriter) of SDP and a small TCP exchange over
link-local IPv6 on a veth pair between two network namespaces the test makes (live_exchange.py),
read back to the bytes both sides sent, with kernel timestamps inside the run's wall time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from capture_helpers import missing, run_tshark
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

from rig.v2g.capture import CaptureWriter, LiveCapture, live_filter
from rig.v2g.pcapread import Endpoint, read_capture, split_v2gtp

HELPER = Path(__file__).with_name("live_exchange.py")


@pytest.fixture(scope="module", params=["bpf", "python"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """The exchange captured with the BPF filter (libpcap) and with the Python selection."""
    if os.geteuid() != 0:
        missing("a live capture in a network namespace needs root")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            missing(f"{tool} not installed (util-linux, iproute2)")
    out = tmp_path_factory.mktemp("live")
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(HELPER), "secc", str(out), request.param],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        missing(f"cannot make a network namespace here: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    return out / "v2g.pcapng", json.loads(result.stdout.strip().splitlines()[-1])


def test_both_sides_exchanged_what_the_script_says(live: tuple[Path, dict[str, Any]]) -> None:
    _, report = live
    assert report["sent"] == report["secc_got"] and report["received"] == report["secc_sent"]
    assert report["sdp_request"] == report["secc_sdp_got"]
    assert report["errors"] == [] and report["frames"] == report["frames_in_file"] > 10


def test_the_filter_kept_only_the_session_and_sdp(live: tuple[Path, dict[str, Any]]) -> None:
    path, report = live
    for packet in rdpcap(str(path)):
        assert packet.haslayer(IPv6)
        if packet.haslayer(TCP):
            assert report["tcp_port"] in (packet[TCP].sport, packet[TCP].dport)
        else:
            assert 15118 in (packet[UDP].sport, packet[UDP].dport)


def test_the_live_capture_reassembles_to_the_bytes_sent(live: tuple[Path, dict[str, Any]]) -> None:
    path, report = live
    capture = read_capture(path)
    assert capture.undecodable == ()
    (connection,) = capture.connections  # the BPF filter kept only the session's port
    client = Endpoint("fe80::2", report["evcc_tcp_port"])
    server = Endpoint("fe80::1", report["tcp_port"])
    assert connection.client == client and connection.syn and not connection.reset
    to_secc, to_evcc = connection.stream_from(client), connection.stream_from(server)
    assert to_secc.data == bytes.fromhex(report["sent"])
    assert to_evcc.data == bytes.fromhex(report["secc_sent"])
    assert to_secc.complete and to_evcc.complete and to_secc.fin and to_evcc.fin
    requests = split_v2gtp(to_secc)
    assert requests.undecodable == () and [len(f.payload) for f in requests.frames] == [
        40,
        81,
        3000,
    ]
    responses = split_v2gtp(to_evcc).frames
    for request, response in zip(requests.frames, responses, strict=True):
        assert request.end_ns <= response.start_ns


def test_the_live_capture_holds_the_sdp_exchange(live: tuple[Path, dict[str, Any]]) -> None:
    path, report = live
    request, response = read_capture(path).sdp
    assert request.payload == bytes.fromhex(report["sdp_request"])
    assert request.dst == Endpoint("ff02::1", 15118)
    assert request.src == Endpoint("fe80::2", report["evcc_sdp_port"])
    assert response.payload == bytes.fromhex(report["secc_sdp_sent"])
    assert response.src == Endpoint("fe80::1", 15118)


def test_live_timestamps_are_kernel_times_inside_the_run(live: tuple[Path, dict[str, Any]]) -> None:
    path, report = live
    frames = rdpcap(str(path))
    times = [int(p.time * 10**6) * 1000 for p in frames]
    assert times == sorted(times)
    # Microsecond resolution: a frame may be stamped up to 1 us before the start was read.
    assert report["started_ns"] - 1000 <= times[0] and times[-1] <= report["ended_ns"]


def test_the_interface_block_names_the_interface_and_the_filter(
    live: tuple[Path, dict[str, Any]],
) -> None:
    path, report = live
    assert report["filter"] == "(ip6 and (tcp port 64109 or udp port 15118))"
    data = path.read_bytes()
    assert b"v2gcap-se" in data and report["filter"].encode() in data
    if report["requested"] == "python":
        assert report["filter_mode"] == "python"
    elif shutil.which("tshark") is not None:
        assert report["filter_mode"] == "bpf"  # libpcap comes with tshark
    else:
        assert report["filter_mode"] in ("bpf", "python")  # python when libpcap is missing


def test_tshark_reads_the_live_capture_without_errors(live: tuple[Path, dict[str, Any]]) -> None:
    path, _ = live
    if shutil.which("tshark") is None:
        missing("tshark not installed (Debian: apt-get install -y tshark)")
    out = run_tshark(
        path,
        "-Y",
        "_ws.expert.severity >= 0x00600000 || _ws.malformed",
        "-T",
        "fields",
        "-e",
        "frame.number",
    )
    # Checksums are not judged: frames sent by this host carry offloaded (unfilled) checksums.
    bad = [line for line in out.splitlines() if line.strip()]
    if bad:
        detail = run_tshark(
            path,
            "-q",
            "-z",
            "expert",
            "-o",
            "tcp.check_checksum:FALSE",
            "-o",
            "udp.check_checksum:FALSE",
        )
        assert "Warns" not in detail and "Errors" not in detail, detail


# -- without a namespace --------------------------------------------------------------------------


def test_live_filters_are_what_libpcap_compiles() -> None:
    try:
        from scapy.arch.common import compile_filter

        for selection in (
            live_filter([64109]),
            live_filter([64109, 64110], slac=True),
            live_filter(),
            live_filter([1], sdp=False),
        ):
            compile_filter(selection, linktype=1)
    except ImportError:
        missing("libpcap not installed (Debian: libpcap0.8)")
    assert live_filter([64109], slac=True) == (
        "(ip6 and (tcp port 64109 or udp port 15118)) or (ether proto 0x88e1)"
    )
    assert live_filter() == "(ip6 and (tcp or udp port 15118))"


def test_the_python_selection_matches_the_filter(tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import ICMPv6ND_NS
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    macs = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    six = Ether(**macs) / IPv6(src="fe80::1", dst="fe80::2")
    cases = [
        (six / TCP(sport=50000, dport=64109), True),
        (six / TCP(sport=64109, dport=50000), True),
        (six / TCP(sport=50000, dport=80), False),
        (six / UDP(sport=49200, dport=15118), True),
        (six / UDP(sport=49200, dport=53), False),
        (six / ICMPv6ND_NS(tgt="fe80::2"), False),
        (Ether(**macs) / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(dport=64109), False),
        (Ether(type=0x88E1, **macs) / Raw(b"\x01\x64\x60"), True),
    ]
    with CaptureWriter(tmp_path / "x.pcapng", epoch_ns=0) as writer:
        live = LiveCapture(writer, "lo", tcp_ports=[64109], slac=True, bpf=False)
        assert [live._selected(Ether(bytes(p))) for p, _ in cases] == [want for _, want in cases]


def test_a_live_capture_refuses_an_unknown_interface_or_a_writer_for_another(
    tmp_path: Path,
) -> None:
    with CaptureWriter(tmp_path / "x.pcapng", epoch_ns=0) as writer:
        live = LiveCapture(writer, "no-such-if0", tcp_ports=[64109])
        with pytest.raises(ValueError, match="no-such-if0"):
            live.start(timeout=1.0)
        live = LiveCapture(writer, "lo", tcp_ports=[64109])  # the writer says v2g-synthesized
        with pytest.raises(ValueError, match="live_interface"):
            live.start(timeout=1.0)
