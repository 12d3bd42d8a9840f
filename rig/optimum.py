"""The cheapest day a V2H energy manager could have had: a linear program over the day's steps.

`tariff_cost` (rig.checks.tariff) judges the DUT's energy cost at the grid point against this
optimum for the same limits. Per time step k of length Δt (the day's resolution) the variables are
the EVSE's AC charge power c_k and discharge power d_k, the grid import g_k and export x_k, the home
load left unserved u_k (only where the grid is out), and the battery energy e_k at each step's edge:

    minimise   Σ_k (π_imp,k g_k − π_exp,k x_k + VOLL u_k) Δt            (cost at the grid point)
    subject to g_k − x_k = (H_k − u_k) + c_k − d_k                      (power balance at the bus)
               e_{k+1} = e_k + (η c_k − d_k / η) Δt                     (battery, one-way efficiency η)
               e_0 = the starting energy; reserve ≤ e_k ≤ capacity
               e_dep ≥ the departure need                                 (at the departure step)
               0 ≤ c_k ≤ P_charge, 0 ≤ d_k ≤ P_discharge (AC side: min of EV and EVSE)
               0 ≤ g_k, x_k ≤ grid limit; g_k = x_k = 0 during an outage; u_k = 0 otherwise

VOLL (the value of lost load) makes an outage's home load a must-serve wherever the battery can:
it is far above any price (rig's own choice: 100 × the highest import price + 10 per kWh). A
tiny cost on c and d keeps the solver from charging and discharging in the same step. Solved with
scipy.optimize.linprog (HiGHS), sparse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.day import DaySpec

#: Cost per kWh moved through the EVSE that breaks ties (rig's own choice; far below any price).
TIE_BREAK = 1e-6


class OptimumError(RuntimeError):
    """The day has no feasible schedule (the departure need cannot be met) or the solver failed."""


@dataclass(frozen=True)
class Limits:
    """What bounds the schedule: the EV and EVSE together (AC side, magnitudes), the grid."""

    capacity_wh: float
    start_wh: float
    reserve_wh: float
    need_wh: float
    departure_s: float
    charge_w: float
    discharge_w: float
    efficiency: float
    grid_w: float = 1e9


@dataclass(frozen=True, eq=False)
class OptimalDay:
    """The optimum's schedule per step (W, rig sign: + into the EV) and its cost."""

    step_s: float
    t: np.ndarray  # each step's start (s)
    ev_w: np.ndarray  # EVSE AC power, + charges the EV
    grid_w: np.ndarray  # grid import (+) / export (-)
    energy_wh: np.ndarray  # battery energy at each step's edge (n + 1)
    unserved_w: np.ndarray
    cost: float  # the day's cost at the grid point, in the tariff's currency
    import_price: np.ndarray
    export_price: np.ndarray


def solve(day: DaySpec, lim: Limits) -> OptimalDay:
    """The optimum for `day` under `lim` (raises OptimumError when there is none)."""
    n = day.steps
    dt = day.resolution_s
    dh = dt / 3600.0
    home = day.net_home_profile()
    imp, exp = day.tariff.sampled(dt, n)
    on = day.grid_mask()
    eta = lim.efficiency
    if not 0 < eta <= 1:
        raise OptimumError(f"efficiency {eta!r} is not within (0, 1]")
    voll = 100.0 * max(float(np.max(imp)), 0.0) + 10.0
    # Variable blocks: c, d, g, x, u (n each), then e (n + 1).
    cols = 5 * n + n + 1
    ic, id_, ig, ix, iu, ie = (k * n for k in range(6))
    cost = np.zeros(cols)
    cost[ig : ig + n] = imp * dh / 1000.0
    cost[ix : ix + n] = -exp * dh / 1000.0
    cost[iu : iu + n] = voll * dh / 1000.0
    cost[ic : ic + n] = TIE_BREAK * dh / 1000.0
    cost[id_ : id_ + n] = TIE_BREAK * dh / 1000.0
    # scipy costs about 0.3 s to import: only a day plan's check pays it, not every run.
    import scipy.sparse as sp
    from scipy.optimize import linprog

    rows = np.arange(n)
    eye = sp.identity(n, format="csr")
    # Balance: g - x - c + d + u = H
    zero_e = sp.csr_matrix((n, n + 1))
    balance = sp.hstack([-eye, eye, eye, -eye, eye, zero_e])
    # Energy: e_{k+1} - e_k - eta dh c_k + dh/eta d_k = 0
    shift = sp.csr_matrix(
        (
            np.concatenate([np.ones(n), -np.ones(n)]),
            (np.concatenate([rows, rows]), np.concatenate([rows + 1, rows])),
        ),
        shape=(n, n + 1),
    )
    energy = sp.hstack([-eta * dh * eye, (dh / eta) * eye, sp.csr_matrix((n, 3 * n)), shift])
    a_eq = sp.vstack([balance, energy], format="csr")
    b_eq = np.concatenate([home, np.zeros(n)])
    grid = np.where(on, lim.grid_w, 0.0)
    low = min(lim.reserve_wh, lim.start_wh)
    if lim.need_wh > lim.capacity_wh + 1e-9:
        raise OptimumError("the departure need is above the battery's capacity")
    e_low = np.full(n + 1, low)
    e_high = np.full(n + 1, lim.capacity_wh)
    e_low[0] = e_high[0] = lim.start_wh
    k_dep = min(n, max(0, round(lim.departure_s / dt)))
    e_low[k_dep] = max(low, lim.need_wh)
    lower = np.concatenate([np.zeros(5 * n), e_low])
    upper = np.concatenate(
        [
            np.full(n, lim.charge_w),
            np.full(n, lim.discharge_w),
            grid,
            grid,
            np.where(on, 0.0, home),
            e_high,
        ]
    )
    bounds = np.column_stack([lower, upper])
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:
        raise OptimumError(f"no optimal schedule: {res.message}")
    xv = res.x
    c = xv[ic : ic + n]
    d = xv[id_ : id_ + n]
    g = xv[ig : ig + n]
    x = xv[ix : ix + n]
    u = xv[iu : iu + n]
    e = xv[ie : ie + n + 1]
    grid_cost = float(np.sum((imp * g - exp * x) * dh / 1000.0))
    if not math.isfinite(grid_cost):
        raise OptimumError("the solver returned a non-finite cost")
    return OptimalDay(
        step_s=dt,
        t=np.arange(n) * dt,
        ev_w=c - d,
        grid_w=g - x,
        energy_wh=e,
        unserved_w=u,
        cost=grid_cost,
        import_price=imp,
        export_price=exp,
    )


def grid_cost(t: np.ndarray, p_w: np.ndarray, day: DaySpec, until_s: float | None = None) -> float:
    """The cost at the grid point of measured power p_w (+ import) at times t, by the day's
    tariff: trapezoids, each priced by its midpoint's window (import or export price by sign)."""
    end = day.length_s if until_s is None else until_s
    keep = np.isfinite(p_w) & (t <= end)
    t, p_w = t[keep], p_w[keep]
    if t.size < 2:
        return 0.0
    mid_t = (t[1:] + t[:-1]) / 2.0
    mean = (p_w[1:] + p_w[:-1]) / 2.0
    wh = mean * np.diff(t) / 3600.0
    imp, exp = day.tariff.prices_at(mid_t)
    price = np.where(wh >= 0.0, imp, exp)
    return float(np.sum(price * wh) / 1000.0)
