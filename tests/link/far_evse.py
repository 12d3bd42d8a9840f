"""The far end of a veth pair for the real-bench path of the cable: an EVSE's side of the link.

On the EVSE end of the pair: our EVSE side of SLAC on a packet socket, its side of the pilot
(rig.v2g.slac.link.EvseLink) acting on the pilot line that the rig's pilot box twin measures, and
stand-in modems for both hosts (rig.v2g.slac.raw.ModemStandIn). The pilot box twin is served as
a SCPI socket on the loopback of the EV end's namespace, where the rig's run connects to it
through pyvisa-py like to any lab instrument. The SECC itself is `rig evse` (rig.standalone),
started by the test in the EVSE end's namespace.

Threads: the far end runs its own RealClock loop on a thread of its own; the twin's server
threads change the pilot line under the server's lock, and the line's listeners hand each change
to the far loop (call_soon_threadsafe), so EvseLink only ever runs on its loop.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import netns

from instruments.emulated.pilot_box import PilotBoxTwin, pilot_of
from instruments.emulated.server import ServerHandle, serve
from rig.clock import RealClock
from rig.sim import World, WorldConfig
from rig.sim.pilot import PilotLine, PilotReading
from rig.v2g.slac import EvseSlac, SlacEndpoint, SlacRecord, SlacTiming
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.evse import EvseConfig
from rig.v2g.slac.link import EvseLink, EvseLinkSettings
from rig.v2g.slac.raw import ModemStandIn, RawPort, homeplug_socket

EV_MODEM_MAC = bytes.fromhex("00b052e00011")
EVSE_MODEM_MAC = bytes.fromhex("00b052e00022")


class _LockedPilot:
    """The EVSE's side of the line, under the twin server's lock (its threads share the line)."""

    def __init__(self, line: PilotLine, lock: threading.Lock) -> None:
        self.line = line
        self.lock = lock

    def set_pwm(self, duty: float | None, frequency_hz: float = 1000.0) -> None:
        with self.lock:
            self.line.set_pwm(duty, frequency_hz)

    def signal(self, state: str | None) -> None:
        with self.lock:
            self.line.signal(state)


@dataclass
class FarEvse:
    """Everything of the far end; `close()` takes it down."""

    clock: RealClock
    server: ServerHandle
    line: PilotLine
    port: RawPort
    stand_in: ModemStandIn
    ev_modem: EmulatedModem
    evse_modem: EmulatedModem
    slac: SlacEndpoint
    link: EvseLink
    records: list[SlacRecord]
    thread: threading.Thread | None = None
    error: BaseException | None = None
    _stop: bool = False

    @property
    def pilot_address(self) -> str:
        return self.server.address("pilot")

    @property
    def machine(self) -> EvseSlac:
        machine = self.slac.machine
        assert isinstance(machine, EvseSlac)
        return machine

    def start(self) -> None:
        self.thread = threading.Thread(target=self._serve, name="far-evse", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop:
                self.clock.run_until(self.clock.now() + 0.02)
        except BaseException as exc:  # the test reads it: a far end that died fails the test
            self.error = exc

    def close(self) -> None:
        self._stop = True
        if self.thread is not None:
            self.thread.join(5)
        self.slac.close()
        self.port.close()
        self.stand_in.close()
        self.server.close()
        self.clock.close()


def open_far_evse(pair: netns.VethPair, *, seed: int = 1) -> FarEvse:
    """Sockets in their namespaces, the twin served, the EVSE's side ready; not yet started."""
    clock = RealClock()
    world = World(WorldConfig(), seed=seed)
    line = pilot_of(world)
    twin = PilotBoxTwin(world, clock.now, serial="EMU-PILOT")
    with pair.entered("ev"):
        server = serve({"pilot": twin}, host="127.0.0.1")
        ev_tap = homeplug_socket(pair.ev_interface, all_frames=True)
    with pair.entered("evse"):
        evse_sock = homeplug_socket(pair.evse_interface)
        evse_tap = homeplug_socket(pair.evse_interface, all_frames=True)
    rng = random.Random(seed)
    ev_modem = EmulatedModem(EV_MODEM_MAC, rng=random.Random(rng.random()))
    evse_modem = EmulatedModem(EVSE_MODEM_MAC, rng=random.Random(rng.random()))
    stand_in = ModemStandIn(ev_tap, evse_tap, ev_modem, evse_modem, clock.loop)
    port = RawPort(evse_sock, clock.loop)
    records: list[SlacRecord] = []
    slac = SlacEndpoint(
        EvseSlac(
            port.mac,
            SlacTiming(),
            EvseConfig(modem_mac=EVSE_MODEM_MAC),
            rng=random.Random(rng.random()),
            recorder=records.append,
        ),
        port,
        clock,
    )
    link = EvseLink(_LockedPilot(line, server.lock), slac, clock, EvseLinkSettings())
    loop = clock.loop

    def changed(t: float, reading: PilotReading) -> None:
        loop.call_soon_threadsafe(link.pilot_changed, str(reading.state), reading.duty)

    line.subscribe(changed)
    return FarEvse(clock, server, line, port, stand_in, ev_modem, evse_modem, slac, link, records)
