"""A seeded generator of plausible residential load days, one value per minute (W).

The model (rig's own, documented in fixtures/homeload/README.md; no published profile is copied):

- **Base load**: always-on devices (router, standby, circulation pump) at `base_w`, plus a fridge
  compressor cycling `fridge_w` for about 15 minutes of every 40 (phase drawn by the seed).
- **Lighting and entertainment**: `evening_w` from about 17:30 to 23:00, and half of it for an
  hour around 06:30 (start and end drawn within ±30 min).
- **Cooking**: a morning kettle (2 kW, 3-4 minutes) around 07:00; dinner on a hob and oven,
  `cooking_w` for 40-70 minutes starting between 18:00 and 19:00; on some days a lunch (1.5 kW,
  20 min) around 12:30.
- **Appliances**: a washing machine (heating 2 kW for 20 min, then 200 W for 70 min) started
  between 09:00 and 16:00 on two days of three; a dishwasher (1.8 kW heating 25 min, 150 W for
  60 min) started between 20:00 and 22:00.
- **Heat pump** (optional): compressor cycles of `heat_pump_w` whose duty cycle follows the hour
  (higher at night and in the morning, lowest in the afternoon), 20-minute cycles, plus a
  hot-water run of 2.5 kW for 45 minutes in the early morning.

Same seed, same day; all values finite and within [0, 15 kW].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MINUTES = 1440


@dataclass(frozen=True)
class HomeModel:
    """The generator's parameters (W); defaults describe a family home in a temperate climate."""

    base_w: float = 250.0
    fridge_w: float = 120.0
    evening_w: float = 350.0
    cooking_w: float = 2_800.0
    heat_pump: bool = False
    heat_pump_w: float = 1_600.0
    #: Heat pump duty cycle per hour of the day (fraction of each 20-minute cycle running).
    heat_pump_duty: tuple[float, ...] = (
        0.55, 0.55, 0.55, 0.6, 0.6, 0.65, 0.7, 0.7, 0.6, 0.5, 0.4, 0.35,
        0.3, 0.3, 0.3, 0.35, 0.4, 0.45, 0.5, 0.5, 0.5, 0.5, 0.55, 0.55,
    )  # fmt: skip


def _block(load: np.ndarray, start: int, minutes: int, watts: float) -> None:
    a = max(0, min(MINUTES, start))
    b = max(0, min(MINUTES, start + minutes))
    load[a:b] += watts


def generate(seed: int, model: HomeModel | None = None) -> np.ndarray:
    """One day of home load (W per minute from 00:00), seeded."""
    m = model or HomeModel()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x401E]))
    load = np.full(MINUTES, m.base_w)
    t = np.arange(MINUTES)
    phase = int(rng.integers(0, 40))
    load += np.where((t + phase) % 40 < 15, m.fridge_w, 0.0)
    evening = int(rng.integers(17 * 60, 18 * 60 + 1))
    night = int(rng.integers(22 * 60 + 30, 23 * 60 + 31))
    _block(load, evening, night - evening, m.evening_w)
    _block(load, int(rng.integers(6 * 60, 7 * 60)), 60, m.evening_w / 2)
    _block(load, int(rng.integers(6 * 60 + 30, 7 * 60 + 30)), int(rng.integers(3, 5)), 2_000.0)
    if rng.random() < 0.4:
        _block(load, int(rng.integers(12 * 60, 13 * 60)), 20, 1_500.0)
    dinner = int(rng.integers(18 * 60, 19 * 60 + 1))
    _block(load, dinner, int(rng.integers(40, 71)), m.cooking_w)
    if rng.random() < 2 / 3:
        wash = int(rng.integers(9 * 60, 16 * 60 + 1))
        _block(load, wash, 20, 2_000.0)
        _block(load, wash + 20, 70, 200.0)
    dish = int(rng.integers(20 * 60, 22 * 60 + 1))
    _block(load, dish, 25, 1_800.0)
    _block(load, dish + 25, 60, 150.0)
    if m.heat_pump:
        offset = int(rng.integers(0, 20))
        for start in range(-offset, MINUTES, 20):
            hour = max(0, start) // 60
            on = round(20 * m.heat_pump_duty[hour] * float(rng.uniform(0.85, 1.15)))
            _block(load, start, min(on, 20), m.heat_pump_w)
        _block(load, int(rng.integers(4 * 60, 5 * 60)), 45, 2_500.0)
    out: np.ndarray = np.clip(load, 0.0, 15_000.0)
    return out
