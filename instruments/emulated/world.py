"""The part of the rig.sim World API the twins use, as a Protocol (the shared contract).

Twins receive a `rig.sim.World` at run time; typing them against this Protocol keeps the
emulated instruments decoupled from the simulator's internals and lets tests hand in a double.
Meters read the World's state history (rig.sim.history) rather than instant measurements, so
that a reading is an average over an update window as on the real instrument.
Signs: power and current positive into the EV; "grid" positive on import, "home" positive
when consumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from rig.sim.history import StateHistory


class TimerLike(Protocol):
    def cancel(self) -> None: ...


class WorldLike(Protocol):
    """The World methods and properties the twins call."""

    def advance_to(self, t: float) -> None: ...

    @property
    def now(self) -> float: ...

    def call_at(self, t: float, callback: Callable[[], None]) -> TimerLike: ...

    def record_history(self, span_s: float) -> StateHistory: ...

    def spawn_rng(self, key: str) -> np.random.Generator: ...

    def set_transfer_switch(self, closed: bool) -> None: ...

    @property
    def transfer_switch_closed(self) -> bool: ...

    @property
    def home_load_on(self) -> bool: ...

    def set_grid(
        self, *, voltage_v: float | None = None, frequency_hz: float | None = None
    ) -> None: ...

    def set_grid_output(self, on: bool) -> None: ...

    @property
    def grid_output(self) -> bool: ...

    @property
    def grid_voltage_setpoint(self) -> float: ...

    @property
    def grid_frequency_setpoint(self) -> float: ...

    def set_home_load(self, p_w: float, q_var: float = 0.0) -> None: ...

    def set_home_rlc(
        self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None
    ) -> None: ...

    def set_home_load_on(self, on: bool) -> None: ...

    def set_dc_output(self, on: bool) -> None: ...

    def set_dc_limits(
        self,
        *,
        voltage_v: float | None = None,
        source_current_a: float | None = None,
        sink_current_a: float | None = None,
        source_power_w: float | None = None,
        sink_power_w: float | None = None,
    ) -> None: ...

    @property
    def dc_output(self) -> bool: ...

    # --- the emulated EVSE's energy manager (its control interface, not an instrument) ----------

    def command_setpoint(self, p_w: float) -> None: ...

    def command_follow_home(self, on: bool = True, *, allow_charge: bool = False) -> None: ...

    def enable_power_stage(self, on: bool) -> None: ...

    @property
    def evse_efficiency(self) -> float: ...
