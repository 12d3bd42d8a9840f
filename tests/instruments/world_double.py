"""A small deterministic stand-in for rig.sim's World, for the instrument tests.

`FakeWorld` follows the World API contract (signs, points, setters, state history, timers) with
the simplest physics that makes the twins' forwarding and measuring checkable: an ideal grid
source, a home load, an EVSE drawing `evse_p_w` (rig sign) while the DC bus is live, a battery
at a fixed voltage. Tests may change its attributes directly; the change is recorded in the
history at the next `advance_to` (every twin message starts with one), so a meter sees it from
that time on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rig.sim.history import StateHistory


@dataclass(frozen=True)
class AcPoint:
    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float


@dataclass(frozen=True)
class DcPoint:
    v: float
    i: float
    p_w: float


def ac_point(v: float, p: float, q: float, f: float) -> AcPoint:
    s = math.hypot(p, q)
    return AcPoint(
        v_rms=v,
        i_rms=s / v if v > 0 else 0.0,
        p_w=p,
        q_var=q,
        s_va=s,
        pf=p / s if s > 0 else 1.0,
        f_hz=f if v > 0 else 0.0,
    )


class FakeTimer:
    def __init__(self, t: float, callback: Callable[[], None]) -> None:
        self.t = t
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(eq=False)
class FakeWorld:
    """Deterministic physics double of rig.sim.World for instrument tests."""

    now: float = 0.0
    grid_output: bool = True
    grid_voltage_setpoint: float = 230.0
    grid_frequency_setpoint: float = 50.0
    home_p_w: float = 0.0
    home_q_var: float = 0.0
    home_rlc: tuple[float, float | None, float | None] | None = None
    home_on: bool = False
    dc_output: bool = False
    dc_limits: dict[str, float] = field(default_factory=dict)
    battery_v: float = 400.0
    evse_p_w: float = 0.0
    transfer_switch_closed: bool = True
    seed: int = 0
    advanced: list[float] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    timers: list[FakeTimer] = field(default_factory=list)
    history: StateHistory | None = None

    def advance_to(self, t: float) -> None:
        self.advanced.append(t)
        while True:
            due = [timer for timer in self.timers if not timer.cancelled and timer.t <= t]
            if not due:
                break
            timer = min(due, key=lambda x: x.t)
            self.timers.remove(timer)
            self.now = max(self.now, timer.t)
            timer.callback()
            self._record()
        self.now = max(self.now, t)
        self._record()

    def call_at(self, t: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(t, callback)
        self.timers.append(timer)
        return timer

    def record_history(self, span_s: float) -> StateHistory:
        if self.history is None:
            self.history = StateHistory(span_s)
            self._record()
        else:
            self.history.extend_span(span_s)
        return self.history

    def spawn_rng(self, key: str) -> np.random.Generator:
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.default_rng([self.seed, digest])

    @property
    def home_load_on(self) -> bool:
        return self.home_on

    def _record(self) -> None:
        if self.history is None:
            return
        v, f = self._v, (self.grid_frequency_setpoint if self._v > 0 else 0.0)
        home_p, home_q = self._home()
        evse = self._evse()
        dc_v = self.battery_v if self.dc_output else 0.0
        dc_i = evse / self.battery_v if self.dc_output else 0.0
        on = 1.0 if self.grid_output else 0.0
        self.history.record(
            self.now,
            (v, f, v, f, home_p + evse, home_q, home_p, home_q, evse, 0.0, dc_v, dc_i, on, on, 0.0),
        )

    # --- setters --------------------------------------------------------------------------------

    def set_grid(
        self, *, voltage_v: float | None = None, frequency_hz: float | None = None
    ) -> None:
        self.calls.append(f"set_grid({voltage_v}, {frequency_hz})")
        if voltage_v is not None:
            self.grid_voltage_setpoint = voltage_v
        if frequency_hz is not None:
            self.grid_frequency_setpoint = frequency_hz
        self._record()

    def set_grid_output(self, on: bool) -> None:
        self.calls.append(f"set_grid_output({on})")
        self.grid_output = on
        self._record()

    def set_transfer_switch(self, closed: bool) -> None:
        self.calls.append(f"set_transfer_switch({closed})")
        self.transfer_switch_closed = closed
        self._record()

    def set_home_load(self, p_w: float, q_var: float = 0.0) -> None:
        self.calls.append(f"set_home_load({p_w:.6g}, {q_var:.6g})")
        self.home_p_w, self.home_q_var, self.home_rlc = p_w, q_var, None
        self._record()

    def set_home_rlc(
        self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None
    ) -> None:
        self.calls.append(f"set_home_rlc({r_ohm:.6g}, {l_h}, {c_f})")
        self.home_rlc = (r_ohm, l_h, c_f)
        self._record()

    def set_home_load_on(self, on: bool) -> None:
        self.calls.append(f"set_home_load_on({on})")
        self.home_on = on
        self._record()

    def set_dc_output(self, on: bool) -> None:
        self.calls.append(f"set_dc_output({on})")
        self.dc_output = on
        self._record()

    def set_dc_limits(self, **limits: float | None) -> None:
        self.calls.append(
            "set_dc_limits("
            + ", ".join(f"{k}={v:g}" for k, v in limits.items() if v is not None)
            + ")"
        )
        self.dc_limits.update({k: v for k, v in limits.items() if v is not None})

    # --- physics ---------------------------------------------------------------------------

    @property
    def _v(self) -> float:
        return self.grid_voltage_setpoint if self.grid_output else 0.0

    def _home(self) -> tuple[float, float]:
        v = self._v
        if not self.home_on or v == 0:
            return 0.0, 0.0
        if self.home_rlc is not None:
            r, l_h, c_f = self.home_rlc
            w = 2 * math.pi * self.grid_frequency_setpoint
            q = (v * v / (w * l_h) if l_h else 0.0) - (v * v * w * c_f if c_f else 0.0)
            return v * v / r, q
        return self.home_p_w, self.home_q_var

    def _evse(self) -> float:
        return self.evse_p_w if self.dc_output and self._v > 0 else 0.0

    def measure_ac(self, point: str) -> AcPoint:
        v, f = self._v, self.grid_frequency_setpoint
        home_p, home_q = self._home()
        if point == "home":
            return ac_point(v, home_p, home_q, f)
        if point == "evse_ac":
            return ac_point(v, self._evse(), 0.0, f)
        if point == "grid":
            return ac_point(v, home_p + self._evse(), home_q, f)
        raise KeyError(point)

    def measure_dc(self, point: str = "evse_dc") -> DcPoint:
        if point != "evse_dc":
            raise KeyError(point)
        if not self.dc_output:
            return DcPoint(0.0, 0.0, 0.0)
        p = self._evse()
        return DcPoint(self.battery_v, p / self.battery_v, p)


class Clock:
    """A hand-driven clock for twins (the rig's VirtualClock does the same job in runs)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)
