"""What every benchmark module shares: its large results are gone when the module ends.

A benchmark's module fixture can hold gigabytes (the 24 h day plan's trace). When a test using
it fails or xfails, the exception's traceback and the test's frame form a reference cycle that
keeps the fixture's value alive after the module's teardown, until the collector's next full
pass, which then walks millions of objects for seconds in whatever test happens to be running.
In CI's one serial session that was a later real-time test (an instrument query timed out in
the pause). Collecting here frees it at a known point, outside anything timed. pytest keeps the
last failure for post-mortem debugging in sys.last_traceback until the next test runs; that
reference goes first (pytest drops it at the next test anyway).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def _collect_after_module() -> Iterator[None]:
    yield
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        with contextlib.suppress(AttributeError):
            delattr(sys, name)
    gc.collect()
