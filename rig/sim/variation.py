"""Seeded unit-to-unit variation of the emulated DUT: the seed draws one unit from a population.

A run's seed draws the emulated EVSE's own parameters (island detection time, transfer time, the
power stage's lag and ramp rate, its efficiency, and the gain and offset with which its power
tracks a command) from uniform distributions around the configured values, so that twenty seeds
are twenty different units rather than one unit with different meter noise. The spreads are
configuration (the bench file's `emulation: variation:`); all zero (the default) gives the
configured unit exactly. The uniform shape and the spreads of the embedded bench are the rig's
own choices, not data from a product.

The draw takes the same numbers from the generator whatever the spreads are (seven, in a fixed
order), so a spread changed in the bench file does not shift the other parameters' draws.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rig.sim.config import EVSEConfig, UnitVariation


def draw_unit(config: EVSEConfig, variation: UnitVariation, rng: np.random.Generator) -> EVSEConfig:
    """One unit of the population around `config`."""
    z = rng.uniform(-1.0, 1.0, 7)
    if variation.none:
        return config

    def scaled(value: float, spread: float, k: int) -> float:
        return value * (1.0 + spread * float(z[k]))

    efficiency = min(max(config.efficiency + variation.efficiency * float(z[4]), 0.5), 1.0)
    return dataclasses.replace(
        config,
        island_detection_s=scaled(config.island_detection_s, variation.island_detection, 0),
        transfer_s=scaled(config.transfer_s, variation.transfer, 1),
        lag_s=scaled(config.lag_s, variation.lag, 2),
        ramp_w_per_s=scaled(config.ramp_w_per_s, variation.ramp_rate, 3),
        efficiency=efficiency,
        power_gain=config.power_gain + variation.power_gain * float(z[5]),
        power_offset_w=config.power_offset_w + variation.power_offset_w * float(z[6]),
    )
