"""Bench physics of the emulated rig: grid, home load, transfer switch, EVSE, DC source, EV battery.

Imports numpy and the standard library only. The World is the one object the emulated instruments
and the runner talk to; see world.py for the topology and the time model.
"""

from rig.sim.battery import Battery
from rig.sim.config import (
    DEFAULT_OCV_CURVE,
    BatteryConfig,
    EVSEConfig,
    GeneratorMode,
    GridConfig,
    HomeConfig,
    IslandingMethod,
    NoiseConfig,
    NoiseSpec,
    UnitVariation,
    WorldConfig,
)
from rig.sim.conversion import Conversion
from rig.sim.defects import DEFECTS, Defect, Firmware, firmware_for
from rig.sim.energy_manager import EnergyMode
from rig.sim.ev_limits import EvAnnouncement
from rig.sim.events import SessionEvent
from rig.sim.evse import EVSE, SiteState
from rig.sim.history import AcAverage, DcAverage, StateHistory
from rig.sim.home import RlcLoad, balanced_rlc
from rig.sim.measurements import AcMeasurement, DcMeasurement
from rig.sim.points import AC_POINTS, DC_POINTS, MeasurementPoint
from rig.sim.protection import CATEGORY_II_TRIPS, TripDirection, TripQuantity, TripSetting
from rig.sim.scheduler import Timer
from rig.sim.variation import draw_unit
from rig.sim.waveform import Probe, Quantity, sample_times, synthesize
from rig.sim.world import World

__all__ = [
    "AC_POINTS",
    "CATEGORY_II_TRIPS",
    "DC_POINTS",
    "DEFAULT_OCV_CURVE",
    "DEFECTS",
    "EVSE",
    "AcAverage",
    "AcMeasurement",
    "Battery",
    "BatteryConfig",
    "Conversion",
    "DcAverage",
    "DcMeasurement",
    "Defect",
    "EVSEConfig",
    "EnergyMode",
    "EvAnnouncement",
    "Firmware",
    "GeneratorMode",
    "GridConfig",
    "HomeConfig",
    "IslandingMethod",
    "MeasurementPoint",
    "NoiseConfig",
    "NoiseSpec",
    "Probe",
    "Quantity",
    "RlcLoad",
    "SessionEvent",
    "SiteState",
    "StateHistory",
    "Timer",
    "TripDirection",
    "TripQuantity",
    "TripSetting",
    "UnitVariation",
    "World",
    "WorldConfig",
    "balanced_rlc",
    "draw_unit",
    "firmware_for",
    "sample_times",
    "synthesize",
]
