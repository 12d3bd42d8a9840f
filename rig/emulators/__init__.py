"""Emulated EV and EVSE: a protocol engine joined to its power stage and battery in rig.sim."""
