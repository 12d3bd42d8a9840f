"""Helpers for the rig.sim tests: quiet worlds (no noise) built from a few overrides."""

from __future__ import annotations

from typing import Any

import pytest
from sim_helpers import MakeWorld

from rig.sim import (
    BatteryConfig,
    EVSEConfig,
    GridConfig,
    HomeConfig,
    NoiseConfig,
    World,
    WorldConfig,
)


@pytest.fixture
def make_world() -> MakeWorld:
    """make_world(home_w=..., battery=dict(...), evse=dict(...), defects=(...), seed=..., noise=False,
    enabled=True): a World with ideal instruments unless noise=True, power stage enabled."""

    def build(
        *,
        home_w: float = 0.0,
        battery: dict[str, Any] | None = None,
        evse: dict[str, Any] | None = None,
        grid: dict[str, Any] | None = None,
        defects: tuple[str, ...] = (),
        seed: int = 0,
        noise: bool = False,
        enabled: bool = True,
    ) -> World:
        config = WorldConfig(
            grid=GridConfig(**(grid or {})),
            home=HomeConfig(p_w=home_w),
            battery=BatteryConfig(**(battery or {})),
            evse=EVSEConfig(**(evse or {})),
            noise=NoiseConfig() if noise else NoiseConfig.none(),
        )
        world = World(config, defects=defects, seed=seed)
        if enabled:
            world.enable_power_stage(True)
        return world

    return build
