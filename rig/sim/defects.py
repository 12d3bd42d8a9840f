"""Seeded defects of the emulated EVSE: named ways a DUT's firmware can be wrong.

Every check of the rig must be able to fail; each defect here breaks at least one named check
("reserve_floor", "transition_time", "islanding", "power_direction", ...), and the world applies a
defect by changing one parameter of the good EVSE's behaviour (the fields of Defect below). `rig
defects` lists them; tests/checks/defect_table.py says which check of which plan each one fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Defect:
    """One seeded firmware defect, and what it changes in the EVSE model.

    ramp_factor scales the ramp rate; damping_ratio replaces the ramp and lag by an under-damped
    response; island_detection_s forces the active detection time and is a floor on every passive
    clearing time; detects_islands False removes all anti-islanding protection; transfer_factor
    scales the grid-forming transfer time; respects_reserve False makes the EVSE discharge below
    the EV's reserve; flips_discharge makes a discharge command charge instead; respects_ev_limits
    False makes it ignore the power limits the EV announces over ISO 15118-20.
    """

    name: str
    summary: str
    breaks: tuple[str, ...]
    ramp_factor: float = 1.0
    damping_ratio: float | None = None
    island_detection_s: float | None = None
    detects_islands: bool = True
    transfer_factor: float = 1.0
    respects_reserve: bool = True
    flips_discharge: bool = False
    respects_ev_limits: bool = True


#: A damping ratio of 0.38 gives exp(-pi z / sqrt(1 - z^2)) = 27.5 % overshoot on a step.
OVERSHOOT_DAMPING_RATIO = 0.38

_ALL = (
    Defect(
        "ignores_reserve",
        "keeps discharging after the EV has reached its reserve (EVMinimumV2XEnergyRequest), "
        "down to an empty pack",
        ("reserve_floor", "discharge_limits"),
        respects_reserve=False,
    ),
    Defect(
        "slow_ramp",
        "power stage ramps at a tenth of its nominal rate, so direction changes and setpoint "
        "steps take ten times longer (and stopping on Standby too)",
        ("transition_time", "sequence"),
        ramp_factor=0.1,
    ),
    Defect(
        "overshoot",
        "control loop tuned under-damped (no ramp limiter, damping ratio 0.38): about 27 % "
        "overshoot on every step",
        ("transition_time",),
        damping_ratio=OVERSHOOT_DAMPING_RATIO,
    ),
    Defect(
        "slow_island_detection",
        "detects an island only after 3 s (active method and passive trips alike), beyond the "
        "2 s clearing limit",
        ("islanding",),
        island_detection_s=3.0,
    ),
    Defect(
        "no_island_detection",
        "never detects an island: a grid-following unit keeps a balanced island energized, a "
        "grid-forming unit never transfers",
        ("islanding",),
        detects_islands=False,
    ),
    Defect(
        "slow_backup_transfer",
        "grid-forming transfer takes ten times its configured transfer_s (2 s with the default "
        "0.2 s), so the home stays dark that much longer",
        ("islanding",),
        transfer_factor=10.0,
    ),
    Defect(
        "wrong_discharge_sign",
        "reads a discharge command as a charge command of the same magnitude (the magnitude/"
        "negative-sign confusion of -20 discharge limits)",
        ("transition_time", "power_direction", "home_supply"),
        flips_discharge=True,
    ),
    Defect(
        "exceeds_discharge_limit",
        "ignores the discharge power the EV announces over ISO 15118-20 (EVMaximumDischargePower) "
        "and discharges up to its own rating",
        ("discharge_limits",),
        respects_ev_limits=False,
    ),
)

DEFECTS: Mapping[str, Defect] = MappingProxyType({d.name: d for d in _ALL})


@dataclass(frozen=True)
class Firmware:
    """The EVSE's behaviour once its defects are applied (all defaults: a good unit)."""

    defects: tuple[str, ...] = ()
    ramp_factor: float = 1.0
    damping_ratio: float | None = None
    island_detection_s: float | None = None
    detects_islands: bool = True
    transfer_factor: float = 1.0
    respects_reserve: bool = True
    flips_discharge: bool = False
    respects_ev_limits: bool = True


def firmware_for(names: Iterable[str]) -> Firmware:
    """Combine the named defects; an unknown name raises ValueError listing the known ones."""
    chosen: list[Defect] = []
    for name in names:
        defect = DEFECTS.get(name)
        if defect is None:
            known = ", ".join(sorted(DEFECTS))
            raise ValueError(f"unknown defect {name!r}; known defects: {known}")
        if defect not in chosen:
            chosen.append(defect)
    firmware = Firmware(defects=tuple(d.name for d in chosen))
    for d in chosen:
        firmware = Firmware(
            defects=firmware.defects,
            ramp_factor=firmware.ramp_factor * d.ramp_factor,
            damping_ratio=d.damping_ratio
            if d.damping_ratio is not None
            else firmware.damping_ratio,
            island_detection_s=max(
                (x for x in (firmware.island_detection_s, d.island_detection_s) if x is not None),
                default=None,
            ),
            detects_islands=firmware.detects_islands and d.detects_islands,
            transfer_factor=firmware.transfer_factor * d.transfer_factor,
            respects_reserve=firmware.respects_reserve and d.respects_reserve,
            flips_discharge=firmware.flips_discharge or d.flips_discharge,
            respects_ev_limits=firmware.respects_ev_limits and d.respects_ev_limits,
        )
    return firmware
