"""The emulated bench: grid source, home, transfer switch, EVSE, DC source and EV battery on one bus.

Topology: grid source -- (grid point) -- transfer switch -- home bus -- home load, with the EVSE's AC
side on the home bus and its DC side on the DC source that emulates the EV battery. While the grid
is connected it supplies the home and the EVSE, and "grid" measures the import at the grid point;
without it the bus is whatever the EVSE makes of it (see island.py and evse.py).

Time is the caller's: advance_to(t) integrates up to t. Nothing moving, it jumps in closed form
(constant power: the state of charge is linear in time); while the power stage or an island's
frequency moves it takes substeps of about 1 ms; timers (session progress, island detection,
transfer, reconnection, trip clearing) fire at their exact times, and so do the battery's reserve,
empty and full crossings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from rig.sim.battery import Battery
from rig.sim.config import WorldConfig
from rig.sim.conversion import Conversion
from rig.sim.dc_source import DcSource
from rig.sim.defects import Firmware, firmware_for
from rig.sim.ev_limits import EvAnnouncement
from rig.sim.events import EventLog, Listener, SessionEvent
from rig.sim.evse import EVSE, SiteState
from rig.sim.grid import GridSource
from rig.sim.history import StateHistory
from rig.sim.home import HomeLoad, HomeLoadMode, RlcLoad
from rig.sim.island import FREQUENCY_LIMITS_PU, VOLTAGE_CEILING_PU, frequency_rate, island_voltage
from rig.sim.measurements import AcMeasurement, DcMeasurement
from rig.sim.noise import MeasurementNoise
from rig.sim.points import AC_POINTS, DC_POINTS
from rig.sim.scheduler import Scheduler, Timer
from rig.sim.transfer_switch import TransferSwitch
from rig.sim.variation import draw_unit

_ISLAND_STATES = (SiteState.ISLANDED, SiteState.CEASING)


class World:
    """The whole emulated bench, advanced in simulated time by its caller."""

    #: Integration step while something moves (s).
    SUBSTEP_S = 1e-3
    #: Longest closed-form jump (s): the battery's current limits depend on its voltage, which
    #: drifts with the state of charge, so limits are re-read at least this often.
    MAX_JUMP_S = 10.0
    #: An island's frequency within this of its equilibrium counts as settled (Hz).
    SETTLE_HZ = 1e-4

    def __init__(
        self, config: WorldConfig | None = None, *, defects: Iterable[str] = (), seed: int = 0
    ) -> None:
        config = config if config is not None else WorldConfig()
        noise_seq, physics_seq, unit_seq = np.random.SeedSequence(seed).spawn(3)
        # The seed draws this run's unit from the configured population (rig.sim.variation).
        unit = draw_unit(config.evse, config.variation, np.random.default_rng(unit_seq))
        config = dataclasses.replace(config, evse=unit)
        self.config = config
        firmware = firmware_for(defects)
        if config.inverter_in_ev:
            # AC_BPT: the inverter is the EV's, a good one; of the EVSE's defects only what it
            # commands remains (the sign of its target).
            firmware = Firmware(defects=firmware.defects, flips_discharge=firmware.flips_discharge)
        self.firmware = firmware
        self._seed = seed
        self._noise = MeasurementNoise(config.noise, np.random.default_rng(noise_seq))
        self._now = 0.0
        self._scheduler = Scheduler()
        self._events = EventLog()
        grid = config.grid
        self._v_nom = grid.voltage_nominal_v
        self._f_nom = grid.frequency_nominal_hz
        self._phases = grid.phases
        rated = max(config.evse.max_charge_w, config.evse.max_discharge_w)
        self._conv = Conversion(
            config.evse.efficiency, no_load_loss_w=config.evse.no_load_loss_w, rated_w=rated
        )
        #: The EVSE's auxiliary draw now at its terminals (grid-held bus), and whether the battery
        #: pays it instead (an island the EVSE forms).
        self._aux_w = 0.0
        self._aux_from_dc = False
        per_phase_a = config.evse.ac_current_limit_a or rated / (grid.phases * self._v_nom)
        self._current_limit_total_a = per_phase_a * grid.phases
        self.grid = GridSource(grid, output_on=config.grid_output_on)
        self.home = HomeLoad(
            p_w=config.home.p_w,
            q_var=config.home.q_var,
            voltage_nominal_v=self._v_nom,
            phases=grid.phases,
        )
        self.transfer_switch = TransferSwitch()
        self.dc_source = DcSource(output_on=config.dc_output_on)
        self.battery = Battery(config.battery)
        self.evse = EVSE(
            config.evse,
            self.firmware,
            grid,
            scheduler=self._scheduler,
            events=self._events,
            rng=np.random.default_rng(physics_seq),
            transfer_switch=self.transfer_switch,
            clock=lambda: self._now,
        )
        self._island_f = self._f_nom
        # The solved bus (see _solve).
        self._bus_v = self._bus_f = 0.0
        self._p_home = self._q_home = 0.0
        self._grid_v = self._grid_f = self._grid_p = self._grid_q = 0.0
        self._connected = False
        #: What the EV last announced over ISO 15118-20 (None under protocol "none").
        self._announced: EvAnnouncement | None = None
        self._history: StateHistory | None = None
        if not self.grid.output_on:
            self.evse.grid_changed(False, False)
        self._solve()

    # --- time --------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        """Integrate the bench up to time t; t <= now is a no-op."""
        if math.isnan(t):
            raise ValueError("advance_to: t is NaN")
        if not t > self._now:
            return
        # Every mutator re-solves the bus when it changes it, and every step below ends on a
        # solve: the state is current here (a redundant solve per advance cost a fifth of the
        # physics in a -20 session, two advances per exchange).
        self._watch()
        evse = self.evse
        stage = evse.stage
        while True:
            self._fire_due()
            if self._now >= t:
                break
            trip = evse.protection.next_trip()
            horizon = min(t, self._scheduler.next_time(), trip[0] if trip else math.inf)
            if evse.following:
                low, high = self._stage_window()
                if stage.output_w > high or stage.output_w < low:
                    # A limit dropped (reserve reached, DC source off): the output follows at once.
                    stage.clamp(low, high)
                    self._solve()
                target = self._target(low, high)
                moving = not stage.settled(target)
            else:
                low = high = target = 0.0
                moving = False
            if moving or self._island_moving():
                self._substep(horizon, target, low, high, step_stage=moving)
            else:
                self._jump(horizon)

    def _fire_due(self) -> None:
        """Fire every timer and trip due at now, re-solving the bus after each."""
        while True:
            timer = self._scheduler.pop_due(self._now)
            if timer is not None:
                timer.callback()
            else:
                trip = self.evse.protection.next_trip()
                if trip is None or trip[0] > self._now:
                    return
                self.evse.trip(trip[1])
            self._solve()
            self._watch()

    def _advance_clock(self, horizon: float, dt: float) -> float:
        """Move now by dt, landing exactly on the horizon when dt reaches it; return the dt used."""
        if self._now + dt >= horizon:
            dt = horizon - self._now
            self._now = horizon
        else:
            self._now += dt
        return dt

    def _p_dc(self) -> float:
        """DC power at the battery now (rig sign), the EVSE's auxiliary draw included when the
        battery pays it."""
        p = self._conv.dc_of(self.evse.p_w)
        return p - self.config.evse.standby_w if self._aux_from_dc else p

    def _substep(
        self, horizon: float, target: float, low: float, high: float, *, step_stage: bool
    ) -> None:
        evse = self.evse
        p0_dc = self._p_dc()
        dt = min(self.SUBSTEP_S, horizon - self._now)
        if horizon - (self._now + dt) < 1e-9:
            dt = horizon - self._now
        if step_stage:
            evse.stage.step(target, dt)
            evse.stage.clamp(low, high)
        if self._bus_v > 0.0 and not self._connected and evse.state in _ISLAND_STATES:
            self._integrate_island_frequency(dt)
        dt = self._advance_clock(horizon, dt)
        self._solve()
        self._store(0.5 * (p0_dc + self._p_dc()), dt)
        self._watch()

    def _jump(self, horizon: float) -> None:
        """Nothing moves: constant power until the horizon, a battery crossing, or MAX_JUMP_S."""
        battery = self.battery
        p_dc = self._p_dc()
        dt = min(horizon - self._now, self.MAX_JUMP_S)
        land: float | None = None
        energy = battery.energy_wh
        if p_dc < 0.0:
            floor = battery.reserve_wh if energy > battery.reserve_wh else 0.0
            t_hit = (energy - floor) * 3600.0 / -p_dc
            if t_hit <= dt:
                dt, land = t_hit, floor
        elif p_dc > 0.0:
            t_hit = (battery.capacity_wh - energy) * 3600.0 / p_dc
            if t_hit <= dt:
                dt, land = t_hit, battery.capacity_wh
        dt = self._advance_clock(horizon, dt)
        if land is not None:
            before = battery.energy_wh
            battery.energy_wh = land
            self._after_store(before)
        else:
            self._store(p_dc, dt)
        if self._connected or self.evse.state is not SiteState.FORMING:
            # Only the battery moved: the AC side solves to what it was (a formed island's
            # voltage alone depends on the battery's power window).
            self._solve_dc()
        else:
            self._solve()
        self._watch()

    def _store(self, p_dc: float, dt: float) -> None:
        before = self.battery.energy_wh
        self.battery.store(p_dc, dt)
        self._after_store(before)

    def _after_store(self, before_wh: float) -> None:
        battery = self.battery
        reserve = battery.reserve_wh
        if before_wh > reserve >= battery.energy_wh:
            if self.firmware.respects_reserve and self._announced is None:
                # The EV offers nothing below its reserve and the EVSE honours its limits at once.
                battery.energy_wh = reserve
            self._events.emit(
                self._now,
                "reserve_reached",
                {
                    "soc": battery.soc,
                    "energy_wh": battery.energy_wh,
                    "reserve_soc": battery.reserve_soc,
                },
            )

    # --- island frequency ------------------------------------------------------------------------
    def _island_moving(self) -> bool:
        """True while an energized island's frequency is still on its way."""
        if self._bus_v <= 0.0 or self._connected or self.evse.state not in _ISLAND_STATES:
            return False
        home = self.home
        if home.reactive_free():
            return False
        f = self._island_f
        resonance = home.resonance_hz()
        if resonance is not None and abs(f - resonance) < self.SETTLE_HZ:
            return False
        rate = frequency_rate(f, self._q_home, self._p_home)
        low, high = FREQUENCY_LIMITS_PU
        if (rate > 0.0 and f >= high * self._f_nom) or (rate < 0.0 and f <= low * self._f_nom):
            return False
        return rate != 0.0

    def _integrate_island_frequency(self, dt: float) -> None:
        f = self._island_f
        f += frequency_rate(f, self._q_home, self._p_home) * dt
        resonance = self.home.resonance_hz()
        if resonance is not None and abs(f - resonance) < self.SETTLE_HZ:
            f = resonance
        low, high = FREQUENCY_LIMITS_PU
        self._island_f = min(max(f, low * self._f_nom), high * self._f_nom)

    # --- the electrical solve ------------------------------------------------------------------
    def _dc_window(self) -> tuple[float, float]:
        """AC-side power window (low <= 0 <= high) that the battery, the EV and the DC source allow.

        Under protocol "none" the EVSE reads the EV's BMS limits directly (the reserve among them).
        Once the EV announces its limits over ISO 15118-20, the EVSE knows only those: it honours
        the announced powers and stops discharging when the EV says its V2X window is used up, as
        far as its firmware does; the battery's hardware limits (empty, full) bind regardless."""
        battery, fw = self.battery, self.firmware
        sink, source = self.dc_source.window(battery)
        announced = self._announced
        if announced is None:
            charge = battery.max_charge_power_w()
            offer = battery.max_discharge_power_w(respect_reserve=fw.respects_reserve)
        else:
            charge = battery.max_charge_power_w()
            offer = battery.max_discharge_power_w(respect_reserve=False)
            if fw.respects_ev_limits:
                charge = min(charge, announced.max_charge_w)
                offer = min(offer, announced.max_discharge_w)
            if fw.respects_reserve and announced.v2x_window_used_up:
                offer = 0.0
        conv = self._conv
        return -conv.ac_export_for(min(offer, source)), conv.ac_import_for(min(charge, sink))

    def _stage_window(self) -> tuple[float, float]:
        """The window the grid-following stage may move in now; (0, 0) when it may not energize."""
        evse = self.evse
        if not evse.following:
            return 0.0, 0.0
        if not self._connected and evse.stage.output_w >= 0.0:
            return 0.0, 0.0  # a dead island: nothing to synchronize to
        return self._dc_window()

    def _target(self, low: float, high: float) -> float:
        evse = self.evse
        command = evse.manager.target_w(self._p_home)
        if self.firmware.flips_discharge and command < 0.0:
            command = -command
        cfg = evse.config
        if command != 0.0:
            # The unit's own tracking error (its meter and controller; drawn by the seed).
            command = command * (1.0 + cfg.power_gain) + math.copysign(cfg.power_offset_w, command)
        command = min(max(command, -cfg.max_discharge_w), cfg.max_charge_w)
        target = min(max(command, low), high)
        evse.target_w = target
        return target

    def _solve(self) -> None:
        """Bus voltage and frequency, and every point's power, from the present state."""
        evse, home, grid = self.evse, self.home, self.grid
        self._connected = grid.output_on and self.transfer_switch.closed
        state = evse.state
        standby = self.config.evse.standby_w
        aux, aux_from_dc, overloaded = 0.0, False, False
        if self._connected:
            v, f = grid.voltage_v, grid.frequency_hz
            p_home, q_home = home.power(v, f, stiff=True)
            p_evse = evse.stage.output_w if evse.following and v > 0.0 else 0.0
            q_evse = 0.0
            aux = standby if v > 0.0 else 0.0
            grid_p, grid_q = p_home + p_evse + aux, q_home + q_evse
        else:
            if state is SiteState.FORMING and evse.enabled:
                low, _ = self._dc_window()
                capacity = max(-low - standby, 0.0)
                p_nominal, q_nominal = home.power(self._v_nom, self._f_nom, stiff=False)
                v = self._v_nom
                if p_nominal > capacity:  # beyond the battery's power: the voltage sags
                    v = self._v_nom * math.sqrt(capacity / p_nominal)
                # Beyond the inverter's current limit it holds the limit and the voltage sags
                # with it (an island's load acts as an impedance); held too long, it trips.
                i_nominal = math.hypot(p_nominal, q_nominal) / self._v_nom
                if i_nominal > self._current_limit_total_a:
                    v = min(v, self._v_nom * self._current_limit_total_a / i_nominal)
                overloaded = v < self._v_nom * (1.0 - 1e-9)
                f = self._f_nom if v > 0.0 else 0.0
                p_home, q_home = home.power(v, f, stiff=False)
                p_evse, q_evse = -p_home, -q_home
                aux_from_dc = v > 0.0 and standby > 0.0
                evse.stage.reset(p_evse)
            elif state in _ISLAND_STATES and evse.enabled and evse.stage.output_w < 0.0:
                v = island_voltage(
                    -evse.stage.output_w,
                    home.conductance_s(),
                    self._current_limit_total_a,
                    VOLTAGE_CEILING_PU * self._v_nom,
                )
                f = self._island_f if v > 0.0 else 0.0
                p_home, q_home = home.power(v, f, stiff=False)
                # The inverter pushes exactly what the island absorbs.
                p_evse, q_evse = -p_home, -q_home
            else:
                v = f = p_home = q_home = p_evse = q_evse = 0.0
            grid_p = grid_q = 0.0
        self._bus_v, self._bus_f = v, f
        self._p_home, self._q_home = p_home, q_home
        evse.p_w, evse.q_var = p_evse, q_evse
        self._aux_w, self._aux_from_dc = aux, aux_from_dc
        evse.forming_overload(overloaded)
        if grid.output_on:
            self._grid_v, self._grid_f = grid.voltage_v, grid.frequency_hz
        elif self.transfer_switch.closed:
            self._grid_v, self._grid_f = v, f  # the island shows through to the open grid relay
        else:
            self._grid_v = self._grid_f = 0.0
        self._grid_p, self._grid_q = grid_p, grid_q
        dc_on = self.dc_source.output_on
        held = self.dc_source.holds_voltage and dc_on
        self.battery.held_v = self.dc_source.voltage_v if held else None
        self.battery.set_power(self._p_dc() if dc_on else 0.0)
        if self._history is not None:
            self._history.record(self._now, self._history_row())

    def _solve_dc(self) -> None:
        """The DC side of _solve alone, after a jump that changed nothing but the battery."""
        self.battery.set_power(self._p_dc() if self.dc_source.output_on else 0.0)
        if self._history is not None:
            self._history.record(self._now, self._history_row())

    def _watch(self) -> None:
        """Feed the passive protection the bus as the EVSE sees it."""
        evse = self.evse
        if evse.watching:
            v_pu = self._bus_v / self._v_nom
            df = self._bus_f - self._f_nom if self._bus_v > 0.0 else None
            evse.protection.update(self._now, v_pu, df)
        elif evse.protection.pending:
            evse.protection.reset()

    def _grid_changed(self) -> None:
        grid, cfg = self.grid, self.config.evse
        v_low, v_high = cfg.enter_service_v_pu
        f_low, f_high = cfg.enter_service_df_hz
        in_range = v_low <= grid.v_pu <= v_high and f_low <= grid.df_hz <= f_high
        if grid.output_on and self.evse.state is SiteState.CONNECTED:
            self._island_f = grid.frequency_hz
        self.evse.grid_changed(grid.output_on, in_range)
        self._solve()

    # --- AC grid simulator ----------------------------------------------------------------------
    def set_grid(
        self, *, voltage_v: float | None = None, frequency_hz: float | None = None
    ) -> None:
        self.grid.set(voltage_v=voltage_v, frequency_hz=frequency_hz)
        self._grid_changed()

    def set_grid_output(self, on: bool) -> None:
        """Off opens the grid simulator's output relay: the grid is gone."""
        if on == self.grid.output_on:
            return
        if not on:
            self._island_f = self.grid.frequency_hz
        self.grid.output_on = on
        self._grid_changed()

    @property
    def grid_output(self) -> bool:
        return self.grid.output_on

    @property
    def grid_voltage_setpoint(self) -> float:
        return self.grid.voltage_v

    @property
    def grid_frequency_setpoint(self) -> float:
        return self.grid.frequency_hz

    # --- home load ------------------------------------------------------------------------------
    def set_home_load(self, p_w: float, q_var: float = 0.0) -> None:
        """Constant-power mode (positive = consumed)."""
        self.home.set_constant_power(p_w, q_var)
        self._solve()

    def set_home_rlc(
        self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None
    ) -> None:
        """Parallel RLC mode (per phase), as for IEEE 1547.1 5.10 / IEC 62116 islanding tests."""
        self.home.set_rlc(RlcLoad(r_ohm, l_h, c_f))
        self._solve()

    def set_home_load_on(self, on: bool) -> None:
        self.home.on = on
        self._solve()

    @property
    def home_load_on(self) -> bool:
        return self.home.on

    # --- DC source (battery emulator) -----------------------------------------------------------
    def set_dc_output(self, on: bool) -> None:
        """Off: the DC bus is dead and the EVSE can move no power."""
        self.dc_source.output_on = on
        self._solve()

    def set_dc_limits(
        self,
        *,
        voltage_v: float | None = None,
        source_current_a: float | None = None,
        sink_current_a: float | None = None,
        source_power_w: float | None = None,
        sink_power_w: float | None = None,
    ) -> None:
        """Source = the emulator delivers (EV discharging), sink = it absorbs (EV charging);
        magnitudes. The voltage is the charge-voltage ceiling (see dc_source.py)."""
        self.dc_source.set_limits(
            voltage_v=voltage_v,
            source_current_a=source_current_a,
            sink_current_a=sink_current_a,
            source_power_w=source_power_w,
            sink_power_w=sink_power_w,
        )
        self._solve()  # a CV target moves the terminals at once

    @property
    def dc_output(self) -> bool:
        return self.dc_source.output_on

    # --- measurement points ---------------------------------------------------------------------
    def measure_ac(self, point: str) -> AcMeasurement:
        """ "grid" (+ = import), "evse_ac" (+ = into the EVSE, charging), "home" (+ = consumed)."""
        if point == "grid":
            v, f, p, q = self._grid_v, self._grid_f, self._grid_p, self._grid_q
        elif point == "evse_ac":
            v, f, p, q = self._bus_v, self._bus_f, self.evse.p_w + self._aux_w, self.evse.q_var
        elif point == "home":
            v, f, p, q = self._bus_v, self._bus_f, self._p_home, self._q_home
        else:
            raise ValueError(
                f"unknown AC measurement point {point!r}; known: {', '.join(AC_POINTS)}"
            )
        return self._noise.ac(v, p, q, f, self._phases)

    def measure_dc(self, point: str = "evse_dc") -> DcMeasurement:
        """The EVSE's DC output, i.e. the battery terminals (+ = into the EV battery)."""
        if point not in DC_POINTS:
            raise ValueError(
                f"unknown DC measurement point {point!r}; known: {', '.join(DC_POINTS)}"
            )
        if not self.dc_source.output_on:
            return self._noise.dc(0.0, 0.0)
        battery = self.battery
        return self._noise.dc(battery.terminal_v, battery.current_a)

    @property
    def bus_voltage_v(self) -> float:
        """The home bus voltage (phase to neutral), exact."""
        return self._bus_v

    @property
    def bus_frequency_hz(self) -> float:
        """The home bus frequency, exact (0.0 on a dead bus)."""
        return self._bus_f

    @property
    def transfer_switch_closed(self) -> bool:
        return self.transfer_switch.closed

    # --- instruments' hooks (used by instruments.emulated) -----------------------------------------
    def record_history(self, span_s: float) -> StateHistory:
        """Keep the solved state of (at least) the last span_s seconds from now on, for meters that
        average over an update window and scopes that capture waveforms; returns the recorder."""
        if self._history is None:
            self._history = StateHistory(span_s, phases=self._phases)
            self._history.record(self._now, self._history_row())
        else:
            self._history.extend_span(span_s)
        return self._history

    @property
    def history(self) -> StateHistory | None:
        return self._history

    def _history_row(self) -> tuple[float, ...]:
        """The solved state in rig.sim.history.INPUTS order."""
        dc_v = dc_i = 0.0
        if self.dc_source.output_on:
            battery = self.battery
            dc_i = battery.current_a
            dc_v = battery.terminal_v
        home = self.home
        tau = 0.0
        if home.on and home.mode is HomeLoadMode.RLC and home.rlc is not None and home.rlc.c_f:
            tau = 2.0 * home.rlc.r_ohm * home.rlc.c_f  # a parallel RLC rings down with 2RC
        return (
            self._bus_v,
            self._bus_f,
            self._grid_v,
            self._grid_f,
            self._grid_p,
            self._grid_q,
            self._p_home,
            self._q_home,
            self.evse.p_w + self._aux_w,
            self.evse.q_var,
            dc_v,
            dc_i,
            1.0 if self.grid.output_on else 0.0,
            1.0 if self._connected else 0.0,
            tau,
        )

    def set_transfer_switch(self, closed: bool) -> None:
        """A lab's switch unit operates the site's transfer switch, over the EVSE's own control."""
        if closed:
            self.transfer_switch.close()
        else:
            self.transfer_switch.open()
        self._solve()

    def spawn_rng(self, key: str) -> np.random.Generator:
        """A generator for one instrument's own noise, from the world's seed and `key`: the same
        seed and key give the same numbers, another seed others."""
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.default_rng(np.random.SeedSequence([self._seed, digest]))

    # --- the EVSE's session hooks (used by rig.emulators) -----------------------------------------
    def enable_power_stage(self, on: bool) -> None:
        self.evse.enable(on)
        self._solve()

    def command_setpoint(self, p_w: float) -> None:
        """Commanded AC power, rig sign (+ charge, - discharge); leaves follow-home mode."""
        self.evse.manager.command_setpoint(p_w)

    def command_follow_home(self, on: bool = True, *, allow_charge: bool = False) -> None:
        """V2H: hold the grid import at zero by discharging what the home draws."""
        self.evse.manager.command_follow_home(on, allow_charge=allow_charge)

    def announce_ev_limits(self, announcement: EvAnnouncement | None) -> None:
        """The EV's latest limits as its ISO 15118-20 session carries them to the EVSE (see
        _dc_window); None goes back to protocol "none" (the BMS read directly)."""
        if announcement == self._announced:
            return  # the same limits every ChargeLoop: nothing for the bus to re-solve
        self._announced = announcement
        self._solve()

    @property
    def evse_ac_power_w(self) -> float:
        """The EVSE's AC power now (rig sign), as the EV side reads it."""
        return self.evse.p_w

    @property
    def evse_efficiency(self) -> float:
        return self.config.evse.efficiency

    @property
    def ev_announcement(self) -> EvAnnouncement | None:
        return self._announced

    def call_at(self, t: float, callback: Callable[[], None]) -> Timer:
        """Run callback when simulated time reaches t (at once on the next advance if t <= now)."""
        return self._scheduler.call_at(t, callback)

    def emit(self, name: str, data: Mapping[str, object] | None = None) -> SessionEvent:
        """Record a DUT claim at the present time."""
        return self._events.emit(self._now, name, data)

    def subscribe(self, listener: Listener) -> None:
        """listener(event) runs for every event as it is emitted."""
        self._events.subscribe(listener)

    def drain_events(self) -> list[SessionEvent]:
        """Everything that happened since the last drain."""
        return self._events.drain()

    @property
    def defects(self) -> tuple[str, ...]:
        return self.firmware.defects
