"""Twins served as raw SCPI sockets, driven through pyvisa-py by the unchanged drivers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import pyvisa
from world_double import Clock, FakeWorld

from instruments.chroma.c63800 import C63800
from instruments.ea.psb10000 import PSB10000
from instruments.emulated.ac6900 import AC6900Twin
from instruments.emulated.c63800 import C63800Twin
from instruments.emulated.psb10000 import PSB10000Twin
from instruments.emulated.server import ServerHandle, serve
from instruments.emulated.wt5000 import WT5000Twin
from instruments.keysight.ac6900 import AC6900
from instruments.yokogawa.wt5000 import WT5000
from rig.clock import RealClock


class LockedWorld(FakeWorld):
    """Fails the test if two twins ever touch the World at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self._inside = threading.Lock()
        self.overlaps = 0

    def advance_to(self, t: float) -> None:
        if not self._inside.acquire(blocking=False):
            self.overlaps += 1
            return
        try:
            super().advance_to(t)
            # Widen the window a concurrent call would need to hit.
            sum(range(2000))
        finally:
            self._inside.release()


@pytest.fixture
def served(clock: Clock) -> Iterator[tuple[ServerHandle, LockedWorld, dict[str, object]]]:
    world = LockedWorld()
    ideal = {"noise": False}
    twins = {
        "analyzer": WT5000Twin(world, clock.now, options=ideal),
        "battery": PSB10000Twin(world, clock.now, options=ideal),
        "grid": AC6900Twin(world, clock.now, options=ideal),
        "home": C63800Twin(world, clock.now, options=ideal),
    }
    # The hand clock stands in for the bench's RealClock: a twin's wait moves it.
    handle = serve(twins, sleep_until=clock.sleep_until)
    try:
        yield handle, world, dict(twins)
    finally:
        handle.close()


@pytest.fixture(scope="module")
def rm() -> pyvisa.ResourceManager:
    return pyvisa.ResourceManager("@py")


def test_each_twin_gets_its_own_loopback_port(
    served: tuple[ServerHandle, LockedWorld, dict[str, object]],
) -> None:
    handle, _, _ = served
    ports = handle.ports
    assert sorted(ports) == ["analyzer", "battery", "grid", "home"]
    assert len(set(ports.values())) == 4 and all(port > 0 for port in ports.values())
    assert handle.address("grid") == f"TCPIP::127.0.0.1::{ports['grid']}::SOCKET"


def test_the_drivers_run_unchanged_over_pyvisa_py(
    served: tuple[ServerHandle, LockedWorld, dict[str, object]], rm: pyvisa.ResourceManager
) -> None:
    handle, world, twins = served
    analyzer = WT5000(rm.open_resource(handle.address("analyzer"), timeout=2000))
    battery = PSB10000(rm.open_resource(handle.address("battery"), timeout=2000))
    grid = AC6900(rm.open_resource(handle.address("grid"), timeout=2000))
    home = C63800(rm.open_resource(handle.address("home"), timeout=2000))
    try:
        assert analyzer.identify().model == "WT5000"
        analyzer.configure({1: "grid", 3: "home", 4: "evse_dc"}, dc_elements=[4])
        battery.set_voltage(410)
        battery.set_output(True)
        home.set_power(2300)
        home.set_input(True)
        grid.set_voltage(230)
        readings = analyzer.read()  # waits (outside the server's lock) for the next update
        assert readings["home"].p_w == pytest.approx(2300.0)
        assert grid.measure().i_rms == pytest.approx(10.0)
        assert battery.output_enabled()
        for safe in (home, grid, battery):
            safe.safe_state()
        psb = twins["battery"]
        assert isinstance(psb, PSB10000Twin) and not psb.output_on and not world.dc_output
        assert not world.grid_output and not world.home_on
    finally:
        for driver in (analyzer, battery, grid, home):
            driver.close()


def test_concurrent_clients_never_touch_the_world_at_once(
    served: tuple[ServerHandle, LockedWorld, dict[str, object]],
) -> None:
    handle, world, _ = served
    errors: list[BaseException] = []

    def hammer(name: str, query: bytes, count: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", handle.ports[name]), timeout=5) as conn:
                stream = conn.makefile("rwb")
                for _ in range(count):
                    stream.write(query)
                    stream.flush()
                    assert stream.readline().endswith(b"\n")
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [
        threading.Thread(target=hammer, args=("grid", b"MEAS:VOLT:AC?\n", 200)),
        threading.Thread(target=hammer, args=("home", b"MEAS:POW?\r\n", 200)),
        threading.Thread(target=hammer, args=("battery", b"MEAS:VOLT?\n", 200)),
        threading.Thread(target=hammer, args=("grid", b"*IDN?\n", 200)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert world.overlaps == 0
    assert len(world.advanced) == 800


def test_close_stops_serving_and_frees_the_ports(clock: Clock) -> None:
    world = FakeWorld()
    handle = serve({"grid": AC6900Twin(world, clock.now)})
    port = handle.ports["grid"]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    handle.close()
    handle.close()  # idempotent
    # The open connection was ended, or reset if close() came before the server accepted it.
    with contextlib.suppress(ConnectionResetError):
        assert client.recv(16) == b""
    client.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_fixed_ports_are_honoured(clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with serve({"grid": AC6900Twin(FakeWorld(), clock.now)}, ports={"grid": port}) as handle:
        assert handle.ports == {"grid": port}


def test_ipv6_loopback(clock: Clock) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        handle = serve({"grid": AC6900Twin(FakeWorld(), clock.now)}, host="::1")
    except OSError as error:
        pytest.skip(f"::1 not bindable here: {error}")
    with handle, socket.create_connection(("::1", handle.ports["grid"]), timeout=5) as conn:
        conn.sendall(b"OUTP?\n")
        assert conn.recv(16) == b"1\n"
        assert handle.address("grid").startswith("TCPIP::[::1]::")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_only_loopback_addresses_are_served(host: str, clock: Clock) -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve({"grid": AC6900Twin(FakeWorld(), clock.now)}, host=host)


def test_an_overlong_line_is_refused_without_being_held(clock: Clock) -> None:
    twin = AC6900Twin(FakeWorld(), clock.now)
    with (
        serve({"grid": twin}, max_line=1024) as handle,
        socket.create_connection(("127.0.0.1", handle.ports["grid"]), timeout=5) as conn,
    ):
        conn.sendall(b"VOLT " + b"1" * 100_000 + b"\n")
        conn.sendall(b"SYST:ERR?\n")
        assert (
            conn.makefile("rb").readline() == b'-363,"Input buffer overrun;line over 1024 bytes"\n'
        )


def test_a_silent_or_slow_client_never_delays_the_others(clock: Clock) -> None:
    world = FakeWorld()
    twins = {"grid": AC6900Twin(world, clock.now), "home": C63800Twin(world, clock.now)}
    with serve(twins) as handle:
        silent = socket.create_connection(("127.0.0.1", handle.ports["grid"]), timeout=5)
        silent.sendall(b"OUTP")  # half a message, never finished
        slow = socket.create_connection(("127.0.0.1", handle.ports["grid"]), timeout=5)
        for _ in range(2000):  # replies it never reads
            slow.sendall(b"*IDN?\n")
        with socket.create_connection(("127.0.0.1", handle.ports["home"]), timeout=5) as other:
            stream = other.makefile("rwb")
            for _ in range(50):
                stream.write(b"LOAD?\n")
                stream.flush()
                assert stream.readline() == b"0\n"
        with socket.create_connection(("127.0.0.1", handle.ports["grid"]), timeout=5) as same:
            same.sendall(b"OUTP?\n")
            assert same.makefile("rb").readline() == b"1\n"
        silent.close()
        slow.close()


def test_a_twin_waiting_for_its_next_update_does_not_hold_the_lock() -> None:
    real = RealClock()
    world = FakeWorld()
    analyzer = WT5000Twin(world, real.now)
    grid = AC6900Twin(world, real.now)
    with serve({"analyzer": analyzer, "grid": grid}, sleep_until=real.sleep_until) as handle:
        waiting = socket.create_connection(("127.0.0.1", handle.ports["analyzer"]), timeout=5)
        waiting.sendall(b":RATE 1S;:STAT:FILT1 FALL;:STAT:EESR?\n")
        assert waiting.makefile("rb").readline() in (b"0\n", b"1\n")
        waiting.sendall(b":COMM:WAIT 1;:NUM:VAL? 1\n")  # blocks about 1 s in its own thread
        start = real.now()
        with socket.create_connection(("127.0.0.1", handle.ports["grid"]), timeout=5) as other:
            stream = other.makefile("rwb")
            stream.write(b"OUTP?\n")
            stream.flush()
            assert stream.readline() == b"1\n"
        assert real.now() - start < 0.5
        waiting.settimeout(5)
        assert waiting.makefile("rb").readline().endswith(b"\n")
        # The answer came when the update ended, a second after :RATE restarted the cycle.
        assert 0.5 < real.now() - start < 2.5
        assert analyzer.errors == []
        waiting.close()


def test_connections_beyond_the_limit_are_closed_at_once(clock: Clock) -> None:
    with serve({"grid": AC6900Twin(FakeWorld(), clock.now)}, max_connections=2) as handle:
        port = handle.ports["grid"]
        kept = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for conn in kept:
            conn.sendall(b"OUTP?\n")
            assert conn.recv(16) == b"1\n"
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(ConnectionResetError):
            assert extra.recv(16) == b""
        for conn in [*kept, extra]:
            conn.close()
