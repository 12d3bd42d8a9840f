"""The open station: the bench's instruments opened through pyvisa, typed by role, and its DUT;
bounded teardown; and the emulated bench served as SCPI sockets.

Real instruments are opened through the system's VISA; emulated ones through the in-process VISA
library over one shared World (rig.sim), the same World the emulated DUT lives in. Teardown brings
the DUT and then every instrument to its safe state in reverse bench order, each within the bench's
teardown timeout, and then closes every driver and VISA session (a PSB 10000 releases its remote
lock, real VISA sessions do not leak from plan to plan).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rig.bench import BenchConfig
from rig.clock import Clock, Stopwatch
from rig.dut import Dut, DutIdentity, EmulatedEvse, EmulatedSession20, RealEv20, RealEvse20
from rig.plan import Plan
from rig.report.record import InstrumentRecord
from rig.signals import GUARD, SignalGuard, TeardownAborted
from rig.v2g.vocabulary import SessionPhase
from rig.v2gfiles import SessionFiles

if TYPE_CHECKING:
    from instruments.emulated.twin import Twin
    from instruments.emulated.visa import EmulatedVisaLibrary
    from instruments.roles import (
        ACLoad,
        DCSource,
        GridSimulator,
        Identity,
        Instrument,
        PowerAnalyzer,
    )
    from rig.bench import InstrumentConfig
    from rig.sim import World

InstrumentT = TypeVar("InstrumentT", bound="Instrument")

#: The battery emulator's charge-voltage ceiling and the lowest pack voltage the current limits are
#: sized for: a 400 V-class pack (the emulated EV's OCV runs from 300 V empty to 403 V full).
PACK_CEILING_V = 450.0
PACK_MIN_V = 300.0


class BenchError(RuntimeError):
    """The bench cannot do what the plan asks (missing role, real DUT without a protocol engine)."""


@dataclass
class Station:
    """A bench in use: drivers by instrument name (typed access by role), the DUT, and for
    emulated parts the World and the twins."""

    config: BenchConfig
    clock: Clock
    drivers: dict[str, Instrument]
    dut: Dut
    records: list[InstrumentRecord]
    world: World | None = None
    twins: dict[str, Twin] = field(default_factory=dict)
    resource_managers: list[Any] = field(default_factory=list)
    #: What every verdict of a run on this station must say (an instrument used past its
    #: calibration due date with --allow-expired-calibration).
    caveats: list[str] = field(default_factory=list)
    _torn_down: bool = False

    # -- typed access by role --------------------------------------------------------------------
    def get(self, kind: type[InstrumentT]) -> InstrumentT | None:
        """The bench's instrument of the role `kind` plays (PowerAnalyzer, DCSource, ...)."""
        for inst in self.config.instruments:
            if inst.role == kind.role:
                driver = self.drivers.get(inst.name)
                if driver is not None and not isinstance(driver, kind):
                    raise TypeError(
                        f"{inst.name}: {type(driver).__name__} is not a {kind.__name__}"
                    )
                return driver
        return None

    def require(self, kind: type[InstrumentT]) -> InstrumentT:
        driver = self.get(kind)
        if driver is None:
            raise BenchError(f"the bench has no {kind.role}")
        return driver

    @property
    def analyzer(self) -> PowerAnalyzer | None:
        from instruments.roles import PowerAnalyzer

        return self.get(PowerAnalyzer)

    @property
    def dc_source(self) -> DCSource | None:
        from instruments.roles import DCSource

        return self.get(DCSource)

    @property
    def grid(self) -> GridSimulator | None:
        from instruments.roles import GridSimulator

        return self.get(GridSimulator)

    @property
    def dc_source_is_charger(self) -> bool:
        """The DC source is the rig's charger output (a real EV as the DUT), not the battery."""
        return self.config.dut.side == "ev" and not self.config.dut.emulated

    @property
    def load(self) -> ACLoad | None:
        from instruments.roles import ACLoad

        return self.get(ACLoad)

    def check_setpoint(self, p_w: float) -> None:
        from instruments.roles import LimitError

        limit = self.config.dut.setpoint_limit_w
        if abs(p_w) > limit:
            raise LimitError(
                f"setpoint {p_w:.0f} W is beyond the bench's DUT limit ±{limit:.0f} W; refused"
            )

    # -- teardown ----------------------------------------------------------------------------------
    def teardown(self, guard: SignalGuard | None = None) -> list[dict[str, Any]]:
        """Safe state for the DUT, then every instrument in reverse bench order, each bounded by
        the bench's teardown timeout, with signals held off (rig.signals); then close every driver
        and VISA session, unless a third signal abandons that. Every step runs even if one fails
        or hangs; returns what happened, one record per step, for the trace."""
        if self._torn_down:
            return []
        self._torn_down = True
        guard = guard or GUARD
        timeout = self.config.teardown_timeout_s
        opened = [i for i in reversed(self.config.instruments) if i.name in self.drivers]
        out: list[dict[str, Any]] = []
        with guard.critical():
            out.append(_dut_safe_state(self.dut, timeout))
            for inst in opened:
                recovered: list[str] = []
                rec = bounded(
                    inst.name,
                    functools.partial(safe_with_recovery, self.drivers[inst.name], recovered),
                    timeout,
                )
                if recovered:
                    rec["recovered"] = "; ".join(recovered)
                out.append(rec)
        closing: list[tuple[str, Callable[[], Any]]] = [
            (inst.name, self.drivers[inst.name].close) for inst in opened
        ]
        closing += [("visa", rm.close) for rm in self.resource_managers]
        closing.append(("dut", self.dut.close))
        done = 0
        try:
            for name, fn in closing:
                if guard.abort_requested:
                    break
                rec = bounded(name, fn, timeout)
                rec["action"] = "close"
                out.append(rec)
                done += 1
        except TeardownAborted:
            pass
        if done < len(closing):
            undone = ", ".join(name for name, _ in closing[done:])
            sys.stderr.write(f"rig: teardown stopped after the safe state; not closed: {undone}\n")
            out.append(
                {
                    "instrument": "teardown",
                    "action": "close",
                    "ok": False,
                    "error": f"a third signal abandoned the rest after the safe state; "
                    f"not closed: {undone}",
                }
            )
        return out

    def write_state(self, out_dir: Path | None, stem: str) -> None:
        """Emulated benches: the twins' own view of their outputs after teardown (for auditors and
        the safe-state tests), read from the twins directly, not through the drivers."""
        if out_dir is None or not self.twins:
            return
        state = {name: twin_state(twin) for name, twin in self.twins.items()}
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{stem}.bench_state.json").write_text(
            json.dumps(state, indent=2) + "\n", encoding="utf-8"
        )


def twin_state(twin: Any) -> dict[str, Any]:
    state = twin.state() if hasattr(twin, "state") else {}
    return {k: v for k, v in dict(state).items() if isinstance(v, bool | int | float | str | None)}


def _dut_safe_state(dut: Dut, timeout_s: float) -> dict[str, Any]:
    """The DUT's safe state runs on the run's own thread: it needs the clock's scheduler (the
    session's messages, the emulated physics) and bounds itself by clock time."""
    result: dict[str, Any] = {"instrument": "dut", "ok": False}
    watch = Stopwatch()
    try:
        dut.safe_state(timeout_s)
        result["ok"] = True
    except BaseException as exc:  # recorded, never raised: the instruments must still run
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = round(watch.elapsed(), 4)
    return result


#: How often teardown retries an instrument's safe state after a fault (rig's own choice).
SAFE_STATE_RETRIES = 2


def safe_with_recovery(driver: Instrument, notes: list[str]) -> None:
    """The instrument's safe state, recovering from the faults a lab meets mid-run (issue 12
    item 7): after a VISA timeout, a device clear (viClear: the instrument drops a half-read
    reply and its input) and again; after a dropped connection, a new session to the same
    address and again. Each recovery is noted for the trace; the last fault is raised."""
    from instruments.roles import InstrumentConnectionLost, InstrumentFault

    for attempt in range(SAFE_STATE_RETRIES + 1):
        try:
            driver.safe_state()
            return
        except InstrumentFault as fault:
            if attempt == SAFE_STATE_RETRIES:
                raise
            if isinstance(fault, InstrumentConnectionLost):
                _reopen(driver)
                notes.append(f"reopened the session after: {fault}")
            else:
                clear = getattr(driver.resource, "clear", None)
                if callable(clear):
                    clear()
                notes.append(f"device clear after: {fault}")


def _reopen(driver: Instrument) -> None:
    """A new VISA session to the address of the driver's lost one (pyvisa resources only)."""
    from instruments.roles.base import as_resource

    old = driver.resource
    manager = getattr(old, "_resource_manager", None)
    address = getattr(old, "resource_name", None)
    if manager is None or address is None:
        raise BenchError(f"{driver.label}: cannot reopen this kind of session")
    kept: dict[str, Any] = {}
    for attribute in ("timeout", "read_termination", "write_termination"):
        with contextlib.suppress(Exception):
            kept[attribute] = getattr(old, attribute)
    with contextlib.suppress(Exception):
        old.close()
    new = manager.open_resource(address)
    for attribute, value in kept.items():
        setattr(new, attribute, value)
    driver.resource = as_resource(new)


def bounded(name: str, fn: Callable[[], Any], timeout_s: float) -> dict[str, Any]:
    """Run fn in a worker thread and wait at most timeout_s: a hung instrument cannot stall teardown."""
    result: dict[str, Any] = {"instrument": name, "ok": False}
    watch = Stopwatch()

    def work() -> None:
        try:
            fn()
            result["ok"] = True
        except BaseException as exc:  # recorded, never raised: the next instrument must still run
            result["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=work, name=f"teardown-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        result["error"] = f"did not finish within {timeout_s:g} s"
    result["seconds"] = round(watch.elapsed(), 4)
    return result


class CalibrationExpired(BenchError):
    """An instrument is past its calibration due date and the run did not allow it."""


class IdentityMismatch(BenchError):
    """An instrument's *IDN? serial is not the one the bench file names."""


def calibration_caveats(
    config: BenchConfig, today: datetime.date, *, allow_expired: bool
) -> list[str]:
    """Refuse a bench with an instrument past its calibration due date, or, when the run allows
    it (`--allow-expired-calibration`), the caveat every verdict of the run must carry. A real
    instrument whose bench entry names no due date is said too (nothing vouches for it)."""
    expired: list[str] = []
    caveats: list[str] = []
    for inst in config.instruments:
        due = inst.calibration_date
        if due is not None and due < today:
            expired.append(
                f"{inst.name} ({inst.model}) calibration expired on {due.isoformat()} "
                f"({(today - due).days} days before {today.isoformat()})"
            )
        elif due is None and not inst.emulated:
            caveats.append(f"{inst.name} ({inst.model}): the bench file states no calibration date")
    if expired and not allow_expired:
        raise CalibrationExpired(
            f"{config.path}: "
            + "; ".join(expired)
            + ". Recalibrate, or run with --allow-expired-calibration (every verdict will say so)"
        )
    return [f"run with an expired calibration: {e}" for e in expired] + caveats


def check_identity(inst: InstrumentConfig, idn: Identity) -> None:
    """The instrument answering at the bench entry's address is the one the bench names: its
    *IDN? serial (IEEE 488.2 field 3) must equal the entry's `serial` where the entry has one."""
    if inst.serial is None:
        return
    if idn.serial.strip() != inst.serial.strip():
        raise IdentityMismatch(
            f"{inst.name}: the instrument at {inst.address} answers *IDN? with serial "
            f"{idn.serial!r}, the bench file names {inst.serial!r} (line {inst.line}); "
            "wrong instrument, or the bench file is out of date"
        )


def open_station(
    config: BenchConfig,
    plan: Plan,
    clock: Clock,
    *,
    seed: int = 1,
    defects: Iterable[str] = (),
    files: SessionFiles | None = None,
    allow_expired_calibration: bool = False,
    today: datetime.date | None = None,
) -> Station:
    """Open every instrument (real ones through the system VISA, emulated ones through the
    in-process backend over one shared World), build the DUT, and prepare the bench for the plan.
    An instrument past its calibration date refuses the run unless `allow_expired_calibration`;
    a real instrument whose *IDN? serial is not the bench file's refuses it always."""
    # The calendar date, not the run's clock: calibration is a fact of the real world.
    caveats = calibration_caveats(
        config,
        today if today is not None else datetime.date.today(),
        allow_expired=allow_expired_calibration,
    )
    from rig.physics import world_config
    from rig.sim import World

    defects = tuple(defects)
    from rig.emulators.defects import PROTOCOL_DEFECTS, TLS_DEFECTS, quirks_for
    from rig.emulators.management import MANAGEMENT_DEFECTS
    from rig.sim import DEFECTS
    from rig.sim.pilot import PILOT_DEFECTS  # seeded into the cable (rig.linkrun)

    known = {**DEFECTS, **PROTOCOL_DEFECTS, **TLS_DEFECTS, **PILOT_DEFECTS, **MANAGEMENT_DEFECTS}
    unknown = [d for d in defects if d not in known]
    if unknown:
        raise BenchError(f"unknown defect(s) {', '.join(unknown)}; see `rig defects`")
    if defects and not config.dut.emulated:
        raise BenchError("defects are seeded into an emulated DUT; this bench's DUT is real")
    # The emulated DUT and every emulated instrument share one world (one physics, one clock).
    world = None
    if config.dut.emulated or any(i.emulated for i in config.instruments):
        world = World(
            world_config(plan, config), defects=[d for d in defects if d in DEFECTS], seed=seed
        )
    identity = DutIdentity(
        config.dut.side, config.dut.name, config.dut.firmware, emulated=config.dut.emulated
    )
    dut: Dut
    tls_defects = [TLS_DEFECTS[d] for d in defects if d in TLS_DEFECTS]
    if tls_defects and not config.dut.tls:
        raise BenchError("TLS defects need a bench with dut: {tls: true}")
    if not config.dut.emulated:
        dut = _NoDut(identity)  # the real DUT's adapter needs the opened instruments (below)
    elif config.protocol == "none":
        if config.dut.side == "ev":
            raise BenchError("an emulated EV as the DUT needs the ISO 15118-20 session")
        if any(d in PROTOCOL_DEFECTS or d in TLS_DEFECTS for d in defects):
            raise BenchError("protocol defects need the bench's ISO 15118-20 session")
        dut = EmulatedEvse(world, plan.session, clock, identity)
    else:
        dut = EmulatedSession20(
            world,
            plan.session,
            clock,
            identity,
            dut_side=config.dut.side,
            ev=plan.ev,
            faults=plan.faults,
            seed=seed,
            latency_s=config.link_latency_s,
            dut_quirks=quirks_for(defects),
            files=files,
            tls_pki=_tls_pki(config),
            secc_presents=tls_defects[-1].presents if tls_defects else "SECC_LEAF",
            defects=defects,
        )
    station = Station(config, clock, {}, dut, [], world, caveats=caveats)
    try:
        _open_drivers(station)
        if not config.dut.emulated:
            station.dut = _real_dut(
                config, plan, clock, identity, station, _real_rm(station), files
            )
        _prepare(station, plan)
    except BaseException:
        station.teardown()
        raise
    return station


def _real_rm(station: Station) -> Any:
    """The system VISA's resource manager, opened once per station (closed at teardown)."""
    import pyvisa

    for rm in station.resource_managers:
        if not isinstance(rm.visalib, _emulated_visa_library()):
            return rm
    rm = pyvisa.ResourceManager()
    station.resource_managers.append(rm)
    return rm


def _emulated_visa_library() -> type[EmulatedVisaLibrary]:
    from instruments.emulated.visa import EmulatedVisaLibrary

    return EmulatedVisaLibrary


def _open_drivers(station: Station, *, errors: dict[str, str] | None = None) -> None:
    """Open every instrument of the bench and identify it: emulated ones through the in-process
    VISA library over the station's World, real ones through the system VISA. With `errors`, an
    instrument that cannot be opened or does not answer is recorded there (name -> reason) and
    the rest still open (the inventory); without, the first failure raises."""
    import pyvisa

    from instruments.registry import emulated_resource_name, make_twin, open_instrument
    from instruments.roles import Limits

    config, clock, world = station.config, station.clock, station.world
    emu_rm = None
    emu_lib = None
    for i, inst in enumerate(config.instruments):
        try:
            if inst.emulated:
                assert world is not None, "emulated instruments need the station's World"
                if emu_rm is None or emu_lib is None:
                    emu_lib = _emulated_visa_library()()
                    emu_rm = pyvisa.ResourceManager(emu_lib)
                    station.resource_managers.append(emu_rm)
                serial = inst.serial or f"EMU{i + 1:04d}"
                twin = make_twin(
                    inst.model, world, clock.now, serial=serial, options=dict(inst.options)
                )
                resource_name = emulated_resource_name(inst.model, serial)
                emu_lib.add(resource_name, twin)
                station.twins[inst.name] = twin
                resource = emu_rm.open_resource(resource_name)
            else:
                resource = _real_rm(station).open_resource(inst.address)
            limits = Limits.from_mapping(inst.limits) if inst.limits else None
            driver = open_instrument(
                inst.model, resource, limits=limits, options=dict(inst.options), name=inst.name
            )
            station.drivers[inst.name] = driver
            idn = driver.identify()
            if errors is None:  # `rig instruments` lists a wrong serial; a run refuses it
                check_identity(inst, idn)
        except Exception as exc:
            if errors is None:
                raise
            errors[inst.name] = f"{type(exc).__name__}: {exc}"
            continue
        station.records.append(
            InstrumentRecord(
                inst.role,
                inst.model,
                str(idn),
                inst.emulated,
                "" if inst.emulated else inst.address,
                inst.calibration_due,
            )
        )


def open_instruments(
    config: BenchConfig, clock: Clock, *, seed: int = 1
) -> tuple[Station, dict[str, str]]:
    """Only the bench's instruments (no DUT, nothing set up): what `rig instruments` lists.
    Returns the station (tear it down after use) and the instruments that did not open or
    answer (name -> reason)."""
    from rig.physics import world_config
    from rig.sim import World

    world = None
    if any(i.emulated for i in config.instruments):
        world = World(world_config(None, config), seed=seed)
    identity = DutIdentity(
        config.dut.side, config.dut.name, config.dut.firmware, emulated=config.dut.emulated
    )
    station = Station(config, clock, {}, _NoDut(identity), [], world)
    errors: dict[str, str] = {}
    try:
        _open_drivers(station, errors=errors)
    except BaseException:
        station.teardown()
        raise
    return station, errors


class _NoDut:
    """Stands for a real DUT while the instruments open (nothing to make safe yet)."""

    protocol = "none"

    def __init__(self, identity: DutIdentity) -> None:
        self.identity = identity
        self.phase = SessionPhase.IDLE

    def start(self) -> None:
        raise BenchError("the DUT is not open")

    stop = start

    def standby(self, on: bool) -> None:
        raise BenchError("the DUT is not open")

    def set_setpoint(self, p_w: float) -> None:
        raise BenchError("the DUT is not open")

    def follow_home_load(self, on: bool) -> None:
        raise BenchError("the DUT is not open")

    def manage_day(self, day: Any) -> None:
        raise BenchError("the DUT is not open")

    def poll(self) -> list[Any]:
        return []

    def safe_state(self, timeout_s: float) -> None:
        """Nothing was started."""

    def close(self) -> None:
        """Nothing was opened."""


def _real_dut(
    config: BenchConfig,
    plan: Plan,
    clock: Clock,
    identity: DutIdentity,
    station: Station,
    rm: Any,
    files: SessionFiles | None,
) -> Dut:
    """The adapter of a real DUT: the rig's EVCC facing a real EVSE (the rig's SECC facing a
    real EV is not built yet)."""
    if clock.virtual:
        raise BenchError("a real DUT runs in real time (the bench is not all emulated)")
    if config.dut.side == "ev":
        if not plan.session.service.is_dc:
            raise BenchError(
                "a real EV is tested with DC services here: the bench's DC source is the "
                "charger's output (an AC charger's output is the grid simulator)"
            )
        if station.dc_source is None:
            raise BenchError("a real EV needs the bench's DC source as the charger's output")
        return RealEv20(
            config.dut,
            plan.session,
            plan.ev,
            clock,
            identity,
            dc_source=station.dc_source,
            rated_w=config.dut.rated_power_w,
            files=files,
            tls_pki=_tls_pki(config),
        )
    control = None
    if config.dut.control:
        from instruments.rig.evse_control import EvseControl

        try:
            control = EvseControl(rm.open_resource(config.dut.control), name="dut control")
            control.identify()
        except Exception as exc:
            raise BenchError(
                f"the DUT's control interface at {config.dut.control} does not answer: {exc}"
            ) from exc
    return RealEvse20(
        config.dut,
        plan.session,
        plan.ev,
        clock,
        identity,
        dc_source=station.dc_source,
        control=control,
        files=files,
        tls_pki=_tls_pki(config),
    )


def _tls_pki(config: BenchConfig) -> Path | None:
    """The PKI of the DUT's TLS: the bench's, or the emulated bench's own test PKI."""
    if not config.dut.tls:
        return None
    if config.dut.pki is not None:
        return Path(config.dut.pki)
    if not config.dut.emulated:
        raise BenchError("TLS with a real DUT needs the bench's PKI (dut: {pki: DIR})")
    from rig.v2gfiles import emulated_pki

    return emulated_pki()


def _prepare(station: Station, plan: Plan) -> None:
    """Bring the instruments to the plan's starting point: the battery emulator energized with the
    EV's limits; the grid simulator set to nominal (a plan step energizes it)."""
    dc = station.dc_source
    if dc is not None and station.config.dut.side == "ev":
        dc.set_output(False)  # the DC source is the rig's charger output: off until Start
        dc = None
    if dc is not None:
        ev = plan.ev
        # The battery emulator stands for the pack: under protocol "none" the EV's limits are
        # the pack's; over ISO 15118-20 the EV announces them and the pack can do what the
        # EVSE can (rig.physics), so the emulator must not be what holds the EVSE back.
        rated = 0.0 if station.config.protocol == "none" else station.config.dut.rated_power_w
        source_w, sink_w = max(ev.max_discharge_w, rated), max(ev.max_charge_w, rated)
        dc.set_voltage(PACK_CEILING_V)
        # Enough current for the power limits down to an empty pack; the power limits bind.
        dc.set_current_limits(source_a=source_w / PACK_MIN_V, sink_a=sink_w / PACK_MIN_V)
        dc.set_power_limits(source_w=source_w, sink_w=sink_w)
        dc.set_output(True)
    grid = station.grid
    if grid is not None:
        grid.set_voltage(plan.grid.voltage_v)
        grid.set_frequency(plan.grid.frequency_hz)
