"""The emulated EV's physical side, as its ISO 15118-20 EVCC asks for it.

SimEv is an rig.v2g EvController over the bench physics' battery (rig.sim.World): its limits are
the battery's and its BMS's (charge and discharge power and current, the voltage range of its
open-circuit curve), its energy window carries the reserve as EVMinimumV2XEnergyRequest (the
energy to the reserve, positive while below it: OCPP 2.1's reading, FACTS.md), and it does what
it is told: stop, stand by, resume, and in Scheduled mode the power it should draw or give.

On the emulated bench the rig's own EVCC (the DUT is the EVSE) and the emulated EV (the DUT is
the EV) both use it: the battery they talk about is the one the physics integrates.
"""

from __future__ import annotations

from typing import Protocol

from rig.emulators.management import Battery as PackPlan
from rig.emulators.management import TariffPolicy, plan_profile, tariff_from_prices
from rig.sim import Battery
from rig.sim.power_stage import dc_power
from rig.v2g import controllers as c
from rig.v2g.vocabulary import ControlMode, Service


class EvPhysics(Protocol):
    """What SimEv needs of the EV's physical side: the battery (a rig.sim Battery, the physics'
    own on the emulated bench, a model fed by measurements on a real one), time, and the EVSE's
    AC power and efficiency where a request is stated on the AC side."""

    @property
    def battery(self) -> Battery: ...

    def advance_to(self, t: float) -> None: ...

    @property
    def evse_ac_power_w(self) -> float: ...

    @property
    def evse_efficiency(self) -> float: ...


class SimEv:
    """The emulated EV's physical side (an rig.v2g.controllers.EvController)."""

    #: Voltage margin of the EV's announced range around its open-circuit curve (V).
    VOLTAGE_MARGIN_V = 50.0
    #: |EVSE output - battery| below which the EV closes its contactors after pre-charge (V).
    PRECHARGE_TOLERANCE_V = 20.0
    #: Departure announced when the plan names none (s from now) and the target SoC (fraction).
    DEPARTURE_S = 12 * 3600.0
    TARGET_SOC = 0.8

    def __init__(
        self,
        world: EvPhysics,
        *,
        departure_s: float | None = None,
        max_charge_w: float | None = None,
        max_discharge_w: float | None = None,
    ) -> None:
        self.world = world
        #: What the EV announces at most (DC side, magnitudes): the plan's EV limits, which may be
        #: below what the pack could do (None: the battery model's own limits).
        self.announce_charge_w = max_charge_w
        self.announce_discharge_w = max_discharge_w
        self.departure_s = self.DEPARTURE_S if departure_s is None else departure_s
        #: Scheduled mode: the AC power the EV asks for (rig sign); Dynamic mode ignores it.
        self.target_power_w = 0.0
        self._intent = c.EvIntent.CHARGE
        self.notices: list[tuple[c.EvseNotice, bool]] = []
        self.closure: c.Closure | None = None
        self.evse_limits: c.DcLimits | c.AcLimits | None = None
        self._limits_cache: (
            tuple[tuple[bool, float, float, float, float], c.DcLoopLimits] | None
        ) = None
        #: A day plan: when the driver leaves (run time, s) and the energy the pack must hold
        #: then (Wh); None: DEPARTURE_S from each request and TARGET_SOC.
        self.departure_at: float | None = None
        self.need_wh: float | None = None
        #: DUT = EV on a day plan: its manager (built from the received price schedule) and the
        #: profile it chose, ((duration s, AC power W)), from `_profile_t0`.
        self.manager: tuple[float, tuple[str, ...]] | None = None
        self.profile: tuple[tuple[float, float], ...] = ()
        self._profile_t0 = 0.0

    # --- a day plan ----------------------------------------------------------------------------
    #: The home load the EV plans to carry in expensive windows (W): it cannot see the home, so
    #: this is its owner's setting (rig's own default).
    HOME_ESTIMATE_W = 1_500.0

    def set_departure(self, at_s: float, need_wh: float) -> None:
        """The driver's departure (run time) and the energy the pack must hold then."""
        self.departure_at = at_s
        self.need_wh = need_wh

    def manage_by_prices(self, efficiency: float, defects: tuple[str, ...] = ()) -> None:
        """Scheduled mode: choose the power profile from the SECC's price schedule."""
        self.manager = (efficiency, defects)

    def _departure_in(self, now: float) -> float:
        if self.departure_at is None:
            return self.departure_s
        return max(0.0, self.departure_at - now)

    def _target_wh(self) -> float:
        battery = self.world.battery
        if self.need_wh is not None:
            return max(self.need_wh, battery.reserve_wh)
        return max(self.TARGET_SOC, battery.reserve_soc) * battery.capacity_wh

    def _target_soc_pct(self) -> float:
        return self._target_wh() / self.world.battery.capacity_wh * 100.0

    def _profile_power(self, now: float) -> float:
        t = now - self._profile_t0
        for duration, power in self.profile:
            if t < duration:
                return power
            t -= duration
        return 0.0

    # --- what the rig asks of the EV ------------------------------------------------------------
    def request(self, intent: c.EvIntent) -> None:
        """What the EV does after its next ChargeLoop exchange (stop, stand by, charge on)."""
        self._intent = intent

    @property
    def intended(self) -> c.EvIntent:
        return self._intent

    # --- helpers ----------------------------------------------------------------------------------
    def _battery_limits(self) -> tuple[float, float, float, float]:
        """(max charge W, max discharge W as a magnitude, max charge A, max discharge A), the
        hardware's and the BMS's: the reserve is not among them, it travels as the V2X window."""
        battery = self.world.battery
        cfg = battery.config
        charge = battery.max_charge_power_w()
        discharge = battery.max_discharge_power_w(respect_reserve=False)
        if self.announce_charge_w is not None:
            charge = min(charge, self.announce_charge_w)
        if self.announce_discharge_w is not None:
            discharge = min(discharge, self.announce_discharge_w)
        return charge, discharge, cfg.max_charge_a, cfg.max_discharge_a

    def _voltage_range(self) -> tuple[float, float]:
        curve = self.world.battery.config.ocv_curve
        return curve[0][1] - self.VOLTAGE_MARGIN_V, curve[-1][1] + self.VOLTAGE_MARGIN_V

    def energy_request(self) -> c.EnergyRequest:
        battery = self.world.battery
        energy, capacity = battery.energy_wh, battery.capacity_wh
        target = self._target_wh()
        return c.EnergyRequest(
            target=max(0.0, target - energy),
            maximum=max(0.0, capacity - energy),
            minimum=max(0.0, battery.reserve_wh - energy),
            maximum_v2x=capacity - energy,
            minimum_v2x=battery.reserve_wh - energy,
        )

    def _display(self) -> c.Display:
        battery = self.world.battery
        return c.Display(
            present_soc=round(battery.soc * 100.0),
            minimum_soc=round(battery.reserve_soc * 100.0),
            target_soc=round(self._target_soc_pct()),
            battery_capacity=battery.capacity_wh,
            charging_complete=battery.energy_wh >= battery.capacity_wh,
        )

    # --- EvController -------------------------------------------------------------------------
    def charge_parameters(self, service: Service, now: float) -> c.DcLimits | c.AcLimits:
        self.world.advance_to(now)
        charge, discharge, charge_a, discharge_a = self._battery_limits()
        low_v, high_v = self._voltage_range()
        bpt = service.bidirectional
        if service.is_dc:
            return c.DcLimits(
                max_charge_power=charge,
                min_charge_power=0.0,
                max_charge_current=charge_a,
                min_charge_current=0.0,
                max_voltage=high_v,
                min_voltage=low_v,
                max_discharge_power=-discharge if bpt else None,
                min_discharge_power=0.0 if bpt else None,
                max_discharge_current=-discharge_a if bpt else None,
                min_discharge_current=0.0 if bpt else None,
                target_soc=self._target_soc_pct(),
            )
        return c.AcLimits(
            max_charge_power=charge,
            min_charge_power=0.0,
            max_discharge_power=-discharge if bpt else None,
            min_discharge_power=0.0 if bpt else None,
        )

    def schedule_request(self, control_mode: ControlMode, now: float) -> c.ScheduleRequest:
        self.world.advance_to(now)
        battery = self.world.battery
        return c.ScheduleRequest(
            control_mode=control_mode,
            departure_time=self._departure_in(now),
            minimum_soc=battery.reserve_soc * 100.0,
            target_soc=self._target_soc_pct(),
            energy=self.energy_request(),
        )

    def choose_power_profile(
        self, offer: c.ScheduleOffer, control_mode: ControlMode, now: float
    ) -> c.PowerProfile:
        charge, discharge, _, _ = self._battery_limits()
        if control_mode is ControlMode.DYNAMIC or not offer.tuples:
            return c.PowerProfile(
                entries=(c.ScheduleEntry(self._departure_in(now), charge),),
                channel=c.Channel.CHARGE,
            )
        chosen = offer.tuples[0]
        if self.manager is not None and chosen.charging_prices is not None:
            return self._managed_profile(chosen, charge, discharge, now)
        discharging = self.target_power_w < 0 and chosen.discharging
        entries = (
            tuple(c.ScheduleEntry(e.duration, max(e.power, -discharge)) for e in chosen.discharging)
            if discharging and chosen.discharging
            else tuple(c.ScheduleEntry(e.duration, min(e.power, charge)) for e in chosen.charging)
        )
        return c.PowerProfile(
            schedule_tuple_id=chosen.id,
            entries=entries,
            channel=c.Channel.DISCHARGE if discharging else c.Channel.CHARGE,
        )

    def _managed_profile(
        self, chosen: c.ScheduleTuple, charge: float, discharge: float, now: float
    ) -> c.PowerProfile:
        """The profile the EV's manager plans from the tuple's prices, within the tuple's power
        range and the EV's limits (AC side)."""
        assert self.manager is not None and chosen.charging_prices is not None
        efficiency, defects = self.manager
        prices = chosen.charging_prices
        tariff = tariff_from_prices(
            [(e.duration, e.price) for e in prices.entries],
            self._prices_start(prices, now),
            prices.currency,
        )
        low, high = chosen.power_range()
        battery = self.world.battery
        pack = PackPlan(
            energy_wh=battery.energy_wh,
            capacity_wh=battery.capacity_wh,
            reserve_wh=battery.reserve_wh,
            need_wh=self._target_wh(),
            charge_w=min(high, charge / efficiency),
            discharge_w=min(-low, discharge * efficiency),
        )
        policy = TariffPolicy(tariff, efficiency=efficiency, defects=defects, blind=True)
        departure = now + self._departure_in(now)
        self.profile = plan_profile(policy, now, departure, pack, self.HOME_ESTIMATE_W)
        self._profile_t0 = now
        entries = tuple(c.ScheduleEntry(d, p) for d, p in self.profile) or (
            c.ScheduleEntry(max(1.0, departure - now), 0.0),
        )
        # -20's EVPowerProfile is one list with signed powers; the channel says discharge is in it.
        discharging = any(p < 0 for _, p in self.profile)
        return c.PowerProfile(
            schedule_tuple_id=chosen.id,
            entries=entries,
            channel=c.Channel.DISCHARGE if discharging else c.Channel.CHARGE,
        )

    @staticmethod
    def _prices_start(prices: c.PriceSchedule, now: float) -> float:
        """Where the received prices begin on the EV's clock: the schedule's TimeAnchor (the
        SECC stamps it when it answers, a PreCharge and more before the EV plans). Without an
        anchor, or with one more than a day from now (the two clocks disagree), from now."""
        from rig.day import DAY_S

        start = prices.start
        if start is None or abs(start - now) > DAY_S:
            return now
        return start

    def present_voltage(self, now: float) -> float:
        self.world.advance_to(now)
        return self.world.battery.terminal_v

    def precharged(self, evse_present_voltage: float, now: float) -> bool:
        self.world.advance_to(now)
        return abs(evse_present_voltage - self.world.battery.terminal_v) <= (
            self.PRECHARGE_TOLERANCE_V
        )

    def dc_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> c.DcLoopRequest:
        self.world.advance_to(now)
        battery = self.world.battery
        voltage = battery.terminal_v
        if control_mode is ControlMode.SCHEDULED:
            if self.profile:  # a managed day: the profile the EV chose
                self.target_power_w = self._profile_power(now)
            p_dc = dc_power(self.target_power_w, self.world.evse_efficiency)
            charge, discharge, _, _ = self._battery_limits()
            p_dc = max(-discharge if bidirectional else 0.0, min(charge, p_dc))
            return c.DcLoopRequest(
                present_voltage=voltage,
                target_current=p_dc / voltage if voltage > 0 else 0.0,
                target_voltage=self._voltage_range()[1],
                display=self._display(),
            )
        return c.DcLoopRequest(
            present_voltage=voltage,
            energy=self.energy_request(),
            limits=self._loop_limits(bidirectional),
            departure_time=self._departure_in(now),
            display=self._display(),
        )

    def _loop_limits(self, bidirectional: bool) -> c.DcLoopLimits:
        """The Dynamic-mode limits, built again only when they change (a full pack, a BMS
        current limit that binds): an hour of ChargeLoop sends the same limits 14,400 times."""
        key = (bidirectional, *self._battery_limits())
        cached = self._limits_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        _, charge, discharge, charge_a, discharge_a = key
        low_v, high_v = self._voltage_range()
        limits = c.DcLoopLimits(
            max_charge_power=charge,
            min_charge_power=0.0,
            max_charge_current=charge_a,
            max_voltage=high_v,
            min_voltage=low_v,
            max_discharge_power=-discharge if bidirectional else None,
            min_discharge_power=0.0 if bidirectional else None,
            max_discharge_current=-discharge_a if bidirectional else None,
        )
        self._limits_cache = (key, limits)
        return limits

    def ac_loop_request(
        self, control_mode: ControlMode, bidirectional: bool, now: float
    ) -> c.AcLoopRequest:
        self.world.advance_to(now)
        charge, discharge, _, _ = self._battery_limits()
        dynamic = control_mode is ControlMode.DYNAMIC
        return c.AcLoopRequest(
            present_active_power=self.world.evse_ac_power_w,
            present_reactive_power=0.0 if dynamic else None,
            energy=self.energy_request() if dynamic else None,
            max_charge_power=charge if dynamic else None,
            min_charge_power=0.0 if dynamic else None,
            max_discharge_power=-discharge if dynamic and bidirectional else None,
            min_discharge_power=0.0 if dynamic and bidirectional else None,
            departure_time=self._departure_in(now) if dynamic else None,
            display=self._display(),
        )

    def intent(self, now: float) -> c.EvIntent:
        return self._intent

    def evse_parameters(self, limits: c.DcLimits | c.AcLimits, now: float) -> None:
        self.evse_limits = limits

    def dc_status(self, status: c.DcLoopStatus, now: float) -> None:
        """Nothing to do: the battery is the physics' own, not an estimate from the status."""

    def ac_status(self, status: c.AcLoopStatus, now: float) -> None:
        """As dc_status."""

    def notification(self, notice: c.EvseNotice, obeyed: bool, now: float) -> None:
        self.notices.append((notice, obeyed))

    def power_delivery_done(self, progress: c.ChargeProgress, now: float) -> None:
        self.world.advance_to(now)

    def welding_detection_done(self, evse_present_voltage: float, now: float) -> bool:
        return evse_present_voltage < 60.0  # IEC 61851-23: below 60 V the contactors are open

    def session_ended(self, closure: c.Closure, reason: str, now: float) -> None:
        self.world.advance_to(now)
        self.closure = closure
