"""The transition tables are the state machines: complete, consistent, and all of them reachable."""

from __future__ import annotations

from rig.v2g.evcc import TRANSITIONS as EVCC_TRANSITIONS
from rig.v2g.evcc import Evcc, EvccState
from rig.v2g.messages import Request
from rig.v2g.reference import BatteryEv, BenchCharger
from rig.v2g.secc import TRANSITIONS as SECC_TRANSITIONS
from rig.v2g.secc import Secc, SeccState


def reachable(table: dict[object, set[object]], start: object) -> set[object]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in table.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_secc_table_covers_every_state_and_has_a_handler_per_accepted_request() -> None:
    assert set(SECC_TRANSITIONS) == set(SeccState)
    secc = Secc(BenchCharger())
    for state, accepts in SECC_TRANSITIONS.items():
        for request, targets in accepts.items():
            assert request in secc._handlers, (state, request)
            assert targets and targets <= set(SeccState), (state, request)
    flat = {
        s: {t for ts in a.values() for t in ts} | {SeccState.CLOSING}
        for s, a in SECC_TRANSITIONS.items()
    }
    assert reachable(flat, SeccState.SUPPORTED_APP_PROTOCOL) >= set(SeccState) - {SeccState.CLOSED}
    unimplemented = {
        Request.CERTIFICATE_INSTALLATION,
        Request.METERING_CONFIRMATION,
        Request.VEHICLE_CHECK_IN,
        Request.VEHICLE_CHECK_OUT,
    }
    accepted = {r for a in SECC_TRANSITIONS.values() for r in a}
    assert accepted == set(Request) - unimplemented


def test_evcc_table_covers_every_state_with_a_builder_and_a_handler() -> None:
    assert set(EVCC_TRANSITIONS) == set(EvccState)
    evcc = Evcc(BatteryEv())
    for state in set(EvccState) - {EvccState.IDLE, EvccState.CLOSED}:
        assert state in evcc._builders and state in evcc._handlers, state
    assert reachable(dict(EVCC_TRANSITIONS), EvccState.IDLE) == set(EvccState)  # type: ignore[arg-type]
