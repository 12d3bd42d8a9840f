"""The real-bench path of the cable, on one machine: a link plan on a bench whose DUT is "real" (an
EVSE reached over the network), whose modem interface is one end of a veth pair between two
network namespaces the test makes, and whose control pilot is the rig's pilot box reached through
pyvisa-py over TCP. On the far end: stand-in modems, our EVSE side of SLAC and of the pilot (the
pilot box twin's line), and `rig evse` answering SDP and serving the -20 session. The rig runs
the plan in real time as on a lab bench: its EV side of SLAC on a packet socket, the pilot through
SCPI, SDP and the session over the veth."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from far_evse import EV_MODEM_MAC, FarEvse, open_far_evse

from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.v2g.slac import RecordKind

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "fixtures/plans/cable_veth.yaml"
LISTENING = re.compile(r"^rig evse: listening on")


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)


@pytest.fixture
def far(veth: netns.VethPair) -> Iterator[FarEvse]:
    end = open_far_evse(veth)
    end.start()
    try:
        yield end
    finally:
        end.close()


def _bench(tmp_path: Path, veth: netns.VethPair, far: FarEvse) -> Path:
    modem = ":".join(f"{b:02x}" for b in EV_MODEM_MAC)
    path = tmp_path / "veth-bench.yaml"
    path.write_text(
        f"""\
name: veth bench (the far end plays a real EVSE)
dut: {{side: evse, name: far EVSE, firmware: rig evse, emulated: false, rated_power: 11 kW}}
teardown_timeout: 5 s
link:
  interface: {veth.ev_interface}
  modem: "{modem}"
  pilot_poll: 10 ms
instruments:
  pilot:
    role: control_pilot
    model: rig_pilot_box
    address: "{far.pilot_address}"
    side: ev
""",
        encoding="utf-8",
    )
    return path


def test_a_link_plan_runs_on_the_real_bench_path_over_a_veth_pair(
    tmp_path: Path, veth: netns.VethPair, far: FarEvse
) -> None:
    secc = veth.spawn(
        "evse",
        [sys.executable, "-m", "rig.standalone", "evse", "--iface", veth.evse_interface,
         "--services", "DC_BPT", "--out", str(tmp_path / "secc")],
        name="rig-evse", cwd=tmp_path,
    )  # fmt: skip
    secc.wait_for(LISTENING, 30)
    bench = load_bench(_bench(tmp_path, veth, far))
    assert bench.link is not None and not bench.dut.emulated
    with veth.entered("ev"):  # the run's sockets live on the EV end, as on the bench's host
        result = execute(load_plan(PLAN), bench, seed=1, out_dir=tmp_path / "out")
    assert far.error is None, far.error
    assert result.error is None, (result.error, secc.tail())
    rows = {v.name: v for v in result.verdicts}
    for name, verdict in rows.items():
        assert verdict.verdict == "pass", (name, verdict.detail)
    assert result.trace.meta["virtual_time"] is False

    events = result.trace.events
    # The pilot as the pilot box measured it, read by polling: A, B, B with the far EVSE's 5 %
    # PWM, C after the EV's PowerDeliveryReq(Start), B after its Stop, A after the unplug.
    pilot = [e for e in events if e.src == "pilot" and e.name == "reading"]
    states = [str(e.data["state"]) for e in pilot]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == [
        "A", "B", "C", "B", "A",
    ]  # fmt: skip
    assert any(e.data["duty"] == pytest.approx(0.05, abs=1e-3) for e in pilot)
    c_after = rows["pilot_state_c_after_start"].measured
    assert c_after is not None and 0.04 < c_after < 0.25  # 50 ms, plus the reading's delay

    # SLAC on the veth: our EV side (the run) and our EVSE side (the far end) on one key, which
    # both stand-in modems now hold.
    link_up = next(e for e in events if e.src == "link" and e.name == "link_up")
    (matched,) = [r for r in far.records if r.kind is RecordKind.MATCHED]  # reset at unplug
    assert link_up.data["nid"] == matched.data["nid"] == far.machine.nid.hex()
    assert far.ev_modem.nmk == far.evse_modem.nmk == far.machine.nmk
    assert far.evse_modem.sounds_heard == 10
    sent = {e.data["name"] for e in events if e.src == "slac" and e.data.get("kind") == "sent"}
    assert {"CM_SLAC_PARM.REQ", "CM_SLAC_MATCH.REQ", "CM_SET_KEY.REQ"} <= sent
    # The session after the link, found by SDP on the veth, ended normally.
    first = next(e for e in events if e.src == "v2g" and e.name == "message")
    assert first.t > link_up.t
    deliveries = [
        e.data["body"]["PowerDeliveryReq"]["ChargeProgress"]
        for e in events
        if e.name == "message" and e.data["message"] == "PowerDeliveryReq"
    ]
    assert deliveries == ["Start", "Stop"]
    assert secc.wait(30) == 0, secc.tail()
