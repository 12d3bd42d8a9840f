"""Unsigned and signed integers (EXI 1.0 7.1.5, 7.1.6) at every octet count the codec treats on
its own path: the bytes against a plain reference writer and against streams written before the
inline integer paths, the bound checks of each length, and streams that end inside an integer."""

from __future__ import annotations

import pytest

from rig.v2g import exi
from rig.v2g.exi import common, dc

SID = bytes.fromhex("5A2CDE53F701D4AC")

# Written by the codec before integers of up to three octets were coded inline (and checked
# against the iso15118 peer by test_peer_crosscheck): SessionSetupReq by TimeStamp.
TIMESTAMP_STREAMS = {
    0: "808c042d166f29fb80ea5600020222ab00",
    127: "808c042d166f29fb80ea5607f20222ab00",
    128: "808c042d166f29fb80ea560800120222ab00",
    16383: "808c042d166f29fb80ea560ff7f20222ab00",
    16384: "808c042d166f29fb80ea56080800120222ab00",
    2097151: "808c042d166f29fb80ea560ffff7f20222ab00",
    2097152: "808c042d166f29fb80ea5608080800120222ab00",
    2**28: "808c042d166f29fb80ea560808080800120222ab00",
    2**35: "808c042d166f29fb80ea56080808080800120222ab00",
    2**64 - 1: "808c042d166f29fb80ea560ffffffffffffffffff0120222ab00",
}
# DC_PreChargeReq by the Value of EVTargetVoltage (last) or EVPresentVoltage (not last)
VALUE_STREAMS = {
    (0, True): "8044042d166f29fb80ea560012210000007d0000",
    (128, True): "8044042d166f29fb80ea560012210000007d080010",
    (16384, True): "8044042d166f29fb80ea560012210000007d08080010",
    (-32768, True): "8044042d166f29fb80ea560012210000007d1ffff010",
    (0, False): "8044042d166f29fb80ea56001220fa0000800000",
    (-129, False): "8044042d166f29fb80ea56001220fa300020800000",
    (16383, False): "8044042d166f29fb80ea56001220fa1fefe0800000",
    (-16385, False): "8044042d166f29fb80ea56001220fa30100020800000",
}
TIMESTAMP_AT = (
    8 + 6 + 1 + (1 + 1 + 8 + 64 + 1) + 1 + 1
)  # header, root, SE(Header), SessionID, SE, CH
VALUE_AT = {True: 148, False: 123}  # first bit of the Value's magnitude (its sign bit before)


def bits_of(data: bytes) -> str:
    return format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")


def to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def reference_uint(value: int) -> str:
    """7-bit groups, least significant first, the high bit of an octet set if more follow."""
    out = ""
    while value >= 128:
        out += format(128 | (value & 127), "08b")
        value >>= 7
    return out + format(value, "08b")


def session_setup(timestamp: int) -> common.SessionSetupReq:
    return common.SessionSetupReq(
        Header=common.MessageHeaderType(SessionID=SID, TimeStamp=timestamp), EVCCID="EV"
    )


def pre_charge(value: int, last: bool) -> dc.DC_PreChargeReq:
    r = dc.RationalNumberType(Exponent=-3, Value=value)
    z = dc.RationalNumberType(Exponent=0, Value=0)
    return dc.DC_PreChargeReq(
        Header=dc.MessageHeaderType(SessionID=SID, TimeStamp=1),
        EVProcessing=dc.processingType.Ongoing,
        EVPresentVoltage=z if last else r,
        EVTargetVoltage=r if last else z,
    )


TIMESTAMPS = [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 2**28 - 1, 2**28, 2**35, 2**64 - 1]
VALUES = [0, 1, 127, 128, 16383, 16384, 32767, -1, -128, -129, -16384, -16385, -32768]


@pytest.mark.parametrize("timestamp", TIMESTAMPS)
def test_unsigned_long_of_every_length(timestamp: int) -> None:
    m = session_setup(timestamp)
    data = exi.encode(m)
    zero = bits_of(exi.encode(session_setup(0)))
    expected = zero[:TIMESTAMP_AT] + reference_uint(timestamp) + zero[TIMESTAMP_AT + 8 :]
    assert bits_of(data) == (expected + "0" * (-len(expected) % 8))
    if timestamp in TIMESTAMP_STREAMS:
        assert data.hex() == TIMESTAMP_STREAMS[timestamp]
    assert exi.decode("common", data) == m


@pytest.mark.parametrize("last", [True, False], ids=["last-field", "inner-field"])
@pytest.mark.parametrize("value", VALUES)
def test_short_of_every_length(value: int, last: bool) -> None:
    m = pre_charge(value, last)
    data = exi.encode(m)
    zero = bits_of(exi.encode(pre_charge(0, last)))
    at = VALUE_AT[last]
    magnitude = ~value if value < 0 else value
    expected = zero[: at - 1] + str(int(value < 0)) + reference_uint(magnitude) + zero[at + 8 :]
    assert bits_of(data) == expected + "0" * (-len(expected) % 8)
    if (value, last) in VALUE_STREAMS:
        assert data.hex() == VALUE_STREAMS[(value, last)]
    assert exi.decode("dc", data) == m


def _with_magnitude(last: bool, sign: str, octets: str) -> bytes:
    """The DC_PreChargeReq stream with the Value's sign bit and magnitude octets replaced."""
    zero = bits_of(exi.encode(pre_charge(0, last)))
    at = VALUE_AT[last]
    return to_bytes(zero[: at - 1] + sign + octets + zero[at + 8 :])


@pytest.mark.parametrize("last", [True, False], ids=["last-field", "inner-field"])
def test_values_beyond_a_short_are_refused_where_they_start(last: bool) -> None:
    at = VALUE_AT[last]
    for sign, magnitude, shown in (
        ("0", 32768, 32768),
        ("1", 32768, -32769),
        ("0", 2**21 - 1, 2**21 - 1),
    ):
        stream = _with_magnitude(last, sign, reference_uint(magnitude))
        with pytest.raises(exi.EXIDecodeError, match=f"value {shown} outside") as info:
            exi.decode("dc", stream)
        assert info.value.bit_offset == at
    # a fourth octet: more than a short can need
    stream = _with_magnitude(last, "0", "10000000" * 3 + "00000001")
    with pytest.raises(exi.EXIDecodeError, match="longer than 3 octets") as info:
        exi.decode("dc", stream)
    assert info.value.bit_offset == at
    # two octets that spell a small value the long way are still that value
    long_way = exi.decode("dc", _with_magnitude(last, "0", "10000101" + "00000000"))
    assert (long_way.EVTargetVoltage if last else long_way.EVPresentVoltage).Value == 5


@pytest.mark.parametrize("value", [127, 128, -16385, 32767])
def test_a_stream_cut_inside_its_last_integer_says_where(value: int) -> None:
    """Cut anywhere in (or after) the last Value: the end of the stream is reported, never a
    value made of missing bits; a cut inside the integer is reported at the octet it cuts."""
    data = exi.encode(pre_charge(value, True))
    at = VALUE_AT[True]
    octets = len(reference_uint(~value if value < 0 else value)) // 8
    for end in range(at - 1, len(data) * 8):
        cut = data[: (end + 7) // 8]
        if len(cut) == len(data):
            continue
        with pytest.raises(exi.EXIDecodeError, match="stream ends") as info:
            exi.decode("dc", cut)
        if at + 8 <= len(cut) * 8 < at + 8 * octets:
            # past the first octet (read with the bits before it): the octet the end cuts,
            # or the one after the last whole octet
            first_missing = at + 8 * ((len(cut) * 8 - at) // 8)
            assert info.value.bit_offset == first_missing, (len(cut), info.value)
