"""Model keys of the bench file -> role, maker, driver class and emulated twin class.

The bench builder calls `open_instrument(model, resource, limits=..., options=...)` for every
instrument; for an emulated instrument it also builds the twin with `make_twin(...)` and
attaches it to an EmulatedVisaLibrary (or the TCP server) under `emulated_resource_name(...)`.

One `options` mapping per bench entry serves both sides: keys a driver understands go to the
driver (the WT5000's element -> point wiring), keys only the twin understands (ratings, the
World point) describe the emulated device and are ignored by the driver; unknown keys are an
error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from instruments.chroma.a635000 import A635000
from instruments.chroma.c61800 import C61800
from instruments.chroma.c63800 import C63800
from instruments.ea.psb10000 import PSB10000, RATING_OPTIONS
from instruments.emulated.a635000 import A635000Twin
from instruments.emulated.ac6900 import AC6900Twin
from instruments.emulated.c61800 import C61800Twin
from instruments.emulated.c63800 import C63800Twin
from instruments.emulated.daq970a import DAQ970ATwin
from instruments.emulated.infiniivision import InfiniiVisionTwin
from instruments.emulated.pilot_box import PilotBoxTwin
from instruments.emulated.psb10000 import PSB10000Twin
from instruments.emulated.rp7900 import RP7900Twin
from instruments.emulated.twin import Twin
from instruments.emulated.world import WorldLike
from instruments.emulated.wt1800 import WT1800Twin
from instruments.emulated.wt5000 import WT5000Twin
from instruments.keysight.ac6900 import AC6900
from instruments.keysight.daq970a import DAQ970A
from instruments.keysight.infiniivision import InfiniiVision
from instruments.keysight.rp7900 import RP7900
from instruments.pilot.pilot_box import PilotBox
from instruments.roles import AnyResource, Instrument, Limits, Role
from instruments.yokogawa.wt1800 import WT1800
from instruments.yokogawa.wt5000 import WT5000
from instruments.yokogawa.wt_series import DRIVER_OPTIONS as WT_OPTIONS


@dataclass(frozen=True)
class ModelEntry:
    """One supported instrument model."""

    key: str
    role: Role
    maker: str
    driver: type[Instrument]
    twin: type[Twin]
    #: Options the driver reads (the rest of a bench entry's options belong to the twin).
    driver_options: frozenset[str]
    #: USB vendor and product id used in emulated resource names (?: every product id; the
    #: vendor ids are the makers' registered ones, Chroma's two as seen in open drivers).
    usb_id: tuple[int, int]

    def emulated_resource(self, serial: str = "EMU0001") -> str:
        """USB0::<vid>::<pid>::<serial>::INSTR, shaped like the real model's resource name."""
        vendor, product = self.usb_id
        return f"USB0::0x{vendor:04X}::0x{product:04X}::{serial}::INSTR"


MODELS: Mapping[str, ModelEntry] = {
    entry.key: entry
    for entry in (
        ModelEntry(
            "yokogawa_wt5000",
            Role.POWER_ANALYZER,
            "Yokogawa",
            WT5000,
            WT5000Twin,
            WT_OPTIONS,
            (0x0B21, 0x0025),
        ),
        ModelEntry(
            "yokogawa_wt1800",
            Role.POWER_ANALYZER,
            "Yokogawa",
            WT1800,
            WT1800Twin,
            WT_OPTIONS,
            (0x0B21, 0x0026),
        ),
        ModelEntry(
            "ea_psb10000",
            Role.DC_SOURCE,
            "EA Elektro-Automatik",
            PSB10000,
            PSB10000Twin,
            RATING_OPTIONS,
            (0x232E, 0x0010),
        ),
        ModelEntry(
            "keysight_rp7900",
            Role.DC_SOURCE,
            "Keysight",
            RP7900,
            RP7900Twin,
            RATING_OPTIONS,
            (0x2A8D, 0x2802),
        ),
        ModelEntry(
            "keysight_ac6900",
            Role.GRID_SIMULATOR,
            "Keysight",
            AC6900,
            AC6900Twin,
            frozenset(),
            (0x2A8D, 0x3F02),
        ),
        ModelEntry(
            "chroma_61800",
            Role.GRID_SIMULATOR,
            "Chroma",
            C61800,
            C61800Twin,
            frozenset({"phases"}),
            (0x0A69, 0x086C),
        ),
        ModelEntry(
            "chroma_63800",
            Role.AC_LOAD,
            "Chroma",
            C63800,
            C63800Twin,
            frozenset(),
            (0x1698, 0x0837),
        ),
        ModelEntry(
            "keysight_infiniivision",
            Role.SCOPE,
            "Keysight",
            InfiniiVision,
            InfiniiVisionTwin,
            frozenset(),
            (0x2A8D, 0x1766),
        ),
        ModelEntry(
            "keysight_daq970a",
            Role.SWITCH_UNIT,
            "Keysight",
            DAQ970A,
            DAQ970ATwin,
            frozenset({"channels"}),
            (0x2A8D, 0x5101),
        ),
        ModelEntry(
            "chroma_a635000",
            Role.RLC_LOAD,
            "Chroma",
            A635000,
            A635000Twin,
            frozenset({"phases"}),
            (0x0A69, 0x0880),
        ),
        ModelEntry(
            "rig_pilot_box",
            Role.CONTROL_PILOT,
            "rig",
            PilotBox,
            PilotBoxTwin,
            frozenset({"side"}),
            # pid.codes' test id (?): the box is the rig's own vocabulary, not a product
            (0x1209, 0x0001),
        ),
    )
}


def model_entry(model: str) -> ModelEntry:
    try:
        return MODELS[model]
    except KeyError:
        raise ValueError(f"unknown instrument model {model!r}; known: {sorted(MODELS)}") from None


def _split_options(
    entry: ModelEntry, options: Mapping[str, object]
) -> tuple[dict[str, object], dict[str, object]]:
    twin_known = entry.twin.known_options()
    unknown = sorted(set(options) - entry.driver_options - twin_known)
    if unknown:
        known = sorted(entry.driver_options | twin_known)
        raise ValueError(f"{entry.key}: unknown option(s) {unknown}; known: {known}")
    driver = {k: v for k, v in options.items() if k in entry.driver_options}
    twin = {k: v for k, v in options.items() if k in twin_known}
    return driver, twin


#: Public name of the option split, for the bench file's validation (rig.bench).
split_options = _split_options


def open_instrument(
    model: str,
    resource: AnyResource,
    *,
    limits: Limits | None = None,
    options: Mapping[str, object] | None = None,
    name: str | None = None,
) -> Instrument:
    """The driver for `model` on an opened pyvisa resource (real or emulated); `name` is the
    bench's name for it, used in every error message."""
    entry = model_entry(model)
    driver_options, _ = _split_options(entry, options or {})
    return entry.driver.from_options(resource, limits=limits, options=driver_options, name=name)


def make_twin(
    model: str,
    world: WorldLike,
    now: Callable[[], float],
    *,
    serial: str = "EMU0001",
    options: Mapping[str, object] | None = None,
) -> Twin:
    """The emulated twin of `model` over `world`, with the twin's share of the options."""
    entry = model_entry(model)
    _, twin_options = _split_options(entry, options or {})
    return entry.twin(world, now, serial=serial, options=twin_options)


def emulated_resource_name(model: str, serial: str = "EMU0001") -> str:
    """A USB resource name shaped like the real model's: USB0::<vid>::<pid>::<serial>::INSTR."""
    return model_entry(model).emulated_resource(serial)
