"""Control pilot drivers: the rig's pilot box (its SCPI twin runs the emulated bench) and the
pilot built from generic lab parts (a switch unit for the EV's resistors, a scope for the line)."""
