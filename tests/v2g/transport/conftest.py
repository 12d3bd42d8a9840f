"""Fixtures of the transport tests: an asyncio loop the test owns, the veth pair (tests/netns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop per test, driven with run_until_complete (the library never runs one)."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)
