"""Bench files (fixtures/benches/*.yaml): the format, its validation, and the typed BenchConfig.

A bench file says what is on the bench: which side is the DUT, each instrument's role, model and
VISA address (or `emulated`), its hard limits and calibration date, and, for emulated parts, the
physics of the emulated EVSE. The same plan runs on the emulated bench in CI and on a real bench in
a lab; only the bench file changes. Every problem is reported at once as `file:line: field: message`
(rig.yamlsrc), before any instrument is touched.

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

A real bench whose plans run the cable sequence (plans with `link:`, rig.linkrun) names its
modem: `link: {interface: eth1, modem: "00:b0:52:00:00:01"}` (optional `ev_mac`, `pilot_poll`).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rig import units
from rig.sim.points import MeasurementPoint
from rig.yamlsrc import Path_, Source, load

DutSide = Literal["evse", "ev", "none"]
#: Longest bound on one instrument's safe-state step (a teardown must end in bounded time).
MAX_TEARDOWN_S = 600.0

_TOP_KEYS = ("name", "dut", "instruments", "emulation", "teardown_timeout", "link")
_DUT_KEYS = (
    "side",
    "name",
    "firmware",
    "emulated",
    "rated_power",
    "setpoint_limit",
    "tls",
    "pki",
    "address",
    "port",
    "interface",
    "sign",
    "control",
)
_INSTRUMENT_KEYS = ("role", "model", "address", "limits", "calibration_due", "serial")
#: bench `limits:` key -> (Limits field, unit dimension)
_LIMIT_KEYS = {
    "voltage": ("voltage_v", "voltage"),
    "current": ("current_a", "current"),
    "power": ("power_w", "power"),
    "reactive_power": ("reactive_power_var", "reactive_power"),
    "frequency": ("frequency_hz", "frequency"),
    "voltage_slew": ("voltage_slew_v_per_s", "voltage_rate"),
    "frequency_slew": ("frequency_slew_hz_per_s", "frequency_rate"),
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
    "current_limit": ("ac_current_limit_a", "current"),
    "no_load_loss": ("no_load_loss_w", "power"),
    "standby": ("standby_w", "power"),
    "overload_trip": ("overload_trip_s", "time"),
}
#: bench `emulation: variation:` key -> (rig.sim UnitVariation field, unit dimension): how far the
#: seed moves the emulated DUT's parameters from unit to unit (rig.sim.variation).
_VARIATION_KEYS: dict[str, tuple[str, str]] = {
    "island_detection": ("island_detection", "ratio"),
    "transfer": ("transfer", "ratio"),
    "lag": ("lag", "ratio"),
    "ramp_rate": ("ramp_rate", "ratio"),
    "efficiency": ("efficiency", "ratio"),
    "power_gain": ("power_gain", "ratio"),
    "power_offset": ("power_offset_w", "power"),
}


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

    @property
    def calibration_date(self) -> datetime.date | None:
        """The calibration due date (validated as an ISO date when the bench file is read)."""
        if self.calibration_due is None:
            return None
        return datetime.date.fromisoformat(self.calibration_due)

    @property
    def accuracy_stated(self) -> bool:
        """True when the bench file states this instrument's accuracy (else the model's)."""
        return "accuracy" in self.options


@dataclass(frozen=True)
class DutConfig:
    side: DutSide
    name: str
    firmware: str
    emulated: bool
    rated_power_w: float
    setpoint_limit_w: float
    #: ISO 15118-20 over TLS 1.3 with mutual authentication (the emulated bench's own test PKI
    #: when `pki` is not given).
    tls: bool = False
    pki: str | None = None
    #: A real DUT: where its SECC listens (address and port: direct mode, no SDP), or the
    #: interface the rig finds it on by SDP; the sign its discharge limits carry on the wire;
    #: the VISA address of its energy manager's control interface (a real EVSE in Dynamic mode).
    address: str | None = None
    port: int | None = None
    interface: str | None = None
    sign: str = "magnitude"
    control: str | None = None


@dataclass(frozen=True)
class BenchLink:
    """A real bench's cable (`link:`): the Ethernet interface of the HomePlug Green PHY modem the
    rig's side of SLAC runs on (a packet socket: root or CAP_NET_RAW), that modem's address for
    its local management messages (CM_SET_KEY), the host address SLAC uses if not the
    interface's own, and how often the control pilot instrument is read."""

    interface: str
    modem_mac: bytes
    ev_mac: bytes | None = None
    #: How often the rig reads the pilot (rig's own choice: well inside the 250 ms of
    #: [V2G20-847]; each reading is one query to the control pilot instrument).
    pilot_poll_s: float = 0.02
    line: int = 0


@dataclass(frozen=True)
class BenchConfig:
    path: str
    name: str
    dut: DutConfig
    instruments: tuple[InstrumentConfig, ...]
    evse_physics: Mapping[str, float]
    noise: bool
    teardown_timeout_s: float
    #: Emulated benches: "iso15118-20" (a real -20 session in every plan) or "none".
    protocol: str = "iso15118-20"
    #: One-way latency of the emulated link between the rig's engine and the emulated DUT's (s).
    link_latency_s: float = 0.0005
    #: A real bench's cable for plans with `link:` (None: the emulated link, or no cable).
    link: BenchLink | None = None
    #: How far the seed moves the emulated DUT's parameters (rig.sim.UnitVariation fields).
    variation: Mapping[str, float] = field(default_factory=dict)

    def by_role(self, role: str) -> InstrumentConfig | None:
        return next((i for i in self.instruments if i.role == role), None)

    @property
    def all_emulated(self) -> bool:
        return self.dut.emulated and all(i.emulated for i in self.instruments)

    def missing_roles(self, needed: set[str]) -> list[str]:
        """Instrument roles of `needed` (and the two every plan needs) that this bench lacks."""
        needed = needed | {"power_analyzer", "dc_source"}
        return sorted(r for r in needed if self.by_role(r) is None)


def is_bench_document(data: Any) -> bool:
    """A bench file has `instruments:`, a plan `steps:` (rig validate tells them apart)."""
    return isinstance(data, dict) and "instruments" in data and "steps" not in data


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


def _check_elements(src: Source, path: Path_, options: Mapping[str, Any]) -> None:
    """A power analyzer's `elements: {n: point}` wiring names known measurement points, and its
    `dc_elements` are wired elements on a DC point (a misspelt point fails here, not mid-run)."""
    elements = options.get("elements")
    if elements is None:
        return
    if not isinstance(elements, dict):
        src.error((*path, "elements"), "expected a mapping {element number: measurement point}")
        return
    points = MeasurementPoint.names()
    wired: dict[int, str] = {}
    for key, point in elements.items():
        element = int(key) if str(key).isdigit() else 0  # YAML mapping keys arrive as text
        if element < 1:
            src.error((*path, "elements", key), "an element is a positive number")
            continue
        if point not in points:
            import difflib

            hint = difflib.get_close_matches(str(point), points, n=1)
            src.error(
                (*path, "elements", key),
                f"{point!r} is not a measurement point"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(points)}"),
            )
            continue
        wired[element] = str(point)
    dc = options.get("dc_elements", [])
    if not isinstance(dc, list):
        src.error((*path, "dc_elements"), "expected a list of element numbers")
        return
    for element in dc:
        if element not in wired:
            src.error((*path, "dc_elements"), f"element {element!r} is not wired in `elements`")
        elif not MeasurementPoint(wired[element]).is_dc:
            src.error(
                (*path, "dc_elements"), f"element {element} measures {wired[element]}, an AC point"
            )
    for element, point in wired.items():
        if MeasurementPoint(point).is_dc and element not in dc:
            src.error(
                (*path, "elements", str(element)),
                f"{point} is a DC point: list {element} in dc_elements",
            )


def _parse_instruments(src: Source, raw_inst: Any) -> list[InstrumentConfig]:
    from instruments.registry import MODELS, model_entry, split_options
    from instruments.roles import Role

    roles = tuple(r.value for r in Role)
    instruments: list[InstrumentConfig] = []
    if not isinstance(raw_inst, dict) or not raw_inst:
        src.error(("instruments",), "missing: a mapping of name -> {role, model, address}")
        return instruments
    seen_roles: set[str] = set()
    for name, spec in raw_inst.items():
        path: Path_ = ("instruments", name)
        if not isinstance(spec, dict):
            src.error(path, "expected a mapping {role, model, address, ...}")
            continue
        role, model, address = spec.get("role"), spec.get("model"), spec.get("address")
        if not isinstance(role, str) or role not in roles:
            src.error((*path, "role"), f"{role!r} is not one of {', '.join(roles)}")
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
        cal = _calibration_due(src, (*path, "calibration_due"), spec.get("calibration_due"))
        options = {k: v for k, v in spec.items() if k not in _INSTRUMENT_KEYS}
        try:
            split_options(model_entry(model), options)
        except ValueError as exc:
            src.error(path, str(exc))
        _check_measuring_options(src, path, model, options)
        if role == Role.POWER_ANALYZER:
            _check_elements(src, path, options)
        instruments.append(
            InstrumentConfig(
                str(name),
                role,
                model,
                address,
                limits,
                options,
                cal,
                None if spec.get("serial") is None else str(spec["serial"]),
                src.line(path),
            )
        )
    return instruments


def _calibration_due(src: Source, path: Path_, raw: Any) -> str | None:
    """An instrument's calibration due date as an ISO date (YYYY-MM-DD), checked here so that
    a typo is a file:line error and not an instrument that silently never expires."""
    if raw is None:
        return None
    text = raw.isoformat() if isinstance(raw, datetime.date) else str(raw).strip()
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        src.error(path, f"{raw!r} is not a date; write it as YYYY-MM-DD (e.g. 2027-03-01)")
        return None
    return text


def _check_measuring_options(src: Source, path: Path_, model: str, options: dict[str, Any]) -> None:
    """`accuracy` ({quantity: {reading, range}}) and `update_interval`, as the verdicts'
    uncertainty and the emulated twins read them: checked against the model's meter here."""
    from instruments.registry import MODELS

    entry = MODELS.get(model)
    wanted: dict[str, Any] = {
        k: options[k] for k in ("accuracy", "update_interval") if k in options
    }
    if entry is None or not wanted:
        return
    spec = entry.twin.meter_spec
    if spec is None:
        src.error(
            (*path, next(iter(wanted))), f"{model} measures nothing the checks read: no accuracy"
        )
        return
    try:
        spec.with_options(wanted)
    except ValueError as exc:
        key = next(iter(wanted))
        src.error((*path, key), str(exc))


def _parse_dut(src: Source, dut_raw: Any, cable: bool = False) -> DutConfig:
    if not isinstance(dut_raw, dict):
        src.error(("dut",), "expected a mapping")
        dut_raw = {}
    side = dut_raw.get("side", "evse")
    if side not in ("evse", "ev", "none"):
        src.error(("dut", "side"), f"{side!r} is not one of evse, ev, none")
        side = "evse"
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
    tls = dut_raw.get("tls", False)
    if not isinstance(tls, bool):
        src.error(("dut", "tls"), "expected true or false")
        tls = False
    pki = dut_raw.get("pki")
    if pki is not None:
        pki_path = Path(str(pki))
        if not pki_path.is_absolute():
            pki_path = Path(src.file).parent / pki_path
        if not (pki_path / "manifest.json").is_file():
            src.error(("dut", "pki"), f"{pki_path} is not a PKI made by `rig pki init`")
        pki = str(pki_path)
    for key in dut_raw:
        if key not in _DUT_KEYS:
            src.error(("dut", key), f"unknown field; known: {', '.join(_DUT_KEYS)}")
    address, port, interface = dut_raw.get("address"), dut_raw.get("port"), dut_raw.get("interface")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
    ):
        src.error(("dut", "port"), f"{port!r} is not a TCP port (1..65535)")
        port = None
    # Behind a cable (`link:`), a real EVSE is found by SDP on the link's interface.
    if not emulated and side != "none" and not cable:
        if side == "evse" and not (address and port) and not interface:
            src.error(("dut",), "a real EVSE needs address and port (direct) or interface (SDP)")
        if side == "ev" and not address and not interface:
            src.error(("dut",), "a real EV needs the address or interface the rig's SECC serves on")
    sign = dut_raw.get("sign", "magnitude")
    if sign not in ("magnitude", "negative"):
        src.error(("dut", "sign"), f"{sign!r} is not one of magnitude, negative")
        sign = "magnitude"
    control = dut_raw.get("control")
    if control is not None and not isinstance(control, str):
        src.error(("dut", "control"), "expected the VISA address of the EVSE's control interface")
        control = None
    return DutConfig(
        side,
        str(dut_raw.get("name", "DUT")),
        str(dut_raw.get("firmware", "")),
        emulated,
        rated_w,
        limit_w,
        tls,
        pki,
        None if address is None else str(address),
        port,
        None if interface is None else str(interface),
        sign,
        control,
    )


_LINK_KEYS = ("interface", "modem", "ev_mac", "pilot_poll")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")
#: Linux interface names: at most 15 characters (IFNAMSIZ), no blank, slash or colon.
_INTERFACE = re.compile(r"^[^\s/:]{1,15}$")


def _mac(src: Source, path: Path_, raw: Any) -> bytes | None:
    if not isinstance(raw, str) or not _MAC.match(raw.strip()):
        src.error(path, f"{raw!r} is not a MAC address like 00:b0:52:00:00:01")
        return None
    return bytes.fromhex(raw.strip().replace(":", "").replace("-", ""))


def _parse_link(src: Source, raw: Any, dut: DutConfig) -> BenchLink | None:
    path: Path_ = ("link",)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        src.error(path, "expected a mapping {interface, modem, ev_mac}")
        return None
    for key in raw:
        if key not in _LINK_KEYS:
            src.error((*path, key), f"unknown field; known: {', '.join(_LINK_KEYS)}")
    if dut.emulated:
        src.error(path, "an emulated DUT's cable is emulated: link: names a real modem interface")
    interface = raw.get("interface")
    if interface is None:
        src.error((*path, "interface"), "missing: the modem's Ethernet interface (e.g. eth1)")
    elif not isinstance(interface, str) or not _INTERFACE.match(interface):
        src.error((*path, "interface"), f"{interface!r} is not a network interface name")
        interface = None
    modem = None
    if "modem" not in raw:
        src.error(
            (*path, "modem"), "missing: the modem's MAC (a QCA7000 answers 00:b0:52:00:00:01)"
        )
    else:
        modem = _mac(src, (*path, "modem"), raw["modem"])
    ev_mac = _mac(src, (*path, "ev_mac"), raw["ev_mac"]) if raw.get("ev_mac") is not None else None
    poll = 0.02
    if "pilot_poll" in raw:
        try:
            poll = units.parse(raw["pilot_poll"], "time")
            if not 0.001 <= poll <= 1.0:
                src.error((*path, "pilot_poll"), "must be between 1 ms and 1 s")
        except units.UnitError as exc:
            src.error((*path, "pilot_poll"), str(exc))
    if interface is None or modem is None:
        return None
    return BenchLink(str(interface), modem, ev_mac, poll, src.line(path))


_EMULATION_KEYS = ("evse", "noise", "protocol", "link_latency", "variation")
PROTOCOLS = ("iso15118-20", "none")


@dataclass(frozen=True)
class _Emulation:
    physics: dict[str, float]
    noise: bool
    protocol: str
    link_latency_s: float
    variation: dict[str, float] = field(default_factory=dict)


def _parse_variation(src: Source, raw: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        src.error(("emulation", "variation"), "expected a mapping like {island_detection: 25 %}")
        return out
    for key, value in raw.items():
        if key not in _VARIATION_KEYS:
            src.error(
                ("emulation", "variation", key),
                f"unknown field; known: {', '.join(_VARIATION_KEYS)}",
            )
            continue
        name, dim = _VARIATION_KEYS[key]
        try:
            out[name] = units.parse(value, dim)
        except units.UnitError as exc:
            src.error(("emulation", "variation", key), str(exc))
    if out and not src.problems:
        from rig.sim import UnitVariation

        try:
            UnitVariation(**out)
        except ValueError as exc:
            src.error(("emulation", "variation"), str(exc))
    return out


def _parse_emulation(src: Source, emu: Any) -> _Emulation:
    out = _Emulation({}, True, PROTOCOLS[0], 0.0005)
    if not isinstance(emu, dict):
        return out
    for key in emu:
        if key not in _EMULATION_KEYS:
            src.error(("emulation", key), f"unknown field; expected {', '.join(_EMULATION_KEYS)}")
    protocol = emu.get("protocol", PROTOCOLS[0])
    if protocol not in PROTOCOLS:
        src.error(("emulation", "protocol"), f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
        protocol = PROTOCOLS[0]
    latency = 0.0005
    if "link_latency" in emu:
        try:
            latency = units.parse(emu["link_latency"], "time")
            if not 0 <= latency <= 1.0:
                src.error(("emulation", "link_latency"), "must be between 0 s and 1 s")
        except units.UnitError as exc:
            src.error(("emulation", "link_latency"), str(exc))
    physics, noise = _parse_physics(src, emu)
    variation = _parse_variation(src, emu.get("variation"))
    return _Emulation(physics, noise, protocol, latency, variation)


def _parse_physics(src: Source, emu: dict[str, Any]) -> tuple[dict[str, float], bool]:
    physics: dict[str, float] = {}
    noise_raw = emu.get("noise", True)
    if not isinstance(noise_raw, bool):
        src.error(("emulation", "noise"), f"expected true or false, got {noise_raw!r}")
    noise = noise_raw is not False
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
        if physics and not src.problems:
            # The emulated EVSE's own validation (efficiency within (0, 100 %], a positive ramp,
            # ...) runs now, so a bad value is a file:line error and not a failure mid-run.
            from rig.sim import EVSEConfig

            try:
                EVSEConfig(**dict[str, Any](physics))
            except (TypeError, ValueError) as exc:
                src.error(("emulation", "evse"), str(exc))
    return physics, noise


def _from_source(src: Source) -> BenchConfig:
    doc = src.data
    if not isinstance(doc, dict):
        src.error((), "a bench file is a mapping (dut, instruments)")
        src.raise_if_problems()
    for key in doc:
        if key not in _TOP_KEYS:
            src.error((key,), f"unknown field; expected {', '.join(_TOP_KEYS)}")
    dut = _parse_dut(src, doc.get("dut") or {}, cable=doc.get("link") is not None)
    link = _parse_link(src, doc.get("link"), dut)
    instruments = _parse_instruments(src, doc.get("instruments"))
    emulation = _parse_emulation(src, doc.get("emulation") or {})
    try:
        teardown = units.parse(doc.get("teardown_timeout", "5 s"), "time")
        if not 0 < teardown <= MAX_TEARDOWN_S:
            src.error(
                ("teardown_timeout",),
                f"must be more than 0 s and at most {MAX_TEARDOWN_S:g} s (each instrument's bound)",
            )
    except units.UnitError as exc:
        src.error(("teardown_timeout",), str(exc))
        teardown = 5.0
    src.raise_if_problems()
    return BenchConfig(
        src.file,
        str(doc.get("name", Path(src.file).stem)),
        dut,
        tuple(instruments),
        emulation.physics,
        emulation.noise,
        teardown,
        emulation.protocol,
        emulation.link_latency_s,
        link,
        emulation.variation,
    )


def load_bench(path: str | Path) -> BenchConfig:
    """Parse and validate a bench file; raises SourceError listing every problem."""
    return _from_source(load(path))


def bench_from_source(src: Source) -> BenchConfig:
    return _from_source(src)
