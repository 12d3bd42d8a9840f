"""Sampling helpers shared by the rig.sim tests (imported as a plain module, not a fixture)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rig.sim import World, balanced_rlc

#: The make_world fixture's type (tests/sim/conftest.py).
MakeWorld = Callable[..., World]


def sample(world: World, until: float, dt: float = 1e-3) -> list[tuple[float, float]]:
    """(t, EVSE AC power) every dt from now until `until`."""
    out = [(world.now, world.evse.p_w)]
    n = round((until - world.now) / dt)
    start = world.now
    for k in range(1, n + 1):
        world.advance_to(start + k * dt)
        out.append((world.now, world.evse.p_w))
    return out


def response_time_90(trace: list[tuple[float, float]], y0: float, y1: float) -> float:
    """Time from the trace's start until the response first reaches 90 % of the step y0 -> y1
    (IEEE 1547.1 open-loop response time)."""
    threshold = y0 + 0.9 * (y1 - y0)
    rising = y1 > y0
    t0 = trace[0][0]
    for t, y in trace:
        if (y >= threshold) if rising else (y <= threshold):
            return t - t0
    raise AssertionError("the response never reached 90 % of the step")


V_NOM = 230.0
RATED_A = 11_000.0 / V_NOM  # the default EVSE's rated current


def balanced_island(
    make_world: MakeWorld,
    *,
    p_w: float = 3000.0,
    evse_p_w: float | None = None,
    c_scale: float = 1.0,
    quality_factor: float = 1.0,
    **evse: Any,
) -> World:
    """The 1547.1 5.10 set-up: EVSE discharging p_w into a parallel RLC load balanced to it."""
    defects = evse.pop("defects", ())
    world = make_world(evse=evse, defects=defects)
    rlc = balanced_rlc(p_w, V_NOM, 50.0, quality_factor)
    world.set_home_rlc(r_ohm=rlc.r_ohm, l_h=rlc.l_h, c_f=(rlc.c_f or 0.0) * c_scale)
    world.command_setpoint(-(evse_p_w if evse_p_w is not None else p_w))
    world.advance_to(5.0)
    return world


def clearing_time(world: World, seconds: float, dt: float = 1e-3) -> float | None:
    """Drop the grid now; the time until the EVSE's voltage and current stay below 0.05 p.u.
    (None if they never do within `seconds`)."""
    t_loss = world.now
    world.set_grid_output(False)
    last_energized: float | None = t_loss
    for k in range(1, round(seconds / dt) + 1):
        world.advance_to(t_loss + k * dt)
        m = world.measure_ac("evse_ac")
        if m.v_rms >= 0.05 * V_NOM or m.i_rms >= 0.05 * RATED_A:
            last_energized = world.now
    if last_energized is not None and last_energized >= t_loss + seconds - dt / 2:
        return None
    assert last_energized is not None
    return last_energized + dt - t_loss
