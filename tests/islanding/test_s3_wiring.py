"""S3 of IEEE 1547.1 5.10 on the emulated bench: its own relay on the switch unit, in series with
the grid simulator's output relay, between the source and the EUT's point of connection where
the RLC bank hangs in parallel with the EVSE."""

from __future__ import annotations

from typing import Any

import pyvisa

from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.registry import MODELS, make_twin, open_instrument
from instruments.roles import GridSimulator, RlcLoadBank, SwitchUnit
from rig.clock import VirtualClock
from rig.sim import World, WorldConfig


def test_opening_s3_takes_the_grid_from_the_site_while_the_source_stays_on() -> None:
    world = World(WorldConfig(), seed=2)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    rm = pyvisa.ResourceManager(library)
    twins: dict[str, Any] = {}
    drivers: dict[str, Any] = {}
    for name, key, options in (
        ("grid", "keysight_ac6900", {}),
        ("switches", "keysight_daq970a", {"channels": {"s3": 101}}),
        ("rlc", "chroma_a635000", {}),
    ):
        twins[name] = twin = make_twin(key, world, clock.now, serial=name, options=options)
        resource = rm.open_resource(library.add(MODELS[key].emulated_resource(name), twin))
        drivers[name] = open_instrument(key, resource, name=name, options=options)
    grid, switches, rlc = drivers["grid"], drivers["switches"], drivers["rlc"]
    assert isinstance(grid, GridSimulator) and isinstance(switches, SwitchUnit)
    assert isinstance(rlc, RlcLoadBank)
    grid.set_voltage(230)
    grid.set_frequency(50)
    grid.set_output(True)
    switches.close_channel("s3")
    rlc.set_balanced(3000.0, 1.0, v_nominal=230.0, f_nominal=50.0)
    rlc.set_input(True)
    clock.sleep_until(1.0)
    assert world.grid_output and world.home.rlc is not None
    switches.open_channel("s3")
    assert not world.grid_output  # the site lost the grid ...
    assert (
        grid.output_enabled() and twins["grid"].state()["output_on"] is True
    )  # ... not the source
    assert switches.channel_closed("s3") is False
    switches.close_channel("s3")
    assert world.grid_output
    rm.close()
