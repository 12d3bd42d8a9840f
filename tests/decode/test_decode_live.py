"""`rig decode --iface`: live on the EVSE end of a veth pair while our two SLAC sides match over
it (namespaces the test makes): the capture decodes with every SLAC frame parsed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "v2g" / "slac"))
from slac_harness import open_veth_slac

from rig.v2g.slac import EvSlac


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)


def test_rig_decode_live_on_an_interface_sees_a_whole_slac(
    veth: netns.VethPair, tmp_path: Path
) -> None:
    out = tmp_path / "live"
    decoder = veth.spawn(
        "evse",
        [sys.executable, "-c", "import sys; from rig.decode import main; sys.exit(main(sys.argv[1:]))",
         "--iface", veth.evse_interface, "--duration", "3", "--out", str(out)],
        name="decode",
    )  # fmt: skip
    decoder.wait_for("capturing on", timeout=30.0)
    run = open_veth_slac(veth)
    try:
        assert run.evse is not None
        run.evse.start()
        run.clock.run_until(run.clock.now() + 0.05)
        run.ev.start()
        run.run_until_matched(timeout=10.0)
        ev = run.ev.machine
        assert isinstance(ev, EvSlac) and ev.match is not None
    finally:
        run.close()
    assert decoder.wait(30.0) == 0, decoder.tail()
    summary = json.loads((out / "decode.json").read_text())
    assert summary["undecodable"] == [] and summary["exi_failed"] == 0
    assert summary["slac"] >= 21  # 17 frames of the EV, 4 of the EVSE, the stand-ins' answers
    trace = (out / "trace.jsonl").read_text()
    for name in ("CM_SLAC_PARM.REQ", "CM_ATTEN_PROFILE.IND", "CM_SLAC_MATCH.CNF"):
        assert name in trace
    assert (out / "live.pcapng").stat().st_size > 0 and (out / "report.html").is_file()
