"""Fixtures of the host tests: a real-time clock whose loop the test drives, one test PKI for the
session, the veth pair between two network namespaces (tests/netns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import netns
import pytest

from rig.clock import RealClock
from rig.v2g.pki import PkiFolder, init_pki


@pytest.fixture
def clock() -> Iterator[RealClock]:
    clock = RealClock()
    try:
        yield clock
    finally:
        loop = clock.loop
        # Let links closed at the end of the test report and their transports go.
        if not loop.is_closed():
            clock.run_until(clock.now() + 0.02)
            # a test that failed half-way may leave a host's task waiting: end it quietly
            for task in asyncio.all_tasks(loop):
                task.cancel()
            clock.run_until(clock.now() + 0.01)
            loop.run_until_complete(loop.shutdown_asyncgens())
        clock.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFolder:
    return init_pki(tmp_path_factory.mktemp("host") / "pki")


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[netns.VethPair]:
    yield from netns.veth_fixture(tmp_path)
