"""Measurement noise: seeded Gaussian noise on what an ideal meter reads.

The same seed and the same sequence of measure calls give the same numbers; NoiseConfig.none()
gives the model's exact values (and draws nothing from the generator).
"""

from __future__ import annotations

import math

import numpy as np

from rig.sim.config import NoiseConfig, NoiseSpec
from rig.sim.measurements import AcMeasurement, DcMeasurement


def _sigma(spec: NoiseSpec, value: float) -> float:
    return spec.rel * abs(value) + spec.offset


class MeasurementNoise:
    def __init__(self, config: NoiseConfig, rng: np.random.Generator) -> None:
        self.config = config
        self._rng = rng
        zero = NoiseSpec()
        self._ideal = all(
            spec == zero
            for spec in (
                config.ac_voltage,
                config.ac_current,
                config.ac_power,
                config.frequency,
                config.dc_voltage,
                config.dc_current,
            )
        )

    def ac(self, v: float, p: float, q: float, f: float, phases: int) -> AcMeasurement:
        """An AC reading of a point at phase voltage v with total powers p, q at frequency f."""
        s = math.hypot(p, q)
        i = s / (phases * v) if v > 0.0 else 0.0
        if not self._ideal:
            c = self.config
            z = self._rng.standard_normal(5)
            # RMS readings cannot go negative; a dead bus reads a little positive noise.
            v = abs(v + float(z[0]) * _sigma(c.ac_voltage, v))
            i = abs(i + float(z[1]) * _sigma(c.ac_current, i))
            p = p + float(z[2]) * _sigma(c.ac_power, p)
            q = q + float(z[3]) * _sigma(c.ac_power, q)
            if f > 0.0:
                f = f + float(z[4]) * _sigma(c.frequency, f)
            s = phases * v * i
        pf = max(-1.0, min(1.0, p / s)) if s > 0.0 else 1.0
        return AcMeasurement(v_rms=v, i_rms=i, p_w=p, q_var=q, s_va=s, pf=pf, f_hz=f)

    def dc(self, v: float, i: float) -> DcMeasurement:
        if not self._ideal:
            c = self.config
            z = self._rng.standard_normal(2)
            v = abs(v + float(z[0]) * _sigma(c.dc_voltage, v))
            i = i + float(z[1]) * _sigma(c.dc_current, i)
        return DcMeasurement(v=v, i=i, p_w=v * i)
