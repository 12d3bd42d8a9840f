"""The checks' per-trace caches: shared by the checks of one run, never keeping a trace alive."""

from __future__ import annotations

import gc

from rig.checks.v2gtrace import PerTrace, messages
from rig.trace import Event, Trace


def _trace(n: int) -> Trace:
    trace = Trace()
    for k in range(n):
        trace.add_event(
            Event(float(k), "v2g", "message", {"dir": "tx", "message": "DC_ChargeLoopReq"})
        )
    return trace


def test_one_read_per_trace_and_again_when_it_grew() -> None:
    cache: PerTrace[int] = PerTrace()
    trace = _trace(3)
    assert cache.get(trace) is None
    assert cache.put(trace, 3) == 3 and cache.get(trace) == 3
    assert cache.get(_trace(3)) is None  # another trace, however alike
    trace.add_event(Event(9.0, "v2g", "message", {}))
    assert cache.get(trace) is None  # the trace grew: read it again


def test_a_dropped_trace_takes_what_was_read_from_it_along() -> None:
    trace = _trace(5)
    assert len(messages(trace)) == 5
    from rig.checks import v2gtrace

    assert v2gtrace._MESSAGES._entry is not None
    del trace
    gc.collect()
    assert v2gtrace._MESSAGES._entry is None
