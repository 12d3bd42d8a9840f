"""The part of the rig.sim World API the twins use, as a Protocol (the shared contract).

Twins receive a `rig.sim.World` at run time; typing them against this Protocol keeps the
emulated instruments decoupled from the simulator's internals and lets tests hand in a double.
Signs: power and current positive into the EV; "grid" positive on import, "home" positive
when consumed.
"""

from __future__ import annotations

from typing import Protocol


class AcMeasurementLike(Protocol):
    @property
    def v_rms(self) -> float: ...

    @property
    def i_rms(self) -> float: ...

    @property
    def p_w(self) -> float: ...

    @property
    def q_var(self) -> float: ...

    @property
    def s_va(self) -> float: ...

    @property
    def pf(self) -> float: ...

    @property
    def f_hz(self) -> float: ...


class DcMeasurementLike(Protocol):
    @property
    def v(self) -> float: ...

    @property
    def i(self) -> float: ...

    @property
    def p_w(self) -> float: ...


class WorldLike(Protocol):
    """The World methods and properties the twins call."""

    def advance_to(self, t: float) -> None: ...

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

    def measure_ac(self, point: str) -> AcMeasurementLike: ...

    def measure_dc(self, point: str = "evse_dc") -> DcMeasurementLike: ...
