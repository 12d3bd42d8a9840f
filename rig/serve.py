"""`rig emulate --serve`: the whole emulated bench on loopback, in real time.

Every emulated instrument is served as a SCPI socket (TCPIP::127.0.0.1::<port>::SOCKET); with an
emulated EVSE as the DUT, its ISO 15118-20 SECC listens on loopback too (TLS 1.3 when the bench
says so) and its energy manager's control interface is served as one more SCPI socket — all over
one World, so the instruments measure what the served EVSE does. With `--bench-out FILE` a bench
file is written whose DUT and instruments point at the served addresses: `rig run PLAN --bench
FILE` then drives the emulated bench through exactly the real-bench path (pyvisa-py over TCP, the
rig's EVCC over TCP), on one machine, in real time.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rig.bench import BenchConfig
from rig.plan import Plan
from rig.station import BenchError

#: The served EVSE's SECC listens here (loopback only: tests and one-machine benches).
SECC_HOST = "::1"


class _Locked:
    """An EvseController whose every call holds the bench's lock: the SCPI server's threads
    act on the same World."""

    def __init__(self, target: Any, lock: threading.Lock) -> None:
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked


def serve_emulated(
    bench: BenchConfig,
    *,
    host: str,
    base_port: int,
    seed: int,
    defects: tuple[str, ...],
    bench_out: Path | None = None,
    plan: Plan | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Serve until interrupted; returns the exit code (0)."""
    from instruments.emulated.evse_control import EvseControlTwin
    from instruments.emulated.server import serve
    from instruments.registry import make_twin
    from rig.clock import RealClock
    from rig.emulators.management import management_defects
    from rig.physics import world_config
    from rig.sim import DEFECTS, World

    clock = RealClock()
    # The physics defects change the world; the management ones the served DUT's energy manager.
    managing = management_defects(defects)
    world = World(
        world_config(plan, bench), defects=[d for d in defects if d in DEFECTS], seed=seed
    )
    twins: dict[str, Any] = {}
    ports: dict[str, int] = {}
    served = [i for i in bench.instruments if i.emulated]
    ev_dut = bench.dut.emulated and bench.protocol != "none" and bench.dut.side == "ev"
    for k, inst in enumerate(served):
        options = dict(inst.options)
        if ev_dut and inst.role == "dc_source":
            options["drives_charger_stage"] = True  # the DC source is the rig's charger output
        twins[inst.name] = make_twin(
            inst.model,
            world,
            clock.now,
            serial=inst.serial or f"EMU{k + 1:04d}",
            options=options,
        )
        ports[inst.name] = 0 if base_port == 0 else base_port + k
    serve_dut = bench.dut.emulated and bench.protocol != "none" and not ev_dut
    if serve_dut:
        twins["dut_control"] = EvseControlTwin(world, clock.now, serial="EMU-CTRL")
        twins["dut_control"].management_defects = managing
        ports["dut_control"] = 0 if base_port == 0 else base_port + len(served)
    try:
        # A twin's wait (the next analyzer update) blocks its server thread in wall time; the
        # main thread serves the clock (and the SECC on its loop).
        handle = serve(twins, host=host, ports=ports, sleep_until=clock.block_until)
    except OSError as exc:
        wanted = "any free ports" if base_port == 0 else f"ports from {base_port}"
        clock.close()
        raise BenchError(f"cannot listen on {host} ({wanted}): {exc.strerror or exc}") from None
    secc = None
    ev: _ServedEv | None = None
    try:
        if serve_dut:
            secc = _serve_secc(bench, world, clock, handle.lock, plan, seed, twins["dut_control"])
        if ev_dut:
            ev = _ServedEv(bench, world, clock, handle.lock, plan, managing)
        roles = {i.name: (i.role, i.model) for i in bench.instruments}
        for name, port in handle.ports.items():
            role, model = roles.get(name, ("dut_control", "rig_evse_control"))
            print(f"{role} {model} TCPIP::{host}::{port}::SOCKET", flush=True)
        if secc is not None:
            print(f"dut evse_secc tcp:[{SECC_HOST}]:{secc.port}", flush=True)
        if ev is not None:
            print(f"dut ev_evcc connects to tcp:[{SECC_HOST}]:{ev.port}", flush=True)
        if bench_out is not None:
            _write_bench(bench, bench_out, host, handle.ports, secc, ev)
            print(f"bench file: {bench_out}", flush=True)
        print("serving; Ctrl-C stops", flush=True)
        if ready is not None:
            ready()
        while True:
            clock.sleep(0.5)
            with handle.lock:  # the server's threads share the world
                world.advance_to(clock.now())
            if ev is not None:
                ev.plug_in_if_unplugged()
    except KeyboardInterrupt:
        return 0
    finally:
        if ev is not None:
            ev.close()
        if secc is not None:
            secc.close("the served bench stops")
            # a second signal here only cuts this short: the sockets close with the process
            with contextlib.suppress(BaseException):
                clock.run_until(clock.now() + 0.05)
        handle.close()
        clock.close()


def _serve_secc(
    bench: BenchConfig,
    world: Any,
    clock: Any,
    lock: threading.Lock,
    plan: Plan | None,
    seed: int,
    control: Any = None,
) -> Any:
    """The served EVSE's SECC on loopback: a fresh engine per connection, sessions in turn. Its
    control interface's committed tariff goes to the EVSE's manager (a day plan)."""
    import random

    from rig.emulators.evse import SimEvse
    from rig.v2g.host import SeccHost, secc_tls_config
    from rig.v2g.pki import PkiFolder
    from rig.v2g.secc import Secc, SeccConfig
    from rig.v2g.sessions import SessionStore
    from rig.v2g.vocabulary import SESSION_SERVICES
    from rig.v2gfiles import emulated_pki

    services = (plan.session.service,) if plan is not None else SESSION_SERVICES
    evse = SimEvse(world, services)
    charger = _Locked(evse, lock)
    if control is not None:
        # The twin's commands already run under the bench's lock: the unlocked EVSE's method.
        control.manager = evse.manage
    store = SessionStore()
    rng = random.Random(seed)
    tls = None
    if bench.dut.tls:
        pki = Path(bench.dut.pki) if bench.dut.pki else emulated_pki()
        tls = secc_tls_config(PkiFolder(pki))

    def make_engine() -> Any:
        return Secc(
            charger,  # type: ignore[arg-type]
            SeccConfig(timestamp_origin=clock.epoch_ns / 1e9),
            store=store,
            rng=rng,
        )

    host = SeccHost(
        clock.loop, clock, make_engine, host=SECC_HOST, sdp=False, tls=tls, max_sessions=None
    )
    host.start()
    return host


def _write_bench(
    bench: BenchConfig,
    out: Path,
    host: str,
    ports: dict[str, int],
    secc: Any,
    ev: _ServedEv | None = None,
) -> None:
    """The bench file of the served bench: the original, with every served part's address."""
    doc = yaml.safe_load(Path(bench.path).read_text(encoding="utf-8"))
    doc["name"] = f"{bench.name} (served by rig emulate on {host})"
    for name, spec in doc.get("instruments", {}).items():
        if name in ports:
            spec["address"] = f"TCPIP::{host}::{ports[name]}::SOCKET"
            spec.setdefault("serial", f"EMU{list(doc['instruments']).index(name) + 1:04d}")
    dut = doc.setdefault("dut", {})
    if secc is not None:
        dut["emulated"] = False
        dut["address"] = SECC_HOST
        dut["port"] = secc.port
        dut["control"] = f"TCPIP::{host}::{ports['dut_control']}::SOCKET"
        if bench.dut.tls:
            from rig.v2gfiles import emulated_pki

            dut["pki"] = str(Path(bench.dut.pki) if bench.dut.pki else emulated_pki())
    if ev is not None:  # where the rig's SECC must listen for the served EV
        dut["emulated"] = False
        dut["address"] = SECC_HOST
        dut["port"] = ev.port
        if bench.dut.tls:
            from rig.v2gfiles import emulated_pki

            dut["pki"] = str(Path(bench.dut.pki) if bench.dut.pki else emulated_pki())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Written by `rig emulate --serve --bench-out`: the emulated bench as served on loopback.\n"
        + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )


class _ServedEv:
    """The served emulated EV: its EVCC plugs in to the rig's SECC at [::1]:port (chosen free
    now), and plugs in again a second after each session ends (so a plan can stop and start).

    Served with a day plan, it is a managed car: it chooses its power profile from the price
    schedules the rig's charger offers (Scheduled mode), for the departure and need its owner
    set. The plan's departure is day-relative (the run's time); this process has its own clock,
    started before the run, so the owner's setting is anchored at the session start: the EV
    leaves `departure.at` after its first connection to the rig's SECC (a replug keeps it). The
    run's session starts at about its t = 0, so the two agree within the connection's delay."""

    REPLUG_S = 1.0

    def __init__(
        self,
        bench: BenchConfig,
        world: Any,
        clock: Any,
        lock: threading.Lock,
        plan: Plan | None,
        defects: tuple[str, ...] = (),
    ) -> None:
        import socket

        from rig.emulators.ev import SimEv
        from rig.emulators.management import management_defects

        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((SECC_HOST, 0))
            self.port = int(probe.getsockname()[1])
        self.bench = bench
        self.clock = clock
        self.plan = plan
        self.lock = lock
        ev = plan.ev if plan is not None else None
        self.ev = SimEv(
            world,
            max_charge_w=None if ev is None else ev.max_charge_w,
            max_discharge_w=None if ev is None else ev.max_discharge_w,
        )
        self.controller = _Locked(self.ev, lock)
        #: The day plan's departure (day-relative s) and need (Wh), set on the first connection.
        self.departure = plan.day.departure if plan is not None and plan.day is not None else None
        #: When the first session started (this process's clock), None: not yet.
        self.plugged_at: float | None = None
        if self.departure is not None:
            # The same manager the emulated path gives the EV (rig.dut.EmulatedSession20).
            self.ev.manage_by_prices(
                float(world.config.evse.efficiency), management_defects(defects)
            )
        self.tls = None
        if bench.dut.tls:
            from rig.v2g.host import evcc_tls_config
            from rig.v2g.pki import PkiFolder
            from rig.v2gfiles import emulated_pki

            pki = Path(bench.dut.pki) if bench.dut.pki else emulated_pki()
            self.tls = evcc_tls_config(PkiFolder(pki))
        self.host: Any = None
        self._unplugged_at = -self.REPLUG_S

    def _record(self, record: Any) -> None:
        """The host's records: the first connection is the session start the owner's departure
        counts from (before the EV's ChargeParameterDiscovery and ScheduleExchange)."""
        from rig.v2g.host import HostEvent

        if (
            self.plugged_at is None
            and self.departure is not None
            and record.record.name == HostEvent.CONNECTED.value
        ):
            self.plugged_at = float(record.record.time)
            with self.lock:
                self.ev.set_departure(
                    self.plugged_at + self.departure.at_s, self.departure.energy_wh
                )

    def plug_in_if_unplugged(self) -> None:
        from ipaddress import ip_address

        from rig.v2g.evcc import Evcc, EvccConfig
        from rig.v2g.host import EvccHost
        from rig.v2g.sdp import SeccEndpoint, Security
        from rig.v2g.vocabulary import ControlMode, Service

        now = self.clock.now()
        if self.host is not None:
            if not self.host.finished:
                return
            self.host = None
            self._unplugged_at = now
        if now - self._unplugged_at < self.REPLUG_S:
            return
        service = self.plan.session.service if self.plan else Service.DC_BPT
        mode = self.plan.session.control_mode if self.plan else ControlMode.DYNAMIC
        security = Security.TLS if self.tls is not None else Security.NO_TLS
        self.host = EvccHost(
            self.clock.loop,
            self.clock,
            lambda resume: Evcc(
                self.controller,  # type: ignore[arg-type]
                EvccConfig(
                    services=(service,),
                    control_mode=mode,
                    timestamp_origin=self.clock.epoch_ns / 1e9,
                ),
                resume=resume,
            ),
            target=SeccEndpoint(ip_address(SECC_HOST), self.port, security),
            tls=self.tls,
            recorder=self._record,
            connect_timeout=0.5,
        )
        self.host.start()

    def close(self) -> None:
        if self.host is not None:
            self.host.close("the served bench stops")
