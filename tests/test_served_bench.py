"""The real-bench path end to end on one machine: `rig emulate --serve --bench-out FILE` serves the
emulated bench on loopback (instruments as SCPI sockets, the EVSE's -20 SECC over TCP with TLS 1.3,
its control interface), and `rig run PLAN --bench FILE` drives it as it would drive real hardware:
pyvisa-py over TCP, the rig's EVCC over TCP, in real time."""

import json
from pathlib import Path

import numpy as np
import pytest

from rig.bench import load_bench
from rig.trace import Trace
from tests.served import run_plan, served_bench

REPO = Path(__file__).resolve().parent.parent
CASES = {
    # the DUT: (bench file served, plan, the rig's own engine)
    "evse": ("fixtures/benches/emulated.yaml", "fixtures/plans/served_short.yaml"),
    "ev": ("fixtures/benches/emulated-ev.yaml", "fixtures/plans/served_short_ev.yaml"),
}


@pytest.mark.parametrize("side", sorted(CASES))
def test_a_plan_runs_against_the_served_bench_through_the_real_bench_path(
    tmp_path: Path, side: str
) -> None:
    served, plan_file = CASES[side]
    PLAN = REPO / plan_file
    bench_file = tmp_path / "served.yaml"
    with served_bench(served, PLAN, bench_file) as lines:
        # One line per served part: role, model, address (issue 12's format), and the SECC.
        assert any(
            line.startswith("power_analyzer yokogawa_wt5000 TCPIP::127.0.0.1::") for line in lines
        )
        dut_line = "dut evse_secc tcp:[::1]:" if side == "evse" else "dut ev_evcc connects to"
        assert any(line.startswith(dut_line) for line in lines)
        bench = load_bench(bench_file)
        assert bench.dut.side == side and not bench.dut.emulated and bench.dut.tls
        assert bench.dut.port and (bench.dut.control if side == "evse" else True)
        assert all(i.address.startswith("TCPIP::127.0.0.1::") for i in bench.instruments)
        out = tmp_path / "out"
        run_plan(PLAN, bench_file, out, timeout=180)
    (plan_run,) = json.loads((out / "record.json").read_text())["runs"]
    assert plan_run["verdict"] == "pass" and plan_run["protocol"] == "ISO 15118-20"
    trace = Trace.load(out / f"{PLAN.stem}.trace.jsonl")
    assert trace.meta["virtual_time"] is False
    (tls,) = trace.events_named("tls_established")
    assert tls.data["version"] == "TLSv1.3"
    # The served EVSE followed the setpoints it got through its control interface; the served EV
    # charged and discharged as the rig's charger (the DC source as its output) commanded.
    t, p = trace.series(
        "power_analyzer.evse_ac.p_w" if side == "evse" else "power_analyzer.evse_dc.p_w"
    )
    steps = {s.args["p_w"]: s.t for s in trace.steps_of("setpoint")}
    for setpoint, t0 in steps.items():
        settled = p[(t > t0 + 2.0) & (t < t0 + 3.5)]
        assert settled.size and np.all(np.abs(settled - setpoint) < 300), (setpoint, settled)
    assert (out / f"{PLAN.stem}.v2g.pcapng").stat().st_size > 1000
    assert (out / f"{PLAN.stem}.keylog.txt").read_text().count("TRAFFIC_SECRET_0") == 2
    if side == "ev":  # the battery emulator's channel is in the rig's sign either way
        t_dc, p_dc = trace.series("dc_source.p_w")
        assert np.corrcoef(np.interp(t, t_dc, p_dc), p)[0, 1] > 0.95
