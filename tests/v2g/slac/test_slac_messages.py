"""The SLAC frame codec: scapy's HomePlug GP layers build the same bytes and read the same
fields; every frame of the real-car captures decodes and re-encodes byte for byte; no bytes make
the decoder raise anything but SlacDecodeError."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
from scapy.contrib import homepluggp as gp
from scapy.contrib.homeplugav import HomePlugAV
from scapy.layers.l2 import Ether

from rig.v2g.pcapread import read_frames
from rig.v2g.slac import messages as m

EV, EVSE = bytes.fromhex("02000000ee01"), bytes.fromhex("02000000e5e1")
RUN = bytes.fromhex("0102030405060708")
NMK = bytes(range(16))


def _scapy(dst: bytes, src: bytes, mmtype: int, layer: object) -> bytes:
    frame = Ether(dst=m.mac_text(dst), src=m.mac_text(src)) / HomePlugAV(version=1, HPtype=mmtype)
    return bytes(frame / layer)  # type: ignore[operator]


CASES = [
    (m.SlacParmReq(run_id=RUN), gp.CM_SLAC_PARM_REQ(RunID=RUN)),
    (
        m.SlacParmCnf(forwarding_sta=EV, run_id=RUN),
        gp.CM_SLAC_PARM_CNF(
            MSoundTargetMAC="ff:ff:ff:ff:ff:ff", NumberMSounds=10, TimeOut=6, ResponseType=1,
            ForwardingSTA=m.mac_text(EV), RunID=RUN,
        ),
    ),
    (
        m.StartAttenCharInd(forwarding_sta=EV, run_id=RUN),
        gp.CM_START_ATTEN_CHAR_IND(NumberOfSounds=10, TimeOut=6, ResponseType=1,
                                   ForwardingSTA=m.mac_text(EV), RunID=RUN),
    ),
    (
        m.MnbcSoundInd(count=7, run_id=RUN, random=bytes(range(16))),
        gp.CM_MNBC_SOUND_IND(Countdown=7, RunID=RUN, RandomValue=bytes(range(16))),
    ),
    (
        m.AttenCharRsp(source_address=EV, run_id=RUN),
        gp.CM_ATTEN_CHAR_RSP(SourceAdress=m.mac_text(EV), RunID=RUN),
    ),
    (
        m.SlacMatchReq(pev_mac=EV, evse_mac=EVSE, run_id=RUN),
        gp.CM_SLAC_MATCH_REQ(
            VariableField=gp.SLAC_varfield(EVMAC=m.mac_text(EV), EVSEMAC=m.mac_text(EVSE), RunID=RUN)
        ),
    ),
    (
        m.SlacMatchCnf(pev_mac=EV, evse_mac=EVSE, run_id=RUN, nid=m.nid_from_nmk(NMK), nmk=NMK),
        gp.CM_SLAC_MATCH_CNF(
            VariableField=gp.SLAC_varfield_cnf(
                EVMAC=m.mac_text(EV), EVSEMAC=m.mac_text(EVSE), RunID=RUN,
                NetworkID=m.nid_from_nmk(NMK), NMK=NMK,
            )
        ),
    ),
    (
        m.SetKeyReq(nid=m.nid_from_nmk(NMK), new_key=NMK),
        gp.CM_SET_KEY_REQ(KeyType=1, MyNonce=0xAAAAAAAA, PID=4, NetworkID=m.nid_from_nmk(NMK),
                          NewEncKeySelect=1, NewKey=NMK),
    ),
]  # fmt: skip


@pytest.mark.parametrize("ours, theirs", CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_our_frames_are_scapys_byte_for_byte(ours: m.Message, theirs: object) -> None:
    frame = m.encode(EVSE, EV, ours, pad=False)
    assert frame == _scapy(EVSE, EV, ours.MMTYPE, theirs)
    assert m.decode(frame).message == ours


def test_atten_char_ind_and_profile_read_as_scapy_reads_them() -> None:
    aag = tuple(range(20, 78))
    frame = m.encode(
        EV, EVSE, m.AttenCharInd(source_address=EV, run_id=RUN, num_sounds=10, aag=aag)
    )
    parsed = Ether(frame)
    layer = parsed[gp.CM_ATTEN_CHAR_IND]
    assert (layer.NumberOfSounds, layer.NumberOfGroups, layer.RunID) == (10, 58, RUN)
    assert [g.group for g in layer.Groups] == list(aag)
    profile = m.encode(EVSE, EV, m.AttenProfileInd(pev_mac=EV, aag=aag))
    layer2 = Ether(profile)[gp.CM_ATTENUATION_CHARACTERISTICS_MME]
    assert [g.group for g in layer2.Groups] == list(aag)


def test_every_homeplug_frame_of_the_captures_round_trips(shared: Path) -> None:
    total = 0
    for path in sorted((shared / "pcaps").glob("*.p*")):
        frames, _ = read_frames(path)
        for f in frames:
            if f.data[12:14] != b"\x88\xe1":
                continue
            mme = m.decode(f.data)
            again = m.encode(mme.dst, mme.src, mme.message)
            assert f.data[: len(again)] == again and not any(f.data[len(again) :]), f.number
            total += 1
    assert total == 51 + 35 + 35


def test_the_nid_of_the_vw_captures_key_is_the_one_it_sent(shared: Path) -> None:
    frames, _ = read_frames(shared / "pcaps" / "tux-evse__vw-ac-iso2.pcap")
    cnf = next(m.decode(f.data) for f in frames if m.peek_mmtype(f.data) == 0x607D)
    assert isinstance(cnf.message, m.SlacMatchCnf)
    assert m.nid_from_nmk(cnf.message.nmk) == cnf.message.nid


def test_no_bytes_make_the_decoder_raise_anything_else() -> None:
    rng = random.Random(14)
    seeds = [m.encode(EVSE, EV, c[0]) for c in CASES]
    seeds.append(m.encode(EV, EVSE, m.AttenCharInd(aag=(20,) * 58)))
    seeds.append(m.encode(EV, EVSE, m.RdModCnf(data=bytes(64))))
    seeds.append(m.encode(EV, EVSE, m.SwVerCnf(version="x")))
    for _ in range(5000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(0, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randint(0, len(data))]
        with contextlib.suppress(m.SlacDecodeError):
            m.decode(bytes(data))
    with pytest.raises(m.SlacDecodeError, match="longer"):
        m.decode(bytes(2000))
