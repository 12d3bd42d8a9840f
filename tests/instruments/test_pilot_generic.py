"""The pilot from generic parts: a switch unit's relays set the EV's state, a scope's capture of
the line is read as state, frequency, duty and levels (doubles stand in for the two parts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pytest

from instruments.pilot.analysis import analyze_pilot
from instruments.pilot.generic import GenericPilot
from instruments.roles import Coupling, Oscilloscope, PilotState, SwitchUnit, TriggerSlope, Waveform
from instruments.testing import FakeResource
from rig.sim.pilot import EV_LOAD, high_level

RELAYS = {"connect": "cp_b", "c": "cp_c", "d": "cp_d"}


class Relays(SwitchUnit):
    maker, model = "test", "relays"

    def __init__(self) -> None:
        super().__init__(FakeResource([]))
        self.closed: set[str] = set()

    @property
    def channels(self) -> Mapping[str, int]:
        return {"cp_b": 201, "cp_c": 202, "cp_d": 203}

    def close_channel(self, name: str) -> None:
        self._channel(name)
        self.closed.add(name)

    def open_channel(self, name: str) -> None:
        self.closed.discard(name)

    def channel_closed(self, name: str) -> bool:
        return name in self.closed

    def open_all(self) -> None:
        self.closed.clear()

    def settings(self) -> Mapping[str, object]:
        return {}

    def safe_state(self) -> None:
        self.open_all()


class LineScope(Oscilloscope):
    """A scope on a pilot whose EV load follows the relays (the sim's levels), with noise."""

    maker, model = "test", "scope"
    channel_count = 4

    def __init__(self, relays: Relays, duty: float, frequency: float = 1000.0) -> None:
        super().__init__(FakeResource([]))
        self.relays, self.duty, self.frequency = relays, duty, frequency
        self.rng = np.random.default_rng(7)

    def capture(self, channels: Iterable[int]) -> Mapping[int, Waveform]:
        closed = self.relays.closed
        state = (
            "A"
            if "cp_b" not in closed
            else "C"
            if "cp_c" in closed
            else "D"
            if "cp_d" in closed
            else "B"
        )
        high = high_level(EV_LOAD[PilotState(state)])  # type: ignore[index]
        t = np.arange(0, 0.005, 1e-6)
        phase = (t * self.frequency) % 1.0
        y = np.where(phase < self.duty, high, -12.0) + self.rng.normal(0, 0.05, t.size)
        return {c: Waveform(f"CHAN{c}", t, y, "V") for c in channels}

    def configure_channel(
        self,
        channel: int,
        *,
        per_div: float,
        offset: float = 0.0,
        probe: float = 1.0,
        unit: str = "V",
        coupling: Coupling = Coupling.DC,
    ) -> None:
        pass

    def set_timebase(self, *, seconds_per_div: float, delay_s: float = 0.0) -> None:
        pass

    def set_edge_trigger(
        self, source: str, *, level: float, slope: TriggerSlope = TriggerSlope.RISING
    ) -> None:
        pass

    def arm(self) -> None: ...
    def force_trigger(self) -> None: ...
    def acquisition_complete(self) -> bool:
        return True

    def fetch(self, channel: int) -> Waveform:
        return self.capture([channel])[channel]

    def settings(self) -> Mapping[str, object]:
        return {}

    def safe_state(self) -> None:
        pass


@pytest.mark.parametrize("state", ["A", "B", "C", "D"])
def test_the_relays_set_each_state_and_the_scope_reads_it(state: str) -> None:
    relays = Relays()
    pilot = GenericPilot(relays, LineScope(relays, duty=0.05), relays=RELAYS)
    pilot.set_state(state)
    reading = pilot.measure()
    assert reading.state is PilotState(state)
    assert reading.frequency_hz == pytest.approx(1000.0, rel=1e-3)
    assert reading.duty == pytest.approx(0.05, abs=0.002)
    assert reading.low_v == pytest.approx(-12.0, abs=0.1)


def test_safe_state_opens_every_pilot_relay() -> None:
    relays = Relays()
    pilot = GenericPilot(relays, LineScope(relays, duty=0.05), relays=RELAYS)
    pilot.set_state("D")
    assert relays.closed == {"cp_b", "cp_d"}
    pilot.safe_state()
    assert relays.closed == set() and pilot.state is PilotState.A


def test_an_unknown_relay_name_is_refused_at_once() -> None:
    relays = Relays()
    with pytest.raises(ValueError, match="no channel named"):
        GenericPilot(relays, LineScope(relays, 0.05), relays={**RELAYS, "c": "nope"})
    with pytest.raises(ValueError, match="not named"):
        GenericPilot(relays, LineScope(relays, 0.05), relays={"connect": "cp_b"})


def test_the_analysis_reads_a_nominal_duty_and_a_steady_line() -> None:
    t = np.arange(0, 0.004, 1e-6)
    y = np.where((t * 1000.0) % 1.0 < 0.267, 9.0, -12.0)
    reading = analyze_pilot(t, y)
    assert reading.duty == pytest.approx(0.267, abs=0.002) and reading.state is PilotState.B
    steady = analyze_pilot(t, np.full(t.size, 12.0))
    assert (steady.state, steady.frequency_hz, steady.duty) == (PilotState.A, None, None)
    with pytest.raises(ValueError):
        analyze_pilot(t[:3], y[:3])
