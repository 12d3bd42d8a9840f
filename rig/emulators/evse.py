"""The emulated bidirectional EVSE's physical side, as its ISO 15118-20 SECC asks for it.

SimEvse is an rig.v2g EvseController over the bench physics (rig.sim.World): the services it
offers follow its configuration (generator mode, islanding detection), its limits are its power
stage's, the isolation check and pre-charge take the time a real charger takes, PowerDelivery
enables and disables the power stage, and each ChargeLoop passes the EV's announced limits to the
power stage (which honours them as far as its firmware does) and reports the measured present
values. What the stage aims at comes from the EVSE's own energy manager (its control interface:
the runner's setpoint and follow-home commands) in Dynamic mode, and from the EV's requested
current in Scheduled mode.

Every call first brings the world up to `now`: the engines pass the scheduler's time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rig.day import Tariff
from rig.emulators.management import Action, Situation, TariffPolicy, offered_prices
from rig.sim import EnergyMode, EvAnnouncement, GeneratorMode, IslandingMethod, World
from rig.sim.power_stage import ac_power, dc_power
from rig.v2g import controllers as c
from rig.v2g.vocabulary import ControlMode, Service


class SimEvse:
    """The emulated EVSE's physical side (an rig.v2g.controllers.EvseController)."""

    #: Seconds the isolation check takes (IEC 61851-23 allows more; the emulated unit is quick).
    CABLE_CHECK_S = 2.0
    #: Pre-charge slew of the output voltage (V/s) and the DC voltage range of the stage (V).
    PRECHARGE_V_PER_S = 400.0
    MIN_VOLTAGE_V = 150.0
    MAX_VOLTAGE_V = 500.0
    #: Below this the stage counts as stopped after PowerDelivery(Stop) (W), polled this often (s).
    STOPPED_BELOW_W = 1.0
    STOP_POLL_S = 0.1
    STOP_TIMEOUT_S = 60.0

    def __init__(
        self,
        world: World,
        services: Sequence[Service],
        meter_id: str = "EMU-METER-1",
        *,
        keeps_power_after_loss: bool = False,
    ):
        self.world = world
        #: A seeded defect: a lost session leaves the power stage running (no safe state).
        self.keeps_power_after_loss = keeps_power_after_loss
        self.offered = tuple(services)
        self.meter_id = meter_id
        self.notices: deque[c.EvseNotice] = deque()
        self._check_started: float | None = None
        self._precharge_t: float | None = None
        self._output_v = 0.0
        self._dc = True  # the session's service is DC (EV limits are DC-side)
        #: The energy manager's command before a Standby or Stop, restored by the next Start.
        self._resume: tuple[EnergyMode, float, bool] | None = None
        self._last: tuple[float, float] | None = None  # (t, p_dc) for the meter
        self._charged_wh = 0.0
        self._discharged_wh = 0.0
        #: The energy manager's tariff-following mode (a day plan), None: setpoint/follow-home.
        self.policy: TariffPolicy | None = None
        #: The day's tariff the rig's SECC offers as price schedules in Scheduled mode (DUT = EV
        #: on a day plan), absolute prices or levels.
        self.tariff: Tariff | None = None
        self.pricing = c.Pricing.ABSOLUTE
        #: The departure the manager told the EV it can make (day-relative s), once it could not.
        self._declared_departure: float | None = None

    # --- helpers ----------------------------------------------------------------------------------
    def _at(self, now: float) -> None:
        self.world.advance_to(now)
        self._meter(now)

    def _meter(self, now: float) -> None:
        p_dc = dc_power(self.world.evse.p_w, self.world.config.evse.efficiency)
        if self._last is not None and now > self._last[0]:
            energy = self._last[1] * (now - self._last[0]) / 3600.0
            if energy >= 0:
                self._charged_wh += energy
            else:
                self._discharged_wh -= energy
        self._last = (now, p_dc)

    def _rated(self) -> tuple[float, float]:
        cfg = self.world.config.evse
        return cfg.max_charge_w, cfg.max_discharge_w

    def _parameter_sets(self, service: Service) -> tuple[c.ParameterSet, ...]:
        evse = self.world.evse
        bpt = service.bidirectional
        generator = (
            c.GeneratorMode.GRID_FORMING
            if evse.generator_mode is GeneratorMode.GRID_FORMING
            else c.GeneratorMode.GRID_FOLLOWING
        )
        islanding = (
            c.IslandingDetection.PASSIVE
            if evse.islanding_method is IslandingMethod.PASSIVE
            else c.IslandingDetection.ACTIVE
        )
        sets = []
        for set_id, mode in ((1, ControlMode.DYNAMIC), (2, ControlMode.SCHEDULED)):
            sets.append(
                c.ParameterSet(
                    id=set_id,
                    control_mode=mode,
                    connector=2,  # DC Extended / AC three-phase
                    nominal_voltage=None
                    if service.is_dc
                    else self.world.config.grid.voltage_nominal_v,
                    bpt_channel=c.BptChannel.UNIFIED if bpt else None,
                    generator_mode=generator if bpt else None,
                    islanding_detection=islanding if service is Service.AC_BPT else None,
                    # Prices go out with the Scheduled offer only (as the bench charger's).
                    pricing=self.pricing
                    if self.tariff is not None and mode is ControlMode.SCHEDULED
                    else c.Pricing.NO_PRICING,
                )
            )
        return tuple(sets)

    # --- EvseController -----------------------------------------------------------------------
    def services(self) -> Sequence[c.ServiceOffer]:
        return tuple(c.ServiceOffer(s, self._parameter_sets(s)) for s in self.offered)

    def service_renegotiation_supported(self) -> bool:
        return True

    def authorize(self, method: c.AuthMethod, now: float) -> c.AuthorizationStatus:
        return c.AuthorizationStatus.ACCEPTED  # free charging (EIM) on the emulated bench

    def charge_parameters(
        self, service: Service, ev: c.DcLimits | c.AcLimits, now: float
    ) -> c.DcLimits | c.AcLimits | None:
        self._at(now)
        charge, discharge = self._rated()
        bpt = service.bidirectional
        self._announce(ev.max_charge_power, ev.max_discharge_power if bpt else 0.0, False)
        if service.is_dc:
            return c.DcLimits(
                max_charge_power=charge,
                min_charge_power=0.0,
                max_charge_current=charge / self.MIN_VOLTAGE_V,
                min_charge_current=0.0,
                max_voltage=self.MAX_VOLTAGE_V,
                min_voltage=self.MIN_VOLTAGE_V,
                max_discharge_power=-discharge if bpt else None,
                min_discharge_power=0.0 if bpt else None,
                max_discharge_current=-discharge / self.MIN_VOLTAGE_V if bpt else None,
                min_discharge_current=0.0 if bpt else None,
            )
        return c.AcLimits(
            max_charge_power=charge,
            min_charge_power=0.0,
            max_discharge_power=-discharge if bpt else None,
            min_discharge_power=0.0 if bpt else None,
            nominal_frequency=self.world.config.grid.frequency_nominal_hz,
            present_active_power=self.world.evse.p_w,
        )

    def schedule(self, request: c.ScheduleRequest, now: float) -> c.ScheduleOffer | None:
        if request.control_mode is ControlMode.DYNAMIC:
            return c.ScheduleOffer()
        charge, discharge = self._rated()
        day = 86_400.0
        return c.ScheduleOffer(
            tuples=(
                c.ScheduleTuple(
                    id=1,
                    charging=(c.ScheduleEntry(day, charge),),
                    discharging=(c.ScheduleEntry(day, -discharge),),
                    charging_prices=offered_prices(
                        self.tariff, now, export=False, pricing=self.pricing
                    ),
                    discharging_prices=offered_prices(
                        self.tariff, now, export=True, pricing=self.pricing
                    ),
                ),
            )
        )

    def isolation_check(self, now: float) -> c.IsolationStatus:
        self._at(now)
        if self._check_started is None:
            self._check_started = now
        if now - self._check_started < self.CABLE_CHECK_S:
            return c.IsolationStatus.ONGOING
        return c.IsolationStatus.VALID

    def precharge(self, target_voltage: float, now: float) -> float:
        self._at(now)
        dt = 0.25 if self._precharge_t is None else max(0.0, now - self._precharge_t)
        self._precharge_t = now
        step = self.PRECHARGE_V_PER_S * dt
        gap = target_voltage - self._output_v
        self._output_v += max(-step, min(step, gap))
        return self._output_v

    def power_delivery(self, command: c.PowerDeliveryCommand, now: float) -> c.PowerDeliveryOutcome:
        self._at(now)
        world = self.world
        if command.progress is c.ChargeProgress.START:
            self._check_started = self._precharge_t = None
            if self._resume is not None:  # back from Standby or a Pause: the last command again
                mode, setpoint, allow_charge = self._resume
                self._resume = None
                world.command_setpoint(setpoint)
                if mode is EnergyMode.FOLLOW_HOME:
                    world.command_follow_home(True, allow_charge=allow_charge)
            world.enable_power_stage(True)
        elif command.progress is c.ChargeProgress.STANDBY:
            self._ramp_down(disable=False)
        elif command.progress is c.ChargeProgress.STOP:
            self._ramp_down(disable=True)
        return c.PowerDeliveryOutcome.APPLIED

    def _ramp_down(self, *, disable: bool) -> None:
        """Ramp the stage to zero (the EV asked to stop or stand by); open when it is there."""
        world = self.world
        manager = world.evse.manager
        self._resume = (manager.mode, manager.setpoint_w, manager.allow_charge)
        world.command_setpoint(0.0)
        if disable:
            deadline = world.now + self.STOP_TIMEOUT_S

            def poll() -> None:
                if abs(world.evse.p_w) < self.STOPPED_BELOW_W or world.now >= deadline:
                    world.enable_power_stage(False)
                else:
                    world.call_at(world.now + self.STOP_POLL_S, poll)

            world.call_at(world.now, poll)

    def _announce(self, max_charge: float, max_discharge: float | None, used_up: bool) -> None:
        """The EV's announced limits (rig signs: charge >= 0, discharge <= 0; DC side for DC
        services, AC side for AC) go to the power stage as DC-side magnitudes."""
        eff = self.world.config.evse.efficiency
        discharge = -(max_discharge or 0.0)
        self.world.announce_ev_limits(
            EvAnnouncement(
                max_charge_w=max_charge, max_discharge_w=discharge, v2x_window_used_up=used_up
            )
            if self._dc
            else EvAnnouncement(
                max_charge_w=dc_power(max_charge, eff),
                max_discharge_w=-dc_power(-discharge, eff),
                v2x_window_used_up=used_up,
            )
        )

    def dc_charge_loop(self, request: c.DcLoopRequest, now: float) -> c.DcLoopStatus:
        self._dc = True
        self._at(now)
        world = self.world
        used_up = _v2x_used_up(request.energy)
        if request.limits is not None:
            self._announce(
                request.limits.max_charge_power, request.limits.max_discharge_power, used_up
            )
        if request.target_current is not None:  # Scheduled: the EV sets the current
            p_dc = request.target_current * request.present_voltage
            world.command_setpoint(ac_power(p_dc, world.config.evse.efficiency))
        battery = world.battery
        voltage = battery.terminal_v if world.dc_output else 0.0
        current = battery.current_a if world.dc_output else 0.0
        charge, discharge = self._rated()
        targets = self._manage(request.energy, request.departure_time, request.limits, now)
        target = world.evse.target_w
        steer_charge = max(0.0, min(target, charge)) if target >= 0 else 0.0
        steer_discharge = min(0.0, max(target, -discharge)) if target < 0 else 0.0
        limits = None
        if request.limits is not None:  # Dynamic: the EVSE's limits steer the transfer
            limits = c.DcLoopLimits(
                max_charge_power=steer_charge,
                min_charge_power=0.0,
                max_charge_current=charge / self.MIN_VOLTAGE_V,
                max_voltage=self.MAX_VOLTAGE_V,
                min_voltage=self.MIN_VOLTAGE_V,
                max_discharge_power=steer_discharge
                if request.limits.max_discharge_power is not None
                else None,
                min_discharge_power=0.0 if request.limits.max_discharge_power is not None else None,
                max_discharge_current=-discharge / self.MIN_VOLTAGE_V
                if request.limits.max_discharge_power is not None
                else None,
            )
        stage = world.evse.stage.output_w
        return c.DcLoopStatus(
            present_voltage=voltage,
            present_current=current,
            power_limit_achieved=abs(stage) >= max(charge, discharge) - 1.0,
            limits=limits,
            targets=targets,
        )

    def ac_charge_loop(self, request: c.AcLoopRequest, now: float) -> c.AcLoopStatus:
        self._dc = False
        self._at(now)
        world = self.world
        used_up = _v2x_used_up(request.energy)
        if request.max_charge_power is not None:
            self._announce(request.max_charge_power, request.max_discharge_power, used_up)
        self._manage(request.energy, request.departure_time, None, now)
        target = world.evse.target_w if request.energy is not None else None
        return c.AcLoopStatus(
            target_active_power=target,
            present_active_power=world.evse.p_w,
        )

    # --- the energy manager's tariff-following mode (a day plan) --------------------------------
    def manage(self, policy: TariffPolicy | None) -> None:
        """The tariff and outage forecast reached the manager (its control interface)."""
        self.policy = policy
        self._declared_departure = None

    def _manage(
        self,
        energy: c.EnergyRequest | None,
        departure_in: float | None,
        limits: c.DcLoopLimits | None,
        now: float,
    ) -> c.DynamicTargets | None:
        """Decide (every TariffPolicy.DECIDE_EVERY_S) from the EV's needs as -20 carries them:
        EVTargetEnergyRequest, EVMinimumV2XEnergyRequest, EVMaximumEnergyRequest, DepartureTime.
        Returns the SECC's DepartureTime in Dynamic mode once the need cannot be met in time (the
        EVSE tells the EV when it can have it), else None."""
        policy = self.policy
        if policy is None or energy is None or departure_in is None:
            return None
        if not policy.due(now):
            return self._targets(now)
        world = self.world
        eff = world.config.evse.efficiency
        rated_charge, _ = self._rated()
        charge_w = rated_charge
        if limits is not None and limits.max_charge_power > 0:
            charge_w = min(rated_charge, limits.max_charge_power / eff)
        above = -energy.minimum_v2x if energy.minimum_v2x is not None else 0.0
        home = world.measure_ac("home").p_w
        situation = Situation(
            now=now,
            departure_s=now + departure_in,
            need_wh=max(0.0, energy.target),
            above_reserve_wh=above,
            room_wh=energy.maximum,
            charge_w=charge_w,
            home_w=max(0.0, home),
        )
        before = policy.last
        decision = policy.decide(situation)
        if decision.action is Action.CHARGE:
            world.command_setpoint(decision.power_w)
        elif decision.action is Action.CARRY_HOME:
            world.command_follow_home(True)
        else:
            world.command_setpoint(0.0)
        if before is None or before.action is not decision.action:
            world.emit(
                "energy_manager",
                {"action": decision.action.value, "reason": decision.reason},
            )
        # The need cannot be met by the departure: say when it can, in time [V2G20 Dynamic
        # mode: the SECC's DepartureTime]. Once said, it stays said.
        needed_s = situation.need_wh / max(charge_w * eff, 1.0) * 3600.0
        if self._declared_departure is None and needed_s > departure_in + 1.0:
            self._declared_departure = now + needed_s
            world.emit("departure_unreachable", {"can_depart_in_s": needed_s})
        return self._targets(now)

    def _targets(self, now: float) -> c.DynamicTargets | None:
        if self._declared_departure is None:
            return None
        return c.DynamicTargets(departure_time=max(0.0, self._declared_departure - now))

    def welding_detection(self, now: float) -> float:
        self._at(now)
        self._output_v = max(0.0, self._output_v - 200.0)
        return self._output_v

    def meter_reading(self, now: float) -> c.MeterReading:
        self._at(now)
        return c.MeterReading(self.meter_id, self._charged_wh, self._discharged_wh)

    def next_notification(self, now: float) -> c.EvseNotice | None:
        return self.notices.popleft() if self.notices else None

    def session_ended(self, closure: c.Closure, reason: str, now: float) -> None:
        """Safe state: the stage off and the contactors open at once (the session is over)."""
        self._at(now)
        if self.keeps_power_after_loss and closure is c.Closure.ABORTED:
            return  # the defect: the power stage goes on as if nothing happened
        self.world.enable_power_stage(False)
        self.world.command_setpoint(0.0)
        self._check_started = self._precharge_t = None
        self._output_v = 0.0


def _v2x_used_up(energy: c.EnergyRequest | None) -> bool:
    """EVMinimumV2XEnergyRequest >= 0: the EV is at or below its reserve (OCPP 2.1's reading)."""
    return energy is not None and energy.minimum_v2x is not None and energy.minimum_v2x >= 0.0
