"""A small emulated HomePlug Green PHY modem (Qualcomm-like), sans-IO, for links without a real one.

A real modem bridges its host's Ethernet to the powerline and answers the host's local
management messages itself. This stand-in does the part SLAC needs:

- from its host: CM_SET_KEY.REQ (keeps the NMK and NID; CNF as the captured Qualcomm firmware
  sends it: result 1, PMN 0xFF (?)), VS_SW_VER.REQ (a version string saying it is emulated),
  VS_RD_MOD.REQ of the PIB (a synthesized PIB with the modem's MAC at 0x0C and the NMK at 0x64,
  the offsets scapy's ModulePIB gives (?));
- from the line: each CM_MNBC_SOUND.IND it hears becomes a CM_ATTEN_PROFILE.IND to its host,
  58 groups of attenuation in dB (a configured cable attenuation, a fixed shape across the band,
  seeded noise per sound).

    modem = EmulatedModem(mac, rng=random.Random(3))
    replies = modem.from_host(frame)   # frames the modem sends back to its host
    reports = modem.heard(frame)       # frames for its host after hearing one on the line
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rig.v2g.slac import messages as m

#: The PIB offsets the stand-in fills (scapy's ModulePIB (?), not checked against a QCA document).
PIB_MAC_OFFSET = 0x0C
PIB_NMK_OFFSET = 0x64
PIB_SIZE = 0x400


@dataclass(frozen=True, slots=True)
class ModemProfile:
    """What the stand-in reports about itself and the cable."""

    version: str = "rig-emulated QCA7000 1.0 (not a real modem)"
    device_id: int = 0x22  # QCA7000 in VS_SW_VER's list
    attenuation_db: float = 20.0  # a few metres of charging cable (rig's own choice)
    noise_db: float = 1.0
    set_key_result: int = 1  # as the Qualcomm firmware in the VW capture answers (?)


class EmulatedModem:
    """One stand-in modem; see the module docstring."""

    def __init__(
        self,
        mac: bytes,
        *,
        host_mac: bytes | None = None,
        profile: ModemProfile = ModemProfile(),
        rng: random.Random | None = None,
    ) -> None:
        self.mac = m.parse_mac(mac)
        self.host_mac = None if host_mac is None else m.parse_mac(host_mac)
        self.profile = profile
        self.rng = rng or random.Random()
        self.nmk: bytes | None = None
        self.nid: bytes | None = None
        self.set_keys = 0
        self.sounds_heard = 0
        # A fixed shape across the band: attenuation grows with frequency (rig's own model).
        self._shape = [
            profile.attenuation_db + 6.0 * i / (m.AAG_GROUPS - 1) for i in range(m.AAG_GROUPS)
        ]

    def addressed(self, frame: bytes) -> bool:
        """True for a frame the modem itself must answer (its MAC or the local address)."""
        return len(frame) >= 14 and frame[0:6] in (self.mac, m.QCA_LOCAL_MAC)

    def from_host(self, frame: bytes) -> list[bytes]:
        """A frame the host sent to this modem: the replies it sends back (none for anything
        it does not answer, or bytes it cannot read)."""
        if not self.addressed(frame):
            return []
        try:
            mme = m.decode(frame)
        except m.SlacDecodeError:
            return []
        host = mme.src
        self.host_mac = host
        msg = mme.message
        reply: m.Message
        match msg:
            case m.SetKeyReq():
                self.nmk = msg.new_key
                self.nid = msg.nid
                self.set_keys += 1
                reply = m.SetKeyCnf(
                    result=self.profile.set_key_result,
                    my_nonce=self.rng.randbytes(4),
                    your_nonce=msg.my_nonce,
                    pid=msg.pid,
                    prn=msg.prn,
                    pmn=0xFF,
                )
            case m.SwVerReq():
                reply = m.SwVerCnf(0, self.profile.device_id, self.profile.version)
            case m.RdModReq() if msg.module_id == m.ModuleId.PIB:
                pib = self.pib()
                length = min(msg.length, m.MAX_MODULE_READ)
                data = pib[msg.offset : msg.offset + length]
                status = 0 if msg.offset + length <= len(pib) else 0x10  # invalid address
                reply = m.RdModCnf(status, msg.module_id, msg.offset, data)
            case _:
                return []
        return [m.encode(host, self.mac, reply)]

    def heard(self, frame: bytes) -> list[bytes]:
        """A frame from the line: a sound becomes an attenuation report for the host."""
        if m.peek_mmtype(frame) != m.MMType.CM_MNBC_SOUND_IND:
            return []
        try:
            mme = m.decode(frame)
        except m.SlacDecodeError:
            return []
        self.sounds_heard += 1
        noise = self.profile.noise_db
        aag = tuple(
            max(0, min(255, round(a + self.rng.uniform(-noise, noise)))) for a in self._shape
        )
        report = m.AttenProfileInd(pev_mac=mme.src, aag=aag)
        return [m.encode(self.host_mac or m.BROADCAST, self.mac, report)]

    def pib(self) -> bytes:
        """The parameter block as the stand-in shows it: zeros but for the MAC and the NMK."""
        pib = bytearray(PIB_SIZE)
        pib[PIB_MAC_OFFSET : PIB_MAC_OFFSET + 6] = self.mac
        if self.nmk is not None:
            pib[PIB_NMK_OFFSET : PIB_NMK_OFFSET + m.NMK_LENGTH] = self.nmk
        return bytes(pib)
