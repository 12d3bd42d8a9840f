"""HomePlug Green PHY management frames of ISO 15118-3 SLAC, and the local modem's, as values.

One frame on the wire: Ethernet destination, source, ethertype 0x88E1; MMV (management message
version); MMTYPE (16 bits, little-endian: a base code ORed with the mode REQ 0, CNF 1, IND 2,
RSP 3); for MMV 1 two fragmentation bytes (FMI, FMSN), for the vendor messages of MMV 0 the
vendor's OUI (00:B0:52 for Qualcomm Atheros); then the message's fields. Frames shorter than
60 bytes are padded with zeros on Ethernet, so every decoder takes its fields and ignores what
follows. The layouts are those of scapy's homepluggp / homeplugav layers, pyslac and EVerest's
libslac, checked against the real-car captures in ../shared/pcaps (tests compare our encoding
with scapy's layers byte for byte); field names follow ISO 15118-3 Annex A as those projects
spell them.

    frame = encode(dst, src, SlacParmReq(run_id=b"12345678"))
    decoded = decode(frame)          # a Mme: header and message, or SlacDecodeError

Every input is bounded: a frame longer than MAX_FRAME, a message shorter than its fixed part, a
length field that points past the frame or an unknown MMTYPE ends in SlacDecodeError naming
what and where; nothing here raises anything else on any bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, ClassVar

ETHERTYPE_HOMEPLUG_AV = 0x88E1
BROADCAST = b"\xff" * 6
#: The address every Qualcomm Atheros modem answers local management messages on (pyslac,
#: open-plc-utils: "the local device"), besides its own MAC.
QCA_LOCAL_MAC = bytes.fromhex("00b052000001")
QCA_OUI = bytes.fromhex("00b052")
#: Ethernet's minimum frame without the FCS: shorter frames are padded with zeros.
MIN_FRAME = 60
#: The longest frame accepted (an untagged Ethernet frame without FCS; rig's own bound).
MAX_FRAME = 1514
ETHERNET_HEADER = 14
RUN_ID_LENGTH = 8
ID_LENGTH = 17  # PEV ID, EVSE ID, SOURCE_ID, RESP_ID, sender ID
NMK_LENGTH = 16
NID_LENGTH = 7
#: Attenuation groups of a HomePlug Green PHY attenuation profile (ISO 15118-3; all open code).
AAG_GROUPS = 58


class Mode(IntEnum):
    """The two low bits of an MMTYPE."""

    REQ = 0
    CNF = 1
    IND = 2
    RSP = 3


class MMType(IntEnum):
    """The MMTYPEs the rig speaks or decodes (base | mode)."""

    CM_SET_KEY_REQ = 0x6008
    CM_SET_KEY_CNF = 0x6009
    CM_SLAC_PARM_REQ = 0x6064
    CM_SLAC_PARM_CNF = 0x6065
    CM_START_ATTEN_CHAR_IND = 0x606A
    CM_ATTEN_CHAR_IND = 0x606E
    CM_ATTEN_CHAR_RSP = 0x606F
    CM_MNBC_SOUND_IND = 0x6076
    CM_VALIDATE_REQ = 0x6078
    CM_VALIDATE_CNF = 0x6079
    CM_SLAC_MATCH_REQ = 0x607C
    CM_SLAC_MATCH_CNF = 0x607D
    CM_ATTEN_PROFILE_IND = 0x6086
    # Qualcomm Atheros vendor-specific messages (MMV 0, OUI 00:B0:52; open-plc-utils names, as
    # scapy's homeplugav layer lists them (?): not checked against a Qualcomm document).
    VS_SW_VER_REQ = 0xA000
    VS_SW_VER_CNF = 0xA001
    VS_RD_MOD_REQ = 0xA024
    VS_RD_MOD_CNF = 0xA025
    VS_ATTEN_CHAR_IND = 0xA14E  # seen in the Polestar capture, sent by the EVSE's modem

    @property
    def mode(self) -> Mode:
        return Mode(self & 3)

    @property
    def vendor(self) -> bool:
        return self >= 0xA000


class DecodeFault(Enum):
    """Why a frame is not a management message this module can read."""

    TOO_LONG = "frame longer than an Ethernet frame"
    NOT_HOMEPLUG = "ethertype is not 0x88E1"
    HEADER_CUT = "frame ends inside the management header"
    UNKNOWN_MMTYPE = "MMTYPE this decoder does not know"
    WRONG_MMV = "management message version does not fit the MMTYPE"
    CUT = "frame ends inside the message's fields"
    BAD_LENGTH = "a length field contradicts the frame"


class SlacDecodeError(ValueError):
    """Bytes that are not a frame this module decodes; `fault` says which check failed."""

    def __init__(self, fault: DecodeFault, detail: str) -> None:
        super().__init__(f"{fault.value}: {detail}")
        self.fault = fault
        self.detail = detail


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str | bytes) -> bytes:
    """b"\\x00\\xb0R..." or "00:b0:52:00:00:01" -> 6 bytes; ValueError otherwise."""
    if isinstance(text, bytes):
        if len(text) != 6:
            raise ValueError(f"a MAC address has 6 bytes, got {len(text)}")
        return text
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """The 7-byte NID derived from an NMK: SHA-256 applied five times, the first 7 bytes, the last
    one shifted right by 4 with the security level in bits 4-5 (HomePlug AV 4.4.3.1 as
    open-plc-utils HPAVKeyNID and pyslac compute it; checked on the VW capture's keys)."""
    if len(nmk) != NMK_LENGTH:
        raise ValueError(f"an NMK has 16 bytes, got {len(nmk)}")
    digest = nmk
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    return digest[:6] + bytes([(digest[6] >> 4) | ((security_level & 3) << 4)])


# -- messages ------------------------------------------------------------------------------------


class _Fixed:
    """A message of fixed fields: a struct format and the field names in order."""

    __slots__ = ()

    MMTYPE: ClassVar[MMType]
    FORMAT: ClassVar[struct.Struct]

    def pack(self) -> bytes:
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        return self.FORMAT.pack(*values)

    @classmethod
    def unpack(cls, body: bytes) -> Any:
        if len(body) < cls.FORMAT.size:
            raise SlacDecodeError(
                DecodeFault.CUT,
                f"{cls.MMTYPE.name} needs {cls.FORMAT.size} bytes, the frame has {len(body)}",
            )
        return cls(*cls.FORMAT.unpack_from(body))


@dataclass(frozen=True, slots=True)
class SlacParmReq(_Fixed):
    """CM_SLAC_PARM.REQ: the EV opens a matching run (broadcast)."""

    MMTYPE = MMType.CM_SLAC_PARM_REQ
    FORMAT = struct.Struct("<BB8s")
    application_type: int = 0
    security_type: int = 0
    run_id: bytes = bytes(RUN_ID_LENGTH)


@dataclass(frozen=True, slots=True)
class SlacParmCnf(_Fixed):
    """CM_SLAC_PARM.CNF: the EVSE's sounding parameters for the run."""

    MMTYPE = MMType.CM_SLAC_PARM_CNF
    FORMAT = struct.Struct("<6sBBB6sBB8s")
    msound_target: bytes = BROADCAST
    num_sounds: int = 10
    time_out: int = 6  # units of 100 ms
    resp_type: int = 1
    forwarding_sta: bytes = bytes(6)
    application_type: int = 0
    security_type: int = 0
    run_id: bytes = bytes(RUN_ID_LENGTH)


@dataclass(frozen=True, slots=True)
class StartAttenCharInd(_Fixed):
    """CM_START_ATTEN_CHAR.IND: the EV announces its sounds (sent three times)."""

    MMTYPE = MMType.CM_START_ATTEN_CHAR_IND
    FORMAT = struct.Struct("<BBBBB6s8s")
    application_type: int = 0
    security_type: int = 0
    num_sounds: int = 10
    time_out: int = 6  # units of 100 ms
    resp_type: int = 1
    forwarding_sta: bytes = bytes(6)
    run_id: bytes = bytes(RUN_ID_LENGTH)


@dataclass(frozen=True, slots=True)
class MnbcSoundInd(_Fixed):
    """CM_MNBC_SOUND.IND: one of the EV's sounds; `count` says how many remain after it."""

    MMTYPE = MMType.CM_MNBC_SOUND_IND
    FORMAT = struct.Struct("<BB17sB8s8s16s")
    application_type: int = 0
    security_type: int = 0
    sender_id: bytes = bytes(ID_LENGTH)
    count: int = 0
    run_id: bytes = bytes(RUN_ID_LENGTH)
    reserved: bytes = bytes(8)
    random: bytes = bytes(16)


@dataclass(frozen=True, slots=True)
class AttenProfileInd:
    """CM_ATTEN_PROFILE.IND: a modem tells its host the attenuation of one sound it heard."""

    MMTYPE: ClassVar[MMType] = MMType.CM_ATTEN_PROFILE_IND
    pev_mac: bytes = bytes(6)
    aag: tuple[int, ...] = ()  # dB per carrier group
    reserved: int = 0

    def pack(self) -> bytes:
        return self.pev_mac + bytes([len(self.aag), self.reserved]) + bytes(self.aag)

    @classmethod
    def unpack(cls, body: bytes) -> AttenProfileInd:
        if len(body) < 8:
            raise SlacDecodeError(DecodeFault.CUT, f"CM_ATTEN_PROFILE.IND of {len(body)} bytes")
        groups = body[6]
        if 8 + groups > len(body):
            raise SlacDecodeError(
                DecodeFault.BAD_LENGTH, f"NumGroups {groups} beyond the frame ({len(body) - 8})"
            )
        return cls(body[:6], tuple(body[8 : 8 + groups]), body[7])


@dataclass(frozen=True, slots=True)
class AttenCharInd:
    """CM_ATTEN_CHAR.IND: the EVSE's averaged attenuation profile, to the EV."""

    MMTYPE: ClassVar[MMType] = MMType.CM_ATTEN_CHAR_IND
    _HEAD: ClassVar[struct.Struct] = struct.Struct("<BB6s8s17s17sBB")
    application_type: int = 0
    security_type: int = 0
    source_address: bytes = bytes(6)  # the EV's MAC
    run_id: bytes = bytes(RUN_ID_LENGTH)
    source_id: bytes = bytes(ID_LENGTH)
    resp_id: bytes = bytes(ID_LENGTH)
    num_sounds: int = 0
    aag: tuple[int, ...] = ()

    def pack(self) -> bytes:
        head = self._HEAD.pack(
            self.application_type,
            self.security_type,
            self.source_address,
            self.run_id,
            self.source_id,
            self.resp_id,
            self.num_sounds,
            len(self.aag),
        )
        return head + bytes(self.aag)

    @classmethod
    def unpack(cls, body: bytes) -> AttenCharInd:
        size = cls._HEAD.size
        if len(body) < size:
            raise SlacDecodeError(DecodeFault.CUT, f"CM_ATTEN_CHAR.IND of {len(body)} bytes")
        app, sec, source, run_id, source_id, resp_id, sounds, groups = cls._HEAD.unpack_from(body)
        if size + groups > len(body):
            raise SlacDecodeError(
                DecodeFault.BAD_LENGTH, f"NumGroups {groups} beyond the frame ({len(body) - size})"
            )
        aag = tuple(body[size : size + groups])
        return cls(app, sec, source, run_id, source_id, resp_id, sounds, aag)

    @property
    def mean_attenuation(self) -> float | None:
        return sum(self.aag) / len(self.aag) if self.aag else None


@dataclass(frozen=True, slots=True)
class AttenCharRsp(_Fixed):
    """CM_ATTEN_CHAR.RSP: the EV acknowledges the profile (result 0: success)."""

    MMTYPE = MMType.CM_ATTEN_CHAR_RSP
    FORMAT = struct.Struct("<BB6s8s17s17sB")
    application_type: int = 0
    security_type: int = 0
    source_address: bytes = bytes(6)
    run_id: bytes = bytes(RUN_ID_LENGTH)
    source_id: bytes = bytes(ID_LENGTH)
    resp_id: bytes = bytes(ID_LENGTH)
    result: int = 0


#: MVFLength of CM_SLAC_MATCH.REQ and .CNF: the bytes of the match variable field.
MATCH_REQ_MVF = 62
MATCH_CNF_MVF = 86


@dataclass(frozen=True, slots=True)
class SlacMatchReq(_Fixed):
    """CM_SLAC_MATCH.REQ: the EV asks the EVSE it chose to join its network."""

    MMTYPE = MMType.CM_SLAC_MATCH_REQ
    FORMAT = struct.Struct("<BBH17s6s17s6s8s8s")
    application_type: int = 0
    security_type: int = 0
    mvf_length: int = MATCH_REQ_MVF
    pev_id: bytes = bytes(ID_LENGTH)
    pev_mac: bytes = bytes(6)
    evse_id: bytes = bytes(ID_LENGTH)
    evse_mac: bytes = bytes(6)
    run_id: bytes = bytes(RUN_ID_LENGTH)
    reserved: bytes = bytes(8)


@dataclass(frozen=True, slots=True)
class SlacMatchCnf(_Fixed):
    """CM_SLAC_MATCH.CNF: the EVSE hands the EV its network's NID and NMK."""

    MMTYPE = MMType.CM_SLAC_MATCH_CNF
    FORMAT = struct.Struct("<BBH17s6s17s6s8s8s7sB16s")
    application_type: int = 0
    security_type: int = 0
    mvf_length: int = MATCH_CNF_MVF
    pev_id: bytes = bytes(ID_LENGTH)
    pev_mac: bytes = bytes(6)
    evse_id: bytes = bytes(ID_LENGTH)
    evse_mac: bytes = bytes(6)
    run_id: bytes = bytes(RUN_ID_LENGTH)
    reserved: bytes = bytes(8)
    nid: bytes = bytes(NID_LENGTH)
    reserved2: int = 0
    nmk: bytes = bytes(NMK_LENGTH)


class KeyType(IntEnum):
    NMK = 0x01  # AES-128 network membership key


@dataclass(frozen=True, slots=True)
class SetKeyReq(_Fixed):
    """CM_SET_KEY.REQ: a host gives its own modem the network's NMK and NID (ISO 15118-3 Table
    A.8 as pyslac and libslac fill it: key type NMK, my nonce 0xAAAAAAAA, PID 4 (HLE), new EKS
    1 (?): the values of open code, the capture's EVSE sends the same)."""

    MMTYPE = MMType.CM_SET_KEY_REQ
    FORMAT = struct.Struct("<B4s4sBHBB7sB16s")
    key_type: int = KeyType.NMK
    my_nonce: bytes = b"\xaa\xaa\xaa\xaa"  # nonces are opaque 4-byte values
    your_nonce: bytes = bytes(4)
    pid: int = 4
    prn: int = 0
    pmn: int = 0
    cco_capability: int = 0
    nid: bytes = bytes(NID_LENGTH)
    new_eks: int = 1
    new_key: bytes = bytes(NMK_LENGTH)


@dataclass(frozen=True, slots=True)
class SetKeyCnf(_Fixed):
    """CM_SET_KEY.CNF: the modem's answer. Result 0 is success in the HomePlug text, yet
    Qualcomm firmware answers 1 on success (pyslac's note; the VW capture shows 1 and the session
    goes on), so the rig records the result and does not judge it by default."""

    MMTYPE = MMType.CM_SET_KEY_CNF
    FORMAT = struct.Struct("<B4s4sBHBB")
    result: int = 0
    my_nonce: bytes = bytes(4)
    your_nonce: bytes = bytes(4)
    pid: int = 4
    prn: int = 0
    pmn: int = 0
    cco_capability: int = 0


@dataclass(frozen=True, slots=True)
class ValidateMessage:
    """CM_VALIDATE.REQ/CNF (optional validation by pilot toggling): decoded as raw fields only,
    the rig neither sends nor answers it."""

    MMTYPE: ClassVar[MMType] = MMType.CM_VALIDATE_REQ
    mmtype: MMType = MMType.CM_VALIDATE_REQ
    body: bytes = b""

    def pack(self) -> bytes:
        return self.body


@dataclass(frozen=True, slots=True)
class SwVerReq:
    """VS_SW_VER.REQ (Qualcomm): ask the local modem for its firmware version; no fields."""

    MMTYPE: ClassVar[MMType] = MMType.VS_SW_VER_REQ

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, body: bytes) -> SwVerReq:
        return cls()


#: Device ids of VS_SW_VER.CNF (scapy's homeplugav list (?)).
DEVICE_IDS: Mapping[int, str] = {
    0x01: "INT6000",
    0x02: "INT6300",
    0x03: "INT6400",
    0x04: "AR7400",
    0x05: "AR6405",
    0x20: "QCA7450/QCA7420",
    0x21: "QCA6410/QCA6411",
    0x22: "QCA7000",
}


@dataclass(frozen=True, slots=True)
class SwVerCnf:
    """VS_SW_VER.CNF: status, device id, version string (NUL-padded to 64 bytes), upgradable."""

    MMTYPE: ClassVar[MMType] = MMType.VS_SW_VER_CNF
    status: int = 0
    device_id: int = 0x22
    version: str = ""
    upgradable: int = 0

    def pack(self) -> bytes:
        text = self.version.encode("ascii", "replace")[:63] + b"\x00"
        return (
            bytes([self.status, self.device_id, len(text)])
            + text.ljust(64, b"\x00")
            + bytes([self.upgradable])
        )

    @classmethod
    def unpack(cls, body: bytes) -> SwVerCnf:
        if len(body) < 3:
            raise SlacDecodeError(DecodeFault.CUT, f"VS_SW_VER.CNF of {len(body)} bytes")
        length = body[2]
        if length > 64 or 3 + length > len(body):
            raise SlacDecodeError(DecodeFault.BAD_LENGTH, f"version length {length}")
        text = body[3 : 3 + length].split(b"\x00", 1)[0].decode("ascii", "replace")
        upgradable = body[67] if len(body) > 67 else 0
        return cls(body[0], body[1], text, upgradable)

    @property
    def device(self) -> str:
        return DEVICE_IDS.get(self.device_id, f"0x{self.device_id:02x}")


class ModuleId(IntEnum):
    """VS_RD_MOD module ids (scapy's homeplugav ModuleIDList (?))."""

    MAC_SOFTLOADER = 0x00
    MAC_SOFTWARE = 0x01
    PIB = 0x02
    WRITE_ALT_FW = 0x10
    WRITE_ALT_PIB = 0x11


@dataclass(frozen=True, slots=True)
class RdModReq(_Fixed):
    """VS_RD_MOD.REQ: read `length` bytes at `offset` of a module (the PIB: its MAC, NMK)."""

    MMTYPE = MMType.VS_RD_MOD_REQ
    FORMAT = struct.Struct("<BBHI")
    module_id: int = ModuleId.PIB
    reserved: int = 0
    length: int = 0x400
    offset: int = 0


#: The longest module read the rig asks for or accepts in one message (rig's own bound).
MAX_MODULE_READ = 1400


@dataclass(frozen=True, slots=True)
class RdModCnf:
    """VS_RD_MOD.CNF: status, module, the bytes read and their 32-bit XOR checksum."""

    MMTYPE: ClassVar[MMType] = MMType.VS_RD_MOD_CNF
    _HEAD: ClassVar[struct.Struct] = struct.Struct("<B3sBBHII")
    status: int = 0
    module_id: int = ModuleId.PIB
    offset: int = 0
    data: bytes = b""
    checksum: int | None = None  # None: computed on pack

    def pack(self) -> bytes:
        checksum = module_checksum(self.data) if self.checksum is None else self.checksum
        return (
            self._HEAD.pack(
                self.status, bytes(3), self.module_id, 0, len(self.data), self.offset, checksum
            )
            + self.data
        )

    @classmethod
    def unpack(cls, body: bytes) -> RdModCnf:
        size = cls._HEAD.size
        if len(body) < size:
            raise SlacDecodeError(DecodeFault.CUT, f"VS_RD_MOD.CNF of {len(body)} bytes")
        status, _, module, _, length, offset, checksum = cls._HEAD.unpack_from(body)
        if length > MAX_MODULE_READ or size + length > len(body):
            raise SlacDecodeError(DecodeFault.BAD_LENGTH, f"data length {length}")
        return cls(status, module, offset, body[size : size + length], checksum)


def module_checksum(data: bytes) -> int:
    """The 32-bit checksum of module data: the complement of the XOR of its little-endian words
    (open-plc-utils checksum32, as scapy's chksum32)."""
    padded = data + bytes(-len(data) % 4)
    value = 0
    for (word,) in struct.iter_unpack("<I", padded):
        value ^= word
    return ~value & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class VsAttenCharInd:
    """VS_ATTEN_CHAR.IND (0xA14E, Qualcomm): a modem's own attenuation report; kept as the EV
    MAC and raw groups (layout as scapy's VS_ATTENUATION_CHARACTERISTICS_MME (?))."""

    MMTYPE: ClassVar[MMType] = MMType.VS_ATTEN_CHAR_IND
    ev_mac: bytes = bytes(6)
    groups: tuple[int, ...] = ()
    carriers_per_group: int = 0
    reserved: bytes = bytes(7)

    def pack(self) -> bytes:
        return (
            self.ev_mac + bytes([len(self.groups), self.carriers_per_group]) + self.reserved
            + bytes(self.groups)
        )  # fmt: skip

    @classmethod
    def unpack(cls, body: bytes) -> VsAttenCharInd:
        if len(body) < 15:
            raise SlacDecodeError(DecodeFault.CUT, f"VS_ATTEN_CHAR.IND of {len(body)} bytes")
        groups = body[6]
        if 15 + groups > len(body):
            raise SlacDecodeError(DecodeFault.BAD_LENGTH, f"NumberOfGroups {groups}")
        return cls(body[:6], tuple(body[15 : 15 + groups]), body[7], body[8:15])


Message = (
    SlacParmReq
    | SlacParmCnf
    | StartAttenCharInd
    | MnbcSoundInd
    | AttenProfileInd
    | AttenCharInd
    | AttenCharRsp
    | SlacMatchReq
    | SlacMatchCnf
    | SetKeyReq
    | SetKeyCnf
    | ValidateMessage
    | SwVerReq
    | SwVerCnf
    | RdModReq
    | RdModCnf
    | VsAttenCharInd
)

_DECODERS: Mapping[MMType, Callable[[bytes], Message]] = {
    cls.MMTYPE: cls.unpack
    for cls in (
        SlacParmReq,
        SlacParmCnf,
        StartAttenCharInd,
        MnbcSoundInd,
        AttenProfileInd,
        AttenCharInd,
        AttenCharRsp,
        SlacMatchReq,
        SlacMatchCnf,
        SetKeyReq,
        SetKeyCnf,
        SwVerReq,
        SwVerCnf,
        RdModReq,
        RdModCnf,
        VsAttenCharInd,
    )
} | {
    MMType.CM_VALIDATE_REQ: lambda body: ValidateMessage(MMType.CM_VALIDATE_REQ, body[:64]),
    MMType.CM_VALIDATE_CNF: lambda body: ValidateMessage(MMType.CM_VALIDATE_CNF, body[:64]),
}


# -- frames --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mme:
    """One decoded management frame."""

    dst: bytes
    src: bytes
    mmv: int
    mmtype: MMType
    message: Message
    fragment: int = 0  # FMI and FMSN (MMV 1), 0 when not fragmented

    @property
    def name(self) -> str:
        return message_name(self.mmtype)


def message_name(mmtype: int) -> str:
    """ "CM_SLAC_PARM.REQ" for 0x6064; the hex code for an unknown one."""
    try:
        name = MMType(mmtype).name
    except ValueError:
        return f"0x{mmtype:04X}"
    base, _, mode = name.rpartition("_")
    return f"{base}.{mode}"


def encode(dst: bytes, src: bytes, message: Message, *, pad: bool = True) -> bytes:
    """The whole Ethernet frame of `message` (MMV 1 with FMI 0 for the CM_ messages; MMV 0 with
    Qualcomm's OUI for the VS_ ones), padded to 60 bytes unless `pad` is False."""
    mmtype = message.mmtype if isinstance(message, ValidateMessage) else message.MMTYPE
    head = parse_mac(dst) + parse_mac(src) + struct.pack(">H", ETHERTYPE_HOMEPLUG_AV)
    if mmtype.vendor:
        head += struct.pack("<BH", 0, mmtype) + QCA_OUI
    else:
        head += struct.pack("<BHH", 1, mmtype, 0)
    frame = head + message.pack()
    if pad and len(frame) < MIN_FRAME:
        frame += bytes(MIN_FRAME - len(frame))
    return frame


def peek_mmtype(frame: bytes) -> int | None:
    """The MMTYPE of a HomePlug frame without decoding the rest (None if too short or not 0x88E1)."""
    if len(frame) < ETHERNET_HEADER + 3 or frame[12:14] != b"\x88\xe1":
        return None
    return int.from_bytes(frame[15:17], "little")


def decode(frame: bytes) -> Mme:
    """The management message in an Ethernet frame (untagged); SlacDecodeError otherwise."""
    if len(frame) > MAX_FRAME:
        raise SlacDecodeError(DecodeFault.TOO_LONG, f"{len(frame)} bytes")
    if len(frame) < ETHERNET_HEADER:
        raise SlacDecodeError(DecodeFault.HEADER_CUT, f"{len(frame)} bytes")
    if frame[12:14] != b"\x88\xe1":
        raise SlacDecodeError(DecodeFault.NOT_HOMEPLUG, f"ethertype 0x{frame[12:14].hex()}")
    return decode_payload(frame[0:6], frame[6:12], frame[ETHERNET_HEADER:])


def decode_payload(dst: bytes, src: bytes, payload: bytes) -> Mme:
    """The management message after the Ethernet header (a capture's VLAN tags already skipped)."""
    if len(payload) < 3:
        raise SlacDecodeError(DecodeFault.HEADER_CUT, f"{len(payload)} bytes after Ethernet")
    mmv = payload[0]
    code = int.from_bytes(payload[1:3], "little")
    try:
        mmtype = MMType(code)
    except ValueError:
        raise SlacDecodeError(DecodeFault.UNKNOWN_MMTYPE, f"0x{code:04X} (MMV {mmv})") from None
    fragment = 0
    if mmtype.vendor:
        if mmv != 0:
            raise SlacDecodeError(DecodeFault.WRONG_MMV, f"{mmtype.name} with MMV {mmv}")
        if len(payload) < 6:
            raise SlacDecodeError(DecodeFault.HEADER_CUT, "vendor OUI cut")
        body = payload[6:]
    else:
        if mmv != 1:
            raise SlacDecodeError(DecodeFault.WRONG_MMV, f"{mmtype.name} with MMV {mmv}")
        if len(payload) < 5:
            raise SlacDecodeError(DecodeFault.HEADER_CUT, "fragmentation bytes cut")
        fragment = int.from_bytes(payload[3:5], "little")
        body = payload[5:]
    message = _DECODERS[mmtype](body)
    return Mme(bytes(dst), bytes(src), mmv, mmtype, message, fragment)


def fields_json(message: Message) -> dict[str, Any]:
    """A message's fields for the trace: bytes as hex (MACs as aa:bb:..), tuples as lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if isinstance(value, bytes):
            out[f.name] = mac_text(value) if len(value) == 6 else value.hex()
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif isinstance(value, MMType):
            out[f.name] = message_name(value)
        else:
            out[f.name] = value
    return out
