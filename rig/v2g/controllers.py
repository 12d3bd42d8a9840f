"""The physical side of a -20 session as the engines see it: controller protocols and their values.

The SECC asks an EvseController and the EVCC asks an EvController for everything that is not
protocol: what the charger offers, its limits and present values, isolation check and contactors,
the battery's state and needs, and what either side wants next. The same engine runs against the
emulated bench (rig.emulators), a real bench, or a test double (rig.v2g.reference).

Every value is in SI with the rig's sign convention (DESIGN.md "Domain conventions"): power and
current are positive into the EV (charge) and negative out of it (discharge). So a discharge
limit is a negative number: `max_discharge_power=-11_000.0` lets the EV give at most 11 kW. The
engines turn these into RationalNumbers, and into the peer's sign convention, only at the wire
(rig.v2g.messages). Energies are in Wh, times in s, SoC in percent.

Controller methods take `now` (the run's timeline, as the engine got it) because the engines read
no clock; a controller that integrates energy or ramps a voltage uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

from rig.v2g.frozen import fast_init
from rig.v2g.vocabulary import ControlMode, Service

# --- protocol vocabulary the controllers see (wire spellings as values) ------------------------


class AuthMethod(StrEnum):
    """Authorization services of -20 (authorizationType)."""

    EIM = "EIM"  # external identification means (RFID, app, free charging)
    PNC = "PnC"  # Plug & Charge (contract certificates)


class AuthorizationStatus(StrEnum):
    """What the EVSE's back end says of the EV's authorization."""

    ACCEPTED = "accepted"
    ONGOING = "ongoing"  # answered with EVSEProcessing Ongoing; the EV asks again
    REJECTED = "rejected"


class IsolationStatus(StrEnum):
    """The DC isolation (cable) check: Ongoing until a verdict."""

    ONGOING = "ongoing"
    VALID = "valid"
    WARNING = "warning"  # resistance in the warning band: the session goes on (Josev does too)
    FAULT = "fault"  # the session ends with FAILED


class ChargeProgress(StrEnum):
    """PowerDeliveryReq ChargeProgress (chargeProgressType)."""

    START = "Start"
    STOP = "Stop"
    STANDBY = "Standby"
    SCHEDULE_RENEGOTIATION = "ScheduleRenegotiation"


class Channel(StrEnum):
    """BPT_ChannelSelection of PowerDeliveryReq: the direction the EV starts in."""

    CHARGE = "Charge"
    DISCHARGE = "Discharge"


class Notification(StrEnum):
    """EVSENotification values (evseNotificationType)."""

    PAUSE = "Pause"
    EXIT_STANDBY = "ExitStandby"
    TERMINATE = "Terminate"
    SCHEDULE_RENEGOTIATION = "ScheduleRenegotiation"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"
    METERING_CONFIRMATION = "MeteringConfirmation"


class SessionEnd(StrEnum):
    """SessionStopReq ChargingSession (chargingSessionType)."""

    TERMINATE = "Terminate"
    PAUSE = "Pause"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"


class EvIntent(StrEnum):
    """What the EV wants after a ChargeLoop exchange (the EvController decides)."""

    CHARGE = "charge"  # go on (and leave Standby, if in it)
    STANDBY = "standby"  # PowerDelivery(Standby): hold the session without energy
    STOP = "stop"  # PowerDelivery(Stop), welding detection, SessionStop(Terminate)
    PAUSE = "pause"  # PowerDelivery(Stop), welding detection, SessionStop(Pause)
    RENEGOTIATE_SERVICE = "renegotiate_service"  # ... SessionStop(ServiceRenegotiation)
    RENEGOTIATE_SCHEDULE = "renegotiate_schedule"  # PowerDelivery(ScheduleRenegotiation)


class Closure(StrEnum):
    """How a session ended, as the controllers are told (they go safe on every one)."""

    TERMINATED = "terminated"  # SessionStop(Terminate) or the EVSE's Terminate obeyed
    PAUSED = "paused"  # SessionStop(Pause): may resume with the same SessionID
    ABORTED = "aborted"  # an error, a FAILED response code, a timeout or a lost connection


class PowerDeliveryOutcome(StrEnum):
    """What the EVSE's power side made of a PowerDeliveryReq."""

    APPLIED = "applied"
    NOT_APPLIED = "not_applied"  # FAILED_PowerDeliveryNotApplied
    CONTACTOR_ERROR = "contactor_error"  # FAILED_ContactorError


# --- ServiceDetail parameters (FACTS.md "Services and parameters"; wire ids as values) ----------


class MobilityNeedsMode(IntEnum):
    PROVIDED_BY_EVCC = 1
    PROVIDED_BY_SECC = 2  # only with ControlMode Dynamic [V2G20-2663]


class Pricing(IntEnum):
    NO_PRICING = 0
    ABSOLUTE = 1
    PRICE_LEVELS = 2


class BptChannel(IntEnum):
    UNIFIED = 1
    SEPARATED = 2


class GeneratorMode(IntEnum):
    GRID_FOLLOWING = 1
    GRID_FORMING = 2


class IslandingDetection(IntEnum):
    """GridCodeIslandingDetectionMethod (AC_BPT only)."""

    ACTIVE = 1
    PASSIVE = 2


@fast_init
@dataclass(frozen=True, slots=True)
class ParameterSet:
    """One ServiceDetailRes parameter set of an energy service, typed.

    `connector`: AC 1 single-phase, 2 three-phase; DC 1 Core, 2 Extended, 3 Dual2, 4 Dual4.
    `nominal_voltage` (EVSENominalVoltage, V) is optional. The BPT parameters belong to AC_BPT
    and DC_BPT only; `islanding_detection` to AC_BPT only.
    """

    id: int
    control_mode: ControlMode
    connector: int = 1
    mobility_needs_mode: MobilityNeedsMode = MobilityNeedsMode.PROVIDED_BY_EVCC
    pricing: Pricing = Pricing.NO_PRICING
    nominal_voltage: float | None = None
    bpt_channel: BptChannel | None = None
    generator_mode: GeneratorMode | None = None
    islanding_detection: IslandingDetection | None = None

    def problems(self, service: Service) -> list[str]:
        """Why this set cannot be offered for `service` (empty when it can)."""
        out: list[str] = []
        if not 0 <= self.id <= 0xFFFF:
            out.append(f"ParameterSetID {self.id} outside 0..65535")
        bpt = (self.bpt_channel, self.generator_mode)
        if service.bidirectional and None in bpt:
            out.append(f"{service} needs BPTChannel and GeneratorMode")
        if not service.bidirectional and any(v is not None for v in bpt):
            out.append(f"{service} is not bidirectional: no BPT parameters")
        if (self.islanding_detection is None) == (service is Service.AC_BPT):
            out.append("GridCodeIslandingDetectionMethod belongs to AC_BPT, and AC_BPT needs it")
        if (
            self.mobility_needs_mode is MobilityNeedsMode.PROVIDED_BY_SECC
            and self.control_mode is not ControlMode.DYNAMIC
        ):
            out.append("MobilityNeedsMode 2 only with ControlMode Dynamic [V2G20-2663]")
        return out


@fast_init
@dataclass(frozen=True, slots=True)
class ServiceOffer:
    """An energy transfer service the EVSE offers, with its parameter sets."""

    service: Service
    parameter_sets: tuple[ParameterSet, ...]
    free: bool = True

    def parameter_set(self, set_id: int) -> ParameterSet | None:
        return next((p for p in self.parameter_sets if p.id == set_id), None)


# --- limits and needs ---------------------------------------------------------------------------


def _check_signs(
    where: str, charge: Sequence[float | None], discharge: Sequence[float | None]
) -> None:
    for value in charge:
        if value is not None and value < 0:
            raise ValueError(f"{where}: charge-side values are >= 0, got {value}")
    for value in discharge:
        if value is not None and value > 0:
            raise ValueError(
                f"{where}: discharge values are <= 0 (rig sign convention), got {value}"
            )


@fast_init
@dataclass(frozen=True, slots=True)
class DcLimits:
    """DC_ChargeParameterDiscovery limits of the EV or of the EVSE (W, A, V).

    Discharge values (BPT only, None otherwise) are <= 0: `max_discharge_power=-10_000.0` is a
    10 kW discharge limit. `power_ramp_limit` (EVSEPowerRampLimitation) is the EVSE's only.
    """

    max_charge_power: float
    min_charge_power: float
    max_charge_current: float
    min_charge_current: float
    max_voltage: float
    min_voltage: float
    max_discharge_power: float | None = None
    min_discharge_power: float | None = None
    max_discharge_current: float | None = None
    min_discharge_current: float | None = None
    target_soc: float | None = None  # the EV's only (TargetSOC, %)
    power_ramp_limit: float | None = None

    def __post_init__(self) -> None:
        _check_signs(
            "DcLimits",
            (self.max_charge_power, self.min_charge_power, self.max_charge_current),
            (self.max_discharge_power, self.min_discharge_power, self.max_discharge_current),
        )

    @property
    def bidirectional(self) -> bool:
        return None not in (
            self.max_discharge_power,
            self.min_discharge_power,
            self.max_discharge_current,
            self.min_discharge_current,
        )


@fast_init
@dataclass(frozen=True, slots=True)
class AcLimits:
    """AC_ChargeParameterDiscovery limits (W, total over the phases; L2/L3 not modelled).

    `nominal_frequency` (Hz) and `present_active_power` are the EVSE's only.
    """

    max_charge_power: float
    min_charge_power: float
    max_discharge_power: float | None = None
    min_discharge_power: float | None = None
    nominal_frequency: float | None = None
    present_active_power: float | None = None
    power_ramp_limit: float | None = None

    def __post_init__(self) -> None:
        _check_signs(
            "AcLimits",
            (self.max_charge_power, self.min_charge_power),
            (self.max_discharge_power, self.min_discharge_power),
        )

    @property
    def bidirectional(self) -> bool:
        return self.max_discharge_power is not None and self.min_discharge_power is not None


@fast_init
@dataclass(frozen=True, slots=True)
class EnergyRequest:
    """The EV's energy window (Wh) as -20 carries it.

    `target`, `maximum`, `minimum`: EVTarget/EVMaximum/EVMinimumEnergyRequest. For V2X,
    `minimum_v2x` (EVMinimumV2XEnergyRequest) is the energy to the SoC below which the EV gives
    nothing back, i.e. its reserve: positive when the battery is below it (OCPP 2.1's reading,
    FACTS.md); `maximum_v2x` the energy to the top of the V2X range.
    """

    target: float
    maximum: float
    minimum: float
    maximum_v2x: float | None = None
    minimum_v2x: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleRequest:
    """What ScheduleExchangeReq carries: the EV's mobility needs.

    Dynamic mode needs `departure_time` and `energy`; Scheduled mode may carry either.
    `departure_time` is seconds from now (the wire's DepartureTime).
    """

    control_mode: ControlMode
    max_supporting_points: int = 1024
    departure_time: float | None = None
    minimum_soc: float | None = None
    target_soc: float | None = None
    energy: EnergyRequest | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One step of a power schedule or profile: `power` (W, signed) for `duration` (s)."""

    duration: float
    power: float


@fast_init
@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One price interval of a schedule: `duration` s from the previous one's end, `price` per
    kWh (an absolute price, or a level where the schedule is a PriceLevelSchedule)."""

    duration: float
    price: float


@fast_init
@dataclass(frozen=True, slots=True)
class PriceSchedule:
    """The price information of one charging or discharging schedule (-20 CommonTypes):
    AbsolutePriceSchedule (`pricing` ABSOLUTE: EnergyFee per kWh in `currency`) or
    PriceLevelSchedule (PRICE_LEVELS: `price` is the level, 0 cheapest, of `levels`).

    `start` is where a received schedule begins on the receiving engine's clock: its TimeAnchor
    less the engine's timestamp origin (the first entry's Duration counts from there, not from
    the moment the EV reads it). None: no anchor known (a schedule the rig offers is stamped
    with its tuple's anchor when sent)."""

    pricing: Pricing
    entries: tuple[PriceEntry, ...]
    currency: str = "EUR"
    levels: int = 1
    schedule_id: int = 1
    start: float | None = None

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a price schedule needs an entry")
        if self.pricing is Pricing.NO_PRICING:
            raise ValueError("a price schedule is absolute or by levels")


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleTuple:
    """A Scheduled-mode offer: a charging schedule and an optional discharging one.

    Charging entries are >= 0 W; discharging entries are <= 0 W (the magnitude on the wire is the
    peer's sign convention). `time_anchor` None means "now" as the engine stamps the message.
    """

    id: int
    charging: tuple[ScheduleEntry, ...]
    discharging: tuple[ScheduleEntry, ...] | None = None
    time_anchor: float | None = None
    #: Price information of the charging schedule (import) and of the discharging one (export).
    charging_prices: PriceSchedule | None = None
    discharging_prices: PriceSchedule | None = None

    def __post_init__(self) -> None:
        if not self.charging:
            raise ValueError(f"ScheduleTuple {self.id}: a charging schedule needs an entry")
        _check_signs(
            f"ScheduleTuple {self.id}",
            [e.power for e in self.charging],
            [e.power for e in self.discharging or ()],
        )

    def power_range(self) -> tuple[float, float]:
        """The lowest (discharge, <= 0) and highest (charge) power the tuple allows."""
        high = max(e.power for e in self.charging)
        low = min((e.power for e in self.discharging or ()), default=0.0)
        return low, high


@fast_init
@dataclass(frozen=True, slots=True)
class DynamicTargets:
    """Mobility needs the SECC provides in Dynamic mode (MobilityNeedsMode 2), all optional."""

    departure_time: float | None = None
    minimum_soc: float | None = None
    target_soc: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleOffer:
    """The EVSE's ScheduleExchangeRes content: 1-3 tuples in Scheduled mode, targets in Dynamic
    mode; `go_to_pause` asks the EV to pause right away."""

    tuples: tuple[ScheduleTuple, ...] = ()
    targets: DynamicTargets | None = None
    go_to_pause: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class PowerProfile:
    """What the EV sends in PowerDeliveryReq(Start): its chosen tuple (Scheduled mode), its
    planned power (EVPowerProfile entries, signed W) and, for BPT, the starting direction."""

    schedule_tuple_id: int | None = None
    entries: tuple[ScheduleEntry, ...] = ()
    channel: Channel | None = None
    time_anchor: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class PowerDeliveryCommand:
    """A PowerDeliveryReq as the EVSE's power side is asked to apply it."""

    progress: ChargeProgress
    channel: Channel | None = None
    profile: PowerProfile | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Display:
    """DisplayParameters the EV may send in ChargeLoopReq (SoC in %, times in s, energy in Wh)."""

    present_soc: float | None = None
    minimum_soc: float | None = None
    target_soc: float | None = None
    maximum_soc: float | None = None
    remaining_time_to_target_soc: float | None = None
    charging_complete: bool | None = None
    battery_capacity: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class DcLoopLimits:
    """Dynamic DC ChargeLoop limits, of the EV (request) or of the EVSE (response).

    Discharge values <= 0. `min_voltage` is required of the EV and, in BPT, of the EVSE.
    """

    max_charge_power: float
    min_charge_power: float
    max_charge_current: float
    max_voltage: float
    min_voltage: float | None = None
    max_discharge_power: float | None = None
    min_discharge_power: float | None = None
    max_discharge_current: float | None = None

    def __post_init__(self) -> None:
        _check_signs(
            "DcLoopLimits",
            (self.max_charge_power, self.min_charge_power, self.max_charge_current),
            (self.max_discharge_power, self.min_discharge_power, self.max_discharge_current),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class DcLoopRequest:
    """A DC_ChargeLoopReq's content. Dynamic mode needs `energy` and `limits`; Scheduled mode
    needs `target_current` (signed) and `target_voltage`."""

    present_voltage: float
    energy: EnergyRequest | None = None
    limits: DcLoopLimits | None = None
    departure_time: float | None = None
    target_current: float | None = None
    target_voltage: float | None = None
    display: Display | None = None
    meter_info_requested: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class MeterReading:
    """MeterInfo: energy counters in Wh (discharged: BPT only)."""

    meter_id: str
    charged_energy: float
    discharged_energy: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class EvseNotice:
    """An EVSENotification to send, and how long the EV has to act on it (s)."""

    notification: Notification
    max_delay: float = 60.0  # [V2G20-1850]: Pause in Dynamic mode carries 60


@fast_init
@dataclass(frozen=True, slots=True)
class DcLoopStatus:
    """A DC_ChargeLoopRes's content: present values, limit flags and, in Dynamic mode, the
    EVSE's limits (required there). The engine adds `meter` and `notice` on the EV's side."""

    present_voltage: float
    present_current: float
    power_limit_achieved: bool = False
    current_limit_achieved: bool = False
    voltage_limit_achieved: bool = False
    limits: DcLoopLimits | None = None
    targets: DynamicTargets | None = None
    meter: MeterReading | None = None
    notice: EvseNotice | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class AcLoopRequest:
    """An AC_ChargeLoopReq's content (W, var; signed). Dynamic mode needs `energy` and the
    charge limits; BPT adds the discharge limits."""

    present_active_power: float
    present_reactive_power: float | None = None
    energy: EnergyRequest | None = None
    max_charge_power: float | None = None
    min_charge_power: float | None = None
    max_discharge_power: float | None = None
    min_discharge_power: float | None = None
    departure_time: float | None = None
    display: Display | None = None
    meter_info_requested: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class AcLoopStatus:
    """An AC_ChargeLoopRes's content: in Dynamic mode the EVSE's explicit target active power
    (signed: negative asks the EV to discharge), required there."""

    target_active_power: float | None = None
    target_reactive_power: float | None = None
    present_active_power: float | None = None
    target_frequency: float | None = None
    targets: DynamicTargets | None = None
    meter: MeterReading | None = None
    notice: EvseNotice | None = None


# --- the protocols ------------------------------------------------------------------------------


class EvseController(Protocol):
    """What the SECC asks of the charger's physical side."""

    def services(self) -> Sequence[ServiceOffer]:
        """The energy services offered (ServiceDiscovery) with their parameter sets."""
        ...

    def service_renegotiation_supported(self) -> bool: ...

    def authorize(self, method: AuthMethod, now: float) -> AuthorizationStatus:
        """Asked once per AuthorizationReq; ONGOING answers Ongoing and the EV asks again."""
        ...

    def charge_parameters(
        self, service: Service, ev: DcLimits | AcLimits, now: float
    ) -> DcLimits | AcLimits | None:
        """The EVSE's limits for the EV's (DcLimits for DC services, AcLimits for AC), or None
        to refuse the EV's parameters (FAILED_WrongChargeParameter)."""
        ...

    def schedule(self, request: ScheduleRequest, now: float) -> ScheduleOffer | None:
        """The ScheduleExchangeRes content, or None while still working on it (Ongoing)."""
        ...

    def isolation_check(self, now: float) -> IsolationStatus:
        """Asked once per DC_CableCheckReq; the first call starts the check."""
        ...

    def precharge(self, target_voltage: float, now: float) -> float:
        """Drive the output toward `target_voltage` (current limited); the present voltage."""
        ...

    def power_delivery(self, command: PowerDeliveryCommand, now: float) -> PowerDeliveryOutcome:
        """Close the contactors and start (Start), or stop and open them (Stop, Standby)."""
        ...

    def dc_charge_loop(self, request: DcLoopRequest, now: float) -> DcLoopStatus: ...

    def ac_charge_loop(self, request: AcLoopRequest, now: float) -> AcLoopStatus: ...

    def welding_detection(self, now: float) -> float:
        """The present output voltage while the EV checks its contactors for welding."""
        ...

    def meter_reading(self, now: float) -> MeterReading: ...

    def next_notification(self, now: float) -> EvseNotice | None:
        """The next EVSENotification to send (a queue: each is returned once), or None."""
        ...

    def session_ended(self, closure: Closure, reason: str, now: float) -> None:
        """The session is over: go to the safe state (power off, contactors open). Called once
        per connection, on every kind of end."""
        ...


class EvController(Protocol):
    """What the EVCC asks of the vehicle's physical side, and tells it."""

    def charge_parameters(self, service: Service, now: float) -> DcLimits | AcLimits:
        """The EV's limits (DcLimits for DC services, AcLimits for AC; BPT fields for BPT)."""
        ...

    def schedule_request(self, control_mode: ControlMode, now: float) -> ScheduleRequest: ...

    def choose_power_profile(
        self, offer: ScheduleOffer, control_mode: ControlMode, now: float
    ) -> PowerProfile:
        """The EVPowerProfile (and tuple, in Scheduled mode) for PowerDeliveryReq(Start)."""
        ...

    def present_voltage(self, now: float) -> float:
        """The battery's voltage (DC)."""
        ...

    def precharged(self, evse_present_voltage: float, now: float) -> bool:
        """True once the EVSE's output is close enough to the battery to close the contactors."""
        ...

    def dc_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> DcLoopRequest: ...

    def ac_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> AcLoopRequest: ...

    def intent(self, now: float) -> EvIntent:
        """Asked after each ChargeLoop exchange (and in Standby): what next."""
        ...

    def evse_parameters(self, limits: DcLimits | AcLimits, now: float) -> None: ...

    def dc_status(self, status: DcLoopStatus, now: float) -> None: ...

    def ac_status(self, status: AcLoopStatus, now: float) -> None: ...

    def notification(self, notice: EvseNotice, obeyed: bool, now: float) -> None:
        """The EVSE sent a notification; `obeyed` says whether the EVCC acts on it."""
        ...

    def power_delivery_done(self, progress: ChargeProgress, now: float) -> None:
        """PowerDeliveryRes arrived with OK: contactors may close (Start) or open (Stop)."""
        ...

    def welding_detection_done(self, evse_present_voltage: float, now: float) -> bool: ...

    def session_ended(self, closure: Closure, reason: str, now: float) -> None:
        """The session is over: open the contactors, stop drawing or giving power."""
        ...
