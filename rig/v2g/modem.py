"""The local HomePlug Green PHY modem's management: read its version, MAC and NMK, set its key.

A Qualcomm Atheros modem (QCA7000/7005/7420, the usual chip in chargers and cars) answers its
host's management messages on 00:B0:52:00:00:01 as well as on its own MAC:

- VS_SW_VER.REQ -> VS_SW_VER.CNF: device id and firmware version string;
- VS_RD_MOD.REQ (module PIB) -> VS_RD_MOD.CNF: parameter block bytes; the MAC at 0x0C and the
  NMK at 0x64 (scapy's ModulePIB layout (?), not checked against a Qualcomm document);
- CM_SET_KEY.REQ -> CM_SET_KEY.CNF: the network key SLAC agreed on (rig.v2g.slac.messages).

    modem = LocalModem(port, scheduler)            # port: a FramePort on the host's interface
    modem.identify(on_done)                        # on_done(ModemIdentity | ModemError)
    modem.set_key(nmk, on_done)                    # on_done(SetKeyCnf | ModemError)

Requests go one at a time, each with its own timeout on the run's scheduler; a reply is matched
by MMTYPE and source (the modem's MAC once known). On an asyncio clock `await modem.query(...)`
wraps the same calls. The modem's address and the PIB offsets are settings.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rig.v2g.scheduler import Scheduler, TimerHandle
from rig.v2g.slac import messages as m
from rig.v2g.slac.endpoint import FramePort


class ModemError(Exception):
    """The modem did not answer in time, or answered with a failure status."""


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """What the local modem says about itself."""

    mac: bytes
    device: str
    version: str
    nmk: bytes  # the network membership key it holds now (all zeros: none)
    nid: bytes  # derived from the NMK (HomePlug AV 4.4.3.1)

    def as_record(self) -> dict[str, str]:
        return {
            "mac": m.mac_text(self.mac),
            "device": self.device,
            "version": self.version,
            "nmk": self.nmk.hex(),
            "nid": self.nid.hex(),
        }


@dataclass(frozen=True, slots=True)
class ModemSettings:
    address: bytes = m.QCA_LOCAL_MAC
    timeout: float = 1.0  # per request (rig's own: a local exchange answers in milliseconds)
    pib_mac_offset: int = 0x0C  # (?)
    pib_nmk_offset: int = 0x64  # (?)


Reply = m.Mme | ModemError


@dataclass
class _Request:
    frame: bytes
    expect: m.MMType
    done: Callable[[Reply], None]


class LocalModem:
    """The host's own modem, reached through a frame port; see the module docstring."""

    def __init__(
        self, port: FramePort, scheduler: Scheduler, settings: ModemSettings = ModemSettings()
    ) -> None:
        self.port = port
        self.scheduler = scheduler
        self.settings = settings
        self.modem_mac: bytes | None = None
        self._queue: deque[_Request] = deque()
        self._current: _Request | None = None
        self._timer: TimerHandle | None = None
        self._forward: Callable[[bytes], None] | None = None

    def forward_other(self, on_frame: Callable[[bytes], None]) -> None:
        """Frames that are not replies to this driver go here (the SLAC endpoint on the port)."""
        self._forward = on_frame

    # -- requests ------------------------------------------------------------------------------
    def request(self, message: m.Message, expect: m.MMType, done: Callable[[Reply], None]) -> None:
        frame = m.encode(self.settings.address, self.port.mac, message)
        self._queue.append(_Request(frame, expect, done))
        if self._current is None:
            self._next()

    def version(self, done: Callable[[m.SwVerCnf | ModemError], None]) -> None:
        def got(reply: Reply) -> None:
            if isinstance(reply, ModemError):
                done(reply)
            elif isinstance(reply.message, m.SwVerCnf) and reply.message.status == 0:
                done(reply.message)
            else:
                done(ModemError(f"VS_SW_VER.CNF status {getattr(reply.message, 'status', '?')}"))

        self.request(m.SwVerReq(), m.MMType.VS_SW_VER_CNF, got)

    def read_pib(
        self, offset: int, length: int, done: Callable[[bytes | ModemError], None]
    ) -> None:
        def got(reply: Reply) -> None:
            if isinstance(reply, ModemError):
                done(reply)
            elif isinstance(reply.message, m.RdModCnf) and reply.message.status == 0:
                cnf = reply.message
                if cnf.checksum is not None and cnf.checksum != m.module_checksum(cnf.data):
                    done(ModemError("VS_RD_MOD.CNF checksum does not match its data"))
                else:
                    done(cnf.data)
            else:
                done(ModemError(f"VS_RD_MOD.CNF status {getattr(reply.message, 'status', '?')}"))

        self.request(
            m.RdModReq(module_id=m.ModuleId.PIB, length=length, offset=offset),
            m.MMType.VS_RD_MOD_CNF,
            got,
        )

    def identify(self, done: Callable[[ModemIdentity | ModemError], None]) -> None:
        """Version, then the PIB's MAC and NMK."""
        s = self.settings
        end = max(s.pib_mac_offset + 6, s.pib_nmk_offset + m.NMK_LENGTH)

        def got_version(version: m.SwVerCnf | ModemError) -> None:
            if isinstance(version, ModemError):
                done(version)
                return

            def got_pib(pib: bytes | ModemError) -> None:
                if isinstance(pib, ModemError):
                    done(pib)
                    return
                if len(pib) < end:
                    done(ModemError(f"PIB read returned {len(pib)} of {end} bytes"))
                    return
                nmk = pib[s.pib_nmk_offset : s.pib_nmk_offset + m.NMK_LENGTH]
                done(
                    ModemIdentity(
                        mac=pib[s.pib_mac_offset : s.pib_mac_offset + 6],
                        device=version.device,
                        version=version.version,
                        nmk=nmk,
                        nid=m.nid_from_nmk(nmk),
                    )
                )

            self.read_pib(0, end, got_pib)

        self.version(got_version)

    def set_key(self, nmk: bytes, done: Callable[[m.SetKeyCnf | ModemError], None]) -> None:
        """Give the modem the network key (and its NID)."""

        def got(reply: Reply) -> None:
            if isinstance(reply, ModemError):
                done(reply)
            else:
                assert isinstance(reply.message, m.SetKeyCnf)
                done(reply.message)

        self.request(
            m.SetKeyReq(nid=m.nid_from_nmk(nmk), new_key=nmk), m.MMType.CM_SET_KEY_CNF, got
        )

    async def query(self, call: Callable[[Callable[[Any], None]], None]) -> Any:
        """`await modem.query(modem.identify)` on an asyncio clock; raises ModemError."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        call(done)
        result = await future
        if isinstance(result, ModemError):
            raise result
        return result

    # -- wire ----------------------------------------------------------------------------------
    def receive(self, frame: bytes) -> None:
        """A frame from the port: the reply to the current request, or someone else's."""
        current = self._current
        mmtype = m.peek_mmtype(frame)
        if current is not None and mmtype == current.expect and frame[0:6] == self.port.mac:
            try:
                mme = m.decode(frame)
            except m.SlacDecodeError as exc:
                self._finish(ModemError(f"undecodable reply: {exc}"))
                return
            if self.modem_mac is None or mme.src == self.modem_mac:
                self.modem_mac = mme.src
                self._finish(mme)
                return
        if self._forward is not None:
            self._forward(frame)

    def _next(self) -> None:
        if not self._queue:
            self._current = None
            return
        self._current = self._queue.popleft()
        self.port.send(self._current.frame)
        self._timer = self.scheduler.call_at(
            self.scheduler.now() + self.settings.timeout, self._expired
        )

    def _expired(self) -> None:
        self._timer = None
        if self._current is not None:
            name = m.message_name(self._current.expect)
            self._finish(ModemError(f"no {name} within {self.settings.timeout:g} s"))

    def _finish(self, reply: Reply) -> None:
        current, self._current = self._current, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if current is not None:
            current.done(reply)  # may queue (and send) the next request itself
        if self._current is None:
            self._next()
