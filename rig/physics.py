"""The emulated bench's physics for a plan: the plan's EV and grid, the bench's EVSE (rig.sim)."""

from __future__ import annotations

import dataclasses
from typing import Any

from rig import sim
from rig.bench import BenchConfig
from rig.plan import Plan
from rig.v2g.vocabulary import Service


def world_config(plan: Plan | None, bench: BenchConfig) -> sim.WorldConfig:
    """What the World of an emulated bench is built from. Without a plan (a served bench), the
    sim's defaults stand in for the EV and the grid."""
    evse_fields: dict[str, Any] = dict(bench.evse_physics)
    if plan is not None:
        evse_fields["generator_mode"] = plan.evse.generator_mode
        evse_fields["islanding_method"] = plan.evse.islanding_method
        battery = plan.ev.battery_config()
        if bench.protocol != "none":
            # Over ISO 15118-20 the plan's charge and discharge limits are what the EV announces;
            # the pack itself can do what the EVSE can, so an EVSE that ignores the announcement
            # is not held back by the battery model (the BMS limits of protocol "none" bind).
            rated = max(
                bench.evse_physics.get("max_charge_w", 11_000.0),
                bench.evse_physics.get("max_discharge_w", 11_000.0),
                bench.dut.rated_power_w,
            )
            battery = dataclasses.replace(
                battery,
                max_charge_w=max(battery.max_charge_w, rated),
                max_discharge_w=max(battery.max_discharge_w, rated),
            )
        grid = sim.GridConfig(
            voltage_nominal_v=plan.grid.voltage_v, frequency_nominal_hz=plan.grid.frequency_hz
        )
    else:
        battery = sim.BatteryConfig()
        grid = sim.GridConfig()
    noise = sim.NoiseConfig() if bench.noise else sim.NoiseConfig.none()
    return sim.WorldConfig(
        grid=grid,
        home=sim.HomeConfig(),
        evse=sim.EVSEConfig(**evse_fields),
        battery=battery,
        noise=noise,
        # The seed draws the emulated DUT from the bench's population (rig.sim.variation).
        variation=sim.UnitVariation(**bench.variation),
        # AC_BPT: the inverter, and its islanding duty, is the EV's.
        inverter_in_ev=plan is not None and plan.session.service is Service.AC_BPT,
    )
