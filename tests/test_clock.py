"""The clock's scheduler: a bare heap in virtual time, an asyncio loop served during every wait in
real time; the same calls on both."""

import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.clock import ClockError, RealClock, VirtualClock
from rig.plan import loads_plan
from rig.runner import execute

REPO = Path(__file__).resolve().parent.parent


def test_virtual_calls_run_in_time_order_then_scheduling_order_with_now_at_each() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []
    clock.call_at(2.0, lambda: seen.append(("b", clock.now())))
    clock.call_at(1.0, lambda: seen.append(("a", clock.now())))
    clock.call_at(2.0, lambda: seen.append(("c", clock.now())))
    cancelled = clock.call_at(1.5, lambda: seen.append(("x", clock.now())))
    cancelled.cancel()
    clock.run_until(1.9)
    assert seen == [("a", 1.0)] and clock.now() == 1.9
    clock.run_until(5.0)
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 2.0)] and clock.now() == 5.0
    assert clock.pending() == 0


def test_a_call_may_schedule_another_due_in_the_same_wait() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    def tick() -> None:
        seen.append(clock.now())
        if len(seen) < 4:
            clock.call_later(0.25, tick)

    clock.call_at(0.0, tick)
    clock.run_until(10.0)
    assert seen == [0.0, 0.25, 0.5, 0.75]


@pytest.mark.parametrize("make", [VirtualClock, RealClock])
def test_an_exception_in_a_call_propagates_out_of_run_until(make: type) -> None:
    clock = make()
    try:

        def boom() -> None:
            raise OSError("instrument gone")

        clock.call_at(0.01, boom)
        with pytest.raises(OSError, match="instrument gone"):
            clock.run_until(0.05)
        clock.run_until(clock.now() + 0.01)  # the clock stays usable
    finally:
        clock.close()


@pytest.mark.parametrize("make", [VirtualClock, RealClock])
def test_run_until_inside_a_call_is_refused(make: type) -> None:
    clock = make()
    try:
        clock.call_at(0.0, lambda: clock.run_until(1.0))
        with pytest.raises(ClockError, match="inside a scheduled call"):
            clock.run_until(0.01)
    finally:
        clock.close()


def test_real_clock_serves_a_loopback_tcp_echo_while_the_runner_waits() -> None:
    """The issue's must-show: while a plan holds for 2 s under the real clock, a loopback TCP echo
    served on the clock's loop answers every request within 10 ms."""
    clock = RealClock()

    class Echo:
        def connection_made(self, transport: object) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

        def connection_lost(self, exc: object) -> None:
            pass

    server = clock.loop.run_until_complete(
        clock.loop.create_server(Echo, "127.0.0.1", 0)  # type: ignore[arg-type]
    )
    port = server.sockets[0].getsockname()[1]
    rtts: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while not stop.is_set():
                    t0 = time.perf_counter()
                    s.sendall(b"ping")
                    got = b""
                    while len(got) < 4:
                        got += s.recv(4 - len(got))
                    rtts.append(time.perf_counter() - t0)
                    time.sleep(0.02)
        except BaseException as exc:
            errors.append(exc)

    plan = loads_plan(
        "title: t\ndut: evse\nev: {capacity: 60 kWh, soc: 40 %, reserve: 30 %}\n"
        "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: 1 kW}\n"
        "  - hold: 2 s\nchecks:\n  - reserve_floor: {}\n",
        "rt.yaml",
    )
    bench = load_bench(REPO / "fixtures/benches/emulated.yaml")
    thread = threading.Thread(target=client, daemon=True)
    # The client starts before the run: its connect is accepted once the runner waits. It stops
    # sending at 1.9 s, inside the hold, so that its last request is still answered.
    thread.start()
    clock.call_at(1.9, stop.set)
    try:
        result = execute(plan, bench, clock=clock)
    finally:
        stop.set()
        thread.join(5)
        server.close()
        clock.close()
    assert not errors, errors
    assert result.error is None and result.simulated_s >= 2.0
    assert len(rtts) >= 30, f"only {len(rtts)} replies in 2 s"
    assert max(rtts[1:]) < 0.010, (
        f"slowest reply {max(rtts) * 1e3:.1f} ms (median {statistics.median(rtts) * 1e3:.2f} ms)"
    )
