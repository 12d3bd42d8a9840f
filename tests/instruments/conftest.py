"""Fixtures for the instrument tests: the World double and a hand-driven clock."""

from __future__ import annotations

import pytest
from world_double import Clock, FakeWorld


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def clock() -> Clock:
    return Clock()
