"""DAQ970A driver against exact SCPI pairs (ROUT:CLOS, ROUT:OPEN, ROUT:CLOS? channel lists)."""

from __future__ import annotations

import pytest

from instruments.keysight.daq970a import DAQ970A
from instruments.roles import InstrumentError, RangeError
from instruments.testing import expected_protocol

NO_ERROR = ("SYST:ERR?", '+0,"No error"')
CHANNELS = {"channels": {"s3": 101, "transfer_switch": 102, "k3": 103}}


def test_channels_by_name() -> None:
    pairs = [
        ("ROUT:CLOS (@101)", None),
        NO_ERROR,
        ("ROUT:CLOS? (@101)", "1"),
        ("ROUT:OPEN (@101)", None),
        NO_ERROR,
    ]
    with expected_protocol(DAQ970A, pairs, options=CHANNELS) as switches:
        switches.close_channel("s3")
        assert switches.channel_closed("s3")
        switches.open_channel("s3")


def test_an_unknown_name_sends_nothing() -> None:
    with (
        expected_protocol(DAQ970A, [], options=CHANNELS) as switches,
        pytest.raises(ValueError, match="known: k3, s3, transfer_switch"),
    ):
        switches.close_channel("s4")


def test_safe_state_opens_every_named_channel_and_reads_them_back() -> None:
    pairs = [
        ("ROUT:OPEN (@101,102,103)", None),
        ("ROUT:CLOS? (@101,102,103)", "0,0,0"),
    ]
    with expected_protocol(DAQ970A, pairs, options=CHANNELS) as switches:
        switches.safe_state()


def test_safe_state_names_a_channel_that_stays_closed() -> None:
    pairs = [
        ("ROUT:OPEN (@101,102,103)", None),
        ("ROUT:CLOS? (@101,102,103)", "0,1,0"),
    ]
    with (
        expected_protocol(DAQ970A, pairs, options=CHANNELS) as switches,
        pytest.raises(InstrumentError, match="still closed: transfer_switch"),
    ):
        switches.safe_state()


def test_settings_list_the_channels_their_states_and_the_modules() -> None:
    pairs = [
        ("ROUT:CLOS? (@101,102,103)", "1,1,0"),
        ("SYST:CTYP? 1", "Keysight Technologies,DAQM903A,0,1.0"),
    ]
    with expected_protocol(DAQ970A, pairs, options=CHANNELS) as switches:
        settings = switches.settings()
    assert settings["closed"] == {"s3": True, "transfer_switch": True, "k3": False}
    assert settings["modules"] == {1: "Keysight Technologies,DAQM903A,0,1.0"}


@pytest.mark.parametrize(
    "channels", [{"s3": 401}, {"s3": 150}, {"s3": 101, "k1": 101}, {"s3": "one"}]
)
def test_bad_channel_maps_are_refused(channels: dict[str, object]) -> None:
    with (
        pytest.raises((ValueError, RangeError)),
        expected_protocol(DAQ970A, [], options={"channels": channels}),
    ):
        pass
