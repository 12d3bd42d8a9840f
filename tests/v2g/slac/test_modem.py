"""The local modem's management driver (rig.v2g.modem) against the stand-in modem on the emulated
powerline, in virtual time: version, MAC and NMK read back, a key set and read again, a silent
modem timing out."""

from __future__ import annotations

import random

from rig.clock import VirtualClock
from rig.v2g.modem import LocalModem, ModemError, ModemIdentity
from rig.v2g.slac import messages as m
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.powerline import Powerline

HOST = bytes.fromhex("02000000aa01")
MODEM = bytes.fromhex("00b052000042")


def _modem(clock: VirtualClock, with_modem: bool = True) -> tuple[LocalModem, EmulatedModem]:
    line = Powerline(clock)
    stand_in = EmulatedModem(MODEM, rng=random.Random(1))
    port = line.attach(HOST, stand_in if with_modem else None)
    line.attach(bytes.fromhex("02000000bb01"))  # someone else on the line
    driver = LocalModem(port, clock)
    port.set_receiver(driver.receive)
    return driver, stand_in


def test_identify_reads_version_mac_and_nmk_and_set_key_changes_it() -> None:
    clock = VirtualClock()
    driver, stand_in = _modem(clock)
    results: list[object] = []
    driver.identify(results.append)
    clock.run_until(1.0)
    (first,) = results
    assert isinstance(first, ModemIdentity)
    assert first.mac == MODEM and first.device == "QCA7000" and "emulated" in first.version
    assert first.nmk == bytes(16)
    nmk = bytes(range(16, 32))
    driver.set_key(nmk, results.append)
    driver.identify(results.append)
    clock.run_until(2.0)
    cnf, second = results[1:]
    assert isinstance(cnf, m.SetKeyCnf) and cnf.your_nonce == b"\xaa" * 4
    assert isinstance(second, ModemIdentity)
    assert second.nmk == nmk and second.nid == m.nid_from_nmk(nmk) == stand_in.nid
    assert driver.modem_mac == MODEM


def test_a_modem_that_never_answers_times_out() -> None:
    clock = VirtualClock()
    driver, _ = _modem(clock, with_modem=False)
    results: list[object] = []
    driver.version(results.append)
    clock.run_until(5.0)
    (error,) = results
    assert isinstance(error, ModemError) and "VS_SW_VER.CNF" in str(error)
