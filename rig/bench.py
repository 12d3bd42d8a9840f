"""Bench files (fixtures/benches/*.yaml) and opening a bench: instruments, DUT, emulated physics.

A bench file says what is on the bench: which side is the DUT, each instrument's role, model and
VISA address (or `emulated`), its hard limits and calibration date, and, for emulated parts, the
physics of the emulated EVSE. The same plan runs on the emulated bench in CI and on a real bench in
a lab; only the bench file changes.

```yaml
name: Embedded emulated bench
dut: {side: evse, name: Emulated bidirectional EVSE, firmware: emulated, emulated: true,
      rated_power: 11 kW}
teardown_timeout: 5 s
instruments:
  analyzer: {role: power_analyzer, model: yokogawa_wt5000, address: emulated,
             elements: {1: grid, 2: evse_ac, 3: home, 4: evse_dc}, dc_elements: [4]}
  battery:  {role: dc_source, model: ea_psb10000, address: emulated,
             limits: {voltage: 500 V, current: 60 A, power: 30 kW}}
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig import units
from rig.clock import Clock, Stopwatch
from rig.plan import GridOutput, GridSet, HomeLoad, HomeRLC, Plan
from rig.report.record import InstrumentRecord
from rig.yamlsrc import Path_, Source, load

ROLES = ("power_analyzer", "dc_source", "grid_simulator", "ac_load")
_INSTRUMENT_KEYS = ("role", "model", "address", "limits", "calibration_due", "serial")
#: bench `limits:` key -> (Limits field, unit dimension)
_LIMIT_KEYS = {
    "voltage": ("voltage_v", "voltage"),
    "current": ("current_a", "current"),
    "power": ("power_w", "power"),
    "reactive_power": ("reactive_power_var", "reactive_power"),
    "frequency": ("frequency_hz", "frequency"),
}
#: bench `emulation: evse:` key -> (rig.sim EVSEConfig field, unit dimension or None for a name)
_EVSE_KEYS: dict[str, tuple[str, str | None]] = {
    "max_charge": ("max_charge_w", "power"),
    "max_discharge": ("max_discharge_w", "power"),
    "ramp_rate": ("ramp_w_per_s", "power_rate"),
    "lag": ("lag_s", "time"),
    "efficiency": ("efficiency", "ratio"),
    "island_detection": ("island_detection_s", "time"),
    "transfer": ("transfer_s", "time"),
    "reconnect_delay": ("reconnect_delay_s", "time"),
}


class BenchError(RuntimeError):
    """The bench cannot do what the plan asks (missing role, real DUT without a protocol engine)."""


@dataclass(frozen=True)
class InstrumentConfig:
    name: str
    role: str
    model: str
    address: str
    limits: Mapping[str, Any]
    options: Mapping[str, Any]
    calibration_due: str | None
    serial: str | None
    line: int

    @property
    def emulated(self) -> bool:
        return self.address == "emulated"


@dataclass(frozen=True)
class DutConfig:
    side: str
    name: str
    firmware: str
    emulated: bool
    rated_power_w: float
    setpoint_limit_w: float


@dataclass(frozen=True)
class BenchConfig:
    path: str
    name: str
    dut: DutConfig
    instruments: tuple[InstrumentConfig, ...]
    evse_physics: Mapping[str, float]
    noise: bool
    teardown_timeout_s: float

    def by_role(self, role: str) -> InstrumentConfig | None:
        return next((i for i in self.instruments if i.role == role), None)

    @property
    def all_emulated(self) -> bool:
        return self.dut.emulated and all(i.emulated for i in self.instruments)

    def missing_roles(self, plan: Plan) -> list[str]:
        """Instrument roles the plan needs that this bench lacks (the plan is then skipped)."""
        needed = {"power_analyzer", "dc_source"}
        for step in plan.steps:
            for a in step.actions:
                if isinstance(a, GridSet | GridOutput):
                    needed.add("grid_simulator")
                elif isinstance(a, HomeLoad | HomeRLC):
                    needed.add("ac_load")
        return sorted(r for r in needed if self.by_role(r) is None)


def _parse_limits(src: Source, path: Path_, raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        src.error(path, "expected a mapping like {voltage: 500 V, current: 60 A}")
        return out
    for key, value in raw.items():
        if key not in _LIMIT_KEYS:
            src.error((*path, key), f"unknown limit; known: {', '.join(_LIMIT_KEYS)}")
            continue
        name, dim = _LIMIT_KEYS[key]
        try:
            if isinstance(value, list):
                if len(value) != 2:
                    raise units.UnitError("a range is [low, high]")
                out[name] = [units.parse(value[0], dim), units.parse(value[1], dim)]
            else:
                out[name] = units.parse(value, dim)
        except units.UnitError as exc:
            src.error((*path, key), str(exc))
    return out


def _from_source(src: Source) -> BenchConfig:
    doc = src.data
    if not isinstance(doc, dict):
        src.error((), "a bench file is a mapping (dut, instruments)")
        src.raise_if_problems()
    for key in doc:
        if key not in ("name", "dut", "instruments", "emulation", "teardown_timeout"):
            src.error(
                (key,),
                "unknown field; expected name, dut, instruments, emulation, teardown_timeout",
            )
    dut_raw = doc.get("dut") or {}
    if not isinstance(dut_raw, dict):
        src.error(("dut",), "expected a mapping")
        dut_raw = {}
    side = dut_raw.get("side", "evse")
    if side not in ("evse", "ev", "none"):
        src.error(("dut", "side"), f"{side!r} is not one of evse, ev, none")
    rated = dut_raw.get("rated_power", "11 kW")
    try:
        rated_w = units.parse(rated, "power")
    except units.UnitError as exc:
        src.error(("dut", "rated_power"), str(exc))
        rated_w = 11_000.0
    try:
        limit_w = units.parse(dut_raw.get("setpoint_limit", rated), "power")
    except units.UnitError as exc:
        src.error(("dut", "setpoint_limit"), str(exc))
        limit_w = rated_w
    emulated = dut_raw.get("emulated", False)
    if not isinstance(emulated, bool):
        src.error(("dut", "emulated"), "expected true or false")
        emulated = False
    dut = DutConfig(
        str(side),
        str(dut_raw.get("name", "DUT")),
        str(dut_raw.get("firmware", "")),
        emulated,
        rated_w,
        limit_w,
    )

    instruments: list[InstrumentConfig] = []
    raw_inst = doc.get("instruments")
    if not isinstance(raw_inst, dict) or not raw_inst:
        src.error(("instruments",), "missing: a mapping of name -> {role, model, address}")
        raw_inst = {}
    from instruments.registry import MODELS

    seen_roles: set[str] = set()
    for name, spec in raw_inst.items():
        path: Path_ = ("instruments", name)
        if not isinstance(spec, dict):
            src.error(path, "expected a mapping {role, model, address, ...}")
            continue
        role, model, address = spec.get("role"), spec.get("model"), spec.get("address")
        if not isinstance(role, str) or role not in ROLES:
            src.error((*path, "role"), f"{role!r} is not one of {', '.join(ROLES)}")
            continue
        if role in seen_roles:
            src.error((*path, "role"), f"a second {role}: one instrument per role for now")
        seen_roles.add(role)
        if not isinstance(model, str) or model not in MODELS:
            src.error(
                (*path, "model"),
                f"{model!r} is not a known model; known: {', '.join(sorted(MODELS))}",
            )
            continue
        if MODELS[model].role != role:
            src.error((*path, "model"), f"{model} is a {MODELS[model].role}, not a {role}")
        if not isinstance(address, str) or not address:
            src.error((*path, "address"), "missing: a VISA resource name, or 'emulated'")
            continue
        limits = _parse_limits(src, (*path, "limits"), spec.get("limits"))
        cal = spec.get("calibration_due")
        options = {k: v for k, v in spec.items() if k not in _INSTRUMENT_KEYS}
        instruments.append(
            InstrumentConfig(
                str(name),
                role,
                model,
                address,
                limits,
                options,
                None if cal is None else str(cal),
                None if spec.get("serial") is None else str(spec["serial"]),
                src.line(path),
            )
        )
    emu = doc.get("emulation") or {}
    physics: dict[str, float] = {}
    noise = True
    if isinstance(emu, dict):
        for key in emu:
            if key not in ("evse", "noise"):
                src.error(("emulation", key), "unknown field; expected evse, noise")
        noise = bool(emu.get("noise", True))
        evse = emu.get("evse") or {}
        if isinstance(evse, dict):
            for key, value in evse.items():
                if key not in _EVSE_KEYS:
                    src.error(
                        ("emulation", "evse", key), f"unknown field; known: {', '.join(_EVSE_KEYS)}"
                    )
                    continue
                field_name, dim = _EVSE_KEYS[key]
                try:
                    physics[field_name] = units.parse(value, dim) if dim else value
                except units.UnitError as exc:
                    src.error(("emulation", "evse", key), str(exc))
    try:
        teardown = units.parse(doc.get("teardown_timeout", "5 s"), "time")
    except units.UnitError as exc:
        src.error(("teardown_timeout",), str(exc))
        teardown = 5.0
    src.raise_if_problems()
    return BenchConfig(
        src.file,
        str(doc.get("name", Path(src.file).stem)),
        dut,
        tuple(instruments),
        physics,
        noise,
        teardown,
    )


def load_bench(path: str | Path) -> BenchConfig:
    return _from_source(load(path))


# ------------------------------------------------------------------------------------ open bench
@dataclass
class OpenBench:
    """A bench in use: drivers by role, the DUT, and (emulated parts) the world and the twins."""

    config: BenchConfig
    drivers: dict[str, Any]
    dut: Any
    records: list[InstrumentRecord]
    world: Any = None
    twins: dict[str, Any] = field(default_factory=dict)
    _torn_down: bool = False

    @property
    def analyzer(self) -> Any:
        return self.drivers.get("power_analyzer")

    @property
    def dc_source(self) -> Any:
        return self.drivers.get("dc_source")

    @property
    def grid(self) -> Any:
        return self.drivers.get("grid_simulator")

    @property
    def load(self) -> Any:
        return self.drivers.get("ac_load")

    def require(self, role: str) -> Any:
        driver = self.drivers.get(role)
        if driver is None:
            raise BenchError(f"the bench has no {role}")
        return driver

    def check_setpoint(self, p_w: float) -> None:
        from instruments.roles import LimitError

        limit = self.config.dut.setpoint_limit_w
        if abs(p_w) > limit:
            raise LimitError(
                f"setpoint {p_w:.0f} W is beyond the bench's DUT limit ±{limit:.0f} W; refused"
            )

    def teardown(self) -> list[dict[str, Any]]:
        """Safe state for the DUT, then every instrument in reverse bench order, each time-bounded.

        Runs every step even if one fails or hangs; returns what happened for the trace.
        """
        if self._torn_down:
            return []
        self._torn_down = True
        steps: list[tuple[str, Any]] = [("dut", self.dut.safe_state)]
        for inst in reversed(self.config.instruments):
            driver = self.drivers.get(inst.role)
            if driver is not None:
                steps.append((inst.name, driver.safe_state))
        return [bounded(name, fn, self.config.teardown_timeout_s) for name, fn in steps]

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


def bounded(name: str, fn: Any, timeout_s: float) -> dict[str, Any]:
    """Run fn in a worker thread and wait at most timeout_s: a hung instrument cannot stall teardown."""
    result: dict[str, Any] = {"instrument": name, "ok": False}
    watch = Stopwatch()

    def work() -> None:
        try:
            fn()
            result["ok"] = True
        except BaseException as exc:  # recorded, never raised: the next instrument must still run
            result["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=work, name=f"safe_state-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        result["error"] = f"safe_state did not finish within {timeout_s:g} s"
    result["seconds"] = round(watch.elapsed(), 4)
    return result


def world_config(plan: Plan | None, bench: BenchConfig) -> Any:
    """The emulated bench's physics: the plan's EV and grid, the bench's EVSE."""
    from rig import sim

    evse_fields: dict[str, Any] = dict(bench.evse_physics)
    if plan is not None:
        evse_fields["generator_mode"] = plan.evse.generator_mode
        evse_fields["islanding_method"] = plan.evse.islanding_method
        battery = sim.BatteryConfig(
            capacity_wh=plan.ev.capacity_wh,
            soc=plan.ev.soc,
            reserve_soc=plan.ev.reserve_soc,
            max_charge_w=plan.ev.max_charge_w,
            max_discharge_w=plan.ev.max_discharge_w,
        )
        grid = sim.GridConfig(
            voltage_nominal_v=plan.grid.voltage_v, frequency_nominal_hz=plan.grid.frequency_hz
        )
    else:
        battery = sim.BatteryConfig()
        grid = sim.GridConfig()
    noise = sim.NoiseConfig() if bench.noise else sim.NoiseConfig.none()
    return sim.WorldConfig(
        grid=grid,
        home=sim.HomeConfig(),
        evse=sim.EVSEConfig(**evse_fields),
        battery=battery,
        noise=noise,
    )


class EmulatedDut:
    """The emulated EVSE as the runner's DUT: protocol "none" until the -20 engines exist."""

    #: Longest wait for the emulated EVSE to ramp down and open (the session's own stop timeout).
    STOP_WAIT_S = 70.0

    def __init__(self, world: Any, plan: Plan, clock: Clock) -> None:
        from rig.emulators.direct import DirectSession

        self.world = world
        self.clock = clock
        self.session = DirectSession(
            world, service=plan.session.service, control_mode=plan.session.control_mode
        )
        self.protocol = self.session.protocol

    @property
    def state(self) -> str:
        return str(self.session.state)

    def poll(self, t: float) -> Sequence[Any]:
        self.world.advance_to(t)
        events: Sequence[Any] = self.world.drain_events()
        return events

    def start(self) -> None:
        self.session.start()

    def stop(self) -> None:
        self.session.stop()

    def set_setpoint(self, p_w: float) -> None:
        self.session.set_setpoint(p_w)

    def follow_home_load(self, on: bool) -> None:
        self.session.follow_home_load(on)

    def safe_state(self) -> None:
        """Stop the session and let the EVSE ramp to zero and open its contactors: time has to pass
        for that (virtual time passes at no cost; under a RealClock the teardown bound applies)."""
        self.session.stop()
        deadline = self.clock.now() + self.STOP_WAIT_S
        while self.session.state != "stopped" and self.clock.now() < deadline:
            self.clock.sleep(0.05)
            self.world.advance_to(self.clock.now())


def open_bench(
    config: BenchConfig, plan: Plan, clock: Clock, *, seed: int = 1, defects: Iterable[str] = ()
) -> OpenBench:
    """Open every instrument (real ones through the system VISA, emulated ones through the
    in-process backend over one shared World) and prepare them for the plan."""
    import pyvisa

    from instruments.emulated.visa import EmulatedVisaLibrary
    from instruments.registry import emulated_resource_name, make_twin, open_instrument
    from instruments.roles import Limits

    defects = tuple(defects)
    if not config.dut.emulated:
        raise BenchError(
            "a real DUT needs the ISO 15118-20 engines (rig.v2g), which are not built yet; "
            "use a bench with dut: {emulated: true}"
        )
    from rig.sim import World

    # The emulated DUT and every emulated instrument share one world (one physics, one clock).
    world = World(world_config(plan, config), defects=defects, seed=seed)
    twins: dict[str, Any] = {}
    emu_lib = EmulatedVisaLibrary() if any(i.emulated for i in config.instruments) else None
    emu_rm = pyvisa.ResourceManager(emu_lib) if emu_lib is not None else None
    real_rm = None
    drivers: dict[str, Any] = {}
    records: list[InstrumentRecord] = []
    bench = OpenBench(config, drivers, EmulatedDut(world, plan, clock), records, world, twins)
    try:
        for i, inst in enumerate(config.instruments):
            if inst.emulated:
                assert emu_lib is not None and emu_rm is not None
                serial = inst.serial or f"EMU{i + 1:04d}"
                twin = make_twin(
                    inst.model, world, clock.now, serial=serial, options=dict(inst.options)
                )
                resource_name = emulated_resource_name(inst.model, serial)
                emu_lib.add(resource_name, twin)
                twins[inst.name] = twin
                resource = emu_rm.open_resource(resource_name)
            else:
                real_rm = real_rm or pyvisa.ResourceManager()
                resource = real_rm.open_resource(inst.address)
            limits = Limits.from_mapping(inst.limits) if inst.limits else None
            driver = open_instrument(
                inst.model, resource, limits=limits, options=dict(inst.options)
            )
            drivers[inst.role] = driver
            idn = driver.identify()
            records.append(
                InstrumentRecord(
                    inst.role,
                    inst.model,
                    str(idn),
                    inst.emulated,
                    "" if inst.emulated else inst.address,
                    inst.calibration_due,
                )
            )
        _prepare(bench, plan)
    except BaseException:
        bench.teardown()
        raise
    return bench


#: The battery emulator's charge-voltage ceiling and the lowest pack voltage the current limits are
#: sized for: a 400 V-class pack (the emulated EV's OCV runs from 300 V empty to 403 V full).
PACK_CEILING_V = 450.0
PACK_MIN_V = 300.0


def _prepare(bench: OpenBench, plan: Plan) -> None:
    """Bring the instruments to the plan's starting point: the battery emulator energized with the
    EV's limits; the grid simulator set to nominal (a plan step energizes it)."""
    if bench.dc_source is not None:
        ev = plan.ev
        dc = bench.dc_source
        dc.set_voltage(PACK_CEILING_V)
        # Enough current for the EV's power limits down to an empty pack; the power limits bind.
        dc.set_current_limits(
            source_a=ev.max_discharge_w / PACK_MIN_V, sink_a=ev.max_charge_w / PACK_MIN_V
        )
        dc.set_power_limits(source_w=ev.max_discharge_w, sink_w=ev.max_charge_w)
        dc.set_output(True)
    if bench.grid is not None:
        bench.grid.set_voltage(plan.grid.voltage_v)
        bench.grid.set_frequency(plan.grid.frequency_hz)


def serve_emulated(
    bench: BenchConfig, *, host: str, base_port: int, seed: int, defects: tuple[str, ...]
) -> int:
    """`rig emulate --serve`: the bench's emulated instruments as SCPI sockets, in real time."""
    from instruments.emulated.server import serve
    from instruments.registry import make_twin
    from rig.clock import RealClock
    from rig.sim import World

    clock = RealClock()
    world = World(world_config(None, bench), defects=defects, seed=seed)
    twins = {}
    ports: dict[str, int] = {}
    for i, inst in enumerate(i for i in bench.instruments if i.emulated):
        twins[inst.name] = make_twin(
            inst.model,
            world,
            clock.now,
            serial=inst.serial or f"EMU{i + 1:04d}",
            options=dict(inst.options),
        )
        ports[inst.name] = 0 if base_port == 0 else base_port + i
    handle = serve(twins, host=host, ports=ports)
    try:
        models = {i.name: i.model for i in bench.instruments}
        for name, port in handle.ports.items():
            print(f"{name} ({models[name]}): TCPIP::{host}::{port}::SOCKET", flush=True)
        print("serving; Ctrl-C stops", flush=True)
        while True:
            clock.sleep(1.0)
            with handle.lock:  # the server's threads share the world
                world.advance_to(clock.now())
    except KeyboardInterrupt:
        return 0
    finally:
        handle.close()
