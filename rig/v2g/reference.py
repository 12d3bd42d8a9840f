"""Minimal reference controllers: a battery EV and a charger, enough to drive whole sessions.

`BatteryEv` is an EvController over a battery of fixed voltage that integrates its SoC from the
current the EVSE reports, keeps a reserve (it offers no discharge at or below `reserve_soc` and
reports the reserve as EVMinimumV2XEnergyRequest), and does what a script of intents says.
`BenchCharger` is an EvseController with rated limits, a power `setpoint` that steers the EV in
Dynamic mode (positive charges, negative discharges), an isolation check and pre-charge that take
a few calls, contactors, a meter and a queue of notifications. Both keep what they were told, so
tests can assert on the physical side too. They are doubles, not physics: rig.sim is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig.v2g.controllers import (
    AcLimits,
    AcLoopRequest,
    AcLoopStatus,
    AuthMethod,
    AuthorizationStatus,
    BptChannel,
    Channel,
    ChargeProgress,
    Closure,
    DcLimits,
    DcLoopLimits,
    DcLoopRequest,
    DcLoopStatus,
    Display,
    EnergyRequest,
    EvIntent,
    EvseNotice,
    GeneratorMode,
    IslandingDetection,
    IsolationStatus,
    MeterReading,
    MobilityNeedsMode,
    ParameterSet,
    PowerDeliveryCommand,
    PowerDeliveryOutcome,
    PowerProfile,
    ScheduleEntry,
    ScheduleOffer,
    ScheduleRequest,
    ScheduleTuple,
    ServiceOffer,
)
from rig.v2g.vocabulary import ControlMode, Service


def default_parameter_sets(service: Service) -> tuple[ParameterSet, ...]:
    """Two sets per service: Dynamic (ID 1) and Scheduled (ID 2), with BPT parameters for BPT."""
    connector = 2  # DC: Extended; AC: three-phase
    bpt = service.bidirectional
    sets = []
    for set_id, mode in ((1, ControlMode.DYNAMIC), (2, ControlMode.SCHEDULED)):
        sets.append(
            ParameterSet(
                id=set_id,
                control_mode=mode,
                connector=connector,
                mobility_needs_mode=MobilityNeedsMode.PROVIDED_BY_EVCC,
                nominal_voltage=None if service.is_dc else 230.0,
                bpt_channel=BptChannel.UNIFIED if bpt else None,
                generator_mode=GeneratorMode.GRID_FOLLOWING if bpt else None,
                islanding_detection=IslandingDetection.ACTIVE
                if service is Service.AC_BPT
                else None,
            )
        )
    return tuple(sets)


@dataclass
class BenchCharger:
    """A reference EvseController (see the module docstring)."""

    offers: tuple[ServiceOffer, ...] = field(
        default_factory=lambda: tuple(
            ServiceOffer(s, default_parameter_sets(s))
            for s in (Service.DC_BPT, Service.DC, Service.AC_BPT, Service.AC)
        )
    )
    renegotiation_supported: bool = True
    dc_limits: DcLimits = field(
        default_factory=lambda: DcLimits(
            max_charge_power=11_000.0,
            min_charge_power=0.0,
            max_charge_current=30.0,
            min_charge_current=0.0,
            max_voltage=500.0,
            min_voltage=150.0,
            max_discharge_power=-11_000.0,
            min_discharge_power=0.0,
            max_discharge_current=-30.0,
            min_discharge_current=0.0,
        )
    )
    ac_limits: AcLimits = field(
        default_factory=lambda: AcLimits(
            max_charge_power=11_000.0,
            min_charge_power=0.0,
            max_discharge_power=-11_000.0,
            min_discharge_power=0.0,
            nominal_frequency=50.0,
        )
    )
    #: Dynamic mode: the power the charger steers toward (W; negative asks for discharge).
    setpoint: float = 11_000.0
    #: Calls that answer Ongoing before a verdict (authorization, schedule, isolation).
    authorization_rounds: int = 0
    schedule_rounds: int = 0
    isolation_rounds: int = 2
    isolation_verdict: IsolationStatus = IsolationStatus.VALID
    authorization_verdict: AuthorizationStatus = AuthorizationStatus.ACCEPTED
    #: Volts the output moves toward the pre-charge target per DC_PreChargeReq.
    precharge_step: float = 150.0
    #: Scheduled mode: the tuples offered (None: one from the rated limits).
    tuples: tuple[ScheduleTuple, ...] | None = None
    go_to_pause: bool = False
    power_delivery_outcome: PowerDeliveryOutcome = PowerDeliveryOutcome.APPLIED
    meter_id: str = "RIG-METER-1"

    # what the charger did and was told (for tests)
    notices: deque[EvseNotice] = field(default_factory=deque)
    contactors_closed: bool = False
    output_voltage: float = 0.0
    present_current: float = 0.0
    charged_wh: float = 0.0
    discharged_wh: float = 0.0
    power_deliveries: list[PowerDeliveryCommand] = field(default_factory=list)
    ended: list[tuple[Closure, str]] = field(default_factory=list)
    ev_parameters: DcLimits | AcLimits | None = None
    schedule_requests: list[ScheduleRequest] = field(default_factory=list)
    dc_requests: list[DcLoopRequest] = field(default_factory=list)
    ac_requests: list[AcLoopRequest] = field(default_factory=list)
    _last_time: float | None = None
    _rounds: dict[str, int] = field(default_factory=dict)
    _limits_cache: tuple[tuple[float, DcLimits], DcLoopLimits] | None = None

    @property
    def safe(self) -> bool:
        """Contactors open and no current: what session_ended must leave behind."""
        return not self.contactors_closed and self.present_current == 0.0

    def notify(self, notice: EvseNotice) -> None:
        """Queue an EVSENotification for the next ChargeLoopRes."""
        self.notices.append(notice)

    def _ongoing(self, what: str, rounds: int) -> bool:
        done = self._rounds.get(what, 0)
        self._rounds[what] = done + 1
        return done < rounds

    # --- EvseController -----------------------------------------------------------------------

    def services(self) -> Sequence[ServiceOffer]:
        return self.offers

    def service_renegotiation_supported(self) -> bool:
        return self.renegotiation_supported

    def authorize(self, method: AuthMethod, now: float) -> AuthorizationStatus:
        if self._ongoing("authorization", self.authorization_rounds):
            return AuthorizationStatus.ONGOING
        return self.authorization_verdict

    def charge_parameters(
        self, service: Service, ev: DcLimits | AcLimits, now: float
    ) -> DcLimits | AcLimits | None:
        self.ev_parameters = ev
        if service.is_dc:
            return self.dc_limits if service.bidirectional else _unidirectional_dc(self.dc_limits)
        return self.ac_limits if service.bidirectional else _unidirectional_ac(self.ac_limits)

    def schedule(self, request: ScheduleRequest, now: float) -> ScheduleOffer | None:
        self.schedule_requests.append(request)
        if self._ongoing(f"schedule{len(self.power_deliveries)}", self.schedule_rounds):
            return None
        if request.control_mode is ControlMode.DYNAMIC:
            return ScheduleOffer(go_to_pause=self.go_to_pause)
        tuples = self.tuples or (
            ScheduleTuple(
                id=1,
                charging=(ScheduleEntry(86_400, self.dc_limits.max_charge_power),),
                discharging=(ScheduleEntry(86_400, self.dc_limits.max_discharge_power or 0.0),),
            ),
        )
        return ScheduleOffer(tuples=tuples, go_to_pause=self.go_to_pause)

    def isolation_check(self, now: float) -> IsolationStatus:
        self.contactors_closed = True  # IEC 61851-23: closed during the insulation test
        if self._ongoing("isolation", self.isolation_rounds):
            return IsolationStatus.ONGOING
        self.contactors_closed = self.isolation_verdict is not IsolationStatus.FAULT
        return self.isolation_verdict

    def precharge(self, target_voltage: float, now: float) -> float:
        gap = target_voltage - self.output_voltage
        self.output_voltage += max(-self.precharge_step, min(self.precharge_step, gap))
        return self.output_voltage

    def power_delivery(self, command: PowerDeliveryCommand, now: float) -> PowerDeliveryOutcome:
        self.power_deliveries.append(command)
        if self.power_delivery_outcome is not PowerDeliveryOutcome.APPLIED:
            return self.power_delivery_outcome
        if command.progress is ChargeProgress.START:
            self.contactors_closed = True
        elif command.progress in (ChargeProgress.STOP, ChargeProgress.STANDBY):
            self.present_current = 0.0
            if command.progress is ChargeProgress.STOP:
                self.contactors_closed = False
                self._rounds.pop("isolation", None)  # the next start checks the isolation again
        self._last_time = now
        return PowerDeliveryOutcome.APPLIED

    def _meter(self, power: float, now: float) -> None:
        if self._last_time is not None and now > self._last_time:
            energy = power * (now - self._last_time) / 3600.0
            if energy >= 0:
                self.charged_wh += energy
            else:
                self.discharged_wh -= energy
        self._last_time = now

    def dc_charge_loop(self, request: DcLoopRequest, now: float) -> DcLoopStatus:
        self.dc_requests.append(request)
        voltage = request.present_voltage
        limits = self._dc_loop_limits(request)
        if request.target_current is not None:  # Scheduled: the EV sets the current
            current = request.target_current
        else:
            power = self.setpoint
            ev = request.limits
            if ev is not None:
                power = min(power, ev.max_charge_power)
                power = max(
                    power, ev.max_discharge_power if ev.max_discharge_power is not None else 0.0
                )
            current = power / voltage if voltage > 0 else 0.0
        low = self.dc_limits.max_discharge_current or 0.0
        current = max(low, min(self.dc_limits.max_charge_current, current))
        self._meter(self.present_current * self.output_voltage, now)
        self.present_current, self.output_voltage = current, voltage
        return DcLoopStatus(
            present_voltage=voltage,
            present_current=current,
            current_limit_achieved=current in (low, self.dc_limits.max_charge_current)
            and current != 0,
            limits=limits,
        )

    def _dc_loop_limits(self, request: DcLoopRequest) -> DcLoopLimits:
        # the same limits loop after loop while the setpoint holds: build them once per setpoint
        key = (self.setpoint, self.dc_limits)
        if self._limits_cache is None or self._limits_cache[0] != key:
            self._limits_cache = (key, self._steering_limits())
        return self._limits_cache[1]

    def _steering_limits(self) -> DcLoopLimits:
        rated = self.dc_limits
        steer_charge = max(0.0, min(self.setpoint, rated.max_charge_power))
        steer_discharge = min(0.0, max(self.setpoint, rated.max_discharge_power or 0.0))
        return DcLoopLimits(
            max_charge_power=steer_charge,
            min_charge_power=0.0,
            max_charge_current=rated.max_charge_current,
            max_voltage=rated.max_voltage,
            min_voltage=rated.min_voltage,
            max_discharge_power=steer_discharge if rated.bidirectional else None,
            min_discharge_power=0.0 if rated.bidirectional else None,
            max_discharge_current=rated.max_discharge_current,
        )

    def ac_charge_loop(self, request: AcLoopRequest, now: float) -> AcLoopStatus:
        self.ac_requests.append(request)
        target = self.setpoint
        if request.max_charge_power is not None:
            target = min(target, request.max_charge_power)
        target = max(
            target, request.max_discharge_power if request.max_discharge_power is not None else 0.0
        )
        self._meter(request.present_active_power, now)
        return AcLoopStatus(
            target_active_power=target, present_active_power=request.present_active_power
        )

    def welding_detection(self, now: float) -> float:
        self.output_voltage = max(0.0, self.output_voltage - 200.0)
        return self.output_voltage

    def meter_reading(self, now: float) -> MeterReading:
        return MeterReading(self.meter_id, self.charged_wh, self.discharged_wh)

    def next_notification(self, now: float) -> EvseNotice | None:
        return self.notices.popleft() if self.notices else None

    def session_ended(self, closure: Closure, reason: str, now: float) -> None:
        self.ended.append((closure, reason))
        self.contactors_closed = False
        self.present_current = 0.0
        self.output_voltage = 0.0
        self._rounds.clear()  # a next session on this charger starts afresh


def _unidirectional_dc(limits: DcLimits) -> DcLimits:
    return DcLimits(
        limits.max_charge_power,
        limits.min_charge_power,
        limits.max_charge_current,
        limits.min_charge_current,
        limits.max_voltage,
        limits.min_voltage,
        power_ramp_limit=limits.power_ramp_limit,
    )


def _unidirectional_ac(limits: AcLimits) -> AcLimits:
    return AcLimits(
        limits.max_charge_power,
        limits.min_charge_power,
        nominal_frequency=limits.nominal_frequency,
        power_ramp_limit=limits.power_ramp_limit,
    )


@dataclass
class BatteryEv:
    """A reference EvController (see the module docstring)."""

    capacity_wh: float = 60_000.0
    soc: float = 50.0
    reserve_soc: float = 30.0  # below this the EV gives nothing back (V2X minimum)
    target_soc: float = 80.0
    max_v2x_soc: float = 90.0
    voltage: float = 400.0
    max_charge_power: float = 11_000.0
    max_discharge_power: float = -11_000.0
    max_current: float = 30.0
    departure_time: float = 7_200.0
    #: Intents returned in turn after each ChargeLoop exchange; CHARGE once exhausted.
    intents: deque[EvIntent] = field(default_factory=deque)
    #: Welding detection rounds before the EV is satisfied.
    welding_rounds: int = 1
    #: Scheduled mode: which offered tuple to take (by position) and whether to start discharging.
    tuple_index: int = 0
    start_discharging: bool = False
    precharge_tolerance: float = 20.0
    meter_info: bool = False

    # what the EV was told (for tests)
    evse_limits: DcLimits | AcLimits | None = None
    dc_statuses: list[DcLoopStatus] = field(default_factory=list)
    ac_statuses: list[AcLoopStatus] = field(default_factory=list)
    notices: list[tuple[EvseNotice, bool]] = field(default_factory=list)
    deliveries: list[ChargeProgress] = field(default_factory=list)
    ended: list[tuple[Closure, str]] = field(default_factory=list)
    contactors_closed: bool = False
    power: float = 0.0  # W flowing now (positive into the battery)
    _last_time: float | None = None
    _welding: int = 0
    _limits_cache: tuple[tuple[bool, float, bool], DcLoopLimits] | None = None

    @property
    def energy_wh(self) -> float:
        return self.capacity_wh * self.soc / 100.0

    def _advance(self, now: float) -> None:
        if self._last_time is not None and now > self._last_time and self.contactors_closed:
            self.soc += self.power * (now - self._last_time) / 3600.0 / self.capacity_wh * 100.0
            self.soc = max(0.0, min(100.0, self.soc))
        self._last_time = now

    def _to_soc(self, soc: float) -> float:
        return (soc - self.soc) / 100.0 * self.capacity_wh

    def energy_request(self) -> EnergyRequest:
        return EnergyRequest(
            target=max(0.0, self._to_soc(self.target_soc)),
            maximum=max(0.0, self._to_soc(100.0)),
            minimum=max(0.0, self._to_soc(self.reserve_soc)),
            maximum_v2x=self._to_soc(self.max_v2x_soc),
            # the reserve: positive while the battery is below it (OCPP 2.1's reading)
            minimum_v2x=self._to_soc(self.reserve_soc),
        )

    def _discharge_allowed(self) -> float:
        return self.max_discharge_power if self.soc > self.reserve_soc else 0.0

    def display(self) -> Display:
        return Display(
            present_soc=round(self.soc),
            minimum_soc=round(self.reserve_soc),
            target_soc=round(self.target_soc),
            battery_capacity=self.capacity_wh,
        )

    # --- EvController -------------------------------------------------------------------------

    def charge_parameters(self, service: Service, now: float) -> DcLimits | AcLimits:
        bpt = service.bidirectional
        if service.is_dc:
            return DcLimits(
                max_charge_power=self.max_charge_power,
                min_charge_power=0.0,
                max_charge_current=self.max_current,
                min_charge_current=0.0,
                max_voltage=self.voltage + 50.0,
                min_voltage=self.voltage - 100.0,
                max_discharge_power=self.max_discharge_power if bpt else None,
                min_discharge_power=0.0 if bpt else None,
                max_discharge_current=-self.max_current if bpt else None,
                min_discharge_current=0.0 if bpt else None,
                target_soc=self.target_soc,
            )
        return AcLimits(
            max_charge_power=self.max_charge_power,
            min_charge_power=0.0,
            max_discharge_power=self.max_discharge_power if bpt else None,
            min_discharge_power=0.0 if bpt else None,
        )

    def schedule_request(self, control_mode: ControlMode, now: float) -> ScheduleRequest:
        return ScheduleRequest(
            control_mode=control_mode,
            max_supporting_points=1024,
            departure_time=self.departure_time,
            minimum_soc=self.reserve_soc,
            target_soc=self.target_soc,
            energy=self.energy_request(),
        )

    def choose_power_profile(
        self, offer: ScheduleOffer, control_mode: ControlMode, now: float
    ) -> PowerProfile:
        if control_mode is ControlMode.DYNAMIC or not offer.tuples:
            # the plan until departure, as Josev's EV sends one: the SECC steers in Dynamic mode
            power = self._discharge_allowed() if self.start_discharging else self.max_charge_power
            return PowerProfile(
                entries=(ScheduleEntry(self.departure_time, power),),
                channel=Channel.DISCHARGE if self.start_discharging else Channel.CHARGE,
            )
        chosen = offer.tuples[min(self.tuple_index, len(offer.tuples) - 1)]
        if self.start_discharging and chosen.discharging:
            entries = tuple(
                ScheduleEntry(e.duration, max(e.power, self._discharge_allowed()))
                for e in chosen.discharging
            )
            channel = Channel.DISCHARGE
        else:
            entries = tuple(
                ScheduleEntry(e.duration, min(e.power, self.max_charge_power))
                for e in chosen.charging
            )
            channel = Channel.CHARGE
        return PowerProfile(schedule_tuple_id=chosen.id, entries=entries, channel=channel)

    def present_voltage(self, now: float) -> float:
        return self.voltage

    def precharged(self, evse_present_voltage: float, now: float) -> bool:
        return abs(evse_present_voltage - self.voltage) <= self.precharge_tolerance

    def dc_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> DcLoopRequest:
        self._advance(now)
        if control_mode is ControlMode.SCHEDULED:
            power = self._discharge_allowed() if self.start_discharging else self.max_charge_power
            return DcLoopRequest(
                present_voltage=self.voltage,
                target_current=power / self.voltage,
                target_voltage=self.voltage + 10.0,
                display=self.display(),
                meter_info_requested=self.meter_info,
            )
        return DcLoopRequest(
            present_voltage=self.voltage,
            energy=self.energy_request(),
            limits=self._loop_limits(bidirectional),
            departure_time=self.departure_time,
            display=self.display(),
            meter_info_requested=self.meter_info,
        )

    def _loop_limits(self, bidirectional: bool) -> DcLoopLimits:
        # they change only when the battery crosses its reserve or fills up: build them then
        discharge = self._discharge_allowed()
        key = (bidirectional, discharge, self.soc < 100.0)
        if self._limits_cache is None or self._limits_cache[0] != key:
            limits = DcLoopLimits(
                max_charge_power=self.max_charge_power if self.soc < 100.0 else 0.0,
                min_charge_power=0.0,
                max_charge_current=self.max_current,
                max_voltage=self.voltage + 50.0,
                min_voltage=self.voltage - 100.0,
                max_discharge_power=discharge if bidirectional else None,
                min_discharge_power=0.0 if bidirectional else None,
                max_discharge_current=(discharge / self.voltage if discharge else 0.0)
                if bidirectional
                else None,
            )
            self._limits_cache = (key, limits)
        return self._limits_cache[1]

    def ac_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> AcLoopRequest:
        self._advance(now)
        dynamic = control_mode is ControlMode.DYNAMIC
        discharge = self._discharge_allowed()
        return AcLoopRequest(
            present_active_power=self.power,
            present_reactive_power=0.0 if dynamic else None,
            energy=self.energy_request() if dynamic else None,
            max_charge_power=self.max_charge_power if dynamic else None,
            min_charge_power=0.0 if dynamic else None,
            max_discharge_power=discharge if dynamic and bidirectional else None,
            min_discharge_power=0.0 if dynamic and bidirectional else None,
            departure_time=self.departure_time if dynamic else None,
            display=self.display(),
            meter_info_requested=self.meter_info,
        )

    def intent(self, now: float) -> EvIntent:
        return self.intents.popleft() if self.intents else EvIntent.CHARGE

    def evse_parameters(self, limits: DcLimits | AcLimits, now: float) -> None:
        self.evse_limits = limits

    def dc_status(self, status: DcLoopStatus, now: float) -> None:
        self._advance(now)
        self.dc_statuses.append(status)
        self.power = status.present_current * status.present_voltage

    def ac_status(self, status: AcLoopStatus, now: float) -> None:
        self._advance(now)
        self.ac_statuses.append(status)
        if status.target_active_power is not None:
            self.power = status.target_active_power

    def notification(self, notice: EvseNotice, obeyed: bool, now: float) -> None:
        self.notices.append((notice, obeyed))

    def power_delivery_done(self, progress: ChargeProgress, now: float) -> None:
        self._advance(now)
        self.deliveries.append(progress)
        if progress is ChargeProgress.START:
            self.contactors_closed = True
        elif progress in (ChargeProgress.STOP, ChargeProgress.STANDBY):
            self.power = 0.0
            self.contactors_closed = progress is ChargeProgress.STANDBY

    def welding_detection_done(self, evse_present_voltage: float, now: float) -> bool:
        self._welding += 1
        return self._welding >= self.welding_rounds

    def session_ended(self, closure: Closure, reason: str, now: float) -> None:
        self._advance(now)
        self.ended.append((closure, reason))
        self.contactors_closed = False
        self.power = 0.0
