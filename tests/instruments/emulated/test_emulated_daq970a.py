"""The emulated DAQ970A: named channels, S3 and the transfer switch on the emulated bench."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.ac6900 import AC6900Twin
from instruments.emulated.daq970a import DAQ970ATwin

CHANNELS = {"channels": {"s3": 101, "transfer_switch": 102, "k3": 103}}


@pytest.fixture
def switches(world: FakeWorld, clock: Clock) -> DAQ970ATwin:
    return DAQ970ATwin(world, clock.now, options=CHANNELS)


def test_channels_start_as_the_bench_stands(switches: DAQ970ATwin) -> None:
    assert switches.handle("ROUT:CLOS? (@101:103)") == "1,1,0"
    assert switches.handle("ROUT:OPEN? (@101,103)") == "0,1"


def test_opening_s3_takes_the_grid_from_the_site_but_not_from_the_source(
    switches: DAQ970ATwin, world: FakeWorld, clock: Clock
) -> None:
    source = AC6900Twin(world, clock.now)
    switches.handle("ROUT:OPEN (@101)")
    assert not world.grid_output and source.output_on
    source.handle("OUTP ON")  # switching the source on does not bypass an open S3
    assert not world.grid_output
    switches.handle("ROUT:CLOS (@101)")
    assert world.grid_output


def test_the_transfer_switch_channel_operates_the_worlds_switch(
    switches: DAQ970ATwin, world: FakeWorld
) -> None:
    switches.handle("ROUT:OPEN (@102)")
    assert not world.transfer_switch_closed
    switches.handle("ROUT:CLOS (@102)")
    assert world.transfer_switch_closed


def test_rst_opens_everything(switches: DAQ970ATwin, world: FakeWorld) -> None:
    switches.handle("*RST")
    assert switches.handle("ROUT:CLOS? (@101:103)") == "0,0,0"
    assert not world.grid_output and not world.transfer_switch_closed


@pytest.mark.parametrize(
    ("message", "code"),
    [("ROUT:CLOS (@401)", -222), ("ROUT:CLOS 101", -104), ("ROUT:CLOS (@1a)", -104)],
)
def test_bad_channel_lists(switches: DAQ970ATwin, message: str, code: int) -> None:
    switches.handle(message)
    assert switches.errors[0][0] == code


def test_drives_must_name_a_channel_and_a_known_target(world: FakeWorld, clock: Clock) -> None:
    with pytest.raises(ValueError, match="drives"):
        DAQ970ATwin(world, clock.now, options={**CHANNELS, "drives": {"k3": "main_breaker"}})
