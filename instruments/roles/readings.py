"""What instruments return: coherent AC and DC readings, and captured waveforms.

Sign convention inside the rig: power and current are positive when energy flows into the EV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AcReading:
    """One coherent AC measurement at a point (rig sign at that point)."""

    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float


@dataclass(frozen=True)
class DcReading:
    """One coherent DC measurement; current and power positive into the EV battery."""

    v: float
    i: float
    p_w: float


@dataclass(frozen=True, eq=False)
class Waveform:
    """One captured channel: sample times (s, 0 = the trigger) and values in `unit`.

    `t_trigger` is when the trigger fired on the instrument's own clock if it reports one
    (the emulated scope reports the simulation time), else NaN.
    """

    channel: str
    t: FloatArray
    y: FloatArray
    unit: str
    t_trigger: float = float("nan")

    def __post_init__(self) -> None:
        if self.t.shape != self.y.shape or self.t.ndim != 1:
            raise ValueError(
                f"waveform {self.channel}: t {self.t.shape} and y {self.y.shape} must be equal 1-D"
            )

    @property
    def sample_rate_hz(self) -> float:
        if self.t.size < 2:
            return float("nan")
        return float((self.t.size - 1) / (self.t[-1] - self.t[0]))

    def __len__(self) -> int:
        return int(self.t.size)
