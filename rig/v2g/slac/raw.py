"""SLAC on a real interface: HomePlug frames over a Linux packet socket, served by an asyncio loop.

    sock = homeplug_socket("eth1")                     # root or CAP_NET_RAW
    port = RawPort(sock, clock.loop)                   # a FramePort
    SlacEndpoint(EvSlac(port.mac, ...), port, clock).start()

The socket is bound to ethertype 0x88E1 on one interface, so the kernel hands it only HomePlug
frames, and never the frames this host sends itself. Reads are bounded (one Ethernet frame), a
frame that fails to send is counted, not raised (the machines time out and retry as -3 says).

ModemStandIn answers for the two modems on a point-to-point Ethernet link that has none (a veth
pair in a test, two lab PCs on one cable): it listens on both ends with ETH_P_ALL sockets, which
see the frames each host sends, answers each host's local management messages as its modem
(EmulatedModem) by sending the reply from the far end, and turns each sound one host sends into
the other modem's attenuation report. The sockets must be opened in the network namespace of
their interface (the caller's business: tests enter the namespace to open them).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from rig.v2g.slac import messages as m
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.endpoint import FrameCallback

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent
#: Bytes read per frame: an untagged Ethernet frame; a longer one is cut and then refused.
READ_SIZE = m.MAX_FRAME + 4


def homeplug_socket(interface: str, *, all_frames: bool = False) -> socket.socket:
    """A non-blocking packet socket on `interface`: HomePlug frames received by this host, or with
    `all_frames` every frame including those the host sends (what a modem stand-in must see)."""
    protocol = ETH_P_ALL if all_frames else m.ETHERTYPE_HOMEPLUG_AV
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))
    try:
        sock.bind((interface, protocol))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def interface_mac(sock: socket.socket) -> bytes:
    """The hardware address of the interface a packet socket is bound to."""
    address = sock.getsockname()
    mac = address[4] if len(address) > 4 else b""
    if len(mac) != 6:
        raise OSError(f"interface {address[0]} has no Ethernet address")
    return bytes(mac)


class RawPort:
    """A FramePort over a bound packet socket, read by an asyncio loop's reader callback."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self._mac = interface_mac(sock)
        self.interface = str(sock.getsockname()[0])
        self._receiver: FrameCallback | None = None
        self.send_errors: list[str] = []
        self.received = 0
        self.closed = False
        loop.add_reader(sock.fileno(), self._readable)

    @property
    def mac(self) -> bytes:
        return self._mac

    def set_receiver(self, on_frame: FrameCallback) -> None:
        self._receiver = on_frame

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        try:
            self.sock.send(frame)
        except OSError as exc:  # a full queue or a link going down: the machine's timers retry
            if len(self.send_errors) < 100:
                self.send_errors.append(str(exc))

    def _readable(self) -> None:
        for _ in range(64):  # a bounded burst per wake-up; the loop comes back for the rest
            try:
                frame, address = self.sock.recvfrom(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(address) > 2 and address[2] == PACKET_OUTGOING:
                continue
            if len(frame) > m.MAX_FRAME:
                continue
            self.received += 1
            if self._receiver is not None:
                self._receiver(frame)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class ModemStandIn:
    """Both modems of a point-to-point link without modems; see the module docstring.

    `a` and `b` are ETH_P_ALL sockets (homeplug_socket(all_frames=True)) on the two ends; the
    modems are the stand-ins for the hosts on end a and end b.
    """

    def __init__(
        self,
        a: socket.socket,
        b: socket.socket,
        modem_a: EmulatedModem,
        modem_b: EmulatedModem,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.loop = loop
        self.ends = (a, b)
        self.modems = (modem_a, modem_b)
        self.answered = 0
        self.closed = False
        for index, sock in enumerate(self.ends):
            loop.add_reader(sock.fileno(), self._reader(index))

    def _reader(self, index: int) -> Callable[[], None]:
        def readable() -> None:
            sock = self.ends[index]
            for _ in range(64):
                try:
                    frame, address = sock.recvfrom(READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                if len(frame) > m.MAX_FRAME or len(address) < 3:
                    continue
                self._frame(index, frame, address[2] == PACKET_OUTGOING)

        return readable

    def _frame(self, index: int, frame: bytes, outgoing: bool) -> None:
        if m.peek_mmtype(frame) is None:
            return
        other = 1 - index
        if outgoing:
            # Sent by the host on this end: its modem answers what is addressed to it. The
            # reply leaves from the far end so that it arrives at this host as received.
            for reply in self.modems[index].from_host(frame):
                self._send(other, reply)
        else:
            # Arrived from the far host over the "line": this end's modem may report a sound.
            for report in self.modems[index].heard(frame):
                self._send(other, report)

    def _send(self, index: int, frame: bytes) -> None:
        with contextlib.suppress(OSError):
            self.ends[index].send(frame)
            self.answered += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in self.ends:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(sock.fileno())
            sock.close()
