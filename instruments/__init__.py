"""Bench instruments: role interfaces, pyvisa drivers per model, and emulated twins over rig.sim.

The rig programs against the roles in `instruments.roles`; `instruments.registry` maps a bench
file's model key to the driver (and, for emulated benches, the twin) that fills the role.
"""
