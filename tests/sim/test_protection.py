"""Passive protection: the IEEE 1547-2018 Category II trip table and clearing-time tracking."""

from __future__ import annotations

import pytest

from rig.sim import CATEGORY_II_TRIPS
from rig.sim.protection import PassiveProtection


def table() -> dict[str, tuple[float, float]]:
    return {s.name: (s.threshold, s.clearing_s) for s in CATEGORY_II_TRIPS}


def test_category_ii_defaults_match_ieee_1547() -> None:
    assert table() == {
        "OV2": (1.20, 0.16),
        "OV1": (1.10, 2.0),
        "UV1": (0.70, 10.0),
        "UV2": (0.45, 0.16),
        "OF2": (2.0, 0.16),
        "OF1": (1.2, 300.0),
        "UF1": (-1.5, 300.0),
        "UF2": (-3.5, 0.16),
    }


def test_a_violation_trips_after_its_clearing_time() -> None:
    relay = PassiveProtection(CATEGORY_II_TRIPS)
    relay.update(10.0, 1.0, 0.0)
    assert relay.next_trip() is None
    relay.update(11.0, 1.15, 0.0)  # OV1
    due, setting = relay.next_trip() or (0.0, None)
    assert setting is not None and setting.name == "OV1"
    assert due == pytest.approx(13.0)
    relay.update(11.5, 1.25, 0.0)  # now OV2 as well: it clears first
    due, setting = relay.next_trip() or (0.0, None)
    assert setting is not None and setting.name == "OV2"
    assert due == pytest.approx(11.66)


def test_a_violation_that_clears_does_not_trip() -> None:
    relay = PassiveProtection(CATEGORY_II_TRIPS)
    relay.update(0.0, 0.4, None)  # dead bus: UV2, frequency not judged
    assert relay.pending.keys() == {"UV1", "UV2"}
    relay.update(0.1, 1.0, 0.0)
    assert relay.next_trip() is None


def test_min_clearing_stretches_every_setting() -> None:
    relay = PassiveProtection(CATEGORY_II_TRIPS, min_clearing_s=3.0)
    relay.update(5.0, 0.0, None)
    due, setting = relay.next_trip() or (0.0, None)
    assert setting is not None and due == pytest.approx(8.0)


def test_frequency_deviation_trips_on_its_own() -> None:
    relay = PassiveProtection(CATEGORY_II_TRIPS)
    relay.update(0.0, 1.0, -3.6)
    assert set(relay.pending) == {"UF1", "UF2"}
