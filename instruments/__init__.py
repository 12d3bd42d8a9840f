"""Bench instruments: role interfaces, pyvisa drivers per model, and emulated twins over rig.sim.

The rig programs against the roles in `instruments.roles`; `instruments.registry` maps a bench
file's model key to the driver (and, for emulated benches, the twin) that fills the role;
`instruments.inventory` lists a bench's instruments with their identity and calibration dates.
Every driver keeps the SCPI it sends in one COMMANDS table (`instruments.commands`), with the
commands not confirmed against a manual marked (?).
"""
