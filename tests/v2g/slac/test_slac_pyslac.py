"""Our EV-side SLAC against pyslac's EVSE side (PyPI `pyslac`, in its own venv .venv-slac made by
.ci/slac-peer-setup) on a veth pair in namespaces the test makes, with stand-in modems: both
match, and the NMK pyslac set on its modem is the one our EV gives its own modem."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from slac_harness import open_veth_slac

from rig.v2g.slac import EvSlac, RecordKind, SlacTiming
from rig.v2g.slac.messages import nid_from_nmk

REPO = Path(__file__).resolve().parents[3]
SLAC_VENV = Path(os.environ.get("RIG_SLAC_VENV", REPO / ".venv-slac"))
LAUNCHER = Path(__file__).resolve().parent / "pyslac_evse.py"


def _missing(reason: str) -> None:
    from peers.josev import missing

    missing(reason)


def pyslac_python() -> Path:
    python = SLAC_VENV / "bin" / "python"
    if not python.exists():
        _missing(f"SLAC peer venv {SLAC_VENV} not found (run .ci/slac-peer-setup)")
    probe = subprocess.run(
        [str(python), "-c", "import pyslac.session"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        _missing(f"pyslac does not import in {SLAC_VENV}: {probe.stderr.strip()[-300:]}")
    return python


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)


def test_our_ev_matches_pyslacs_evse_on_the_same_key(veth: netns.VethPair) -> None:
    python = pyslac_python()
    # pyslac takes a while between its frames (a new socket per phase, asyncio reads sized to
    # each message); the EV keeps -3's timers but may retry CM_SLAC_PARM.REQ until pyslac listens.
    run = open_veth_slac(veth, our_evse=False, timing=SlacTiming(ev_match_retry=20))
    peer = veth.spawn("evse", [str(python), str(LAUNCHER), veth.evse_interface], name="pyslac")
    try:
        # Serve the stand-ins while pyslac sets its key, until it handles state B.
        deadline = run.clock.now() + 30.0
        while "READY" not in peer.text():
            assert peer.running, peer.tail()
            assert run.clock.now() < deadline, f"pyslac not ready:\n{peer.tail()}"
            run.clock.run_until(run.clock.now() + 0.02)
        run.ev.start()
        run.run_until_matched(timeout=20.0)
        ev = run.ev.machine
        assert isinstance(ev, EvSlac)
        assert ev.failure is None and ev.match is not None, f"{ev.failure}\n{peer.tail(40)}"
        line = peer.wait_for(r"^MATCHED (\w+) (\w+) (\w+) (\w+)$", timeout=10.0)
        nmk, nid, pev_mac, run_id = (bytes.fromhex(g) for g in line.groups())
        # pyslac's network key, handed to our EV in CM_SLAC_MATCH.CNF, is in both modems.
        assert ev.match.nmk == nmk == run.evse_modem.nmk == run.ev_modem.nmk
        assert ev.match.nid == nid == nid_from_nmk(nmk) == run.ev_modem.nid
        assert pev_mac == run.ev_port.mac and run_id == ev.match.run_id
        received = [r.name for r in run.records if r.kind is RecordKind.RECEIVED]
        assert received == [
            "CM_SLAC_PARM.CNF",
            "CM_ATTEN_CHAR.IND",
            "CM_SLAC_MATCH.CNF",
            "CM_SET_KEY.CNF",
        ]
        # pyslac averaged the stand-in's ten reports (its profile reaches our EV).
        assert ev.match.attenuation_db is not None and 21.0 < ev.match.attenuation_db < 25.0
        assert run.evse_modem.sounds_heard == 10
    finally:
        code = peer.stop(grace=1.0)
        run.close()
    assert code in (0, -2, -15, 130), f"pyslac exit {code}\n{peer.tail()}"
