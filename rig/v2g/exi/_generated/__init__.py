"""Generated EXI codec modules, one per schema namespace (see rig.v2g.exi.generate)."""
