"""Protocol "none": the emulated EV and EVSE exchange setpoints through the sim, with no 15118 stack.

Until the ISO 15118-20 engines exist, this session stands in for them: plugging in walks the DC
sequence's phases (setup, cable check, pre-charge; FACTS.md "ISO 15118-20 sequence") over a few
seconds of simulated time and then enables the power stage. Everything happens inside
World.advance_to through timers, so the runner only advances time and drains events. The events
("session_state", "ev_limits") are the DUT's own claims; the checks never rely on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import ClassVar

from rig.sim import SessionEvent, Timer, World
from rig.v2g.vocabulary import ControlMode, Service, SessionPhase

#: Only bidirectional services may discharge (ISO 15118-20 service IDs 5 and 6).
SERVICES = (Service.DC_BPT, Service.AC_BPT)


class DirectSession:
    """A session between the emulated EV and EVSE that lives in the world's simulated time."""

    protocol = "none"

    #: Simulated time spent in each phase before the charge loop (s). DC walks all three; AC has
    #: no cable check or pre-charge in -20.
    PHASE_S: ClassVar[Mapping[SessionPhase, float]] = MappingProxyType(
        {
            SessionPhase.SETUP: 1.0,
            SessionPhase.CABLE_CHECK: 2.0,
            SessionPhase.PRECHARGE: 1.0,
        }
    )
    #: While stopping, how often the session looks whether the power has come down (s), the power
    #: that counts as stopped (W), and how long it waits at most before opening anyway (s).
    STOP_POLL_S = 0.1
    STOPPED_BELOW_W = 1.0
    STOP_TIMEOUT_S = 60.0

    def __init__(
        self,
        world: World,
        *,
        service: Service | str = Service.DC_BPT,
        control_mode: ControlMode | str = ControlMode.DYNAMIC,
    ) -> None:
        if service not in SERVICES:
            names = ", ".join(SERVICES)
            raise ValueError(f"service {service!r} is not bidirectional; use one of {names}")
        if control_mode not in tuple(ControlMode):
            raise ValueError(f"control_mode {control_mode!r}; use one of {', '.join(ControlMode)}")
        self.world = world
        self.service = Service(service)
        self.control_mode = ControlMode(control_mode)
        self._phase = SessionPhase.IDLE
        self._timers: list[Timer] = []
        self._stop_deadline = 0.0
        world.subscribe(self._on_world_event)

    @property
    def phase(self) -> SessionPhase:
        return self._phase

    # --- plug-in and out --------------------------------------------------------------------------
    def start(self) -> None:
        """Plug in: walk the phases before the charge loop, then enable the power stage."""
        if self._phase not in (SessionPhase.IDLE, SessionPhase.STOPPED):
            raise RuntimeError(f"session already running (state {self._phase.value})")
        phases = [SessionPhase.SETUP]
        if self.service.is_dc:
            phases += [SessionPhase.CABLE_CHECK, SessionPhase.PRECHARGE]
        self._enter(phases[0])
        t = self.world.now
        for current, following in zip(phases, [*phases[1:], SessionPhase.CHARGE_LOOP], strict=True):
            t += self.PHASE_S[current]
            self._timers.append(self.world.call_at(t, partial(self._begin_phase, following)))

    def _begin_phase(self, state: SessionPhase) -> None:
        self._enter(state)
        if state is SessionPhase.CHARGE_LOOP:
            self._timers.clear()
            self.world.enable_power_stage(True)
            self.world.emit("ev_limits", self.ev_limits())

    def stop(self) -> None:
        """Ramp to zero, open, and end in "stopped"."""
        if self._phase in (SessionPhase.IDLE, SessionPhase.STOPPED, SessionPhase.STOPPING):
            return
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        was_running = self._phase is SessionPhase.CHARGE_LOOP
        self._enter(SessionPhase.STOPPING)
        if not was_running:
            self._enter(SessionPhase.STOPPED)
            return
        self.world.command_setpoint(0.0)
        self._stop_deadline = self.world.now + self.STOP_TIMEOUT_S
        self._timers.append(self.world.call_at(self.world.now, self._poll_stopped))

    def _poll_stopped(self) -> None:
        world = self.world
        if abs(world.evse.p_w) < self.STOPPED_BELOW_W or world.now >= self._stop_deadline:
            self._timers.clear()
            world.enable_power_stage(False)
            self._enter(SessionPhase.STOPPED)
            return
        self._timers = [world.call_at(world.now + self.STOP_POLL_S, self._poll_stopped)]

    # --- what the EVSE is told ------------------------------------------------------------------
    def set_setpoint(self, p_w: float) -> None:
        """Commanded AC power, rig sign (+ charge, - discharge)."""
        self.world.command_setpoint(p_w)

    def follow_home_load(self, on: bool = True, *, allow_charge: bool = False) -> None:
        """V2H: discharge what the home draws (charge from a surplus only with allow_charge)."""
        self.world.command_follow_home(on, allow_charge=allow_charge)

    def ev_limits(self) -> dict[str, float]:
        """What the EV side announces now. Discharge figures are magnitudes; the reserve appears as
        EVMinimumV2XEnergyRequest (energy to charge until the reserve, negative while above it)."""
        battery = self.world.battery
        cfg = battery.config
        return {
            "max_charge_power_w": battery.max_charge_power_w(),
            "max_discharge_power_w": battery.max_discharge_power_w(respect_reserve=True),
            "max_charge_current_a": cfg.max_charge_a,
            "max_discharge_current_a": cfg.max_discharge_a,
            "present_soc": battery.soc,
            "present_voltage_v": battery.terminal_v,
            "reserve_soc": battery.reserve_soc,
            "reserve_energy_wh": battery.reserve_wh,
            "min_v2x_energy_request_wh": battery.reserve_wh - battery.energy_wh,
            "max_v2x_energy_request_wh": battery.capacity_wh - battery.energy_wh,
        }

    # --- internals ------------------------------------------------------------------------------
    def _enter(self, state: SessionPhase) -> None:
        self._phase = state
        data: dict[str, object] = {"state": state.value}
        if state is SessionPhase.SETUP:
            data.update(
                protocol=self.protocol,
                service=self.service.value,
                control_mode=self.control_mode.value,
            )
        self.world.emit("session_state", data)

    def _on_world_event(self, event: SessionEvent) -> None:
        if event.name == "reserve_reached" and self._phase is SessionPhase.CHARGE_LOOP:
            self.world.emit("ev_limits", self.ev_limits())
