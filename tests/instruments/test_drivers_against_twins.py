"""Every driver against its own twin: the twin accepts everything the driver sends.

One parametrized test over all models: the model's scenario calls every public method of the
driver, through pyvisa and the in-process VISA library, over a real rig.sim World in virtual
time; afterwards the twin's error queue must be empty and every command in the driver's COMMANDS
table must have gone over the wire at least once (so the table has no command the twin never saw).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import pytest
import pyvisa
from scenarios import SCENARIOS

from instruments.commands import Cmd
from instruments.emulated.visa import EmulatedVisaLibrary
from instruments.registry import MODELS, make_twin, open_instrument
from rig.clock import VirtualClock
from rig.sim import World, WorldConfig


class Recording:
    """A message-based resource that remembers every message the driver sent."""

    def __init__(self, inner: pyvisa.resources.MessageBasedResource) -> None:
        self.inner = inner
        self.sent: list[str] = []

    def write(self, message: str) -> object:
        self.sent.append(message)
        return self.inner.write(message)

    def query(self, message: str) -> str:
        self.sent.append(message)
        return self.inner.query(message)

    def query_binary_values(self, message: str, **kwargs: object) -> object:
        self.sent.append(message)
        return self.inner.query_binary_values(message, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.inner.close()

    @property
    def read_termination(self) -> str | None:
        return self.inner.read_termination

    @read_termination.setter
    def read_termination(self, value: str) -> None:
        self.inner.read_termination = value

    @property
    def write_termination(self) -> str:
        return self.inner.write_termination

    @write_termination.setter
    def write_termination(self, value: str) -> None:
        self.inner.write_termination = value

    @property
    def timeout(self) -> float:
        return float(self.inner.timeout)

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.inner.timeout = value


def _static(cmd: Cmd) -> str:
    """The command text up to its first placeholder."""
    return cmd.template.split("{", 1)[0]


def test_every_model_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(MODELS)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_the_twin_accepts_everything_its_driver_sends(key: str) -> None:
    entry = MODELS[key]
    scenario = SCENARIOS[key]
    world = World(WorldConfig(), seed=5)
    clock = VirtualClock()
    library = EmulatedVisaLibrary()
    library.use_clock(clock.sleep_until)
    rm = pyvisa.ResourceManager(library)
    options = {**scenario.driver_options, **scenario.twin_options}
    twin = make_twin(key, world, clock.now, serial="EMU0042", options=options)
    name = library.add(entry.emulated_resource("EMU0042"), twin)
    raw = rm.open_resource(name)
    assert isinstance(raw, pyvisa.resources.MessageBasedResource)
    recording = Recording(raw)
    driver = open_instrument(key, recording, options=options, name=f"{key} twin")

    scenario.run(driver, clock.sleep)

    assert twin.errors == [], f"{key}: the twin refused {twin.errors} of {recording.sent}"
    assert library.forced_waits == 0
    table: Mapping[str, Cmd] = importlib.import_module(type(driver).__module__).COMMANDS
    units = [unit for message in recording.sent for unit in (message, *message.split(";"))]
    unused = sorted(
        name
        for name, cmd in table.items()
        if not any(unit.startswith(_static(cmd)) for unit in units)
    )
    assert unused == [], f"{key}: commands never sent by the scenario: {unused}"
