"""SLAC over a veth pair between two network namespaces, with stand-in modems: the test harness.

Our EV side runs on the EV end, our EVSE side (or nothing, when a peer plays the EVSE) on the
EVSE end, both on one RealClock's asyncio loop in the test's thread; the stand-ins for the two
modems (rig.v2g.slac.raw.ModemStandIn) listen on both ends. Sockets are opened inside each
namespace (netns.VethPair.entered) and live there for good.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import netns

from rig.clock import RealClock
from rig.v2g.slac import EvseSlac, EvSlac, SlacEndpoint, SlacRecord, SlacTiming
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.raw import ModemStandIn, RawPort, homeplug_socket

EV_MODEM_MAC = bytes.fromhex("00b052e00001")
EVSE_MODEM_MAC = bytes.fromhex("00b052e00002")


@dataclass
class VethSlac:
    """Everything of one run: the clock, the ports, the stand-ins, the endpoints, the records."""

    clock: RealClock
    ev_port: RawPort
    evse_port: RawPort | None
    stand_in: ModemStandIn
    ev_modem: EmulatedModem
    evse_modem: EmulatedModem
    ev: SlacEndpoint
    evse: SlacEndpoint | None
    records: list[SlacRecord] = field(default_factory=list)

    def run_until_matched(self, timeout: float) -> float:
        """Serve the loop until the EV side is matched or failed (and ours EVSE too); the time."""
        deadline = self.clock.now() + timeout
        ev = self.ev.machine
        assert isinstance(ev, EvSlac)
        while self.clock.now() < deadline:
            self.clock.run_until(min(self.clock.now() + 0.005, deadline))
            evse_done = self.evse is None or getattr(self.evse.machine, "match", None) is not None
            if (ev.match is not None and evse_done) or ev.failure is not None:
                break
        return self.clock.now()

    def close(self) -> None:
        self.ev.close()
        if self.evse is not None:
            self.evse.close()
        self.ev_port.close()
        if self.evse_port is not None:
            self.evse_port.close()
        self.stand_in.close()
        self.clock.close()


def open_veth_slac(
    pair: netns.VethPair,
    *,
    our_evse: bool = True,
    timing: SlacTiming | None = None,
    seed: int = 1,
) -> VethSlac:
    """Sockets, stand-ins and our sides on `pair`; nothing is started yet."""
    timing = timing or SlacTiming()
    clock = RealClock()
    records: list[SlacRecord] = []
    with pair.entered("ev"):
        ev_sock = homeplug_socket(pair.ev_interface)
        ev_tap = homeplug_socket(pair.ev_interface, all_frames=True)
    with pair.entered("evse"):
        evse_sock = homeplug_socket(pair.evse_interface) if our_evse else None
        evse_tap = homeplug_socket(pair.evse_interface, all_frames=True)
    rng = random.Random(seed)
    ev_modem = EmulatedModem(EV_MODEM_MAC, rng=random.Random(rng.random()))
    evse_modem = EmulatedModem(EVSE_MODEM_MAC, rng=random.Random(rng.random()))
    stand_in = ModemStandIn(ev_tap, evse_tap, ev_modem, evse_modem, clock.loop)
    ev_port = RawPort(ev_sock, clock.loop)
    ev = SlacEndpoint(
        EvSlac(ev_port.mac, timing, rng=random.Random(rng.random()), recorder=records.append),
        ev_port,
        clock,
    )
    evse_port = evse = None
    if evse_sock is not None:
        evse_port = RawPort(evse_sock, clock.loop)
        evse = SlacEndpoint(
            EvseSlac(
                evse_port.mac, timing, rng=random.Random(rng.random()), recorder=records.append
            ),
            evse_port,
            clock,
        )
    return VethSlac(clock, ev_port, evse_port, stand_in, ev_modem, evse_modem, ev, evse, records)
