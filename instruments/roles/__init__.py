"""Instrument roles: the small interfaces the rig programs against, and the values they return.

In the labgrid spirit a role says what a bench needs (measure power, be the EV battery, be the
grid, be the home load, capture waveforms, switch S3, be the anti-islanding RLC load); vendor
detail lives in the drivers. Every role shares the base `Instrument`: identity (*IDN?), the
bench's hard limits, the error queue, faults as precise exceptions, `settings()` and
`safe_state()`. One role per module; everything is re-exported here.

Sign convention inside the rig: power and current are positive when energy flows into the EV.
"""

from instruments.roles.ac_load import ACLoad
from instruments.roles.base import (
    IO_LOG,
    AnyResource,
    Identity,
    Instrument,
    InstrumentConnectionLost,
    InstrumentError,
    InstrumentFault,
    InstrumentTimeout,
    LimitError,
    Limits,
    ModelRange,
    Range,
    RangeError,
    Resource,
    Role,
    as_resource,
    parse_error,
)
from instruments.roles.control_pilot import (
    ControlPilot,
    PilotMeasurement,
    PilotSide,
    PilotSideError,
    PilotState,
)
from instruments.roles.dc_source import DCSource
from instruments.roles.grid_simulator import STEP, GridSimulator
from instruments.roles.oscilloscope import Coupling, Oscilloscope, TriggerSlope
from instruments.roles.power_analyzer import PowerAnalyzer
from instruments.roles.readings import AcReading, DcReading, Waveform
from instruments.roles.rlc_load import RlcLoadBank, RlcTank
from instruments.roles.switch_unit import SwitchUnit

__all__ = [
    "IO_LOG",
    "STEP",
    "ACLoad",
    "AcReading",
    "AnyResource",
    "ControlPilot",
    "Coupling",
    "DCSource",
    "DcReading",
    "GridSimulator",
    "Identity",
    "Instrument",
    "InstrumentConnectionLost",
    "InstrumentError",
    "InstrumentFault",
    "InstrumentTimeout",
    "LimitError",
    "Limits",
    "ModelRange",
    "Oscilloscope",
    "PilotMeasurement",
    "PilotSide",
    "PilotSideError",
    "PilotState",
    "PowerAnalyzer",
    "Range",
    "RangeError",
    "Resource",
    "RlcLoadBank",
    "RlcTank",
    "Role",
    "SwitchUnit",
    "TriggerSlope",
    "Waveform",
    "as_resource",
    "parse_error",
]
