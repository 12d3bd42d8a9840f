"""The rig's own control interfaces: what a DUT's energy manager is told (not a lab instrument)."""
