"""An emulated powerline between stations, on the run's scheduler: SLAC in virtual time.

Each station is a host on its own modem (an EmulatedModem); the modems share one line. A frame a
host sends to its modem's address stays local and is answered by the modem; every other frame
goes over the line to the other hosts, and each other modem that hears a sound reports its
attenuation to its own host. Deliveries are scheduled `latency` seconds later, so a whole
matching runs deterministically under the VirtualClock (and in real time under the RealClock).

    line = Powerline(clock, latency=0.001)
    ev_port = line.attach(EV_MAC, EmulatedModem(EV_MODEM_MAC))
    evse_port = line.attach(EVSE_MAC, EmulatedModem(EVSE_MODEM_MAC))
    line.joined        # both modems hold the same NMK: the data link is up

`connected` models the cable: unplugged, nothing crosses the line (local management still works).
"""

from __future__ import annotations

from rig.v2g.scheduler import Scheduler
from rig.v2g.slac import messages as m
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.endpoint import FrameCallback


class PowerlinePort:
    """One host's attachment (a FramePort)."""

    def __init__(self, line: Powerline, mac: bytes, modem: EmulatedModem | None) -> None:
        self._line = line
        self._mac = m.parse_mac(mac)
        self.modem = modem
        self._receiver: FrameCallback | None = None
        self.sent = 0
        self.received = 0
        self.closed = False

    @property
    def mac(self) -> bytes:
        return self._mac

    def set_receiver(self, on_frame: FrameCallback) -> None:
        self._receiver = on_frame

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        self.sent += 1
        self._line.carry(self, bytes(frame))

    def deliver(self, frame: bytes) -> None:
        if self.closed or self._receiver is None:
            return
        self.received += 1
        self._receiver(frame)

    def close(self) -> None:
        self.closed = True


class Powerline:
    """The line and its stations; see the module docstring."""

    def __init__(self, scheduler: Scheduler, *, latency: float = 0.001) -> None:
        self.scheduler = scheduler
        self.latency = latency
        self.connected = True
        self.ports: list[PowerlinePort] = []
        self.frames = 0

    def attach(self, host_mac: bytes, modem: EmulatedModem | None = None) -> PowerlinePort:
        if modem is not None and modem.host_mac is None:
            modem.host_mac = m.parse_mac(host_mac)
        port = PowerlinePort(self, host_mac, modem)
        self.ports.append(port)
        return port

    @property
    def joined(self) -> bool:
        """True when every station's modem holds the same network key (the AVLN is formed)."""
        keys = {p.modem.nmk for p in self.ports if p.modem is not None}
        return self.connected and len(keys) == 1 and None not in keys and len(self.ports) > 1

    def carry(self, sender: PowerlinePort, frame: bytes) -> None:
        self.frames += 1
        modem = sender.modem
        if modem is not None and modem.addressed(frame):
            for reply in modem.from_host(frame):
                self._later(sender, reply)
            return
        if not self.connected:
            return
        for port in self.ports:
            if port is sender:
                continue
            self._later(port, frame)
            if port.modem is not None:
                for report in port.modem.heard(frame):
                    self._later(port, report)

    def _later(self, port: PowerlinePort, frame: bytes) -> None:
        self.scheduler.call_at(self.scheduler.now() + self.latency, lambda: port.deliver(frame))
