"""The namespace helper itself (tests/netns.py): what it builds and that it always cleans up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import netns
import pytest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose once reaped or exited.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_each_end_has_only_its_interface_and_address(veth: netns.VethPair) -> None:
    evse = veth.evse.run(["ip", "-o", "-6", "addr", "show", "dev", veth.evse_interface])
    ev = veth.ev.run(["ip", "-o", "-6", "addr", "show", "dev", veth.ev_interface])
    assert "fe80::1/64" in evse and evse.count("inet6") == 1
    assert "fe80::2/64" in ev and ev.count("inet6") == 1
    # The host's interfaces are not there, nor is the other end.
    links = veth.evse.run(["ip", "-o", "link", "show"])
    assert veth.ev_interface not in links.split(":")[1::2]
    assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {
        "lo",
        veth.evse_interface,
    }


def test_a_spawned_entry_point_streams_its_output_to_its_log(veth: netns.VethPair) -> None:
    code = "import socket, time; print('names', [n for _, n in socket.if_nameindex()], flush=True); time.sleep(30)"
    process = veth.spawn("ev", [sys.executable, "-c", code], name="probe")
    match = process.wait_for(r"^names (.*)$", timeout=20)
    assert match.group(1) == "['lo', 'veth-evcc']"
    assert process.running
    process.stop(grace=2.0)
    assert not process.running
    assert process.log_path is not None and "veth-evcc" in process.log_path.read_text()


def test_everything_is_stopped_when_the_test_fails_inside(tmp_path: Path) -> None:
    reason = netns.unavailable_reason()
    if reason is not None:
        netns._missing(reason)
    pids: list[int] = []
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    with (
        pytest.raises(RuntimeError, match="a failing test"),
        netns.veth_pair(log_dir=tmp_path) as pair,
    ):
        process = pair.spawn("evse", [sys.executable, "-c", stubborn])
        process.wait_for("^up$", timeout=20)
        pids += [process.pid, pair.evse.pid, pair.ev.pid]
        raise RuntimeError("a failing test")
    assert pids and not any(_alive(pid) for pid in pids)


def test_wait_for_reports_the_tail_when_the_process_ends_first(veth: netns.VethPair) -> None:
    process = veth.spawn("evse", [sys.executable, "-c", "print('only this')"])
    with pytest.raises(TimeoutError, match=r"ended \(code 0\)(.|\n)*only this"):
        process.wait_for("never printed", timeout=20)
