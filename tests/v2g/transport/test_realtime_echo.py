"""Real time: 2,000 request/response exchanges through the connection layer and an engine double,
over TCP on ::1 and over a veth pair between two network namespaces (fe80::1 <-> fe80::2).

The round-trip times are taken by the EV-side engine double on the run's timeline (the
LoopScheduler's clock); p50/p99/max are reported as test properties and printed. The floors on
these figures live in tests/benchmarks/test_transport_speed.py; here the exchange must simply be
complete, in order and answered every time.
"""

from __future__ import annotations

import asyncio

import pytest
from netns import VethPair
from transport_doubles import EchoEngine, PingEngine, percentile, tcp_session

from rig.v2g.connection import RecordKind

EXCHANGES = 2000


def _report(
    record_property: pytest.RecordProperty, where: str, round_trips: list[float]
) -> dict[str, float]:
    figures = {
        "p50_ms": percentile(round_trips, 0.50) * 1e3,
        "p99_ms": percentile(round_trips, 0.99) * 1e3,
        "max_ms": max(round_trips) * 1e3,
    }
    for name, value in figures.items():
        record_property(f"{where}_{name}", round(value, 4))
    print(
        f"{where}: {EXCHANGES} round trips, "
        + ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
    )
    return figures


def _check(ping: PingEngine, echo: EchoEngine) -> None:
    assert ping.answered == EXCHANGES and ping.end_reason == "done"
    assert echo.requests == EXCHANGES
    assert len(ping.round_trips) == EXCHANGES


def test_echo_over_tcp_on_loopback(
    loop: asyncio.AbstractEventLoop, record_property: pytest.RecordProperty
) -> None:
    ping, echo = PingEngine(count=EXCHANGES, payload_size=64), EchoEngine()
    session = tcp_session(loop, ping, echo, "::1")
    _check(ping, echo)
    sent = [r for r in session.ev_trace if r.kind is RecordKind.SENT]
    assert [int.from_bytes(r.raw[8:12], "big") for r in sent if r.raw] == list(
        range(1, EXCHANGES + 1)
    )
    figures = _report(record_property, "loopback", ping.round_trips)
    assert figures["p99_ms"] < 1000  # a sanity bound only; the floor is a benchmark


def test_echo_over_a_veth_pair_between_namespaces(
    veth: VethPair, loop: asyncio.AbstractEventLoop, record_property: pytest.RecordProperty
) -> None:
    """Server on the EVSE end (fe80::1%veth-secc), client on the EV end: link-local addresses
    with their scope ids, as on a real charging link."""
    ping, echo = PingEngine(count=EXCHANGES, payload_size=64), EchoEngine()

    session = tcp_session(
        loop,
        ping,
        echo,
        host=veth.evse_address,
        server_interface=veth.evse_interface,
        client_interface=veth.ev_interface,
        server_side=lambda: veth.entered("evse"),
        client_side=lambda: veth.entered("ev"),
    )
    _check(ping, echo)
    assert session.ev.link.peer_name.startswith("tcp:[fe80::1%")
    assert session.evse.link.peer_name.startswith("tcp:[fe80::2%")
    figures = _report(record_property, "veth", ping.round_trips)
    assert figures["p99_ms"] < 1000
