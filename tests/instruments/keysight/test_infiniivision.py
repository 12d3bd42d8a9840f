"""InfiniiVision driver against exact SCPI pairs (channels, timebase, edge trigger, waveforms)."""

from __future__ import annotations

import numpy as np
import pytest

from instruments.blocks import encode_block
from instruments.keysight.infiniivision import InfiniiVision, Preamble
from instruments.roles import Coupling, RangeError, TriggerSlope
from instruments.testing import expected_protocol

NO_ERROR = (":SYSTem:ERRor?", '+0,"No error"')
TRANSFER = [
    (":WAVeform:FORMat WORD", None),
    (":WAVeform:BYTeorder LSBFirst", None),
    (":WAVeform:UNSigned 0", None),
    (":WAVeform:POINts:MODE RAW", None),
    (":WAVeform:POINts MAXimum", None),
]


def test_a_current_probe_channel() -> None:
    pairs = [
        (":CHANnel2:DISPlay ON", None),
        (":CHANnel2:UNITs AMPere", None),
        (":CHANnel2:PROBe 10", None),
        (":CHANnel2:SCALe 5", None),
        (":CHANnel2:OFFSet 0", None),
        (":CHANnel2:COUPling DC", None),
        ("SYST:ERR?", '+0,"No error"'),
    ]
    with expected_protocol(InfiniiVision, pairs) as scope:
        scope.configure_channel(2, per_div=5.0, probe=10.0, unit="A", coupling=Coupling.DC)


def test_timebase_trigger_on_the_s3_contact_and_a_single_acquisition() -> None:
    pairs = [
        (":TIMebase:REFerence CENTer", None),
        (":TIMebase:SCALe 0.05", None),
        (":TIMebase:POSition 0.2", None),
        ("SYST:ERR?", '+0,"No error"'),
        (":TRIGger:MODE EDGE", None),
        (":TRIGger:SWEep NORMal", None),
        (":TRIGger:EDGE:SOURce EXTernal", None),
        (":TRIGger:EDGE:LEVel 1.5", None),
        (":TRIGger:EDGE:SLOPe NEGative", None),
        ("SYST:ERR?", '+0,"No error"'),
        (":SINGle", None),
        ("SYST:ERR?", '+0,"No error"'),
        (":OPERegister:CONDition?", "+8"),
        (":OPERegister:CONDition?", "+0"),
    ]
    with expected_protocol(InfiniiVision, pairs) as scope:
        scope.set_timebase(seconds_per_div=0.05, delay_s=0.2)
        scope.set_edge_trigger("EXT", level=1.5, slope=TriggerSlope.FALLING)
        scope.arm()
        assert not scope.acquisition_complete()  # Run bit still set
        assert scope.acquisition_complete()


def test_fetch_scales_word_codes_with_the_preamble() -> None:
    codes = np.array([-256, 0, 256, 32512], dtype="<i2")
    block = encode_block(codes.tobytes()) + b"\n"
    preamble = "+1,+0,+4,+1,+1.0E-05,-1.5E-02,+0,+1.0E-02,+5.0E+00,+0"
    pairs = [
        *TRANSFER,
        (":WAVeform:SOURce CHANnel1", None),
        (":WAVeform:PREamble?", preamble),
        (":WAVeform:DATA?", block),
        ("SYST:ERR?", '+0,"No error"'),
        (":CHANnel1:UNITs?", "VOLT"),
    ]
    with expected_protocol(InfiniiVision, pairs) as scope:
        waveform = scope.fetch(1)
    assert waveform.unit == "V" and waveform.channel == "CHAN1"
    np.testing.assert_allclose(waveform.t, [-0.015, -0.01499, -0.01498, -0.01497])
    np.testing.assert_allclose(waveform.y, [2.44, 5.0, 7.56, 330.12])


def test_a_block_shorter_than_the_preamble_says_is_an_error() -> None:
    block = encode_block(np.zeros(3, dtype="<i2").tobytes())
    preamble = "+1,+0,+4,+1,+1.0E-05,0,0,+1.0E-02,0,0"
    pairs = [
        *TRANSFER,
        (":WAVeform:SOURce CHANnel1", None),
        (":WAVeform:PREamble?", preamble),
        (":WAVeform:DATA?", block),
    ]
    with (
        expected_protocol(InfiniiVision, pairs) as scope,
        pytest.raises(ValueError, match="3 points"),
    ):
        scope.fetch(1)


def test_preamble_parsing_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="10 fields"):
        Preamble.parse("1,0,4")
    with pytest.raises(ValueError):
        Preamble.parse("+1,+0,+4,+1,+1.0E-05,NAN,0,+1.0E-02,0,0")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.configure_channel(5, per_div=1.0),
        lambda s: s.configure_channel(1, per_div=100.0),  # 100 V/div needs a 100:1 probe
        lambda s: s.configure_channel(1, per_div=1.0, unit="W"),
        lambda s: s.set_timebase(seconds_per_div=100.0),
        lambda s: s.set_edge_trigger("LINE", level=0.0),
    ],
)
def test_impossible_settings_are_refused_before_sending(call: object) -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(RangeError):
        call(scope)  # type: ignore[operator]


def test_safe_state_sends_nothing_a_scope_drives_nothing() -> None:
    with expected_protocol(InfiniiVision, []) as scope:
        scope.safe_state()
