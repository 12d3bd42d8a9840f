"""pytest plugin of the rig (collects test plans). Filled in by issue 2's runner work."""
