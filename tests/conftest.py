"""Shared test helpers: where ../shared lives, and how optional dependencies skip or fail.

Locally a test that needs something optional (the shared data folder, the iso15118 peer, Java)
skips with a reason. Under .ci/run, RIG_REQUIRE_OPTIONAL=1 turns every such skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
