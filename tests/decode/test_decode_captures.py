"""`rig decode` on the real-car captures in ../shared/pcaps: every SLAC frame parsed, every V2GTP
payload decoded with the codec its connection negotiated (DIN 70121 or ISO 15118-2), nothing
undecodable; counts and a few decoded values pinned per capture, and the three output files."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rig.decode import main
from rig.decode.capture import DecodedCapture, DecodedEvent, decode_capture, message_content
from rig.decode.timeline import charge_loop, phases, physical
from rig.trace import Trace

POLESTAR = "pyPLC__2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng"
AUDI = "tux-evse__audi-dc-iso2.pcap"
VW = "tux-evse__vw-ac-iso2.pcap"


@dataclass(frozen=True)
class Pinned:
    frames: int
    slac: int
    v2gtp: int
    namespaces: dict[str, int]
    # the first ChargeParameterDiscoveryReq: (transfer mode, max voltage V, max current A)
    first_cpd: tuple[str, float, float]
    # the last CurrentDemandReq and Res: (target V, target A), (present V, present A); AC: None
    last_demand: tuple[tuple[float, float], tuple[float, float]] | None
    charge_loop_points: int


PINNED = {
    POLESTAR: Pinned(
        1223, 51, 186, {"app": 2, "din": 184}, ("DC_extended", 470.0, 375.0),
        ((450.0, 22.1), (450.0, 1.0)), 66,
    ),
    AUDI: Pinned(
        4176, 35, 1492, {"app": 2, "iso2": 1490}, ("DC_extended", 408.0, 500.0),
        ((408.0, 0.0), (366.4, 1504.3)), 692,
    ),
    VW: Pinned(
        100, 35, 18, {"app": 2, "iso2": 16}, ("AC_three_phase_core", 413.0, 350.0), None, 0
    ),
}  # fmt: skip

_CACHE: dict[str, DecodedCapture] = {}


def decoded(shared: Path, name: str) -> DecodedCapture:
    if name not in _CACHE:
        _CACHE[name] = decode_capture(shared / "pcaps" / name)
    return _CACHE[name]


def _content(event: DecodedEvent) -> Any:
    return message_content(event.data["body"])


@pytest.mark.parametrize("name", sorted(PINNED), ids=lambda n: n.split("__")[1][:12])
def test_a_real_car_capture_decodes_completely(shared: Path, name: str) -> None:
    d, pin = decoded(shared, name), PINNED[name]
    assert d.problems == []
    s = d.summary()
    assert (s["frames"], s["slac"], s["sdp"], s["v2gtp"]) == (pin.frames, pin.slac, 2, pin.v2gtp)
    assert (s["exi_decoded"], s["exi_failed"]) == (pin.v2gtp, 0)
    assert s["messages_per_namespace"] == pin.namespaces
    assert s["namespaces"] == sorted(pin.namespaces)
    # Every HomePlug frame of the file is a decoded SLAC (or modem) message.
    assert sum(e.src == "slac" for e in d.events) == pin.slac
    # Every frame of the file is in the trace: one event per frame without a message, one per
    # message (a V2GTP message is attributed to the frame that completed it).
    framed = {e.data["frame"] for e in d.events if "frame" in e.data}
    assert framed == set(range(1, pin.frames + 1))


@pytest.mark.parametrize("name", sorted(PINNED), ids=lambda n: n.split("__")[1][:12])
def test_decoded_values_of_the_first_parameter_discovery_and_the_last_demand(
    shared: Path, name: str
) -> None:
    d, pin = decoded(shared, name), PINNED[name]
    cpd = next(e for e in d.events if e.name == "ChargeParameterDiscoveryReq")
    content = _content(cpd)
    mode = content.get("EVRequestedEnergyTransferType", content.get("RequestedEnergyTransferMode"))
    params = content.get("DC_EVChargeParameter") or content.get("AC_EVChargeParameter")
    voltage = physical(params.get("EVMaximumVoltageLimit", params.get("EVMaxVoltage")))
    current = physical(params.get("EVMaximumCurrentLimit", params.get("EVMaxCurrent")))
    assert (mode, voltage, pytest.approx(current)) == pin.first_cpd
    requests = [e for e in d.events if e.name == "CurrentDemandReq"]
    responses = [e for e in d.events if e.name == "CurrentDemandRes"]
    if pin.last_demand is None:
        assert not requests and not responses
        assert charge_loop(d.events) == []
        return
    req, res = _content(requests[-1]), _content(responses[-1])
    target = (physical(req["EVTargetVoltage"]), physical(req["EVTargetCurrent"]))
    present = (physical(res["EVSEPresentVoltage"]), physical(res["EVSEPresentCurrent"]))
    assert target == pytest.approx(pin.last_demand[0])
    assert present == pytest.approx(pin.last_demand[1])
    assert requests[-1].data["from"] == "ev" and responses[-1].data["from"] == "evse"
    loop = charge_loop(d.events)
    assert len(loop) == pin.charge_loop_points
    assert (loop[-1].voltage_v, loop[-1].current_a) == pytest.approx(pin.last_demand[1])


def test_the_session_timeline_runs_from_slac_to_session_stop(shared: Path) -> None:
    spans = {p.name: p for p in phases(decoded(shared, AUDI).events)}
    order = ["slac", "sdp", "tcp", "handshake", "setup", "cable_check", "precharge"]
    assert [n for n in spans if n in order] == order
    for a, b in itertools.pairwise(order):
        assert spans[a].start <= spans[b].start
    # SLAC: PARM.REQ to MATCH.CNF, well under a second on this car; the loop is most of it.
    assert 0.5 < spans["slac"].duration < 1.0 and spans["slac"].messages == 29
    assert spans["charge_loop"].messages == 1384
    assert spans["stop"].end >= spans["charge_loop"].end


def test_rig_decode_writes_the_trace_the_summary_and_the_report(
    shared: Path, tmp_path: Path
) -> None:
    out = tmp_path / "vw"
    assert main([str(shared / "pcaps" / VW), "--out", str(out)]) == 0
    summary = json.loads((out / "decode.json").read_text())
    assert {k: summary[k] for k in ("frames", "slac", "sdp", "v2gtp", "exi_decoded", "exi_failed")} == {
        "frames": 100, "slac": 35, "sdp": 2, "v2gtp": 18, "exi_decoded": 18, "exi_failed": 0
    }  # fmt: skip
    assert summary["namespaces"] == ["app", "iso2"] and summary["undecodable"] == []
    assert [p["phase"] for p in summary["phases"]][:3] == ["slac", "sdp", "tcp"]
    trace = Trace.load(out / "trace.jsonl")
    assert trace.complete and trace.meta["tool"] == "rig decode"
    names = [e.name for e in trace.events if e.src == "v2gtp"]
    assert names[:2] == ["supportedAppProtocolReq", "supportedAppProtocolRes"]
    assert names[-1] == "SessionStopRes"
    parm = next(e for e in trace.events if e.name == "CM_SLAC_PARM.REQ")
    assert parm.data["fields"]["run_id"] == "53bcbd922f882848"
    report = (out / "report.html").read_text()
    assert "Session timeline" in report and "SessionStopRes" in report
    assert "CM_SLAC_MATCH.CNF" in report and "No DC charge-loop values" in report


def test_rig_decode_refuses_a_missing_file_and_two_sources(tmp_path: Path) -> None:
    assert main([str(tmp_path / "none.pcap")]) == 2
    assert main([str(tmp_path / "x.pcap"), "--iface", "lo"]) == 2
