"""The rig's charger on a real bench: its SECC's physical side, with the DC source as output stage.

When the DUT is a real EV, the rig plays the charger: its SECC talks to the car, and the bench's
bidirectional DC source is the charger's output, connected to the car's DC inlet. It sources
current into the car to charge it and sinks current to take energy back (BPT). What the charger
aims at is the rig's own energy manager (the plan's setpoints) in Dynamic mode, and the car's
requested current in Scheduled mode, within the car's announced limits. DC services only: an AC
charger's output is the grid simulator, whose power the car itself sets.

On a day plan the charger is given the day's tariff: its Scheduled parameter set says Pricing
(absolute prices or levels), and its ScheduleExchangeRes carries the import prices with the
charging schedule and the export prices with the discharging one, from now to the day's end
(rig.emulators.management.offered_prices, as the emulated EVSE offers them); the car chooses its
power profile from them.

Sign: the rig's DcReading is positive into the EV battery when the source stands for the battery;
here the source stands for the charger, so the power into the EV is what the source delivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rig.emulators.management import offered_prices
from rig.v2g import controllers as c
from rig.v2g.vocabulary import ControlMode, Service

if TYPE_CHECKING:
    from instruments.roles import DCSource
    from rig.day import Tariff


class BenchCharger:
    """An rig.v2g.controllers.EvseController over the bench's DC source."""

    #: Seconds the isolation check takes: the bench has no insulation monitor of its own, so the
    #: check only paces the sequence as a charger does (?, IEC 61851-23 sets no fixed time).
    CABLE_CHECK_S = 2.0
    MIN_VOLTAGE_V = 150.0
    MAX_VOLTAGE_V = 500.0
    #: Pre-charge current limit (A): the EV's inlet is charged through it.
    PRECHARGE_A = 2.0
    #: Volts above (charge) or below (discharge) the EV's voltage at which the source regulates
    #: current: its constant-voltage setting is then the limit, not the operating point.
    CV_MARGIN_V = 1.0

    def __init__(
        self,
        dc_source: DCSource,
        services: Sequence[Service],
        *,
        max_charge_w: float,
        max_discharge_w: float,
    ) -> None:
        for s in services:
            if not s.is_dc:
                raise ValueError(f"the bench charger serves DC services only, not {s}")
        self.dc = dc_source
        self.offered = tuple(services)
        self.max_charge_w = max_charge_w
        self.max_discharge_w = max_discharge_w
        #: The rig's energy manager: AC-free, the DC power it aims at (+ charges the EV).
        self.setpoint_w = 0.0
        self.notices: list[c.EvseNotice] = []
        self._check_started: float | None = None
        self._delivering = False
        self._last: tuple[float, float] | None = None
        self._charged_wh = self._discharged_wh = 0.0
        #: A day plan's tariff (day-relative s: the run's time), offered as price schedules in
        #: Scheduled mode; None: no pricing. `pricing` says how: absolute prices or levels.
        self.tariff: Tariff | None = None
        self.pricing = c.Pricing.ABSOLUTE

    # --- helpers ----------------------------------------------------------------------------------
    def _measure(self) -> tuple[float, float]:
        """(voltage, current into the EV)."""
        reading = self.dc.measure()
        return reading.v, -reading.i

    def _deliver(self, p_w: float, v_ev: float) -> None:
        """Regulate the power into the EV (negative: out of it) by the source's current limits."""
        v = max(v_ev, self.MIN_VOLTAGE_V)
        if p_w >= 0:
            self.dc.set_voltage(min(v + self.CV_MARGIN_V, self.MAX_VOLTAGE_V))
            self.dc.set_current_limits(source_a=p_w / v, sink_a=0.0)
        else:
            self.dc.set_voltage(max(v - self.CV_MARGIN_V, 0.0))
            self.dc.set_current_limits(source_a=0.0, sink_a=-p_w / v)

    def _meter(self, now: float, p_w: float) -> None:
        if self._last is not None and now > self._last[0]:
            energy = self._last[1] * (now - self._last[0]) / 3600.0
            if energy >= 0:
                self._charged_wh += energy
            else:
                self._discharged_wh -= energy
        self._last = (now, p_w)

    # --- EvseController -----------------------------------------------------------------------
    def services(self) -> Sequence[c.ServiceOffer]:
        out = []
        for service in self.offered:
            bpt = service.bidirectional
            out.append(
                c.ServiceOffer(
                    service,
                    tuple(
                        c.ParameterSet(
                            id=set_id,
                            control_mode=mode,
                            connector=2,
                            bpt_channel=c.BptChannel.UNIFIED if bpt else None,
                            generator_mode=c.GeneratorMode.GRID_FOLLOWING if bpt else None,
                            pricing=self._pricing(mode),
                        )
                        for set_id, mode in ((1, ControlMode.DYNAMIC), (2, ControlMode.SCHEDULED))
                    ),
                )
            )
        return out

    def _pricing(self, mode: ControlMode) -> c.Pricing:
        """The Pricing a parameter set announces: prices go out with the Scheduled offer only
        (the Dynamic one carries none), and only when there is a tariff."""
        if self.tariff is None or mode is not ControlMode.SCHEDULED:
            return c.Pricing.NO_PRICING
        return self.pricing

    def service_renegotiation_supported(self) -> bool:
        return True

    def authorize(self, method: c.AuthMethod, now: float) -> c.AuthorizationStatus:
        return c.AuthorizationStatus.ACCEPTED

    def charge_parameters(
        self, service: Service, ev: c.DcLimits | c.AcLimits, now: float
    ) -> c.DcLimits | c.AcLimits | None:
        bpt = service.bidirectional
        return c.DcLimits(
            max_charge_power=self.max_charge_w,
            min_charge_power=0.0,
            max_charge_current=self.max_charge_w / self.MIN_VOLTAGE_V,
            min_charge_current=0.0,
            max_voltage=self.MAX_VOLTAGE_V,
            min_voltage=self.MIN_VOLTAGE_V,
            max_discharge_power=-self.max_discharge_w if bpt else None,
            min_discharge_power=0.0 if bpt else None,
            max_discharge_current=-self.max_discharge_w / self.MIN_VOLTAGE_V if bpt else None,
            min_discharge_current=0.0 if bpt else None,
        )

    def schedule(self, request: c.ScheduleRequest, now: float) -> c.ScheduleOffer | None:
        if request.control_mode is ControlMode.DYNAMIC:
            return c.ScheduleOffer()
        day = 86_400.0
        return c.ScheduleOffer(
            tuples=(
                c.ScheduleTuple(
                    id=1,
                    charging=(c.ScheduleEntry(day, self.max_charge_w),),
                    discharging=(c.ScheduleEntry(day, -self.max_discharge_w),),
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
        if self._check_started is None:
            self._check_started = now
        if now - self._check_started < self.CABLE_CHECK_S:
            return c.IsolationStatus.ONGOING
        return c.IsolationStatus.VALID

    def precharge(self, target_voltage: float, now: float) -> float:
        self.dc.set_current_limits(source_a=self.PRECHARGE_A, sink_a=0.0)
        self.dc.set_voltage(min(target_voltage, self.MAX_VOLTAGE_V))
        if not self.dc.output_enabled():
            self.dc.set_output(True)
        return self._measure()[0]

    def power_delivery(self, command: c.PowerDeliveryCommand, now: float) -> c.PowerDeliveryOutcome:
        self._check_started = None
        if command.progress is c.ChargeProgress.START:
            self._delivering = True
        elif command.progress in (c.ChargeProgress.STOP, c.ChargeProgress.STANDBY):
            self._delivering = False
            v, _ = self._measure()
            self._deliver(0.0, v)
        return c.PowerDeliveryOutcome.APPLIED

    def dc_charge_loop(self, request: c.DcLoopRequest, now: float) -> c.DcLoopStatus:
        v_ev = request.present_voltage
        if request.target_current is not None:  # Scheduled: the EV sets the current
            target = request.target_current * v_ev
        else:
            target = self.setpoint_w
            ev = request.limits
            if ev is not None:
                target = min(target, ev.max_charge_power)
                target = max(target, ev.max_discharge_power or 0.0)
        target = max(-self.max_discharge_w, min(self.max_charge_w, target))
        if self._delivering:
            self._deliver(target, v_ev)
        voltage, current = self._measure()
        self._meter(now, voltage * current)
        limits = None
        if request.limits is not None:
            bpt = request.limits.max_discharge_power is not None
            limits = c.DcLoopLimits(
                max_charge_power=max(0.0, target),
                min_charge_power=0.0,
                max_charge_current=self.max_charge_w / self.MIN_VOLTAGE_V,
                max_voltage=self.MAX_VOLTAGE_V,
                min_voltage=self.MIN_VOLTAGE_V,
                max_discharge_power=min(0.0, target) if bpt else None,
                min_discharge_power=0.0 if bpt else None,
                max_discharge_current=-self.max_discharge_w / self.MIN_VOLTAGE_V if bpt else None,
            )
        return c.DcLoopStatus(present_voltage=voltage, present_current=current, limits=limits)

    def ac_charge_loop(self, request: c.AcLoopRequest, now: float) -> c.AcLoopStatus:
        raise NotImplementedError("the bench charger serves DC services only")

    def welding_detection(self, now: float) -> float:
        if self.dc.output_enabled():
            self.dc.set_output(False)
        return self._measure()[0]

    def meter_reading(self, now: float) -> c.MeterReading:
        return c.MeterReading("RIG-BENCH-METER", self._charged_wh, self._discharged_wh)

    def next_notification(self, now: float) -> c.EvseNotice | None:
        return self.notices.pop(0) if self.notices else None

    def session_ended(self, closure: c.Closure, reason: str, now: float) -> None:
        """Safe: no current either way, output off."""
        self._delivering = False
        self._check_started = None
        try:
            self.dc.set_current_limits(source_a=0.0, sink_a=0.0)
        finally:
            self.dc.set_output(False)
