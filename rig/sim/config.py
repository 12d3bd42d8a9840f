"""Configuration of the emulated bench: plain frozen values the runner fills from plan and bench.

SI units throughout (W, var, V, A, Hz, s, Wh, ohm, H, F). Power limits are magnitudes. Every class
has defaults that describe a plausible 11 kW bidirectional DC wallbox, a 60 kWh 400 V-class EV and
a 230 V / 50 Hz single-phase home, so a test can change only what it is about.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from rig.sim.protection import CATEGORY_II_TRIPS, TripSetting


class GeneratorMode(StrEnum):
    """How the EVSE's inverter treats the AC bus (ISO 15118-20 GeneratorMode 1 / 2)."""

    GRID_FOLLOWING = "grid_following"
    GRID_FORMING = "grid_forming"


class IslandingMethod(StrEnum):
    """How the EVSE detects an island (ISO 15118-20 GridCodeIslandingDetectionMethod 1 / 2)."""

    ACTIVE = "active"
    PASSIVE = "passive"


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{owner}.{name} must be a positive number, got {value!r}")


def _check_non_negative(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{owner}.{name} must be >= 0, got {value!r}")


def _check_fraction(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}.{name} must be within 0..1, got {value!r}")


@dataclass(frozen=True)
class GridConfig:
    """The grid at the site: nominal values the per-unit trip table and the EVSE refer to."""

    voltage_nominal_v: float = 230.0  # phase to neutral
    frequency_nominal_hz: float = 50.0
    phases: int = 1

    def __post_init__(self) -> None:
        _check_positive("GridConfig", voltage_nominal_v=self.voltage_nominal_v)
        _check_positive("GridConfig", frequency_nominal_hz=self.frequency_nominal_hz)
        if self.phases not in (1, 3):
            raise ValueError(f"GridConfig.phases must be 1 or 3, got {self.phases!r}")


@dataclass(frozen=True)
class HomeConfig:
    """The home's initial constant-power load (positive = consumed)."""

    p_w: float = 0.0
    q_var: float = 0.0


#: Open-circuit voltage of a 96-cell NMC pack (about 3.1 to 4.2 V per cell), by state of charge.
DEFAULT_OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0.00, 300.0),
    (0.05, 330.0),
    (0.10, 342.0),
    (0.20, 352.0),
    (0.30, 359.0),
    (0.40, 365.0),
    (0.50, 371.0),
    (0.60, 378.0),
    (0.70, 385.0),
    (0.80, 392.0),
    (0.90, 399.0),
    (1.00, 403.0),
)


@dataclass(frozen=True)
class BatteryConfig:
    """The EV's traction battery and what its BMS allows."""

    capacity_wh: float = 60_000.0
    soc: float = 0.8
    reserve_soc: float = (
        0.3  # the EV gives no energy back at or below this (EVMinimumV2XEnergyRequest)
    )
    ocv_curve: Sequence[tuple[float, float]] = DEFAULT_OCV_CURVE  # (soc, volts), soc ascending
    r_internal_ohm: float = 0.1
    max_charge_w: float = 11_000.0
    max_discharge_w: float = 11_000.0  # magnitude
    max_charge_a: float = 125.0
    max_discharge_a: float = 125.0  # magnitude

    def __post_init__(self) -> None:
        _check_positive("BatteryConfig", capacity_wh=self.capacity_wh)
        _check_fraction("BatteryConfig", soc=self.soc, reserve_soc=self.reserve_soc)
        _check_non_negative(
            "BatteryConfig",
            r_internal_ohm=self.r_internal_ohm,
            max_charge_w=self.max_charge_w,
            max_discharge_w=self.max_discharge_w,
            max_charge_a=self.max_charge_a,
            max_discharge_a=self.max_discharge_a,
        )
        curve = tuple((float(s), float(v)) for s, v in self.ocv_curve)
        if len(curve) < 2:
            raise ValueError("BatteryConfig.ocv_curve needs at least two (soc, volts) points")
        socs = [s for s, _ in curve]
        if any(b <= a for a, b in itertools.pairwise(socs)):
            raise ValueError("BatteryConfig.ocv_curve: soc values must be strictly ascending")
        if any(v <= 0 for _, v in curve):
            raise ValueError("BatteryConfig.ocv_curve: voltages must be positive")
        object.__setattr__(self, "ocv_curve", curve)


@dataclass(frozen=True)
class EVSEConfig:
    """The bidirectional EVSE (the DUT of the emulated bench) as a good unit behaves.

    ramp_w_per_s and lag_s shape the response to a new target (ramp-rate limit, then a first-order
    lag); efficiency is that of the AC/DC conversion, the same in both directions.
    island_detection_s is the active method's detection time (jitter added on top, seeded);
    transfer_s the grid-forming time from detection to forming the island; reconnect_delay_s the
    wait after the grid is back in range (IEEE 1547-2018 4.10.3 enter-service delay, default 300 s).
    trip_settings are the passive protection's table (IEEE 1547-2018 Category II defaults).
    """

    max_charge_w: float = 11_000.0
    max_discharge_w: float = 11_000.0  # magnitude
    ramp_w_per_s: float = 10_000.0
    lag_s: float = 0.1
    efficiency: float = 0.96
    generator_mode: GeneratorMode | str = GeneratorMode.GRID_FOLLOWING
    islanding_method: IslandingMethod | str = IslandingMethod.ACTIVE
    island_detection_s: float = 0.5
    island_detection_jitter_s: float = 0.005
    transfer_s: float = 0.2
    reconnect_delay_s: float = 300.0
    trip_settings: tuple[TripSetting, ...] = CATEGORY_II_TRIPS
    #: IEEE 1547-2018 4.10.2 enter-service range, as p.u. voltage and Hz deviation (59.5..60.1 Hz).
    enter_service_v_pu: tuple[float, float] = (0.917, 1.05)
    enter_service_df_hz: tuple[float, float] = (-0.5, 0.1)
    #: AC current limit of the inverter; None: rated power at nominal voltage.
    ac_current_limit_a: float | None = None
    #: Part-load conversion: the loss while the stage switches at any power (0: the constant
    #: efficiency model; rig.sim.conversion). The efficiency is then the one at rated power.
    no_load_loss_w: float = 0.0
    #: The EVSE's auxiliary supply, drawn at its AC terminals while the grid holds its bus (and
    #: from the battery while it forms an island).
    standby_w: float = 0.0
    #: How the delivered power tracks a non-zero command: command x (1 + gain) + sign x offset
    #: (a unit's own measurement and control error; the seed draws them, rig.sim.variation).
    power_gain: float = 0.0
    power_offset_w: float = 0.0
    #: Grid-forming: how long the inverter holds an overload at its current limit (the voltage
    #: sagging) before it trips and ceases to energize (?: a typical inverter figure, rig's choice).
    overload_trip_s: float = 2.0

    def __post_init__(self) -> None:
        _check_non_negative(
            "EVSEConfig",
            max_charge_w=self.max_charge_w,
            max_discharge_w=self.max_discharge_w,
            lag_s=self.lag_s,
            island_detection_s=self.island_detection_s,
            island_detection_jitter_s=self.island_detection_jitter_s,
            transfer_s=self.transfer_s,
            reconnect_delay_s=self.reconnect_delay_s,
            no_load_loss_w=self.no_load_loss_w,
            standby_w=self.standby_w,
            power_offset_w=abs(self.power_offset_w),
            overload_trip_s=self.overload_trip_s,
        )
        _check_positive("EVSEConfig", ramp_w_per_s=self.ramp_w_per_s)
        if not abs(self.power_gain) < 0.5:
            raise ValueError(f"EVSEConfig.power_gain must be within ±50 %, got {self.power_gain!r}")
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError(
                f"EVSEConfig.efficiency must be within (0, 1], got {self.efficiency!r}"
            )
        if self.ac_current_limit_a is not None:
            _check_positive("EVSEConfig", ac_current_limit_a=self.ac_current_limit_a)
        try:
            object.__setattr__(self, "generator_mode", GeneratorMode(self.generator_mode))
            object.__setattr__(self, "islanding_method", IslandingMethod(self.islanding_method))
        except ValueError as exc:
            raise ValueError(f"EVSEConfig: {exc}") from None
        object.__setattr__(self, "trip_settings", tuple(self.trip_settings))

    @property
    def mode(self) -> GeneratorMode:
        """generator_mode as the enum (the field also accepts its string value)."""
        return GeneratorMode(self.generator_mode)

    @property
    def method(self) -> IslandingMethod:
        """islanding_method as the enum (the field also accepts its string value)."""
        return IslandingMethod(self.islanding_method)


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian noise with standard deviation rel * |reading| + offset (an instrument's accuracy
    class read as one sigma)."""

    rel: float = 0.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative("NoiseSpec", rel=self.rel, offset=self.offset)


@dataclass(frozen=True)
class NoiseConfig:
    """Measurement noise per quantity. The default is a good power analyzer / DC source readback."""

    ac_voltage: NoiseSpec = NoiseSpec(5e-4, 0.02)
    ac_current: NoiseSpec = NoiseSpec(5e-4, 0.002)
    ac_power: NoiseSpec = NoiseSpec(5e-4, 0.5)  # applies to P and Q
    frequency: NoiseSpec = NoiseSpec(0.0, 0.001)
    dc_voltage: NoiseSpec = NoiseSpec(5e-4, 0.02)
    dc_current: NoiseSpec = NoiseSpec(5e-4, 0.005)

    @classmethod
    def none(cls) -> NoiseConfig:
        """Ideal instruments: every measurement is the model's exact value."""
        zero = NoiseSpec()
        return cls(zero, zero, zero, zero, zero, zero)


@dataclass(frozen=True)
class UnitVariation:
    """Half-widths of the uniform distributions the seed draws the DUT's parameters from:
    relative (a share of the configured value) for times and the ramp rate; absolute for the
    efficiency (a fraction), the tracking gain (a fraction of the command) and its offset (W)."""

    island_detection: float = 0.0
    transfer: float = 0.0
    lag: float = 0.0
    ramp_rate: float = 0.0
    efficiency: float = 0.0
    power_gain: float = 0.0
    power_offset_w: float = 0.0

    def __post_init__(self) -> None:
        for name in ("island_detection", "transfer", "lag", "ramp_rate"):
            value = getattr(self, name)
            if not (0.0 <= value < 1.0):
                raise ValueError(f"UnitVariation.{name} must be within [0, 1), got {value!r}")
        for name in ("efficiency", "power_gain", "power_offset_w"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"UnitVariation.{name} must be >= 0, got {value!r}")
        if self.efficiency >= 0.2 or self.power_gain >= 0.2:
            raise ValueError("UnitVariation: efficiency and power_gain spreads must be below 20 %")

    @property
    def none(self) -> bool:
        return self == UnitVariation()


@dataclass(frozen=True)
class WorldConfig:
    """Everything the emulated bench is built from. grid_output_on / dc_output_on: the sources'
    output state at t = 0 (instruments switch them later through set_grid_output/set_dc_output).
    The seed draws the DUT from `evse` and `variation` (rig.sim.variation)."""

    grid: GridConfig = field(default_factory=GridConfig)
    home: HomeConfig = field(default_factory=HomeConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)
    evse: EVSEConfig = field(default_factory=EVSEConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    grid_output_on: bool = True
    dc_output_on: bool = True
    #: How far the seed moves the emulated DUT's parameters (rig.sim.variation); none by default.
    variation: UnitVariation = field(default_factory=UnitVariation)
    #: AC_BPT puts the inverter (and its islanding duty) in the EV: the EVSE's inverter defects
    #: then have nothing to act on, and the EV's inverter is a good unit.
    inverter_in_ev: bool = False
