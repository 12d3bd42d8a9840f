"""Shared test helpers: where ../shared lives, and how optional dependencies skip or fail.

Locally a test that needs something optional (the shared data folder, the iso15118 peer, Java)
skips with a reason. Under .ci/run, RIG_REQUIRE_OPTIONAL=1 turns every such skip into a failure.

Every test module ends with a full collection (`_collect_after_module`): a module's runs leave
cyclic garbage behind (a run's trace and records; a million objects after the day-run tests, a
24 h day's gigabyte after its benchmark), which otherwise waits for the collector's next full
pass. In CI's one serial session that pass came seconds long in the middle of a later real-time
test, whose instrument query timed out in it (tests/test_cli_instruments.py, three CI runs).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Repeat the benchmarks' printed figures in the terminal summary (tests/benchmarks/figures.py)."""
    path = REPO / "tests" / "benchmarks" / "figures.py"
    spec = importlib.util.spec_from_file_location("_benchmark_figures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config.pluginmanager.register(module.BenchmarkFigures(path.parent), "benchmark-figures")


def require_optional() -> bool:
    """True when optional prerequisites are mandatory (set by .ci/run)."""
    return os.environ.get("RIG_REQUIRE_OPTIONAL", "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip the calling test for `reason`, or fail it when optional prerequisites are required."""
    if require_optional():
        pytest.fail(f"required under RIG_REQUIRE_OPTIONAL=1: {reason}", pytrace=False)
    pytest.skip(reason)


def shared_dir() -> Path:
    """The read-only data folder beside the checkout (schemas, vectors, pcaps)."""
    return Path(os.environ.get("RIG_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "vectors").is_dir():
        missing(f"shared data folder not found at {path} (set RIG_SHARED)")
    return path


@pytest.fixture(scope="module", autouse=True)
def _collect_after_module() -> Iterator[None]:
    """After the module's own fixtures are gone: a full collection at a known point, outside
    anything timed. pytest keeps the last failure (an xfailed test's frames, and through them
    its fixtures' values) in sys.last_traceback until the next test runs: that goes first."""
    yield
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        with contextlib.suppress(AttributeError):
            delattr(sys, name)
    gc.collect()
