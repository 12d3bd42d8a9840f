"""The emulated bidirectional EVSE: power stage, energy manager and its anti-islanding behaviour.

The world does the electrical solve; this class is the EVSE's controller: whether it may energize
the bus, how it reacts when the grid goes away (IEEE 1547-2018 8.1 unintentional islanding: detect,
cease to energize; or, in V2H backup, open the transfer switch and form the island itself) and when
it comes back (enter-service delay, IEEE 1547-2018 4.10). Its defects come in as a Firmware.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np

from rig.sim.config import EVSEConfig, GeneratorMode, GridConfig, IslandingMethod
from rig.sim.defects import Firmware
from rig.sim.energy_manager import EnergyManager
from rig.sim.events import EventLog
from rig.sim.power_stage import PowerStage
from rig.sim.protection import PassiveProtection, TripSetting
from rig.sim.scheduler import Scheduler, Timer
from rig.sim.transfer_switch import TransferSwitch


class SiteState(StrEnum):
    """Where the EVSE stands towards the grid."""

    CONNECTED = "connected"  # on a live grid
    ISLANDED = "islanded"  # grid gone, island not detected yet: still energizing as grid-following
    CEASING = "ceasing"  # detected: the output falls to zero within one cycle
    CEASED = "ceased"  # not energizing; waits for the grid to be back in range
    TRANSFERRING = (
        "transferring"  # grid-forming: transfer switch open, island formed after transfer_s
    )
    FORMING = "forming"  # grid-forming: carries the home on its own island


#: States in which the power stage follows its target as a grid-following inverter.
FOLLOWING_STATES = frozenset({SiteState.CONNECTED, SiteState.ISLANDED, SiteState.CEASING})


class EVSE:
    """The DUT of the emulated bench. p_w is its actual AC power (rig sign, + charging the EV),
    target_w what its stage aims at after limits, enabled whether the session lets it move power."""

    def __init__(
        self,
        config: EVSEConfig,
        firmware: Firmware,
        grid: GridConfig,
        *,
        scheduler: Scheduler,
        events: EventLog,
        rng: np.random.Generator,
        transfer_switch: TransferSwitch,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.firmware = firmware
        self.generator_mode = config.mode
        self.islanding_method = config.method
        self.stage = PowerStage(
            ramp_w_per_s=config.ramp_w_per_s * firmware.ramp_factor,
            lag_s=config.lag_s,
            damping_ratio=firmware.damping_ratio,
        )
        self.manager = EnergyManager()
        self.protection = PassiveProtection(
            config.trip_settings, min_clearing_s=firmware.island_detection_s or 0.0
        )
        self.enabled = False
        #: The unit's anti-islanding function (its active method) as set on the unit: IEEE
        #: 1547.1 5.10 switches it off to confirm that the balanced island persists. Passive
        #: voltage and frequency trips stay on (they are the unit's protection settings).
        self.anti_islanding = True
        self.state = SiteState.CONNECTED
        self.p_w = 0.0
        self.q_var = 0.0
        self.target_w = 0.0
        self.island_since: float | None = None
        self._cycle_s = 1.0 / grid.frequency_nominal_hz
        self._scheduler = scheduler
        self._events = events
        self._rng = rng
        self._switch = transfer_switch
        self._clock = clock
        self._grid_present = True
        self._grid_in_range = True
        self._detect_timer: Timer | None = None
        self._state_timer: Timer | None = None
        self._reconnect_timer: Timer | None = None
        self._overload_timer: Timer | None = None

    # --- what the world asks ---------------------------------------------------------------------
    @property
    def energized(self) -> bool:
        """True while the EVSE may drive current into the AC bus."""
        return self.enabled and self.state in (
            SiteState.CONNECTED,
            SiteState.ISLANDED,
            SiteState.CEASING,
            SiteState.FORMING,
        )

    @property
    def islanded(self) -> bool:
        """True while the home bus is cut from a live grid."""
        return not self._grid_present or self.state in (SiteState.TRANSFERRING, SiteState.FORMING)

    @property
    def following(self) -> bool:
        """True while the power stage tracks its target as a grid-following inverter."""
        return self.enabled and self.state in FOLLOWING_STATES

    @property
    def watching(self) -> bool:
        """True while the passive protection watches the bus."""
        return (
            self.enabled
            and self.firmware.detects_islands
            and self.state in (SiteState.CONNECTED, SiteState.ISLANDED)
        )

    @property
    def island_detection_s(self) -> float:
        """The active method's detection time for this firmware (before jitter)."""
        forced = self.firmware.island_detection_s
        return forced if forced is not None else self.config.island_detection_s

    @property
    def transfer_s(self) -> float:
        return self.config.transfer_s * self.firmware.transfer_factor

    # --- commands ------------------------------------------------------------------------------
    def enable(self, on: bool) -> None:
        """The session enables the power stage at the start of the charge loop, disables it at the
        end; disabled, the stage holds zero."""
        self.enabled = on
        if not on:
            self.stage.reset(0.0)
            self.protection.reset()

    def grid_changed(self, present: bool, in_range: bool) -> None:
        """The grid simulator's output or setpoint changed (the EVSE senses the grid side)."""
        now = self._clock()
        was_present, self._grid_present, self._grid_in_range = self._grid_present, present, in_range
        if not present and was_present and self.state is SiteState.CONNECTED:
            self.state = SiteState.ISLANDED
            self.island_since = now
            if (
                self.enabled
                and self.anti_islanding
                and self.firmware.detects_islands
                and self.islanding_method is IslandingMethod.ACTIVE
            ):
                jitter = float(self._rng.uniform(0.0, self.config.island_detection_jitter_s))
                due = now + self.island_detection_s + jitter
                self._detect_timer = self._scheduler.call_at(due, self._active_detection)
        elif present and self.state is SiteState.ISLANDED:
            # The grid came back before the island was detected: the unit rides through.
            self.state = SiteState.CONNECTED
            self.island_since = None
            self._cancel_detection()
        self._update_reconnect()

    def forming_overload(self, overloaded: bool) -> None:
        """The island it forms asks more than its current limit or its battery allow (the voltage
        sags): held for `overload_trip_s`, the inverter trips and ceases to energize."""
        if overloaded and self.state is SiteState.FORMING and self.enabled:
            if self._overload_timer is None:
                due = self._clock() + self.config.overload_trip_s
                self._overload_timer = self._scheduler.call_at(due, self._overload_trip)
        elif self._overload_timer is not None:
            self._overload_timer.cancel()
            self._overload_timer = None

    def _overload_trip(self) -> None:
        self._overload_timer = None
        if self.state is not SiteState.FORMING:
            return
        self.state = SiteState.CEASED
        self.stage.reset(0.0)
        self._events.emit(self._clock(), "overload_trip", {"after_s": self.config.overload_trip_s})
        self._update_reconnect()

    def trip(self, setting: TripSetting) -> None:
        """The passive protection's setting outlasted its clearing time."""
        self.protection.reset()
        self._detected("passive", setting.name)

    # --- the anti-islanding sequence -------------------------------------------------------------
    def _active_detection(self) -> None:
        self._detect_timer = None
        self._detected("active", None)

    def _cancel_detection(self) -> None:
        if self._detect_timer is not None:
            self._detect_timer.cancel()
            self._detect_timer = None

    def _detected(self, method: str, trip: str | None) -> None:
        if self.state not in (SiteState.CONNECTED, SiteState.ISLANDED):
            return
        now = self._clock()
        self._cancel_detection()
        self.protection.reset()
        if self._grid_present:
            self._events.emit(now, "trip", {"trip": trip, "method": method})
        else:
            since = self.island_since if self.island_since is not None else now
            self._events.emit(
                now, "island_detected", {"method": method, "trip": trip, "after_s": now - since}
            )
        if self.generator_mode is GeneratorMode.GRID_FORMING and not self._grid_present:
            # V2H backup: separate the home from the grid before forming its voltage.
            self.state = SiteState.TRANSFERRING
            self.stage.reset(0.0)
            self._switch.open()
            self._events.emit(now, "transfer_open", {})
            self._state_timer = self._scheduler.call_at(now + self.transfer_s, self._form)
        else:
            # IEEE 1547-2018 8.1: cease to energize; the current is gone within one cycle.
            self.state = SiteState.CEASING
            self._state_timer = self._scheduler.call_at(now + self._cycle_s, self._cease)

    def _cease(self) -> None:
        self._state_timer = None
        self.state = SiteState.CEASED
        self.stage.reset(0.0)
        self._events.emit(self._clock(), "ceased_to_energize", {})
        self._update_reconnect()

    def _form(self) -> None:
        self._state_timer = None
        self.state = SiteState.FORMING
        self._events.emit(self._clock(), "grid_forming", {})
        self._update_reconnect()

    def _update_reconnect(self) -> None:
        waiting = self.state in (SiteState.CEASED, SiteState.TRANSFERRING, SiteState.FORMING)
        if waiting and self._grid_present and self._grid_in_range:
            if self._reconnect_timer is None:
                due = self._clock() + self.config.reconnect_delay_s
                self._reconnect_timer = self._scheduler.call_at(due, self._reconnect)
        elif self._reconnect_timer is not None:
            self._reconnect_timer.cancel()
            self._reconnect_timer = None

    def _reconnect(self) -> None:
        """Enter service again: resynchronize, close the transfer switch, resume the previous mode."""
        self._reconnect_timer = None
        if self._state_timer is not None:
            self._state_timer.cancel()
            self._state_timer = None
        carried = self.p_w if self.state is SiteState.FORMING else 0.0
        self.state = SiteState.CONNECTED
        self.island_since = None
        self._switch.close()
        self.stage.reset(carried)
        self._events.emit(self._clock(), "reconnected", {})
