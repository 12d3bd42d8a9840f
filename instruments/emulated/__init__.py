"""Emulated instruments: SCPI twins over rig.sim's World, reached through pyvisa.

`scpi` is the command engine, `twin` the base class, one module per model, `visa` the
in-process VISA library (virtual time) and `server` the TCP sockets (real time).
"""
