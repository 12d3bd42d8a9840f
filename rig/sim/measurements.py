"""What an ideal meter sees at one point of the bench, plus seeded noise: AC and DC readings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AcMeasurement:
    """One AC reading. Signs follow the point: "grid" + = import, "evse_ac" + = into the EVSE
    (charging), "home" + = consumed. i_rms is per phase, powers are totals over the phases."""

    v_rms: float
    i_rms: float
    p_w: float
    q_var: float
    s_va: float
    pf: float
    f_hz: float  # 0.0 on a dead bus (no zero crossings to count)


@dataclass(frozen=True)
class DcMeasurement:
    """One DC reading at the battery terminals; i and p_w positive into the EV battery."""

    v: float
    i: float
    p_w: float
