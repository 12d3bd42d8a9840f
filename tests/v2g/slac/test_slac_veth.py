"""Our EV-side SLAC against our EVSE-side SLAC on a veth pair in namespaces the test makes, with
stand-in modems answering the local management messages: both match, on the same key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest
from slac_harness import open_veth_slac

from rig.v2g.slac import EvseSlac, EvSlac, RecordKind
from rig.v2g.slac.messages import nid_from_nmk


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)


def test_our_ev_and_our_evse_match_on_one_key_over_a_veth_pair(veth: netns.VethPair) -> None:
    run = open_veth_slac(veth)
    try:
        assert run.evse is not None
        run.evse.start()
        run.clock.run_until(run.clock.now() + 0.05)  # the EVSE's key reaches its modem first
        run.ev.start()
        run.run_until_matched(timeout=10.0)
        ev, evse = run.ev.machine, run.evse.machine
        assert isinstance(ev, EvSlac) and isinstance(evse, EvseSlac)
        assert ev.failure is None, ev.failure
        assert ev.match is not None and evse.match is not None
        # The same network on both sides and in both (stand-in) modems.
        assert ev.match.nmk == evse.match.nmk == evse.nmk
        assert run.ev_modem.nmk == run.evse_modem.nmk == evse.nmk
        assert ev.match.nid == evse.match.nid == nid_from_nmk(evse.nmk) == run.ev_modem.nid
        assert ev.match.run_id == evse.match.run_id
        assert ev.match.evse_mac == run.evse_port.mac if run.evse_port else False
        assert evse.match.ev_mac == run.ev_port.mac
        # Every sound crossed the veth and came back as the EVSE modem's report.
        assert run.evse_modem.sounds_heard == 10
        received = Counter(
            r.name for r in run.records if r.side == "evse" and r.kind is RecordKind.RECEIVED
        )
        assert received["CM_ATTEN_PROFILE.IND"] == 10
        assert received["CM_SLAC_PARM.REQ"] == 1 and received["CM_SLAC_MATCH.REQ"] == 1
        # The averaged profile is the stand-in's cable (20-26 dB across the band, +-1 dB noise).
        assert ev.match.attenuation_db is not None and 21.0 < ev.match.attenuation_db < 25.0
        assert ev.processes == 1 and not evse.failures
        assert ev.match.duration < 3.0
    finally:
        run.close()


def test_an_ev_alone_on_the_link_stays_unmatched_after_its_retries(veth: netns.VethPair) -> None:
    """No EVSE answers: C_EV_match_retry retries per process, C_conn_max_match processes."""
    run = open_veth_slac(veth, our_evse=False)
    try:
        run.ev.start()
        run.run_until_matched(timeout=5.0)
        ev = run.ev.machine
        assert isinstance(ev, EvSlac)
        assert ev.match is None and ev.failure == "no CM_SLAC_PARM.CNF"
        sent = [r for r in run.records if r.kind is RecordKind.SENT]
        assert [r.name for r in sent] == ["CM_SLAC_PARM.REQ"] * 9  # 3 processes x (1 + 2 retries)
        assert ev.processes == 3
    finally:
        run.close()
